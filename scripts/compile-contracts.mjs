#!/usr/bin/env node
// Compiles contracts/RentalMarket.sol with the pinned npm solc (0.8.28) and fixed settings into
// contracts/build/RentalMarket.json (compiler, settings, abi, bytecode, deployedBytecode,
// sourceSha256). The settings leave out the metadata hash, so the output depends only on the
// source and the compiler: anyone can rebuild it and compare it with what is deployed.
//
// usage: node scripts/compile-contracts.mjs           writes the build file
//        node scripts/compile-contracts.mjs --check   recompiles; exit 1 naming every difference
// Fails (exit 1) when node_modules/solc is missing (`make deps` runs npm ci) or is not 0.8.28,
// and on any compiler error or warning.
//
// Also a module: tests import compileSources() to build their own helper contracts with the
// same compiler and settings.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SOURCE = path.join(ROOT, 'contracts', 'RentalMarket.sol');
export const BUILD = path.join(ROOT, 'contracts', 'build', 'RentalMarket.json');
export const COMPILER = '0.8.28+commit.7893614a';
// The source unit name is part of the compiler input; keep it repo-relative and fixed.
const SOURCE_UNIT = 'contracts/RentalMarket.sol';
const CONTRACT = 'RentalMarket';

/** The compiler settings, recorded in the build file (outputSelection aside). */
export const SETTINGS = Object.freeze({
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  metadata: { bytecodeHash: 'none' },
});

class CompileError extends Error {}

/** Loads node_modules/solc and checks it is exactly COMPILER. */
export function loadSolc() {
  const pkg = path.join(ROOT, 'node_modules', 'solc', 'package.json');
  if (!fs.existsSync(pkg)) {
    throw new CompileError(`${pkg} is missing: run \`make deps\` (npm ci) at the repo root`);
  }
  const solc = createRequire(path.join(ROOT, 'package.json'))('solc');
  const version = solc.version();
  // solcjs reports "0.8.28+commit.7893614a.Emscripten.clang".
  if (version !== COMPILER && !version.startsWith(`${COMPILER}.`)) {
    throw new CompileError(`node_modules/solc is ${version}, want ${COMPILER} (package.json pins solc 0.8.28)`);
  }
  return solc;
}

/**
 * Compiles {unitName: sourceText} with SETTINGS; returns solc's `contracts` output
 * ({unit: {name: {abi, evm: {bytecode, deployedBytecode}}}}). Throws naming every error and
 * warning (a warning is a failure: the committed contract compiles clean).
 */
export function compileSources(solc, sources) {
  const input = {
    language: 'Solidity',
    sources: Object.fromEntries(Object.entries(sources).map(([k, v]) => [k, { content: v }])),
    settings: {
      ...SETTINGS,
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const problems = (output.errors || []).filter((e) => e.severity !== 'info');
  if (problems.length > 0) {
    throw new CompileError(`solc ${COMPILER}:\n` + problems.map((e) => e.formattedMessage || e.message).join('\n'));
  }
  return output.contracts;
}

/** The build file's object for the given source text. */
export function buildArtifact(solc, sourceText) {
  const contracts = compileSources(solc, { [SOURCE_UNIT]: sourceText });
  const c = contracts?.[SOURCE_UNIT]?.[CONTRACT];
  if (!c) throw new CompileError(`solc produced no contract ${CONTRACT} in ${SOURCE_UNIT}`);
  const bytecode = c.evm.bytecode.object;
  const deployed = c.evm.deployedBytecode.object;
  if (!bytecode || !deployed) throw new CompileError(`solc produced empty bytecode for ${CONTRACT}`);
  return {
    compiler: COMPILER,
    settings: SETTINGS,
    abi: c.abi,
    bytecode: `0x${bytecode}`,
    deployedBytecode: `0x${deployed}`,
    sourceSha256: createHash('sha256').update(sourceText, 'utf8').digest('hex'),
  };
}

/** The exact bytes written to the build file. */
export function serialize(artifact) {
  return `${JSON.stringify(artifact, null, 2)}\n`;
}

function describeDifference(key, want, got) {
  if (typeof want === 'string' && typeof got === 'string') {
    let i = 0;
    while (i < want.length && i < got.length && want[i] === got[i]) i++;
    return `${key}: differs at character ${i} (committed length ${got.length}, fresh ${want.length})`;
  }
  return `${key}: committed ${JSON.stringify(got)}, fresh compile ${JSON.stringify(want)}`;
}

function main(args) {
  const unknown = args.filter((a) => a !== '--check');
  if (unknown.length > 0) {
    console.error(`usage: node scripts/compile-contracts.mjs [--check] (unknown argument ${unknown[0]})`);
    return 2;
  }
  const check = args.includes('--check');
  try {
    const solc = loadSolc();
    const sourceText = fs.readFileSync(SOURCE, 'utf8');
    const fresh = buildArtifact(solc, sourceText);
    const text = serialize(fresh);
    const rel = path.relative(ROOT, BUILD);
    if (!check) {
      fs.mkdirSync(path.dirname(BUILD), { recursive: true });
      fs.writeFileSync(BUILD, text);
      console.log(`wrote ${rel} (solc ${COMPILER}, source sha256 ${fresh.sourceSha256})`);
      return 0;
    }
    if (!fs.existsSync(BUILD)) {
      console.error(`FAIL: ${rel} is missing; run node scripts/compile-contracts.mjs`);
      return 1;
    }
    const committedText = fs.readFileSync(BUILD, 'utf8');
    let committed;
    try {
      committed = JSON.parse(committedText);
    } catch (e) {
      console.error(`FAIL: ${rel} is not JSON: ${e.message}`);
      return 1;
    }
    const differences = [];
    const keys = new Set([...Object.keys(fresh), ...Object.keys(committed)]);
    for (const key of keys) {
      if (!(key in committed)) differences.push(`${key}: missing from ${rel}`);
      else if (!(key in fresh)) differences.push(`${key}: unexpected field in ${rel}`);
      else if (JSON.stringify(committed[key]) !== JSON.stringify(fresh[key])) {
        differences.push(describeDifference(key, fresh[key], committed[key]));
      }
    }
    if (differences.length === 0 && committedText !== text) {
      differences.push('formatting: same fields, different bytes (rewrite it with the script)');
    }
    if (differences.length > 0) {
      console.error(`FAIL: ${rel} does not match a fresh compile of ${path.relative(ROOT, SOURCE)} ` +
        `by solc ${COMPILER}:\n  ${differences.join('\n  ')}\n` +
        'Review the source change, then run node scripts/compile-contracts.mjs and commit the result.');
      return 1;
    }
    console.log(`ok - ${rel} matches a fresh compile (solc ${COMPILER}, source sha256 ${fresh.sourceSha256})`);
    return 0;
  } catch (e) {
    if (e instanceof CompileError) {
      console.error(`FAIL: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2));
}
