// The web console (docs/console.md) in real headless Chromium, against a real
// plane: simulated TEE, `local` provisioner, cce-agent, DecryptFS and runc,
// started with scripts/lib/local-plane.sh as `make demo` does.
//
// A provider registers a dataset (its description is an XSS payload); a
// consumer runs a leaking algorithm that copies the dataset to /output (and
// writes a file whose name is an XSS payload), so the Output Gate holds it.
// In Chromium: the reviewer logs in, sees the held job, opens its findings,
// opens the copied CSV at a finding with the cell highlighted, is refused an
// empty reason, approves with a reason (another XSS payload); the consumer
// logs in, sees the job RELEASED with that reason, and downloads the output,
// whose bytes must hash to the plane's digest. Checked throughout: the
// security headers, no inline script ever runs, no API text becomes HTML, no
// request leaves the plane's origin, no CSP violation.
//
// usage: node console_test.mjs SOURCE_DIR BIN_DIR BUILD_DIR
// Needs root, /dev/fuse, runc, node_modules/playwright-core (make deps) and
// /usr/bin/chromium: a missing one is a failure, never a skip.
// Screenshots: BUILD_DIR/console-screenshots/.

import { spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { pathToFileURL } from 'node:url';

const [SOURCE, BIN, BUILD] = process.argv.slice(2).map((p) => p && path.resolve(p));
const CHROMIUM = '/usr/bin/chromium';
const XSS = '<img src=x onerror="window.__xss=1">';
const EXPECTED_CSP = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; " +
  "script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const DEADLINE_MS = 150_000;  // the whole test; the plane's job takes most of it

let step = 'start';
const t0 = Date.now();
function log(msg) { console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`); }
function fail(msg) { throw new Error(`${step}: ${msg}`); }
function check(cond, msg) { if (!cond) fail(msg); }
function eq(actual, expected, what) {
  if (actual !== expected) fail(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

// ---- Prerequisites: each missing one fails loudly ------------------------------

function prerequisites() {
  step = 'prerequisites';
  check(SOURCE && BIN && BUILD, 'usage: node console_test.mjs SOURCE_DIR BIN_DIR BUILD_DIR');
  check(process.getuid && process.getuid() === 0,
    'must run as root (the local provisioner makes namespaces, mounts and cgroups); CI runs it as root');
  for (const b of ['cce', 'cce-plane', 'cce-agent', 'cce-decryptfs', 'cce-sandbox-init']) {
    check(fs.existsSync(path.join(BIN, b)), `${path.join(BIN, b)} is missing: build the tree first`);
  }
  check(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (Makefile DEB_PACKAGES)`);
  check(fs.existsSync('/dev/fuse'), '/dev/fuse is missing (DecryptFS needs FUSE)');
  const pw = path.join(SOURCE, 'node_modules', 'playwright-core', 'index.mjs');
  check(fs.existsSync(pw), `${pw} is missing: run make deps (npm ci)`);
  return pw;
}

// ---- The plane, from scripts/lib/local-plane.sh --------------------------------

