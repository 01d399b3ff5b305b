// The other side of tests/ethereum/ethereum_e2e.sh, written with npm ethers
// (an implementation independent of src/eth): a wallet that signs the
// plane's link message, and a consumer that calls the contract directly
// (not through `cce rent`), as anyone with a key can.
//
//   node eth_tool.mjs sign KEY_FILE MESSAGE_FILE
//       prints the EIP-191 personal_sign signature of the file's bytes
//   node eth_tool.mjs rent RPC CONTRACT DATASET_ID DAYS VALUE_WEI KEY_FILE
//       sends rent(DATASET_ID, DAYS) with VALUE_WEI and a fixed gas limit
//       (so a reverting call is still mined), waits for the receipt and
//       prints "status S tx HASH block N" (S is 1 or 0)
//   node eth_tool.mjs deactivate RPC CONTRACT DATASET_ID KEY_FILE
//       the operator's deactivateDataset(DATASET_ID); prints the same line
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const require = createRequire(path.join(root, "package.json"));
const { ethers } = require("ethers");

const key = (file) => readFileSync(file, "utf8").trim();
const [cmd, ...args] = process.argv.slice(2);

if (cmd === "sign") {
  const [keyFile, messageFile] = args;
  const wallet = new ethers.Wallet(key(keyFile));
  // The exact bytes the plane sent: no trimming.
  const message = readFileSync(messageFile);
  process.stdout.write((await wallet.signMessage(message)) + "\n");
} else if (cmd === "rent") {
  const [rpc, contract, datasetId, days, valueWei, keyFile] = args;
  const provider = new ethers.JsonRpcProvider(rpc, undefined, { staticNetwork: true });
  const wallet = new ethers.Wallet(key(keyFile), provider);
  const market = new ethers.Contract(
      contract, ["function rent(bytes32 datasetId, uint32 days_) payable"], wallet);
  const tx = await market.rent(datasetId, Number(days), {
    value: BigInt(valueWei),
    gasLimit: 300000n,
  });
  const receipt = await provider.waitForTransaction(tx.hash, 1, 30000);
  process.stdout.write(`status ${receipt.status} tx ${tx.hash} block ${receipt.blockNumber}\n`);
  provider.destroy();
} else if (cmd === "deactivate") {
  const [rpc, contract, datasetId, keyFile] = args;
  const provider = new ethers.JsonRpcProvider(rpc, undefined, { staticNetwork: true });
  const wallet = new ethers.Wallet(key(keyFile), provider);
  const market = new ethers.Contract(
      contract, ["function deactivateDataset(bytes32 datasetId)"], wallet);
  const tx = await market.deactivateDataset(datasetId, { gasLimit: 100000n });
  const receipt = await provider.waitForTransaction(tx.hash, 1, 30000);
  process.stdout.write(`status ${receipt.status} tx ${tx.hash} block ${receipt.blockNumber}\n`);
  provider.destroy();
} else {
  process.stderr.write("usage: eth_tool.mjs sign KEY_FILE MESSAGE_FILE | " +
                       "rent RPC CONTRACT DATASET_ID DAYS VALUE_WEI KEY_FILE | " +
                       "deactivate RPC CONTRACT DATASET_ID KEY_FILE\n");
  process.exit(2);
}
