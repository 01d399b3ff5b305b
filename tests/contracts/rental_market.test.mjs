// contracts/RentalMarket.sol on a real chain: the committed build (contracts/build/RentalMarket.json)
// deployed to a real `anvil` (npm @foundry-rs/anvil) on a free loopback port, driven by npm ethers 6
// (an independent implementation) with anvil's well-known dev accounts.
//
// Covered: deploy (on-chain code == committed deployedBytecode), register/update/deactivate, rent
// with the exact payment (the Rented event's start/end/days/amount against the block), every
// revert path (NotOperator on each operator function, ContractPaused, UnknownDataset for an unknown
// and a deactivated dataset, ZeroDays, TooManyDays, WrongPayment under and over, NothingToWithdraw,
// TransferFailed, ZeroAddress, ZeroPrice, ZeroMaxDays), withdraw moving exactly the balance, a
// reentrant provider contract (tests/contracts/ReentrantProvider.sol, compiled here by the same
// solc and settings) that cannot withdraw twice, pause/unpause, transferOperator.
//
// usage: node --test tests/contracts/rental_market.test.mjs   (ctest: contract_test)
// Fails (never skips) when node_modules is missing: run `make deps` (npm ci) at the repo root.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ANVIL = path.join(ROOT, 'node_modules', '@foundry-rs', 'anvil-linux-amd64', 'bin', 'anvil');
const ETHERS = path.join(ROOT, 'node_modules', 'ethers', 'lib.esm', 'index.js');
const SOLC = path.join(ROOT, 'node_modules', 'solc', 'package.json');
const ARTIFACT = path.join(ROOT, 'contracts', 'build', 'RentalMarket.json');
const SOURCE = path.join(ROOT, 'contracts', 'RentalMarket.sol');
const ATTACKER_SOURCE = path.join(ROOT, 'tests', 'contracts', 'ReentrantProvider.sol');
const MNEMONIC = 'test test test test test test test test test test test junk';
const ANVIL_ACCOUNT0 = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266';
const WATCHDOG_MS = 55_000;  // ctest's TIMEOUT is 60 s; leave no anvil behind

for (const [file, what] of [[ANVIL, 'npm @foundry-rs/anvil'], [ETHERS, 'npm ethers'], [SOLC, 'npm solc']]) {
  if (!fs.existsSync(file)) {
    throw new Error(`${file} is missing (${what}): run \`make deps\` (npm ci) at the repo root`);
  }
}
const ethers = await import(pathToFileURL(ETHERS).href);
const { compileSources, loadSolc } = await import(
  pathToFileURL(path.join(ROOT, 'scripts', 'compile-contracts.mjs')).href);

const artifact = JSON.parse(fs.readFileSync(ARTIFACT, 'utf8'));
const iface = new ethers.Interface(artifact.abi);
const PLANE_ID = ethers.keccak256(ethers.toUtf8Bytes('cce4long contract_test plane'));
const DAY = 86_400n;
const PRICE = 10n ** 16n;  // 0.01 ETH per day

let anvil = null;
let anvilStderr = '';
let provider;
let operator, consumer, provider1, provider2, stranger;
let attackerFactory;
let watchdog;

// ---- anvil -------------------------------------------------------------------------------------

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function rpc(url, method, params = []) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const body = await r.json();
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

function stopAnvil() {
  if (anvil && anvil.exitCode === null && anvil.signalCode === null) anvil.kill('SIGTERM');
}