// Runs in bash: starts the plane, makes the users, dataset, image and job,
// waits for HELD, prints one READY line of JSON, then keeps the plane up
// until its stdin closes (so it stops even if this process dies).
const FIXTURE = String.raw`
set -euo pipefail
. "$ROOT/scripts/lib/local-plane.sh"
PLANE_PID=
trap 'local_plane_stop' EXIT
export HOME="$WORK/home"
mkdir -p "$HOME"
unset CCE_PLANE_URL CCE_TOKEN CCE_CA_FILE
local_plane_start >&2
PROVIDER=$(local_plane_user hospital provider)
CONSUMER=$(local_plane_user analyst consumer)
REVIEWER=$(local_plane_user rita reviewer)

mkdir -p "$WORK/claims" "$DATA/datasets"
claims_csv 300 > "$WORK/claims/claims.csv"
"$BIN/cce" login --plane "$URL" --token "$PROVIDER" --ca "$CA" > /dev/null
export CCE_TOKEN="$PROVIDER"
"$BIN/cce" key generate --out "$WORK/claims.key" >&2
"$BIN/cce" dataset encrypt --key "$WORK/claims.key" "$WORK/claims" "$DATA/datasets/claims" >&2
"$BIN/cce" dataset register claims --key "$WORK/claims.key" --location "file://$DATA/datasets/claims" \
  --price 2.5 --description "$XSS_TEXT" >&2

export CCE_TOKEN="$CONSUMER"
"$BIN/cce" rent claims --days 1 >&2
cat > "$WORK/leak.sh" <<'EOF'
#!/bin/sh
# A leaking algorithm: the dataset, verbatim, plus a file named like markup.
set -eu
cp /data/claims/claims.csv /output/claims-copy.csv
echo "made by the console test" > '/output/<img src=x onerror=window.__xss=2>.txt'
echo "leak: copied $(wc -l < /output/claims-copy.csv) lines"
EOF
chmod 755 "$WORK/leak.sh"
/usr/bin/python3 "$ROOT/examples/algorithm/build-image.py" --out "$WORK/leak-oci" --ref console/leak:1 \
  --cache "$CACHE" --add "$WORK/leak.sh:/app/leak.sh" --cmd /app/leak.sh >&2
"$BIN/cce" image push "$WORK/leak-oci" >&2
cat > "$WORK/job.yaml" <<'EOF'
apiVersion: cce4long/v1
kind: PrivacyJob
metadata: {name: console-leak}
spec:
  image: console/leak:1
  command: ["/app/leak.sh"]
  datasets: [{name: claims, mountPath: /data/claims}]
  resources: {cpus: 1, memoryMiB: 128, timeoutSeconds: 120, outputMaxMiB: 4}
EOF
JOB=$("$BIN/cce" job submit -f "$WORK/job.yaml" --output json | json_field id)
echo "job $JOB submitted; waiting for HELD" >&2
"$BIN/cce" job status "$JOB" --watch --until HELD --interval 1 >&2 || true
STATE=$("$BIN/cce" job status "$JOB" --output json | json_field state)
if [ "$STATE" != HELD ]; then
  echo "job $JOB is $STATE, expected HELD (the gate must hold a verbatim copy of the dataset)" >&2
  "$BIN/cce" job status "$JOB" >&2 || true
  tail -n 30 "$WORK/plane.log" >&2
  exit 1
fi
/usr/bin/python3 -c 'import json,sys; print("READY " + json.dumps(dict(zip(["url","ca","provider","consumer","reviewer","job","data"], sys.argv[1:]))), flush=True)' \
  "$URL" "$CA" "$PROVIDER" "$CONSUMER" "$REVIEWER" "$JOB" "$DATA"
read -r _ || true
`;

