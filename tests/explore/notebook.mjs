// Drives an Explore session's notebook in real headless Chromium, the way a
// consumer would: opens the one-time login URL `cce explore start` printed
// (the plane sets the session cookie and redirects to Jupyter's file
// browser, behind the plane's proxy), creates a notebook, runs its cells in
// the session's kernel over the proxied WebSocket, and prints what the cells
// printed. Used by tests/explore/explore_e2e.sh and scripts/demo.sh.
//
// usage: node notebook.mjs SOURCE_DIR CA_FILE LOGIN_URL EXPECT CELL...
//   Each CELL is Python source, run in order in one kernel. Fails (exit 1)
//   unless the output of the cells contains EXPECT. Prints the outputs.
//   CCE_NOTEBOOK_UPLOADS="LOCAL=NAME;..." first uploads those text files
//   into the session's home through Jupyter's contents API (as a user's
//   upload button does).
// Also checked: the browser never sees the Jupyter token (no request it
// makes carries one, no page embeds one) and every request stays on the
// plane's origin.
// Needs node_modules/playwright-core (make node-deps) and /usr/bin/chromium: a
// missing one is a failure, never a skip.

import { createHash, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [SOURCE, CA, LOGIN_URL, EXPECT, ...CELLS] = process.argv.slice(2);
const CHROMIUM = '/usr/bin/chromium';
const DEADLINE_MS = 360_000;

let step = 'start';
const t0 = Date.now();
function log(msg) { console.error(`[notebook ${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`); }
function fail(msg) { throw new Error(`${step}: ${msg}`); }
function check(cond, msg) { if (!cond) fail(msg); }

// Chromium trusts exactly the plane's key (its CA is not the system's).
function serverSpki(url) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = https.request({ host: u.hostname, port: u.port, path: '/healthz', ca: fs.readFileSync(CA) },
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

async function main() {
  step = 'prerequisites';
  check(SOURCE && CA && LOGIN_URL && EXPECT && CELLS.length > 0,
    'usage: node notebook.mjs SOURCE_DIR CA_FILE LOGIN_URL EXPECT CELL...');
  check(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (Makefile DEB_PACKAGES)`);
  const pw = path.join(SOURCE, 'node_modules', 'playwright-core', 'index.mjs');
  check(fs.existsSync(pw), `${pw} is missing: run make node-deps (npm ci)`);
  const { chromium } = await import(pathToFileURL(pw).href);

  const origin = new URL(LOGIN_URL).origin;
  const base = new URL(LOGIN_URL).pathname.replace(/login$/, '');
  check(/^\/explore\/xs-[0-9a-f]{16}\/$/.test(base), `unexpected login URL path ${new URL(LOGIN_URL).pathname}`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', `--ignore-certificate-errors-spki-list=${await serverSpki(LOGIN_URL)}`],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const offOrigin = [];
    const tokenSeen = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(origin) && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) {
        offOrigin.push(r.url());
      }
      const auth = r.headers().authorization || '';
      if (/token/i.test(auth) || /[?&]token=/.test(r.url())) tokenSeen.push(r.url());
    });

    step = 'login';
    log(`opening ${origin}${base}login?code=…`);
    const resp = await page.goto(LOGIN_URL, { waitUntil: 'domcontentloaded' });
    check(resp && resp.ok(), `login answered ${resp && resp.status()}`);
    check(page.url().startsWith(`${origin}${base}tree`), `login landed on ${page.url()}, expected ${base}tree`);
    const cookies = await context.cookies(`${origin}${base}`);
    const sessionCookie = cookies.find((c) => c.name === 'cce_explore');
    check(sessionCookie, `no cce_explore cookie (got ${cookies.map((c) => c.name).join(', ')})`);
    check(sessionCookie.httpOnly && sessionCookie.secure && sessionCookie.sameSite === 'Strict',
      `the session cookie must be HttpOnly, Secure, SameSite=Strict: ${JSON.stringify(sessionCookie)}`);
    check(sessionCookie.path === base, `the session cookie's Path is ${sessionCookie.path}, expected ${base}`);
    const html = await page.content();
    check(!/"token":\s*"[0-9a-f]{16,}/.test(html), 'the page embeds a Jupyter token');

    step = 'upload files';
    const putContents = (name, body) => page.evaluate(async ([url, b]) => {
      const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || '';
      const r = await fetch(url, {
        method: 'PUT', body: JSON.stringify(b),
        headers: { 'Content-Type': 'application/json', 'X-XSRFToken': decodeURIComponent(xsrf) },
      });
      return { status: r.status, text: await r.text() };
    }, [`${base}api/contents/${name}`, body]);
    for (const spec of (process.env.CCE_NOTEBOOK_UPLOADS || '').split(';').filter(Boolean)) {
      const [local, name] = spec.split('=');
      const up = await putContents(name, { type: 'file', format: 'text', content: fs.readFileSync(local, 'utf8') });
      check(up.status === 200 || up.status === 201, `upload ${name}: ${up.status} ${up.text.slice(0, 300)}`);
      log(`uploaded ${name}`);
    }

    step = 'create notebook';
    const nb = {
      type: 'notebook', format: 'json',
      content: {
        nbformat: 4, nbformat_minor: 5, metadata: { kernelspec: { name: 'python3', display_name: 'Python 3' } },
        cells: CELLS.map((src, i) => ({
          cell_type: 'code', id: `c${i}`, source: src, metadata: {}, outputs: [], execution_count: null,
        })),
      },
    };
    const put = await putContents('explore-test.ipynb', nb);
    check(put.status === 200 || put.status === 201, `PUT notebook: ${put.status} ${put.text.slice(0, 300)}`);

    step = 'run cells';
    await page.goto(`${origin}${base}notebooks/explore-test.ipynb`, { waitUntil: 'domcontentloaded' });
    await page.waitForFunction(() => window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel &&
      Jupyter.notebook.kernel.is_connected(), null, { timeout: 60_000 });
    log('kernel connected over the proxied WebSocket');
    await page.evaluate(() => Jupyter.notebook.execute_all_cells());
    await page.waitForFunction((n) => {
      const cells = Jupyter.notebook.get_cells();
      return cells.length === n && cells.every((c) => c.input_prompt_number !== '*' && c.input_prompt_number != null);
    }, CELLS.length, { timeout: 300_000, polling: 500 });
    const outputs = await page.evaluate(() => Jupyter.notebook.get_cells().map((c) => c.output_area.outputs));
    const text = outputs.flat().map((o) => {
      if (o.output_type === 'stream') return o.text;
      if (o.output_type === 'error') return `${o.ename}: ${o.evalue}\n${(o.traceback || []).join('\n')}`;
      return (o.data && (o.data['text/plain'] || '')) || '';
    }).join('\n');
    console.log(text);
    const errors = outputs.flat().filter((o) => o.output_type === 'error');
    check(errors.length === 0, `a cell raised ${errors.map((e) => `${e.ename}: ${e.evalue}`).join('; ')}`);
    check(text.includes(EXPECT), `the cells' output does not contain ${JSON.stringify(EXPECT)}`);
    const htmlOut = await page.locator('.output_area').first().innerText();
    check(htmlOut.length > 0, 'nothing is shown under the first cell');

    step = 'checks';
    check(offOrigin.length === 0, `requests left the plane's origin: ${offOrigin.slice(0, 5).join(', ')}`);
    check(tokenSeen.length === 0, `the browser sent a Jupyter token: ${tokenSeen.slice(0, 3).join(', ')}`);
    log('OK');
  } finally {
    await browser.close();
  }
}

const timer = setTimeout(() => { console.error(`notebook: FAILED: ${step}: deadline passed`); process.exit(1); },
  DEADLINE_MS);
main().then(() => { clearTimeout(timer); process.exit(0); }, (e) => {
  console.error(`notebook: FAILED: ${e.message}`);
  process.exit(1);
});