// Starts anvil on a free port; retries on another port if it loses the race for one.
async function startAnvil() {
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    anvilStderr = '';
    anvil = spawn(ANVIL, ['--port', String(port), '--host', '127.0.0.1', '--silent'],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    anvil.stderr.on('data', (d) => { anvilStderr += d; });
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && anvil.exitCode === null) {
      try {
        if (Number(await rpc(url, 'eth_chainId')) === 31337) return url;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    stopAnvil();
    if (attempt === 3) {
      throw new Error(`anvil did not answer on ${url} within 15 s (exit ${anvil.exitCode}): ${anvilStderr}`);
    }
  }
  throw new Error('unreachable');
}

// ---- helpers -----------------------------------------------------------------------------------

async function deployMarket(planeId = PLANE_ID) {
  const factory = new ethers.ContractFactory(artifact.abi, artifact.bytecode, operator);
  const market = await factory.deploy(planeId);
  await market.waitForDeployment();
  return market;
}

function datasetId(label) {
  return ethers.keccak256(ethers.toUtf8Bytes(`dataset ${label}`));
}

async function register(market, id, providerAddr, price = PRICE, maxDays = 30) {
  return (await market.registerDataset(id, providerAddr, price, maxDays)).wait();
}

// The market's events in a receipt, decoded by the committed ABI.
function events(receipt, market, name) {
  const address = market.target.toLowerCase();
  return receipt.logs
    .filter((l) => l.address.toLowerCase() === address)
    .map((l) => iface.parseLog(l))
    .filter((e) => e && (!name || e.name === name));
}

// Asserts that `promise` (a call or a transaction) reverts with the custom error `name`(args),
// decoded from the revert data by the committed ABI; anything else (another error, a transport
// failure, success) fails the test.
async function expectRevert(promise, name, args = []) {
  let error = null;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  assert.ok(error, `expected a revert with ${name}, but the call succeeded`);
  assert.equal(error.code, 'CALL_EXCEPTION', `expected CALL_EXCEPTION (${name}), got: ${error.message}`);
  const data = error.data ?? error.info?.error?.data;
  assert.ok(data && data !== '0x', `expected revert data for ${name}, got none: ${error.message}`);
  const parsed = iface.parseError(data);
  assert.ok(parsed, `revert data ${data} is no RentalMarket error (expected ${name})`);
  assert.equal(parsed.name, name, `reverted with ${parsed.signature}, expected ${name}`);
  assert.deepEqual([...parsed.args], args, `${name} arguments`);
}

async function fee(receipt) {
  return receipt.gasUsed * receipt.gasPrice;
}

// ---- setup -------------------------------------------------------------------------------------

before(async () => {
  watchdog = setTimeout(() => {
    stopAnvil();
    console.error(`FAIL: contract_test exceeded ${WATCHDOG_MS / 1000} s; anvil stopped`);
    process.exit(1);
  }, WATCHDOG_MS);
  watchdog.unref();
  process.on('exit', stopAnvil);

  const sha = createHash('sha256').update(fs.readFileSync(SOURCE)).digest('hex');
  assert.equal(artifact.sourceSha256, sha,
    'contracts/build/RentalMarket.json is stale: run node scripts/compile-contracts.mjs (contract_build_test)');

  const url = await startAnvil();
  provider = new ethers.JsonRpcProvider(url, 31337,
    { staticNetwork: true, cacheTimeout: -1, batchMaxCount: 1, pollingInterval: 50 });
  const root = ethers.HDNodeWallet.fromPhrase(MNEMONIC, undefined, "m/44'/60'/0'/0");
  [operator, consumer, provider1, provider2, stranger] =
    [0, 1, 2, 3, 4].map((i) => root.deriveChild(i).connect(provider));
  assert.equal(operator.address, ANVIL_ACCOUNT0, 'anvil dev account 0 from the test mnemonic');

  const compiled = compileSources(loadSolc(),
    { 'tests/contracts/ReentrantProvider.sol': fs.readFileSync(ATTACKER_SOURCE, 'utf8') });
  const a = compiled['tests/contracts/ReentrantProvider.sol'].ReentrantProvider;
  attackerFactory = new ethers.ContractFactory(a.abi, `0x${a.evm.bytecode.object}`, stranger);
});

after(() => {
  stopAnvil();
  clearTimeout(watchdog);
});

// ---- tests -------------------------------------------------------------------------------------

test('deploys the committed bytecode: planeId, operator, not paused, code on chain == deployedBytecode',
  async () => {
    const market = await deployMarket();
    const receipt = await market.deploymentTransaction().wait();
    assert.equal(await market.planeId(), PLANE_ID);
    assert.equal(await market.operator(), operator.address);
    assert.equal(await market.paused(), false);
    assert.equal(await provider.getCode(market.target), artifact.deployedBytecode,
      'runtime code on chain must be the committed deployedBytecode byte for byte');
    const [ev] = events(receipt, market, 'OperatorTransferred');
    assert.deepEqual([...ev.args], [ethers.ZeroAddress, operator.address]);
  });

test('registerDataset stores the dataset and emits DatasetRegistered; a second call updates it', async () => {
  const market = await deployMarket();
  const id = datasetId('register');
  const r1 = await register(market, id, provider1.address, PRICE, 30);
  assert.deepEqual([...events(r1, market, 'DatasetRegistered')[0].args], [id, provider1.address, PRICE, 30n]);
  assert.deepEqual([...(await market.datasets(id))], [provider1.address, PRICE, 30n, true]);
  const r2 = await register(market, id, provider2.address, 2n * PRICE, 7);
  assert.deepEqual([...events(r2, market, 'DatasetRegistered')[0].args],
    [id, provider2.address, 2n * PRICE, 7n]);
  assert.deepEqual([...(await market.datasets(id))], [provider2.address, 2n * PRICE, 7n, true]);
  assert.deepEqual([...(await market.datasets(datasetId('never')))], [ethers.ZeroAddress, 0n, 0n, false]);
});

test('rent with the exact payment emits Rented with start, end, days and amount, and credits the provider',
  async () => {
    const market = await deployMarket();
    const id = datasetId('rent');
    await register(market, id, provider1.address, PRICE, 30);
    const days = 3n;
    const amount = PRICE * days;
    const tx = await market.connect(consumer).rent(id, days, { value: amount });
    const receipt = await tx.wait();
    assert.equal(receipt.status, 1);
    const block = await provider.getBlock(receipt.blockNumber);
    const rented = events(receipt, market, 'Rented');
    assert.equal(rented.length, 1, 'one Rented event');
    const ts = BigInt(block.timestamp);
    assert.deepEqual([...rented[0].args], [id, consumer.address, ts, ts + days * DAY, days, amount]);
    // The topics are what the plane's indexer filters on.
    const log = receipt.logs.find((l) => l.topics[0] === iface.getEvent('Rented').topicHash);
    assert.equal(log.topics[1], id);
    assert.equal(log.topics[2], ethers.zeroPadValue(consumer.address.toLowerCase(), 32));
    assert.equal(await market.pendingWithdrawals(provider1.address), amount);
    assert.equal(await provider.getBalance(market.target), amount);

    // Exactly maxDays is allowed; rents accumulate on the provider's balance.
    const r2 = await (await market.connect(stranger).rent(id, 30, { value: PRICE * 30n })).wait();
    assert.equal(events(r2, market, 'Rented')[0].args.days_, 30n);
    assert.equal(await market.pendingWithdrawals(provider1.address), amount + PRICE * 30n);
  });

test('rent reverts: UnknownDataset (unknown, deactivated), ZeroDays, TooManyDays, WrongPayment under and over',
  async () => {
    const market = await deployMarket();
    const id = datasetId('reverts');
    await register(market, id, provider1.address, PRICE, 5);
    const m = market.connect(consumer);
    const unknown = datasetId('unknown');
    await expectRevert(m.rent(unknown, 1, { value: PRICE }), 'UnknownDataset', [unknown]);
    await expectRevert(m.rent(id, 0, { value: 0 }), 'ZeroDays');
    await expectRevert(m.rent(id, 6, { value: PRICE * 6n }), 'TooManyDays', [5n]);
    await expectRevert(m.rent(id, 2, { value: PRICE * 2n - 1n }), 'WrongPayment', [PRICE * 2n, PRICE * 2n - 1n]);
    await expectRevert(m.rent(id, 2, { value: PRICE * 2n + 1n }), 'WrongPayment', [PRICE * 2n, PRICE * 2n + 1n]);
    await expectRevert(m.rent(id, 2, { value: 0 }), 'WrongPayment', [PRICE * 2n, 0n]);

    // An underpayment mined anyway (gas given, so no estimate stops it) fails on chain and keeps
    // nothing: the consumer pays only gas and no event is left.
    const before = await provider.getBalance(consumer.address);
    const tx = await m.rent(id, 2, { value: PRICE, gasLimit: 200_000 });
    let receipt = null;
    await assert.rejects(tx.wait(), (e) => {
      receipt = e.receipt;
      return e.code === 'CALL_EXCEPTION';
    });
    assert.equal(receipt.status, 0);
    assert.equal(receipt.logs.length, 0);
    assert.equal(await provider.getBalance(consumer.address), before - await fee(receipt));
    assert.equal(await provider.getBalance(market.target), 0n);
    assert.equal(await market.pendingWithdrawals(provider1.address), 0n);

    // Deactivated: rentals stop; deactivating again (or an unknown id) is UnknownDataset.
    const r = await (await market.deactivateDataset(id)).wait();
    assert.deepEqual([...events(r, market, 'DatasetDeactivated')[0].args], [id]);
    assert.equal((await market.datasets(id)).active, false);
    await expectRevert(m.rent(id, 1, { value: PRICE }), 'UnknownDataset', [id]);
    await expectRevert(market.deactivateDataset(id), 'UnknownDataset', [id]);
    await expectRevert(market.deactivateDataset(unknown), 'UnknownDataset', [unknown]);
    // Registering again reactivates it.
    await register(market, id, provider1.address, PRICE, 5);
    await (await m.rent(id, 1, { value: PRICE })).wait();
  });

test('registerDataset reverts: ZeroAddress, ZeroPrice, ZeroMaxDays; plain ether is refused', async () => {
  const market = await deployMarket();
  const id = datasetId('bad-register');
  await expectRevert(market.registerDataset(id, ethers.ZeroAddress, PRICE, 1), 'ZeroAddress');
  await expectRevert(market.registerDataset(id, provider1.address, 0, 1), 'ZeroPrice');
  await expectRevert(market.registerDataset(id, provider1.address, PRICE, 0), 'ZeroMaxDays');
  assert.equal((await market.datasets(id)).active, false);
  // No receive/fallback: ether enters only through rent.
  await assert.rejects(consumer.sendTransaction({ to: market.target, value: 1n }),
    (e) => e.code === 'CALL_EXCEPTION');
});

test('every operator function reverts NotOperator for anyone else', async () => {
  const market = await deployMarket();
  const id = datasetId('operator-only');
  await register(market, id, provider1.address);
  const m = market.connect(consumer);
  await expectRevert(m.registerDataset(datasetId('x'), consumer.address, PRICE, 1), 'NotOperator');
  await expectRevert(m.registerDataset(id, consumer.address, PRICE, 1), 'NotOperator');
  await expectRevert(m.deactivateDataset(id), 'NotOperator');
  await expectRevert(m.setPaused(true), 'NotOperator');
  await expectRevert(m.transferOperator(consumer.address), 'NotOperator');
  // Nothing changed.
  assert.deepEqual([...(await market.datasets(id))], [provider1.address, PRICE, 30n, true]);
  assert.equal(await market.paused(), false);
  assert.equal(await market.operator(), operator.address);
});

test('withdraw moves exactly the balance, zeroes it, and a second withdraw is NothingToWithdraw', async () => {
  const market = await deployMarket();
  const a = datasetId('withdraw-a');
  const b = datasetId('withdraw-b');
  await register(market, a, provider1.address);
  await register(market, b, provider2.address);
  await (await market.connect(consumer).rent(a, 2, { value: 2n * PRICE })).wait();
  await (await market.connect(stranger).rent(a, 1, { value: PRICE })).wait();
  await (await market.connect(consumer).rent(b, 4, { value: 4n * PRICE })).wait();
  assert.equal(await market.pendingWithdrawals(provider1.address), 3n * PRICE);

  await expectRevert(market.connect(consumer).withdraw(), 'NothingToWithdraw');
  const before = await provider.getBalance(provider1.address);
  const receipt = await (await market.connect(provider1).withdraw()).wait();
  assert.deepEqual([...events(receipt, market, 'Withdrawn')[0].args], [provider1.address, 3n * PRICE]);
  assert.equal(await provider.getBalance(provider1.address), before + 3n * PRICE - await fee(receipt));
  assert.equal(await market.pendingWithdrawals(provider1.address), 0n);
  assert.equal(await provider.getBalance(market.target), 4n * PRICE, "provider2's balance stays");
  assert.equal(await market.pendingWithdrawals(provider2.address), 4n * PRICE);
  await expectRevert(market.connect(provider1).withdraw(), 'NothingToWithdraw');
});

test('a reentrant provider contract cannot withdraw twice', async () => {
  const market = await deployMarket();
  const attacker = await attackerFactory.deploy(market.target, 0 /* Reenter */);
  await attacker.waitForDeployment();
  const mine = datasetId('attacker');
  const other = datasetId('victim');
  await register(market, mine, attacker.target);
  await register(market, other, provider1.address);
  await (await market.connect(consumer).rent(mine, 1, { value: PRICE })).wait();
  // Someone else's money in the market: what a second withdraw would steal.
  await (await market.connect(consumer).rent(other, 10, { value: 10n * PRICE })).wait();

  const receipt = await (await attacker.attack()).wait();
  assert.equal(receipt.status, 1);
  assert.equal(await attacker.reentered(), false, 'the reentrant withdraw must not succeed');
  assert.equal(await attacker.reentryError(), iface.encodeErrorResult('NothingToWithdraw', []),
    'the reentrant withdraw must find a zero balance');
  assert.equal(await attacker.receipts(), 1n);
  assert.equal(await provider.getBalance(attacker.target), PRICE, 'the attacker got its balance once');
  assert.equal(await provider.getBalance(market.target), 10n * PRICE, 'the victim balance is intact');
  assert.equal(await market.pendingWithdrawals(attacker.target), 0n);
  assert.equal(await market.pendingWithdrawals(provider1.address), 10n * PRICE);
  assert.equal(events(receipt, market, 'Withdrawn').length, 1);
});

test('a provider that refuses ether gets TransferFailed and keeps its balance', async () => {
  const market = await deployMarket();
  const rejecter = await attackerFactory.deploy(market.target, 1 /* Reject */);
  await rejecter.waitForDeployment();
  const id = datasetId('rejecter');
  await register(market, id, rejecter.target);
  await (await market.connect(consumer).rent(id, 2, { value: 2n * PRICE })).wait();
  await expectRevert(rejecter.attack(), 'TransferFailed');
  assert.equal(await market.pendingWithdrawals(rejecter.target), 2n * PRICE);
  assert.equal(await provider.getBalance(market.target), 2n * PRICE);
  await (await rejecter.setMode(0)).wait();
  await (await rejecter.attack()).wait();
  assert.equal(await provider.getBalance(rejecter.target), 2n * PRICE);
  assert.equal(await market.pendingWithdrawals(rejecter.target), 0n);
});

test('pause blocks rent (ContractPaused) but not withdraw; unpause resumes renting', async () => {
  const market = await deployMarket();
  const id = datasetId('pause');
  await register(market, id, provider1.address);
  await (await market.connect(consumer).rent(id, 1, { value: PRICE })).wait();

  const r = await (await market.setPaused(true)).wait();
  assert.deepEqual([...events(r, market, 'PausedSet')[0].args], [true]);
  assert.equal(await market.paused(), true);
  await expectRevert(market.connect(consumer).rent(id, 1, { value: PRICE }), 'ContractPaused');
  // Paused is checked first: even a wrong payment reports ContractPaused.
  await expectRevert(market.connect(consumer).rent(id, 1, { value: 0 }), 'ContractPaused');
  await (await market.connect(provider1).withdraw()).wait();
  assert.equal(await market.pendingWithdrawals(provider1.address), 0n);
  // The operator can still manage datasets while paused.
  await register(market, datasetId('pause-2'), provider2.address);

  const u = await (await market.setPaused(false)).wait();
  assert.deepEqual([...events(u, market, 'PausedSet')[0].args], [false]);
  await (await market.connect(consumer).rent(id, 1, { value: PRICE })).wait();
  assert.equal(await market.pendingWithdrawals(provider1.address), PRICE);
});

test('transferOperator hands the role over (ZeroAddress refused); the old operator loses it', async () => {
  const market = await deployMarket();
  await expectRevert(market.transferOperator(ethers.ZeroAddress), 'ZeroAddress');
  const r = await (await market.transferOperator(stranger.address)).wait();
  assert.deepEqual([...events(r, market, 'OperatorTransferred')[0].args], [operator.address, stranger.address]);
  assert.equal(await market.operator(), stranger.address);

  const id = datasetId('new-operator');
  await expectRevert(market.registerDataset(id, provider1.address, PRICE, 1), 'NotOperator');
  await expectRevert(market.setPaused(true), 'NotOperator');
  await expectRevert(market.transferOperator(operator.address), 'NotOperator');
  const s = market.connect(stranger);
  await (await s.registerDataset(id, provider1.address, PRICE, 1)).wait();
  await (await s.setPaused(true)).wait();
  await (await s.setPaused(false)).wait();
  await (await s.deactivateDataset(id)).wait();
});