function startPlane(work) {
  step = 'plane';
  const cache = process.env.CCE_DEMO_CACHE || path.join(BUILD, 'console-image-cache');
  const child = spawn('bash', ['-c', FIXTURE], {
    env: { ...process.env, BIN, ROOT: SOURCE, WORK: work, CACHE: cache, XSS_TEXT: XSS },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stderr = [];
  child.stderr.on('data', (d) => { stderr.push(d); });
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve(code ?? sig)));
  const ready = new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('READY ')) resolve(JSON.parse(line.slice(6)));
    });
    exited.then((code) => reject(new Error(
      `the plane fixture exited (${code}) before the job was HELD:\n` +
      Buffer.concat(stderr).toString().split('\n').slice(-40).join('\n'))));
  });
  return {
    ready,
    stderr: () => Buffer.concat(stderr).toString(),
    async stop() {
      child.stdin.end();  // the fixture stops the plane when its stdin closes
      const timer = setTimeout(() => child.kill('SIGTERM'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// ---- The API from node, for what the test checks the page against ---------------

function apiGet(plane, token, urlPath) {
  return new Promise((resolve, reject) => {
    const req = https.get(plane.url + urlPath, {
      ca: fs.readFileSync(plane.ca), headers: { Authorization: 'Bearer ' + token },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
  });
}
async function apiJson(plane, token, urlPath) {
  const r = await apiGet(plane, token, urlPath);
  if (r.status !== 200) fail(`GET ${urlPath}: ${r.status} ${r.body.toString()}`);
  return JSON.parse(r.body.toString());
}

// Chromium trusts exactly the plane's key (its CA is not the system's).
function serverSpki(plane) {
  return new Promise((resolve, reject) => {
    const u = new URL(plane.url);
    const req = https.request({ host: u.hostname, port: u.port, path: '/healthz', ca: fs.readFileSync(plane.ca) },
      (res) => {
        const cert = new X509Certificate(res.socket.getPeerCertificate().raw);
        const der = cert.publicKey.export({ type: 'spki', format: 'der' });
        res.resume();
        resolve(createHash('sha256').update(der).digest('base64'));
      });
    req.on('error', reject);
    req.end();
  });
}

function parseCsv(text) {
  return text.trim().split('\n').map((l) => l.split(','));
}

// ---- The browser part ---------------------------------------------------------

async function login(page, plane, token) {
  await page.goto(plane.url + '/console/');
  await page.fill('#token', token);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#logout:not([hidden])');
}

async function noMarkupRan(page, where) {
  const r = await page.evaluate(() => ({
    flag: window.__xss ?? null,
    imgs: document.querySelectorAll('img[src="x"], img[onerror]').length,
    violations: window.__cspViolations || [],
  }));
  eq(r.flag, null, `${where}: window.__xss (set only by injected markup)`);
  eq(r.imgs, 0, `${where}: <img> elements made from API text`);
  eq(r.violations.length, 0, `${where}: CSP violations ${JSON.stringify(r.violations)}`);
}

async function browserTour(chromium, plane, work, shots) {
  const csv = parseCsv(fs.readFileSync(path.join(work, 'claims', 'claims.csv'), 'utf8'));
  const spki = await serverSpki(plane);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', `--ignore-certificate-errors-spki-list=${spki}`],
  });
  const problems = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, acceptDownloads: true });
    // Runs before the page's own script, outside its CSP: records violations.
    await context.addInitScript(() => {
      window.__cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) => {
        window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
      });
    });
    const origin = new URL(plane.url).origin;
    context.on('request', (r) => {
      const u = r.url();
      if (!u.startsWith(origin + '/') && !u.startsWith('blob:') && !u.startsWith('data:')) {
        problems.push('a request left the plane: ' + u);
      }
    });
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (e) => problems.push('page error: ' + e.message));
    page.on('dialog', (d) => { problems.push('a dialog opened: ' + d.message()); d.dismiss(); });

    // -- Headers
    step = 'security headers';
    const first = await page.goto(plane.url + '/console');
    eq(first.status(), 200, 'GET /console');
    const hd = first.headers();
    eq(hd['content-security-policy'], EXPECTED_CSP, 'Content-Security-Policy');
    eq(hd['x-frame-options'], 'DENY', 'X-Frame-Options');
    eq(hd['x-content-type-options'], 'nosniff', 'X-Content-Type-Options');
    eq(hd['referrer-policy'], 'no-referrer', 'Referrer-Policy');
    eq(hd['cache-control'], 'no-store', 'Cache-Control');
    check(hd['content-type'].startsWith('text/html'), 'index content type ' + hd['content-type']);
    for (const [asset, type] of [['/console/app.js', 'text/javascript'], ['/console/app.css', 'text/css']]) {
      const r = await apiGet(plane, '', asset);
      eq(r.status, 200, 'GET ' + asset);
      eq(r.headers['content-security-policy'], EXPECTED_CSP, asset + ' Content-Security-Policy');
      check(r.headers['content-type'].startsWith(type), `${asset} content type ${r.headers['content-type']}`);
    }
    const html = (await apiGet(plane, '', '/console/')).body.toString();
    check(!/<script(?![^>]*\bsrc=)[^>]*>/i.test(html), 'index.html has an inline <script>');
    check(!/\son[a-z]+=/i.test(html) && !/<style/i.test(html) && !/\sstyle=/i.test(html),
      'index.html has inline handlers or styles');
    check(!/https?:\/\//.test(html), 'index.html names an external URL');

    // -- Reviewer: queue, findings, the finding in place, decision
    step = 'reviewer login';
    log('reviewer logs in');
    await login(page, plane, plane.reviewer);
    eq(await page.textContent('#who .role'), 'reviewer', 'role shown');
    step = 'review queue';
    await page.waitForSelector(`table.reviews tr[data-job="${plane.job}"]`);
    await page.screenshot({ path: path.join(shots, 'reviewer-queue.png') });

    const review = await apiJson(plane, plane.reviewer, `/api/v1/reviews/${plane.job}`);
    const findings = review.findings || [];
    // A finding on the copied CSV that says where: the console highlights its
    // data row (0-based; else from its 1-based line, the header being line 1)
    // and its column when it has one.
    const onCopy = (f) => /(^|\/)claims-copy\.csv$/.test(f.file || '');
    const placed = [(f) => Number.isInteger(f.row) && Number.isInteger(f.column),
      (f) => Number.isInteger(f.row), (f) => Number.isInteger(f.line)];
    let index = -1;
    for (const p of placed) if (index < 0) index = findings.findIndex((f) => onCopy(f) && p(f));
    check(index >= 0, 'the gate named no finding with a row or line on files/claims-copy.csv (a verbatim ' +
      'copy of the dataset); findings: ' + JSON.stringify(findings).slice(0, 2000));
    const finding = findings[index];
    const row = Number.isInteger(finding.row) ? finding.row : finding.line - 2;
    check(row >= 0 && row + 1 < csv.length, `finding ${JSON.stringify(finding)}: no such data row`);

    step = 'review page';
    await page.click(`table.reviews tr[data-job="${plane.job}"] a`);
    await page.waitForSelector(`.review[data-job="${plane.job}"][data-state="HELD"]`);
    eq(await page.locator('tr.finding').count(), findings.length, 'findings listed');
    // The algorithm named a file like markup: it is listed as text.
    const evil = page.locator('tr.file', { hasText: '<img src=x onerror=window.__xss=2>.txt' });
    eq(await evil.count(), 1, 'the file named like markup, listed as text');

    step = 'finding in place';
    log(`opening finding ${index + 1} of ${findings.length}: ${JSON.stringify(finding)}`);
    await page.click(`tr.finding[data-index="${index}"]`);
    await page.waitForSelector('#viewer table.grid');
    const hitRow = page.locator('#viewer tr.hit-row');
    eq(await hitRow.count(), 1, 'highlighted rows');
    eq(await hitRow.getAttribute('data-row'), String(row), 'highlighted data row');
    const hitCells = page.locator('#viewer td.hit');
    const want = Number.isInteger(finding.column) ? [csv[row + 1][finding.column]] : csv[row + 1];
    eq(JSON.stringify(await hitCells.allTextContents()), JSON.stringify(want),
      `highlighted cells (data row ${row}${Number.isInteger(finding.column) ? ', column ' + finding.column : ''}) ` +
      'against the dataset');
    const inView = await hitCells.first().evaluate((el) => {
      const r = el.getBoundingClientRect();
      const box = el.closest('.scroll').getBoundingClientRect();
      return r.top >= box.top && r.bottom <= box.bottom && r.top >= 0 && r.bottom <= window.innerHeight;
    });
    check(inView, 'the highlighted cell is not scrolled into view');
    check(await page.isVisible('#viewer .finding-note'), 'the finding is not shown beside the file');
    await page.screenshot({ path: path.join(shots, 'review-finding.png') });
    await noMarkupRan(page, 'review page');

    step = 'decision needs a reason';
    await page.click('#approve');
    await page.waitForSelector('.decision-status .error');
    eq((await apiJson(plane, plane.reviewer, `/api/v1/jobs/${plane.job}`)).state, 'HELD',
      'job state after an approve without a reason');

    step = 'approve';
    const reason = `Aggregates only; checked ${XSS} by hand`;
    await page.fill('#reason', reason);
    await page.click('#approve');
    await page.waitForSelector(`.review[data-job="${plane.job}"][data-state="RELEASED"]`);
    check(await page.isVisible(`ul.decisions li[data-decision^="approve"]`), 'the decision is not listed');
    log('approved; the page shows RELEASED');
    await noMarkupRan(page, 'after approval');

    step = 'logout';
    await page.click('#logout');
    await page.waitForSelector('#login-form');
    eq(await page.evaluate(() => sessionStorage.length), 0, 'session storage after logout');

    // -- Consumer: the job released with the reason, the download
    step = 'consumer login';
    await login(page, plane, plane.consumer);
    await page.waitForSelector(`table.jobs tr[data-job="${plane.job}"]`);
    await page.click(`table.jobs tr[data-job="${plane.job}"] a`);
    await page.waitForSelector(`.job[data-job="${plane.job}"][data-state="RELEASED"]`);
    step = 'consumer sees the decision';
    eq(await page.textContent('.review-outcome .review-reason'), reason, 'the reviewer\'s reason, as text');
    const states = await page.locator('ol.timeline li').evaluateAll((lis) => lis.map((li) => li.dataset.state));
    check(states.includes('HELD') && states.at(-1) === 'RELEASED', 'timeline ' + JSON.stringify(states));

    step = 'download';
    const job = await apiJson(plane, plane.consumer, `/api/v1/jobs/${plane.job}`);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    const saved = path.join(work, 'downloaded.tar');
    await download.saveAs(saved);
    const digest = 'sha256:' + createHash('sha256').update(fs.readFileSync(saved)).digest('hex');
    eq(digest, job.output.digest, 'the downloaded bytes\' digest against GET /jobs/{id} output.digest');
    const direct = await apiGet(plane, plane.consumer, `/api/v1/jobs/${plane.job}/output`);
    eq(direct.status, 200, 'GET output');
    eq(digest, direct.headers['x-output-digest'], 'the downloaded bytes\' digest against X-Output-Digest');
    await page.waitForSelector('.download-status[data-digest]');
    eq(await page.getAttribute('.download-status', 'data-digest'), digest, 'digest the page verified');
    await page.screenshot({ path: path.join(shots, 'consumer-job.png'), fullPage: true });
    log('consumer downloaded the output; ' + digest);

    step = 'datasets';
    await page.click('nav a[href="#/datasets"]');
    await page.waitForSelector('table.datasets tr[data-dataset="claims"]');
    eq(await page.textContent('table.datasets tr[data-dataset="claims"] td.desc'), XSS,
      'the dataset description, as text');
    await page.click('nav a[href="#/rentals"]');
    await page.waitForSelector('table.rentals tr[data-dataset="claims"]');
    await noMarkupRan(page, 'consumer pages');
  } finally {
    await browser.close();
  }
  step = 'page health';
  check(problems.length === 0, problems.join('\n'));
}

