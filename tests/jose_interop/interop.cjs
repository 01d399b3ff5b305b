'use strict';
// JOSE interoperability: src/crypto/jwe against the npm `jose` package, an
// independent implementation, in both directions and on both curves.
//   (a) jwe_tool encrypts to a key pair made by jose; jose compactDecrypt
//       must recover the plaintext and the kid/apu/apv.
//   (b) jose CompactEncrypt (ECDH-ES+A256KW, A256GCM) encrypts to jwe_tool's
//       ephemeral key; jwe_tool must decrypt it, and refuse tampered JWEs and
//       other algorithms.
// Usage: node interop.cjs <repo root> <path to jwe_tool>
// Fails (never skips) when node_modules/jose is missing: `make deps` runs npm ci.

const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const { createRequire } = require('node:module');

const [root, tool] = process.argv.slice(2);
if (!root || !tool) {
  console.error('usage: node interop.cjs <repo root> <jwe_tool>');
  process.exit(2);
}
const josePackage = path.join(root, 'node_modules', 'jose', 'package.json');
if (!fs.existsSync(josePackage)) {
  console.error(`FAIL: ${josePackage} is missing; run \`make deps\` (npm ci) at the repo root`);
  process.exit(1);
}
const jose = createRequire(path.join(root, 'package.json'))('jose');
const joseVersion = JSON.parse(fs.readFileSync(josePackage, 'utf8')).version;

