'use strict';
// Ethereum interoperability: src/eth (through eth_tool) against npm ethers,
// an independent implementation, on random inputs (plus anvil's account 0).
// For each case, both ways where it applies:
//   - address and public key of a private key; EIP-55 checksums (ethers'
//     checksummed address parses; one letter's case flipped is refused by both)
//   - personal_sign: signature bytes equal (RFC 6979 is deterministic), and
//     each side recovers the signer from the other's signature
//   - EIP-1559: signed raw transaction bytes and hash equal; eth_tool decodes
//     ethers' transaction to the same fields and sender; ethers parses ours
//   - ABI encoding of (uint256, uint32, address, bool, bytes32) call data
//   - RLP of random nested lists; eth_tool decodes ethers' encoding
// Usage: node interop.cjs <repo root> <path to eth_tool>   (ETH_INTEROP_CASES=N, default 200)
// Fails (never skips) when node_modules/ethers is missing: `make deps` runs npm ci.

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { createRequire } = require('node:module');

const [rootArg, tool] = process.argv.slice(2);
const root = rootArg && path.resolve(rootArg);
if (!root || !tool) {
  console.error('usage: node interop.cjs <repo root> <eth_tool>');
  process.exit(2);
}
const ethersPackage = path.join(root, 'node_modules', 'ethers', 'package.json');
if (!fs.existsSync(ethersPackage)) {
  console.error(`FAIL: ${ethersPackage} is missing; run \`make deps\` (npm ci) at the repo root`);
  process.exit(1);
}
const { ethers } = createRequire(path.join(root, 'package.json'))('ethers');
const ethersVersion = JSON.parse(fs.readFileSync(ethersPackage, 'utf8')).version;
const N = Number(process.env.ETH_INTEROP_CASES || 200);

const ANVIL_KEY0 = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const ANVIL_ADDRESS0 = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266';

function randInt(n) {
  return crypto.randomInt(n);
}
function hex(bytes) {
  return '0x' + Buffer.from(bytes).toString('hex');
}
// A uint of a random bit length (so small values and boundaries are common).
function randUint(maxBits) {
  const bits = randInt(maxBits + 1);
  if (bits === 0) return 0n;
  const v = BigInt(hex(crypto.randomBytes(Math.ceil(bits / 8))));
  return v & ((1n << BigInt(bits)) - 1n);
}
// Lengths around the RLP short/long boundary (55/56) and the single-byte case.
function randLength() {
  const picks = [0, 1, 1, 2, 55, 56, 57, randInt(300)];
  return picks[randInt(picks.length)];
}
function randBytes() {
  const n = randLength();
  const b = crypto.randomBytes(n);
  if (n === 1 && randInt(2) === 0) b[0] &= 0x7f;  // the one-byte-is-itself encoding
  return hex(b);
}
function randRlp(depth) {
  if (depth >= 4 || randInt(3) === 0) return randBytes();
  const n = randInt(5);
  const items = [];
  for (let i = 0; i < n; i++) items.push(randRlp(depth + 1));
  return items;
}
function randMessage() {
  const kind = randInt(4);
  if (kind === 0) return '';
  if (kind === 1) return 'cce4long wallet link\nplane: 0x' + crypto.randomBytes(32).toString('hex') +
      '\nchain: 31337\nuser: alice\nnonce: ' + crypto.randomBytes(16).toString('hex') + '\n';
  let s = '';
  const len = randInt(200);
  for (let i = 0; i < len; i++) {
    let cp = randInt(3) === 0 ? randInt(0x2ffff) : 0x20 + randInt(0x5f);
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41;  // no lone surrogates
    s += String.fromCodePoint(cp);
  }
  return s;
}
function flipOneLetter(addr) {
  const letters = [];
  for (let i = 2; i < addr.length; i++) if (/[a-fA-F]/.test(addr[i])) letters.push(i);
  if (letters.length === 0) return null;
  const i = letters[randInt(letters.length)];
  const c = addr[i];
  const flipped = c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase();
  const bad = addr.slice(0, i) + flipped + addr.slice(i + 1);
  // All one case after the flip (an address with one letter, or one the
  // flip made uniform) carries no checksum under EIP-55 and is valid:
  // no mismatch case then.
  const body = bad.slice(2);
  if (!/[a-f]/.test(body) || !/[A-F]/.test(body)) return null;
  return bad;
}