// ---- Main ----------------------------------------------------------------------

async function main() {
  const pw = prerequisites();
  const { chromium } = await import(pathToFileURL(pw).href);
  const shots = path.join(BUILD, 'console-screenshots');
  fs.mkdirSync(shots, { recursive: true });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cce-console-'));
  fs.chmodSync(work, 0o755);
  const fixture = startPlane(work);
  const watchdog = setTimeout(() => {
    console.error(`console_test: FAILED: over ${DEADLINE_MS / 1000} s at step '${step}'`);
    process.exit(1);
  }, DEADLINE_MS);
  try {
    log('starting a plane and running a leaking job (this takes most of the time)');
    const plane = await fixture.ready;
    log(`job ${plane.job} is HELD`);
    await browserTour(chromium, plane, work, shots);
    log('screenshots in ' + shots);
  } catch (err) {
    const tail = fixture.stderr().split('\n').slice(-30).join('\n');
    console.error(`console_test: FAILED: ${err.message}\n--- fixture log (last lines) ---\n${tail}`);
    process.exitCode = 1;
  } finally {
    clearTimeout(watchdog);
    await fixture.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
  if (!process.exitCode) console.log('console_test: OK');
}

main().catch((err) => {
  console.error('console_test: FAILED: ' + (err && err.stack || err));
  process.exit(1);
});
