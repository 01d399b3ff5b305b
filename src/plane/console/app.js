// The cce4long web console (docs/console.md). Plain JavaScript, no framework,
// no build step, served by cce-plane at /console under a CSP that allows only
// this file and app.css. It talks only to the plane's own /api/v1, with the
// user's token from session storage.
//
// Invariant: API data reaches the page only as text (textContent, text
// nodes, attribute values via setAttribute), never as HTML: every file,
// finding, name and reason shown here may have been written by an attacker.
'use strict';

(() => {
  const TOKEN_KEY = 'cce.console.token';
  const MAX_VIEW_BYTES = 32 << 20;  // files larger than this are not shown in the browser
  const TABLE_WINDOW = 100;         // rows shown either side of a table finding
  const TEXT_WINDOW = 300;          // lines shown either side of a text finding
  const HEX_BEFORE = 256;           // bytes shown before a finding's offset in the hex view
  const HEX_SPAN = 1024;            // bytes shown in the hex view
  const FINAL_STATES = new Set(['RELEASED', 'REJECTED', 'FAILED', 'CANCELLED']);
  const STATES = new Set(['SUBMITTED', 'AUTHORIZED', 'PROVISIONING', 'ATTESTED', 'RUNNING',
    'OUTPUT_SUBMITTED', 'RELEASED', 'HELD', 'APPROVED', 'REJECTED', 'FAILED', 'CANCELLED']);

  const session = { token: null, me: null };
  let renderSeq = 0;         // a view writes to the page only while it is still the current one
  let objectUrls = [];       // blob: URLs of the current view, revoked when it changes
  let pollTimer = null;

  // ---- DOM helpers: text only ------------------------------------------------

  // h('tr', {class: 'x', data: {job: id}, on: {click: f}}, 'text', node, [more])
  function h(tag, props, ...children) {
    const e = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === 'class') e.className = v;
        else if (k === 'data') for (const [dk, dv] of Object.entries(v)) e.dataset[dk] = String(dv);
        else if (k === 'on') for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
        else if (k === 'href' || k === 'src') e.setAttribute(k, safeUrl(v));
        else e.setAttribute(k, v === true ? '' : String(v));
      }
    }
    append(e, children);
    return e;
  }
  function append(parent, children) {
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      if (Array.isArray(c)) append(parent, c);
      else if (c instanceof Node) parent.appendChild(c);
      else parent.appendChild(document.createTextNode(String(c)));
    }
  }
  // Links and images point only at this console, the API or our own blobs.
  function safeUrl(u) {
    const s = String(u);
    return /^(#|\/console\/?|\/api\/v1\/|blob:|data:,$)/.test(s) ? s : '#';
  }
  const $ = (id) => document.getElementById(id);

  function fmtTime(unix) {
    if (typeof unix !== 'number' || !Number.isFinite(unix) || unix <= 0) return '—';
    return new Date(unix * 1000).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
  }
  function fmtBytes(n) {
    if (typeof n !== 'number') return '—';
    if (n < 1024) return n + ' B';
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return v.toFixed(v < 10 ? 1 : 0) + ' ' + units[i];
  }
  function fmtScore(s) { return typeof s === 'number' ? s.toFixed(2) : '—'; }
  function stateBadge(state) {
    const known = STATES.has(state);
    return h('span', { class: 'state ' + (known ? 'state-' + state.toLowerCase() : 'state-unknown') },
      String(state ?? '—'));
  }
  function table(cls, headers, rows) {
    return h('table', { class: cls },
      h('thead', null, h('tr', null, headers.map((x) => h('th', null, x)))),
      h('tbody', null, rows));
  }
  function field(dl, name, ...value) {
    dl.append(h('dt', null, name), h('dd', null, ...value));
  }
  function emptyRow(cols, text) {
    return h('tr', { class: 'empty' }, h('td', { colspan: cols }, text));
  }
  function errorBox(err) {
    return h('p', { class: 'error', role: 'alert' }, err instanceof ApiError
      ? err.message + ' (' + err.code + ')' : 'Error: ' + (err && err.message ? err.message : err));
  }

  // ---- The API ---------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  // Every call: the bearer token, no cookies, no cache, no redirects.
  async function api(path, { method = 'GET', body, raw = false, signal } = {}) {
    const headers = { Authorization: 'Bearer ' + session.token };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, {
      method, headers, signal,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store', credentials: 'omit', redirect: 'error', referrerPolicy: 'no-referrer',
    });
    if (!res.ok) {
      let code = 'http_' + res.status;
      let message = res.statusText || 'request failed';
      try {
        const j = await res.json();
        if (j && j.error) { code = String(j.error.code); message = String(j.error.message); }
      } catch (_) { /* not JSON: keep the status line */ }
      if (res.status === 401 && session.me) {
        logout('The plane no longer accepts your token (' + message + '). Log in again.');
      }
      throw new ApiError(res.status, code, method + ' ' + path + ': ' + message);
    }
    return raw ? res : res.json();
  }
  const enc = encodeURIComponent;
  function filePath(job, path) {
    return '/api/v1/reviews/' + enc(job) + '/files/' + path.split('/').map(enc).join('/');
  }

  async function sha256Hex(buf) {
    if (!window.crypto || !crypto.subtle) return null;  // not a secure context
    const d = new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
    return 'sha256:' + Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  // ---- Login -----------------------------------------------------------------

  function showLogin(message) {
    setNav([]);
    const view = $('login-template').content.cloneNode(true);
    const main = $('main');
    main.replaceChildren(view);
    if (message) $('login-error').textContent = message;
    $('login-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const token = $('token').value.trim();
      $('login-error').textContent = '';
      if (!/^[\x21-\x7e]{1,512}$/.test(token)) {
        $('login-error').textContent = 'A token is printable ASCII without spaces (cce_…).';
        return;
      }
      session.token = token;
      try {
        await whoami();
        sessionStorage.setItem(TOKEN_KEY, token);
        $('token').value = '';
        route();
      } catch (err) {
        session.token = null;
        session.me = null;
        $('login-error').textContent = err instanceof ApiError && err.status === 401
          ? 'The plane does not accept this token.' : 'Login failed: ' + err.message;
      }
    });
    $('token').focus();
  }

  async function whoami() {
    const me = await api('/api/v1/whoami');
    session.me = { name: String(me.name), role: String(me.role) };
    $('who').replaceChildren(h('span', null, session.me.name),
      h('span', { class: 'role' }, session.me.role));
    $('logout').hidden = false;
  }

  function logout(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    session.token = null;
    session.me = null;
    renderSeq++;
    clearView();
    $('who').replaceChildren();
    $('logout').hidden = true;
    if (location.hash) history.replaceState(null, '', location.pathname);
    showLogin(message);
  }

  // ---- Navigation ------------------------------------------------------------

  const NAV = {
    consumer: [['#/datasets', 'Datasets'], ['#/rentals', 'Rentals'], ['#/jobs', 'Jobs']],
    reviewer: [['#/reviews', 'Review queue'], ['#/reviews/decided', 'Decided'], ['#/jobs', 'Jobs']],
    provider: [['#/datasets', 'Datasets'], ['#/rentals', 'Rentals']],
    operator: [['#/datasets', 'Datasets'], ['#/rentals', 'Rentals'], ['#/jobs', 'Jobs'],
      ['#/reviews', 'Review queue']],
  };
  const HOME = { consumer: '#/jobs', reviewer: '#/reviews', provider: '#/datasets', operator: '#/jobs' };
  function defaultRoute() { return HOME[session.me.role] || '#/datasets'; }
  function setNav(items) {
    const here = location.hash;
    const active = (href) => here === href || (href === '#/jobs' && here.startsWith('#/jobs/')) ||
      (href === '#/reviews' && here.startsWith('#/reviews/') && here !== '#/reviews/decided');
    $('nav').replaceChildren(...items.map(([href, label]) =>
      h('a', { href, class: active(href) ? 'active' : null }, label)));
  }

  function clearView() {
    for (const u of objectUrls) URL.revokeObjectURL(u);
    objectUrls = [];
    if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
  }

  // Renders the view the hash names. Each view gets a fresh section and the
  // sequence number it must still hold when its data arrives.
  async function route() {
    if (!session.me) return;
    clearView();
    const seq = ++renderSeq;
    if (!location.hash || location.hash === '#/') history.replaceState(null, '', defaultRoute());
    const hash = location.hash;
    setNav(NAV[session.me.role] || []);
    const section = h('section', { class: 'view' }, h('p', { class: 'loading' }, 'Loading…'));
    $('main').replaceChildren(section);
    const current = () => seq === renderSeq;
    const parts = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
    try {
      let node;
      if (parts[0] === 'datasets') node = await datasetsView();
      else if (parts[0] === 'rentals') node = await rentalsView();
      else if (parts[0] === 'jobs' && parts[1]) node = await jobView(parts[1], current);
      else if (parts[0] === 'jobs') node = await jobsView();
      else if (parts[0] === 'reviews' && parts[1] === 'decided') node = await queueView('decided');
      else if (parts[0] === 'reviews' && parts[1]) node = await reviewView(parts[1], current);
      else if (parts[0] === 'reviews') node = await queueView('HELD');
      else { location.hash = defaultRoute(); return; }
      if (current()) section.replaceChildren(node);
    } catch (err) {
      if (current() && session.me) section.replaceChildren(errorBox(err));
    }
  }

  // ---- Consumer and provider views -------------------------------------------

  async function datasetsView() {
    const { datasets = [] } = await api('/api/v1/datasets');
    return h('div', null, h('h1', null, 'Datasets'),
      table('list datasets', ['Name', 'Provider', 'Description', 'Price / day', 'Version',
        'Max days'], datasets.length ? datasets.map((d) =>
        h('tr', { data: { dataset: d.name } },
          h('td', { class: 'mono' }, d.name), h('td', null, d.owner),
          h('td', { class: 'desc' }, d.description || ''), h('td', { class: 'num' }, d.price),
          h('td', { class: 'num' }, d.dataset_version ?? '—'),
          h('td', { class: 'num' }, d.max_days ?? '—'))) : emptyRow(6, 'No datasets yet.')));
  }

  async function rentalsView() {
    const { rentals = [] } = await api('/api/v1/rentals');
    const now = Date.now() / 1000;
    return h('div', null, h('h1', null, 'Rentals'),
      table('list rentals', ['Dataset', 'Consumer', 'From', 'Until', ''],
        rentals.length ? rentals.map((r) => h('tr', { data: { dataset: r.dataset } },
          h('td', { class: 'mono' }, r.dataset), h('td', null, r.consumer),
          h('td', null, fmtTime(r.start)), h('td', null, fmtTime(r.end)),
          h('td', null, r.end > now ? h('span', { class: 'tag ok' }, 'active')
            : h('span', { class: 'tag' }, 'expired'))))
          : emptyRow(5, 'No rentals.')));
  }

  async function jobsView() {
    const { jobs = [] } = await api('/api/v1/jobs?limit=500');
    return h('div', null, h('h1', null, 'Jobs'),
      table('list jobs', ['Job', 'Name', 'Consumer', 'State', 'Submitted', 'Updated'],
        jobs.length ? jobs.map((j) => h('tr', { data: { job: j.id } },
          h('td', { class: 'mono' }, h('a', { href: '#/jobs/' + enc(j.id) }, j.id)),
          h('td', null, j.name), h('td', null, j.consumer), h('td', null, stateBadge(j.state)),
          h('td', null, fmtTime(j.created_at)), h('td', null, fmtTime(j.updated_at))))
          : emptyRow(6, 'No jobs yet. Submit one with: cce job submit -f job.yaml')));
  }

  async function jobView(id, current) {
    const job = await api('/api/v1/jobs/' + enc(id));
    const out = h('div', { class: 'job', data: { job: job.id, state: job.state } });
    out.append(h('h1', null, 'Job ', h('span', { class: 'mono' }, job.id), ' ', stateBadge(job.state)));
    if (job.reason) out.append(h('p', { class: 'reason' }, job.reason));
    const dl = h('dl', { class: 'facts' });
    field(dl, 'Name', job.name);
    field(dl, 'Consumer', job.consumer);
    field(dl, 'Image', h('span', { class: 'mono' }, job.image));
    field(dl, 'Submitted', fmtTime(job.created_at));
    field(dl, 'Updated', fmtTime(job.updated_at));
    field(dl, 'Deadline', fmtTime(job.deadline));
    if (job.simulated_tee) {
      field(dl, 'TEE', h('span', { class: 'tag warn' }, 'SIMULATED'),
        ' attested with the simulated quote provider, not real TDX');
    }
    out.append(dl);

    if (job.review) out.append(reviewOutcome(job.review));

    if (job.output) {
      const o = job.output;
      const sec = h('section', { class: 'card output' }, h('h2', null, 'Output'));
      const odl = h('dl', { class: 'facts' });
      field(odl, 'Size', fmtBytes(o.size));
      field(odl, 'Digest', h('span', { class: 'mono', id: 'output-digest' }, o.digest));
      field(odl, 'Gate verdict', o.verdict);
      sec.append(odl);
      if (job.state === 'RELEASED' && o.downloadable !== false && session.me.role === 'consumer') {
        const status = h('p', { class: 'download-status', role: 'status' });
        sec.append(h('button', { id: 'download', type: 'button',
          on: { click: (ev) => download(job, ev.currentTarget, status) } }, 'Download output'), status);
      } else if (job.state === 'RELEASED') {
        sec.append(h('p', { class: 'muted' }, 'Released: only the job\u2019s consumer downloads it.'));
      } else {
        sec.append(h('p', { class: 'muted' }, job.state === 'HELD'
          ? 'Held by the Output Gate: a reviewer must approve it before it can be downloaded.'
          : 'Not downloadable in state ' + job.state + '.'));
      }
      out.append(sec);
    }

    const history = job.history || [];
    out.append(h('section', { class: 'card' }, h('h2', null, 'Timeline'),
      h('ol', { class: 'timeline' }, history.map((e) => h('li', { data: { state: e.to } },
        h('span', { class: 'when' }, fmtTime(e.at)), ' ',
        e.from ? [stateBadge(e.from), ' → '] : null, stateBadge(e.to),
        e.reason ? h('div', { class: 'why' }, e.reason) : null)))));

    if (!FINAL_STATES.has(job.state)) {  // follow a running job
      pollTimer = setTimeout(() => { if (current()) route(); }, 2000);
    }
    return out;
  }

  function reviewOutcome(r) {
    const sec = h('section', { class: 'card review-outcome', data: { decision: r.decision } },
      h('h2', null, 'Review decision'));
    const dl = h('dl', { class: 'facts' });
    field(dl, 'Decision', h('span', { class: 'tag ' + (r.decision === 'approve' || r.decision === 'approved'
      ? 'ok' : 'bad') }, r.decision));
    field(dl, 'Reason', h('span', { class: 'review-reason' }, r.reason));
    field(dl, 'Decided', fmtTime(r.decided_at));
    if (Array.isArray(r.reviewers)) field(dl, 'Reviewers', r.reviewers.join(', '));
    sec.append(dl);
    return sec;
  }

  // Fetches the output with the token, checks its digest, and hands it to the
  // browser as a blob: URL (a plain link could not carry the token).
  async function download(job, button, status) {
    button.disabled = true;
    status.textContent = 'Downloading…';
    try {
      const res = await api('/api/v1/jobs/' + enc(job.id) + '/output', { raw: true });
      const announced = res.headers.get('X-Output-Digest');
      const blob = await res.blob();
      const digest = await sha256Hex(await blob.arrayBuffer());
      const expected = announced || job.output.digest;
      if (digest && expected && digest !== expected) {
        throw new Error('the downloaded bytes hash to ' + digest + ', not ' + expected + '; discarded');
      }
      const url = URL.createObjectURL(new Blob([blob], { type: 'application/x-tar' }));
      objectUrls.push(url);
      const a = h('a', { href: url, download: job.id + '-output.tar', class: 'hidden' });
      document.body.append(a);
      a.click();
      a.remove();
      status.textContent = 'Saved ' + job.id + '-output.tar (' + fmtBytes(blob.size) + ')' +
        (digest ? ', ' + digest + ' verified.' : '; this browser cannot check its digest.');
      status.dataset.digest = digest || '';
    } catch (err) {
      status.replaceChildren(errorBox(err));
    } finally {
      button.disabled = false;
    }
  }

  // ---- Reviewer views --------------------------------------------------------

  async function queueView(which) {
    const { reviews = [] } = await api('/api/v1/reviews?state=' + enc(which));
    const held = which === 'HELD';
    return h('div', null, h('h1', null, held ? 'Review queue' : 'Decided outputs'),
      h('p', { class: 'muted' }, held
        ? 'Outputs the Output Gate held, oldest first. Open one to see its findings in place.'
        : 'Outputs reviewers approved or rejected.'),
      table('list reviews', ['Job', 'Consumer', 'State', 'Score', 'Findings', 'Submitted',
        'Approvals'], reviews.length ? reviews.map((r) => h('tr', { data: { job: r.job } },
        h('td', { class: 'mono' }, h('a', { href: '#/reviews/' + enc(r.job) }, r.job)),
        h('td', null, r.consumer), h('td', null, stateBadge(r.state)),
        h('td', { class: 'num' }, fmtScore(r.score)), h('td', { class: 'num' }, r.findings),
        h('td', null, fmtTime(r.submitted_at)),
        h('td', null, (r.approvals || []).join(', ') || '—')))
        : emptyRow(7, held ? 'Nothing is waiting for review.' : 'No decisions yet.')));
  }

  async function reviewView(id, current) {
    const [review, job] = await Promise.all([
      api('/api/v1/reviews/' + enc(id)),
      api('/api/v1/jobs/' + enc(id)).catch(() => null),
    ]);
    const state = (job && job.state) || review.state || null;
    const findings = Array.isArray(review.findings) ? review.findings : [];
    const files = Array.isArray(review.files) ? review.files : [];
    const decisions = Array.isArray(review.decisions) ? review.decisions : [];
    const out = h('div', { class: 'review', data: { job: review.job, state: state || '' } });
    out.append(h('h1', null, 'Review ', h('span', { class: 'mono' }, review.job), ' ',
      state ? stateBadge(state) : null));
    const dl = h('dl', { class: 'facts' });
    if (job) {
      field(dl, 'Job', job.name, ' by ', job.consumer, ', submitted ', fmtTime(job.created_at));
    }
    field(dl, 'Gate verdict', h('span', { class: 'tag ' + (review.verdict === 'release' ? 'ok' : 'bad') },
      review.verdict), ' score ', fmtScore(review.score));
    field(dl, 'Approvals needed', String(review.required_approvals ?? 1));
    out.append(dl);

    const viewer = h('div', { class: 'viewer', id: 'viewer' },
      h('p', { class: 'muted' }, 'Select a finding to see it highlighted in its file, or a file to open it.'));
    const findingRows = findings.map((f, i) => h('tr', {
      class: 'finding' + (f.hard ? ' hard' : ''), tabindex: '0', data: { index: i },
      on: {
        click: () => selectFinding(i),
        keydown: (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); selectFinding(i); } },
      },
    }, h('td', { class: 'num' }, i + 1),
    h('td', null, h('div', { class: 'mono' }, f.detector), h('div', { class: 'mono path small' }, f.file)),
    h('td', null, f.location),
    h('td', { class: 'num' }, fmtScore(f.score), f.hard ? h('div', null, h('span', { class: 'tag bad' }, 'hard'))
      : null),
    h('td', { class: 'message' }, f.message)));
    function openPlain(path) {
      for (const r of findingRows) r.classList.remove('selected');
      showFile(review.job, files, { file: path }, viewer, current);
    }
    function selectFinding(i) {
      for (const r of findingRows) r.classList.toggle('selected', r === findingRows[i]);
      showFile(review.job, files, findings[i], viewer, current);
    }

    const left = h('div', { class: 'review-left' },
      h('section', { class: 'card' }, h('h2', null, 'Findings (' + findings.length + ')'),
        h('div', { class: 'findings-box' },
          table('list findings', ['#', 'Detector / file', 'Location', 'Score', 'Message'],
            findingRows.length ? findingRows : emptyRow(5, 'The gate recorded no findings.')))),
      h('section', { class: 'card' }, h('h2', null, 'Files (' + files.length + ')'),
        table('list files', ['Path', 'Size'], files.length ? files.map((f) => h('tr', {
          class: 'file', tabindex: '0', data: { path: f.path },
          on: { click: () => openPlain(f.path),
            keydown: (ev) => { if (ev.key === 'Enter') openPlain(f.path); } },
        }, h('td', { class: 'mono path' }, f.path), h('td', { class: 'num' }, fmtBytes(f.size))))
          : emptyRow(2, 'No files.'))),
      decisionsCard(decisions),
      decisionForm(review, state, decisions));
    out.append(h('div', { class: 'review-grid' }, left,
      h('section', { class: 'card viewer-card' }, h('h2', null, 'File'), viewer)));
    return out;
  }

  function decisionsCard(decisions) {
    return h('section', { class: 'card' }, h('h2', null, 'Decisions'),
      decisions.length ? h('ul', { class: 'decisions' }, decisions.map((d) => h('li', {
        data: { decision: d.decision } },
      h('span', { class: 'tag ' + (/^approve/.test(d.decision) ? 'ok' : 'bad') }, d.decision), ' ',
      h('strong', null, d.reviewer), ' ', h('span', { class: 'when' }, fmtTime(d.at)),
      h('div', { class: 'why' }, d.reason)))) : h('p', { class: 'muted' }, 'No decision yet.'));
  }

  function decisionForm(review, state, decisions) {
    if (session.me.role !== 'reviewer') {
      return h('p', { class: 'muted' }, 'Only reviewers decide on held outputs.');
    }
    if (state && state !== 'HELD') return null;
    if (decisions.some((d) => d.reviewer === session.me.name)) {
      return h('p', { class: 'muted' }, 'You have decided on this output; another reviewer must too.');
    }
    const reason = h('textarea', { id: 'reason', name: 'reason', rows: '3', maxlength: '2000',
      required: true, placeholder: 'Why (the consumer sees this reason)' });
    const status = h('p', { class: 'decision-status', role: 'status' });
    const decide = async (verb, button) => {
      const text = reason.value.trim();
      if (!text) {
        status.replaceChildren(h('span', { class: 'error' }, 'A reason is required.'));
        reason.focus();
        return;
      }
      for (const b of form.querySelectorAll('button')) b.disabled = true;
      status.textContent = verb === 'approve' ? 'Approving…' : 'Rejecting…';
      try {
        await api('/api/v1/reviews/' + enc(review.job) + '/' + verb, { method: 'POST',
          body: { reason: text } });
        route();  // the page shows the new state
      } catch (err) {
        status.replaceChildren(errorBox(err));
        for (const b of form.querySelectorAll('button')) b.disabled = false;
        button.focus();
      }
    };
    const approve = h('button', { type: 'button', id: 'approve', class: 'approve',
      on: { click: (ev) => decide('approve', ev.currentTarget) } }, 'Approve release');
    const reject = h('button', { type: 'button', id: 'reject', class: 'reject',
      on: { click: (ev) => decide('reject', ev.currentTarget) } }, 'Reject');
    const form = h('form', { class: 'card decision', on: { submit: (ev) => ev.preventDefault() } },
      h('h2', null, 'Decide'), h('label', { for: 'reason' }, 'Reason (required)'), reason,
      h('div', { class: 'buttons' }, approve, reject), status);
    return form;
  }

  // ---- The file viewer: a finding highlighted in place -----------------------

  // Which bundle file a finding names. Findings inside archives and decoded
  // content are named "outer!inner": the outer file is what can be fetched.
  function resolveFile(files, name) {
    const paths = files.map((f) => f.path);
    if (paths.includes(name)) return { path: name, inner: null };
    const bang = name.indexOf('!');
    if (bang > 0) {
      const outer = name.slice(0, bang);
      const r = resolveFile(files, outer);
      return { path: r.path, inner: name.slice(bang + 1) };
    }
    const suffix = paths.find((p) => p.endsWith('/' + name));
    return { path: suffix || name, inner: null };
  }

  async function showFile(job, files, finding, viewer, current) {
    if (!finding.file) {
      viewer.replaceChildren(findingNote(finding),
        h('p', { class: 'muted' }, 'This finding is about the bundle as a whole, not one file.'));
      return;
    }
    const { path, inner } = resolveFile(files, String(finding.file));
    // Only the latest click may fill the viewer.
    const request = String((Number(viewer.dataset.request) || 0) + 1);
    viewer.dataset.request = request;
    const mine = () => current() && viewer.dataset.request === request;
    viewer.replaceChildren(h('p', { class: 'loading' }, 'Loading ' + path + '…'));
    try {
      const ctl = new AbortController();
      const res = await api(filePath(job, path), { raw: true, signal: ctl.signal });
      const length = Number(res.headers.get('Content-Length') || '0');
      if (length > MAX_VIEW_BYTES) {
        ctl.abort();
        throw new Error(path + ' is ' + fmtBytes(length) + ', too large to show here; use: cce review file ' +
          job + ' ' + path);
      }
      const type = (res.headers.get('Content-Type') || '').split(';')[0].trim().toLowerCase();
      const blob = await res.blob();
      if (!mine()) return;
      const head = h('div', { class: 'viewer-head' }, h('span', { class: 'mono path' }, path), ' ',
        h('span', { class: 'muted' }, type || 'unknown type', ', ', fmtBytes(blob.size)));
      const note = finding.detector ? findingNote(finding) : null;
      const innerNote = inner ? h('p', { class: 'muted' }, 'The finding is inside ', h('span',
        { class: 'mono' }, inner), ' of this file; the outer file is shown as stored.') : null;
      let body;
      if (type === 'image/png' || type === 'image/jpeg') {
        const url = URL.createObjectURL(blob);
        objectUrls.push(url);
        body = h('div', { class: 'image-view' }, h('img', { src: url, alt: path }), note);
        viewer.replaceChildren(...[head, innerNote, body].filter(Boolean));
        return;
      }
      const bytes = new Uint8Array(await blob.arrayBuffer());
      if (!mine()) return;
      const target = inner ? {} : finding;
      const kind = classify(path, type, bytes);
      if (kind === 'table') body = tableView(path, bytes, target);
      else if (kind === 'text') body = textView(bytes, target);
      else body = hexView(bytes, target);
      viewer.replaceChildren(...[head, note, innerNote, body.node].filter(Boolean));
      if (body.hit) reveal(body.hit);
    } catch (err) {
      if (mine()) viewer.replaceChildren(errorBox(err));
    }
  }

  // Scrolls the file's own box (not the page) so the highlight is centred.
  function reveal(hit) {
    const box = hit.closest('.scroll');
    if (!box) return;
    const b = box.getBoundingClientRect();
    const r = hit.getBoundingClientRect();
    box.scrollTop += r.top - b.top - (box.clientHeight - r.height) / 2;
    box.scrollLeft += r.left - b.left - (box.clientWidth - r.width) / 2;
    const card = box.closest('.card').getBoundingClientRect();
    if (card.top < 0 || card.top > window.innerHeight / 2) box.closest('.card').scrollIntoView({ block: 'start' });
  }

  function findingNote(f) {
    return h('div', { class: 'finding-note' + (f.hard ? ' hard' : '') },
      h('div', null, h('span', { class: 'mono' }, f.detector), ' · ', f.location, ' · score ',
        fmtScore(f.score), f.hard ? [' · ', h('span', { class: 'tag bad' }, 'hard')] : null),
      h('div', { class: 'message' }, f.message));
  }

  function classify(path, type, bytes) {
    const lower = path.toLowerCase();
    if (/\.(csv|tsv)$/.test(lower) || type === 'text/csv' || type === 'text/tab-separated-values') {
      return 'table';
    }
    if (type.startsWith('text/') || type === 'application/json') return 'text';
    // No type from the server: text if it is valid UTF-8 without NULs.
    if (bytes.includes(0)) return 'hex';
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, 1 << 16));
      return 'text';
    } catch (_) {
      return 'hex';
    }
  }

  const decodeText = (bytes) => new TextDecoder('utf-8').decode(bytes);
  function lineOfOffset(bytes, offset) {
    let line = 1;
    for (let i = 0; i < offset && i < bytes.length; i++) if (bytes[i] === 10) line++;
    return line;
  }
  // Control and invisible characters shown as visible marks, so hidden text
  // is seen rather than rendered away.
  function visible(s) {
    return s.replace(/[\u0000-\u0008\u000b-\u001f\u007f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]/g,
      (c) => '⟨U+' + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0') + '⟩');
  }

  // RFC 4180 rows (quotes, doubled quotes, CRLF), stopping after maxRows.
  function parseDelimited(text, delim, maxRows) {
    const rows = [];
    let row = [];
    let cell = '';
    let quoted = false;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (quoted) {
        if (c === '"') {
          if (text[i + 1] === '"') { cell += '"'; i++; } else quoted = false;
        } else cell += c;
      } else if (c === '"' && cell === '') quoted = true;
      else if (c === delim) { row.push(cell); cell = ''; }
      else if (c === '\n' || c === '\r') {
        if (c === '\r' && text[i + 1] === '\n') i++;
        row.push(cell); cell = '';
        rows.push(row); row = [];
        if (rows.length >= maxRows) return { rows, truncated: i + 1 < text.length };
      } else cell += c;
    }
    if (cell !== '' || row.length) { row.push(cell); rows.push(row); }
    return { rows, truncated: false };
  }

  // A CSV/TSV as a table: the header, then data rows around the finding's
  // (0-based) row, its cell (or whole row) highlighted.
  function tableView(path, bytes, f) {
    const text = decodeText(bytes);
    const firstLine = text.slice(0, text.indexOf('\n') >>> 0);
    const delim = /\.tsv$/i.test(path) || (firstLine.split('\t').length > firstLine.split(',').length)
      ? '\t' : ',';
    let row = Number.isInteger(f.row) ? f.row : null;
    if (row === null && Number.isInteger(f.line)) row = f.line - 2;  // line 1 is the header
    if (row === null && Number.isInteger(f.offset)) row = lineOfOffset(bytes, f.offset) - 2;
    const col = Number.isInteger(f.column) ? f.column : null;
    const want = row === null ? 2 * TABLE_WINDOW : row + TABLE_WINDOW + 2;
    const { rows, truncated } = parseDelimited(text, delim, want);
    if (!rows.length) return { node: h('p', { class: 'muted' }, 'The file is empty.'), hit: null };
    const header = rows[0];
    const data = rows.slice(1);
    const from = row === null ? 0 : Math.max(0, row - TABLE_WINDOW);
    const to = Math.min(data.length, row === null ? 2 * TABLE_WINDOW : row + TABLE_WINDOW + 1);
    let hit = null;
    const body = [];
    for (let r = from; r < to; r++) {
      const isRow = r === row;
      const tr = h('tr', { class: isRow ? 'hit-row' : null, data: { row: r } },
        h('th', { class: 'rownum' }, r));
      data[r].forEach((v, c) => {
        const isCell = isRow && (col === null || c === col);
        const td = h('td', { class: isCell ? 'hit' : null }, visible(v));
        if (isCell && !hit) hit = td;
        tr.append(td);
      });
      if (isRow && !hit) hit = tr;
      body.push(tr);
    }
    const notes = [];
    if (row !== null && row >= data.length) {
      notes.push(h('p', { class: 'error' }, 'The finding names data row ' + row + ', beyond the ' +
        data.length + ' rows shown.'));
    }
    notes.push(h('p', { class: 'muted' }, 'Data rows ' + from + '–' + Math.max(from, to - 1) +
      (truncated ? ' (the file continues)' : ' of ' + data.length) + '; rows and columns count from 0.'));
    const node = h('div', { class: 'table-view' }, notes,
      h('div', { class: 'scroll' }, h('table', { class: 'grid' },
        h('thead', null, h('tr', null, h('th', { class: 'rownum' }, ''), header.map((x, c) =>
          h('th', { class: c === col ? 'hit-col' : null }, visible(x))))),
        h('tbody', null, body))));
    return { node, hit };
  }

  // Text with line numbers, the finding's line highlighted.
  function textView(bytes, f) {
    const lines = decodeText(bytes).split(/\r?\n/);
    let line = Number.isInteger(f.line) ? f.line : null;
    if (line === null && Number.isInteger(f.offset)) line = lineOfOffset(bytes, f.offset);
    if (line === null && Number.isInteger(f.row)) line = f.row + 2;
    const from = line === null ? 1 : Math.max(1, line - TEXT_WINDOW);
    const to = Math.min(lines.length, line === null ? 2 * TEXT_WINDOW : line + TEXT_WINDOW);
    let hit = null;
    const rows = [];
    for (let n = from; n <= to; n++) {
      const div = h('div', { class: 'line' + (n === line ? ' hit' : ''), data: { line: n } },
        h('span', { class: 'ln' }, n), h('span', { class: 'code' }, visible(lines[n - 1])));
      if (n === line) hit = div;
      rows.push(div);
    }
    const node = h('div', { class: 'text-view' },
      h('p', { class: 'muted' }, 'Lines ' + from + '–' + to + ' of ' + lines.length + '.'),
      h('div', { class: 'scroll' }, h('div', { class: 'lines' }, rows)));
    return { node, hit };
  }

  // 16 bytes a line around the finding's offset, that byte highlighted.
  function hexView(bytes, f) {
    const offset = Number.isInteger(f.offset) ? f.offset : null;
    const start = offset === null ? 0 : Math.max(0, (offset - HEX_BEFORE) & ~15);
    const end = Math.min(bytes.length, start + HEX_SPAN);
    let hit = null;
    const rows = [];
    for (let at = start; at < end; at += 16) {
      const hex = h('span', { class: 'hex' });
      const asc = h('span', { class: 'ascii' });
      for (let i = at; i < at + 16; i++) {
        if (i >= end) { hex.append(h('span', { class: 'b' }, '  ')); continue; }
        const b = bytes[i];
        const isHit = i === offset;
        const cell = h('span', { class: 'b' + (isHit ? ' hit' : '') }, b.toString(16).padStart(2, '0'));
        hex.append(cell);
        asc.append(h('span', { class: isHit ? 'hit' : null },
          b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.'));
        if (isHit) hit = cell;
      }
      rows.push(h('div', { class: 'hexline' + (offset !== null && offset >= at && offset < at + 16
        ? ' hit-line' : '') }, h('span', { class: 'off' }, at.toString(16).padStart(8, '0')), hex, asc));
    }
    const node = h('div', { class: 'hex-view' },
      h('p', { class: 'muted' }, 'Bytes ' + start + '–' + Math.max(start, end - 1) + ' of ' + bytes.length +
        (offset !== null ? '; the finding is at byte ' + offset + '.' : '.')),
      offset !== null && offset >= bytes.length
        ? h('p', { class: 'error' }, 'The finding\u2019s offset is past the end of the file.') : null,
      h('div', { class: 'scroll' }, rows));
    return { node, hit };
  }

  // ---- Start -----------------------------------------------------------------

  window.addEventListener('hashchange', () => { if (session.me) route(); });
  $('logout').addEventListener('click', () => logout('Logged out.'));
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    session.token = saved;
    whoami().then(route, (err) => {
      sessionStorage.removeItem(TOKEN_KEY);
      session.token = null;
      showLogin(err instanceof ApiError && err.status === 401 ? 'Your session ended: log in again.'
        : 'Could not reach the plane: ' + err.message);
    });
  } else {
    showLogin('');
  }
})();