async function makeCase(keyHex) {
  const wallet = new ethers.Wallet(keyHex);
  const message = randMessage();
  const other = ethers.getAddress(hex(crypto.randomBytes(20)));
  const maxFee = randUint(256);
  const tx = {
    chain_id: (randUint(64) || 1n).toString(),
    nonce: randUint(48).toString(),
    max_fee_per_gas: maxFee.toString(),
    max_priority_fee_per_gas: (maxFee >> BigInt(randInt(257))).toString(),
    gas_limit: randUint(64).toString(),
    to: randInt(4) === 0 ? null : ethers.getAddress(hex(crypto.randomBytes(20))),
    value: randUint(256).toString(),
    data: randBytes(),
  };
  const ethersTx = ethers.Transaction.from({
    type: 2, chainId: BigInt(tx.chain_id), nonce: Number(tx.nonce),
    maxFeePerGas: BigInt(tx.max_fee_per_gas), maxPriorityFeePerGas: BigInt(tx.max_priority_fee_per_gas),
    gasLimit: BigInt(tx.gas_limit), to: tx.to, value: BigInt(tx.value), data: tx.data, accessList: [],
  });
  const abi = {
    uint256: randUint(256).toString(), uint32: randUint(32).toString(),
    address: ethers.getAddress(hex(crypto.randomBytes(20))), bool: randInt(2) === 1,
    bytes32: hex(crypto.randomBytes(32)),
  };
  const rlp = randRlp(0);
  const c = {
    key: keyHex, message,
    ethers_personal_sig: await wallet.signMessage(message),
    address_checksummed: other,
    tx, ethers_tx_raw: await wallet.signTransaction(ethersTx),
    abi, rlp, ethers_rlp: ethers.encodeRlp(rlp),
  };
  const bad = flipOneLetter(other);
  if (bad !== null) c.address_bad_checksum = bad;
  return { c, wallet };
}

function check(name, fn, failures) {
  try {
    fn();
  } catch (e) {
    failures.push(`${name}: ${e.message}`);
  }
}

async function main() {
  const cases = [await makeCase(ANVIL_KEY0)];
  while (cases.length < N + 1) {
    let key;
    do key = hex(crypto.randomBytes(32)); while (BigInt(key) === 0n || BigInt(key) >= ethers.N);
    cases.push(await makeCase(key));
  }
  const r = spawnSync(tool, [], { input: JSON.stringify(cases.map((x) => x.c)), encoding: 'utf8',
                                  maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    console.error(`FAIL: eth_tool exited ${r.status}: ${r.stderr}`);
    process.exit(1);
  }
  const results = JSON.parse(r.stdout);
  assert.equal(results.length, cases.length);
  assert.equal(results[0].address, ANVIL_ADDRESS0, 'anvil account 0 address');

  const iface = new ethers.Interface(['function f(uint256,uint32,address,bool,bytes32)']);
  let failed = 0;
  for (let i = 0; i < cases.length; i++) {
    const { c, wallet } = cases[i];
    const out = results[i];
    const failures = [];
    if (out.error) {
      failures.push(`eth_tool: ${out.error}`);
    } else {
      check('address', () => assert.equal(out.address, wallet.address), failures);
      check('address lower', () => assert.equal(out.address_lower, wallet.address.toLowerCase()), failures);
      check('public key', () => assert.equal('0x04' + out.public_key.slice(2), wallet.signingKey.publicKey), failures);
      check('personal_sign bytes', () => assert.equal(out.personal_sig, c.ethers_personal_sig), failures);
      check('personal signer (ours)', () => assert.equal(out.personal_signer, wallet.address), failures);
      check('personal signer (ethers sig)', () => assert.equal(out.ethers_personal_signer, wallet.address), failures);
      check('ethers verifies ours', () => assert.equal(ethers.verifyMessage(c.message, out.personal_sig), wallet.address), failures);
      check('EIP-55 parse', () => assert.equal(out.address_parsed, c.address_checksummed.toLowerCase()), failures);
      if (c.address_bad_checksum) {
        check('EIP-55 mismatch refused (eth)', () => assert.equal(out.bad_checksum_refused, true), failures);
        check('EIP-55 mismatch refused (ethers)', () => assert.throws(() => ethers.getAddress(c.address_bad_checksum)), failures);
      }
      check('tx raw', () => assert.equal(out.tx_raw, c.ethers_tx_raw), failures);
      check('tx hash', () => assert.equal(out.tx_hash, ethers.keccak256(c.ethers_tx_raw)), failures);
      check('ethers parses ours', () => {
        const parsed = ethers.Transaction.from(out.tx_raw);
        assert.equal(parsed.from, wallet.address);
        assert.equal(parsed.hash, out.tx_hash);
      }, failures);
      check('decode ethers tx', () => {
        assert.equal(out.ethers_tx_sender, wallet.address);
        assert.equal(out.ethers_tx_hash, ethers.keccak256(c.ethers_tx_raw));
        const f = out.ethers_tx_fields;
        assert.deepEqual(f, {
          chain_id: c.tx.chain_id, nonce: c.tx.nonce,
          max_priority_fee_per_gas: c.tx.max_priority_fee_per_gas, max_fee_per_gas: c.tx.max_fee_per_gas,
          gas_limit: c.tx.gas_limit, to: c.tx.to === null ? null : c.tx.to.toLowerCase(),
          value: c.tx.value, data: c.tx.data,
        });
      }, failures);
      check('abi', () => assert.equal(out.abi, iface.encodeFunctionData('f', [
        BigInt(c.abi.uint256), BigInt(c.abi.uint32), c.abi.address, c.abi.bool, c.abi.bytes32])), failures);
      check('rlp', () => assert.equal(out.rlp, c.ethers_rlp), failures);
      check('rlp decode', () => assert.equal(out.ethers_rlp_reencoded, c.ethers_rlp), failures);
    }
    if (failures.length > 0) {
      failed++;
      console.log(`not ok - case ${i}\n  ${failures.join('\n  ')}\n  case: ${JSON.stringify(c).slice(0, 4000)}`);
    }
  }
  console.log(`${cases.length - failed}/${cases.length} cases agree with ethers ${ethersVersion}`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(`FAIL: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