const ALG = 'ECDH-ES+A256KW';
const ENC = 'A256GCM';
const STRICT = { keyManagementAlgorithms: [ALG], contentEncryptionAlgorithms: [ENC] };

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}\n  ${String(e && e.stack ? e.stack : e).replace(/\n/g, '\n  ')}`);
  }
}

function b64u(text) {
  return Buffer.from(text, 'base64url');
}

// Runs `jwe_tool encrypt` on one request; returns the compact JWE.
function toolEncrypt(request) {
  const r = spawnSync(tool, ['encrypt'], { input: JSON.stringify(request) + '\n', encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`jwe_tool encrypt exited ${r.status}: ${r.stderr}`);
  return r.stdout.trim();
}

// A running `jwe_tool decrypt <curve>`: its public JWK and a line-based
// request/reply channel.
async function startDecryptor(curve) {
  const child = spawn(tool, ['decrypt', curve], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout });
  const waiting = [];
  const queued = [];
  lines.on('line', (line) => (waiting.length ? waiting.shift()(line) : queued.push(line)));
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  const next = () =>
    new Promise((resolve, reject) => {
      if (queued.length) return resolve(queued.shift());
      waiting.push(resolve);
      exited.then((code) => reject(new Error(`jwe_tool decrypt exited early (${code})`)));
    });
  const jwk = JSON.parse(await next());
  return {
    jwk,
    async decrypt(compact) {
      child.stdin.write(compact + '\n');
      return JSON.parse(await next());
    },
    async close() {
      child.stdin.end();
      assert.equal(await exited, 0, 'jwe_tool decrypt exit code');
    },
  };
}

function flipChar(compact, part) {
  const parts = compact.split('.');
  const bytes = b64u(parts[part]);
  bytes[Math.floor(bytes.length / 2)] ^= 0x01;
  parts[part] = bytes.toString('base64url');
  return parts.join('.');
}

async function main() {
  console.log(`jose ${joseVersion} from ${path.dirname(josePackage)}, node ${process.version}`);

  for (const crv of ['P-256', 'X25519']) {
    // ---- (a) C++ encrypts, jose decrypts ----
    await check(`${crv}: jose decrypts what src/crypto/jwe encrypted (kid, apu, apv)`, async () => {
      const { publicKey, privateKey } = await jose.generateKeyPair(ALG, { crv });
      const jwk = await jose.exportJWK(publicKey);
      for (const size of [32, 1, 300]) {
        const plaintext = crypto.randomBytes(size);
        const apu = crypto.randomBytes(8);
        const apv = Buffer.from('nonce-123');
        const compact = toolEncrypt({
          jwk,
          plaintext_hex: plaintext.toString('hex'),
          kid: `ds-${size}`,
          apu_hex: apu.toString('hex'),
          apv_hex: apv.toString('hex'),
        });
        const { plaintext: got, protectedHeader: h } = await jose.compactDecrypt(
          compact, privateKey, STRICT);
        assert.equal(Buffer.from(got).toString('hex'), plaintext.toString('hex'));
        assert.equal(h.alg, ALG);
        assert.equal(h.enc, ENC);
        assert.equal(h.kid, `ds-${size}`);
        assert.equal(h.epk.crv, crv);
        assert.deepEqual(b64u(h.apu), apu);
        assert.deepEqual(b64u(h.apv), apv);
      }
    });

    await check(`${crv}: jose refuses a src/crypto/jwe JWE for another key or tampered`, async () => {
      const mine = await jose.generateKeyPair(ALG, { crv });
      const other = await jose.generateKeyPair(ALG, { crv });
      const compact = toolEncrypt({
        jwk: await jose.exportJWK(mine.publicKey),
        plaintext_hex: '00112233',
      });
      await assert.rejects(jose.compactDecrypt(compact, other.privateKey, STRICT));
      for (const part of [1, 2, 3, 4]) {
        await assert.rejects(jose.compactDecrypt(flipChar(compact, part), mine.privateKey, STRICT),
          `tampered part ${part}`);
      }
      // Sanity: the untampered one does decrypt, so the rejections above mean something.
      await jose.compactDecrypt(compact, mine.privateKey, STRICT);
    });

    // ---- (b) jose encrypts, C++ decrypts ----
    await check(`${crv}: src/crypto/jwe decrypts what jose CompactEncrypt produced`, async () => {
      const dec = await startDecryptor(crv);
      try {
        assert.equal(dec.jwk.crv, crv);
        const key = await jose.importJWK(dec.jwk, ALG);
        for (const size of [32, 1, 1000]) {
          const plaintext = crypto.randomBytes(size);
          const apu = crypto.randomBytes(5);
          const apv = crypto.randomBytes(16);
          const compact = await new jose.CompactEncrypt(plaintext)
            .setProtectedHeader({ alg: ALG, enc: ENC, kid: 'dataset-key' })
            .setKeyManagementParameters({ apu, apv })
            .encrypt(key);
          const reply = await dec.decrypt(compact);
          assert.equal(reply.ok, true, reply.error);
          assert.equal(reply.plaintext_hex, plaintext.toString('hex'));
          assert.equal(reply.kid, 'dataset-key');
          assert.equal(reply.apu_hex, apu.toString('hex'));
          assert.equal(reply.apv_hex, apv.toString('hex'));

          // Tampering with any of the five parts is refused.
          for (const part of [0, 1, 2, 3, 4]) {
            const bad = await dec.decrypt(flipChar(compact, part));
            assert.equal(bad.ok, false, `tampered part ${part} was accepted`);
            if (part > 0) assert.equal(bad.code, 'data loss', bad.error);
          }
        }
        // Without apu/apv too.
        const plain = await new jose.CompactEncrypt(Buffer.from('hello'))
          .setProtectedHeader({ alg: ALG, enc: ENC })
          .encrypt(key);
        const reply = await dec.decrypt(plain);
        assert.equal(reply.ok, true, reply.error);
        assert.equal(Buffer.from(reply.plaintext_hex, 'hex').toString(), 'hello');
      } finally {
        await dec.close();
      }
    });

    await check(`${crv}: src/crypto/jwe refuses jose JWEs with other alg/enc or for another key`,
      async () => {
        const dec = await startDecryptor(crv);
        try {
          const key = await jose.importJWK(dec.jwk, ALG);
          const cases = [
            [{ alg: 'ECDH-ES', enc: ENC }, 'alg'],
            [{ alg: 'ECDH-ES+A128KW', enc: ENC }, 'alg'],
            [{ alg: ALG, enc: 'A128GCM' }, 'enc'],
            [{ alg: ALG, enc: 'A256CBC-HS512' }, 'enc'],
          ];
          for (const [header, field] of cases) {
            const compact = await new jose.CompactEncrypt(Buffer.from('x'))
              .setProtectedHeader(header)
              .encrypt(key);
            const reply = await dec.decrypt(compact);
            assert.equal(reply.ok, false, `${JSON.stringify(header)} was accepted`);
            assert.equal(reply.code, 'invalid argument', reply.error);
            assert.match(reply.error, new RegExp(`${field}: expected`));
          }
          const other = await jose.generateKeyPair(ALG, { crv });
          const compact = await new jose.CompactEncrypt(Buffer.from('x'))
            .setProtectedHeader({ alg: ALG, enc: ENC })
            .encrypt(other.publicKey);
          const reply = await dec.decrypt(compact);
          assert.equal(reply.ok, false);
          assert.equal(reply.code, 'data loss', reply.error);
          assert.match(reply.error, /^JWE encrypted key: /);
        } finally {
          await dec.close();
        }
      });
  }

  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
