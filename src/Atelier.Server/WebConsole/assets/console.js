// The Atelier web console: sign-in, navigation and the sections. Every call goes through api.js to the public API.
import { session, get, post, put, del, api, blobUrl, uploadBytes, ApiError } from './api.js';
import { h, clear, toast, attempt, fmt, table, resourceList, form, secretBox, section } from './ui.js';
import { drawChart } from './charts.js';

const MODEL_TYPES = ['onnx', 'checkpoint', 'lora', 'embedding', 'vae', 'controlnet', 'upscaler'];
const JOB_STATES = ['', 'queued', 'running', 'succeeded', 'failed', 'canceled', 'aborted'];

const state = { who: null, platform: false };

// ---- sign-in ------------------------------------------------------------------------------------------------------

async function detect() {
  // The platform key is the only credential that may list accounts; a token is asked who it is.
  try {
    await get('/api/v1/accounts?pageSize=1', { tenant: false });
    return { platform: true, label: 'platform operator' };
  } catch (e) {
    if (!(e instanceof ApiError) || (e.status !== 403 && e.status !== 400)) { throw e; }
  }
  const me = await get('/api/v1/me');
  if (!(me.scopes || []).includes('admin')) {
    throw new Error('This token is not a tenant admin token (it needs the admin scope).');
  }
  return { platform: false, label: `tenant ${me.tenantId}`, me };
}

async function signIn(token, operator) {
  session.signIn(token, operator);
  try {
    state.who = await detect();
    state.platform = state.who.platform;
  } catch (e) {
    session.signOut();
    throw e;
  }
  showShell();
}

function showShell() {
  document.getElementById('signin').hidden = true;
  document.getElementById('shell').hidden = false;
  document.getElementById('who').textContent = state.who.label + (session.tenant && state.platform ? ` · in ${session.tenant}` : '');
  renderNav();
  route();
}

function showSignIn(message) {
  document.getElementById('shell').hidden = true;
  document.getElementById('signin').hidden = false;
  const err = document.getElementById('signin-error');
  err.textContent = message || '';
  err.hidden = !message;
}

// ---- navigation ---------------------------------------------------------------------------------------------------

const sections = [];
function register(id, title, group, render) { sections.push({ id, title, group, render }); }

function visible() {
  return sections.filter((x) => (x.group === 'platform' ? state.platform : (!state.platform || !!session.tenant)));
}

function renderNav() {
  const nav = document.getElementById('nav');
  const groups = state.platform ? ['platform', 'tenant'] : ['tenant'];
  clear(nav, groups.map((g) => [
    state.platform ? h('li.group', g === 'platform' ? 'Platform' : (session.tenant ? `Tenant ${session.tenant}` : 'Tenant: pick one in Tenants')) : null,
    visible().filter((x) => x.group === g).map((x) => h('li', h('a', { href: `#/${x.id}`, 'data-section': x.id }, x.title))),
  ]));
}

function route() {
  if (!state.who) { return; }
  const list = visible();
  const id = location.hash.replace(/^#\//, '').split('/')[0];
  const current = list.find((x) => x.id === id) || list[0];
  for (const a of document.querySelectorAll('#nav a')) { a.classList.toggle('active', a.dataset.section === current.id); }
  const main = document.getElementById('main');
  clear(main);
  main.dataset.section = current.id;
  current.render(main);
}

// ---- tenant sections ----------------------------------------------------------------------------------------------

register('apps', 'Apps and tokens', 'tenant', (main) => {
  const tokens = h('div#app-tokens');
  const apps = resourceList({
    path: '/api/v1/apps',
    columns: [{ key: 'name', label: 'Name' }, { key: 'id', label: 'Id', fmt: fmt.code }, { key: 'createdAt', label: 'Created', fmt: fmt.date }],
    actions: (a) => [
      h('button', { type: 'button', 'data-open': a.id, on: { click: () => showTokens(a) } }, 'Tokens'),
      h('button.danger', { type: 'button', on: { click: async () => { if (confirm(`Delete app ${a.name}? Its tokens are revoked.`)) { await attempt(() => del(`/api/v1/apps/${a.id}`), 'App deleted'); apps.reload(); clear(tokens); } } } }, 'Delete'),
    ],
  });
  function showTokens(app) {
    const list = resourceList({
      path: `/api/v1/apps/${app.id}/tokens`,
      columns: [{ key: 'name', label: 'Name' }, { key: 'scopes', label: 'Scopes', fmt: fmt.list }, { key: 'displayPrefix', label: 'Prefix', fmt: fmt.code },
        { key: (t) => (t.revokedAt ? 'revoked' : t.disabled ? 'disabled' : 'active'), label: 'State', fmt: fmt.pill },
        { key: 'expiresAt', label: 'Expires', fmt: fmt.date }, { key: 'createdAt', label: 'Created', fmt: fmt.date }],
      actions: (t) => (t.revokedAt ? [] : [h('button.danger', { type: 'button', on: { click: async () => { if (confirm(`Revoke token ${t.name}?`)) { await attempt(() => del(`/api/v1/tokens/${t.id}`), 'Token revoked'); list.refresh(); } } } }, 'Revoke')]),
    });
    const slot = h('div');
    clear(tokens, section(`Tokens of ${app.name}`,
      form([{ name: 'name', label: 'Token name', required: true }, { name: 'scope', label: 'Scope', options: ['app', 'admin'] }], 'Issue token', async (v, f) => {
        const issued = await attempt(() => post(`/api/v1/apps/${app.id}/tokens`, { name: v.name, scopes: [v.scope] }));
        if (issued) { clear(slot, secretBox(`Token ${issued.token.name}`, issued.secret, 'new-secret')); f.reset(); list.refresh(); }
      }, { id: 'token-form' }), slot, list));
  }
  clear(main, section('Apps',
    form([{ name: 'name', label: 'App name', required: true }], 'Create app', async (v, f) => {
      const app = await attempt(() => post('/api/v1/apps', { name: v.name }), 'App created');
      if (app) { f.reset(); await apps.reload(); showTokens(app); }
    }, { id: 'app-form' }), apps), tokens);
});

register('roles', 'Roles', 'tenant', (main) => {
  const list = resourceList({
    path: '/api/v1/roles',
    columns: [{ key: 'name', label: 'Name' }, { key: 'description', label: 'Description' }, { key: 'id', label: 'Id', fmt: fmt.code }, { key: 'createdAt', label: 'Created', fmt: fmt.date }],
    actions: (r) => [h('button.danger', { type: 'button', on: { click: async () => { if (confirm(`Delete role ${r.name}?`)) { await attempt(() => del(`/api/v1/roles/${r.id}`), 'Role deleted'); list.refresh(); } } } }, 'Delete')],
  });
  clear(main, section('Roles', form([{ name: 'name', label: 'Role name', required: true }, { name: 'description', label: 'Description' }], 'Create role', async (v, f) => {
    if (await attempt(() => post('/api/v1/roles', { name: v.name, description: v.description || null }), 'Role created')) { f.reset(); list.reload(); }
  }, { id: 'role-form' }), list));
});

register('models', 'Models', 'tenant', (main) => {
  const detail = h('div#model-detail');
  const list = resourceList({
    path: '/api/v1/models',
    columns: [{ key: 'name', label: 'Name' }, { key: 'type', label: 'Type' }, { key: 'tags', label: 'Tags', fmt: fmt.list }, { key: 'id', label: 'Id', fmt: fmt.code }, { key: 'updatedAt', label: 'Updated', fmt: fmt.date }],
    actions: (m) => [h('button', { type: 'button', 'data-open': m.id, on: { click: () => openModel(m) } }, 'Versions')],
  });
  const tags = resourceList({ path: '/api/v1/tags', columns: [{ key: 'name', label: 'Tag' }, { key: 'scope', label: 'Scope' }] });
  function openModel(m) {
    const versions = resourceList({
      path: `/api/v1/models/${m.id}/versions`,
      columns: [{ key: 'name', label: 'Version' }, { key: 'syncState', label: 'State', fmt: fmt.pill }, { key: 'id', label: 'Id', fmt: fmt.code },
        { key: (v) => (v.files || []).map((f) => `${f.aliasName} (${f.state})`).join(', '), label: 'Files' }, { key: 'createdAt', label: 'Created', fmt: fmt.date }],
    });
    const progress = h('div.progress#upload-progress-row', { hidden: true }, h('progress#upload-progress', { max: 100, value: 0 }), h('span#upload-progress-text', '0%'));
    function setProgress(done, total, text) {
      progress.hidden = false;
      const pct = total ? Math.round((done * 100) / total) : 0;
      const bar = document.getElementById('upload-progress');
      bar.value = pct;
      bar.dataset.percent = String(pct);
      document.getElementById('upload-progress-text').textContent = text ?? `${pct}% (${fmt.bytes(done)} of ${fmt.bytes(total)})`;
    }
    const upload = form([{ name: 'version', label: 'Version name', required: true, value: 'v1' }, { name: 'file', label: 'File', type: 'file', required: true }], 'Upload', async (v, f) => {
      const file = v.file;
      setProgress(0, file.size);
      const done = await attempt(async () => {
        const up = await post('/api/v1/uploads', { type: m.type, fileName: file.name, size: file.size });
        const sent = await uploadBytes(up, file, (loaded, total) => setProgress(loaded, total));
        if (up.needsComplete) { await post(`/api/v1/uploads/${up.id}/complete`, sent.completion ?? undefined); }
        const version = await post(`/api/v1/models/${m.id}/versions`, { name: v.version, files: [{ aliasName: file.name, uploadId: up.id, primary: true }] });
        setProgress(file.size, file.size, `100% done: ${file.name} is version ${version.name}`);
        document.getElementById('upload-progress').dataset.state = 'done';
        return version;
      }, 'Uploaded');
      if (done) { f.reset(); versions.reload(); }
    }, { id: 'upload-form' });
    const byUrl = form([{ name: 'version', label: 'Version name', required: true }, { name: 'url', label: 'File URL', required: true, type: 'url' }, { name: 'alias', label: 'File name', required: true }], 'Download', async (v, f) => {
      const version = await attempt(() => post(`/api/v1/models/${m.id}/versions`, { name: v.version, files: [{ aliasName: v.alias, url: v.url, primary: true }] }), 'Download started');
      if (!version) { return; }
      f.reset();
      versions.reload();
      const file = (version.files || [])[0];
      if (file) { await follow(file.id); versions.refresh(); }
    }, { id: 'url-form' });
    async function follow(fileId) {
      for (;;) {
        let d;
        try { d = await get(`/api/v1/model-files/${fileId}/download`); } catch (e) { setProgress(0, 1, `failed: ${e.message}`); return; }
        setProgress(d.downloadedBytes || 0, d.totalBytes || 0, `${d.state}: ${d.percent ?? 0}% (${fmt.bytes(d.downloadedBytes)} of ${fmt.bytes(d.totalBytes)}${d.bytesPerSecond ? `, ${fmt.bytes(d.bytesPerSecond)}/s` : ''})`);
        if (d.state !== 'pending' && d.state !== 'downloading') { return; }
        await new Promise((r) => { setTimeout(r, 1000); });
      }
    }
    clear(detail, section(`${m.name} (${m.type})`, h('h3', 'Upload a file as a new version'), upload, h('h3', 'Or download one from a URL'), byUrl, progress, h('h3', 'Versions'), versions));
  }
  clear(main, section('Models',
    form([{ name: 'name', label: 'Model name', required: true }, { name: 'type', label: 'Type', options: MODEL_TYPES }], 'Create model', async (v, f) => {
      const m = await attempt(() => post('/api/v1/models', { name: v.name, type: v.type }), 'Model created');
      if (m) { f.reset(); await list.reload(); openModel(m); }
    }, { id: 'model-form' }), list), detail,
  section('Tags', form([{ name: 'name', label: 'Tag', required: true }], 'Create tag', async (v, f) => {
    if (await attempt(() => post('/api/v1/tags', { name: v.name }), 'Tag created')) { f.reset(); tags.reload(); }
  }, { id: 'tag-form' }), tags));
});

register('sessions', 'Sessions', 'tenant', (main) => {
  const filter = h('select#session-state', ['', 'active', 'ended'].map((x) => h('option', { value: x }, x || 'any state')));
  const list = resourceList({
    path: '/api/v1/sessions',
    query: () => ({ state: filter.value }),
    columns: [{ key: 'id', label: 'Id', fmt: fmt.code }, { key: 'endUserId', label: 'End user' }, { key: 'appId', label: 'App', fmt: fmt.code }, { key: 'state', label: 'State', fmt: fmt.pill },
      { key: 'endReason', label: 'End reason' }, { key: 'expiredAt', label: 'Expires', fmt: fmt.date }],
    actions: (x) => (x.state === 'active' ? [h('button.danger', { type: 'button', on: { click: async () => { await attempt(() => post(`/api/v1/sessions/${x.id}/end`), 'Session ended'); list.refresh(); } } }, 'End')] : []),
  });
  filter.addEventListener('change', () => list.reload());
  clear(main, section('Sessions', h('div.toolbar', filter), list));
});

register('jobs', 'Jobs and tasks', 'tenant', async (main) => {
  const agent = h('select#job-agent');
  const filter = h('select#job-state', JOB_STATES.map((x) => h('option', { value: x }, x || 'any state')));
  const detail = h('div#job-detail');
  const holder = h('div');
  clear(main, section('Jobs and tasks', h('div.toolbar', h('label', { for: 'job-agent' }, 'Agent'), agent, h('label', { for: 'job-state' }, 'State'), filter,
    h('span.grow'), h('button', { type: 'button', on: { click: () => holder.firstChild?.refresh() } }, 'Refresh')), holder), detail);
  const agents = await attempt(() => get('/api/v1/agents'));
  for (const a of agents || []) { agent.append(h('option', { value: a.name }, a.name)); }
  const show = () => {
    const id = location.hash.split('/')[2];
    if (id) { openJob(agent.value, id); }
  };
  function listJobs() {
    clear(holder, resourceList({
      path: `/api/v1/agents/${encodeURIComponent(agent.value)}/jobs`,
      query: () => ({ state: filter.value }),
      columns: [{ key: 'id', label: 'Id', fmt: fmt.code }, { key: 'clientJobId', label: 'Client id' }, { key: 'kind', label: 'Kind' }, { key: 'state', label: 'State', fmt: fmt.pill },
        { key: (j) => (j.progress ? `${Math.round((j.progress.fraction || 0) * 100)}%` : ''), label: 'Progress' }, { key: 'createdAt', label: 'Created', fmt: fmt.date }],
      actions: (j) => [
        h('button', { type: 'button', 'data-open': j.id, on: { click: () => { location.hash = `#/jobs/${j.id}`; } } }, 'Open'),
        ['queued', 'running'].includes(j.state) ? h('button.danger', { type: 'button', on: { click: async () => { await attempt(() => post(`/api/v1/agents/${encodeURIComponent(agent.value)}/jobs/${j.id}/cancel`), 'Cancel asked'); holder.firstChild.refresh(); } } }, 'Cancel') : null,
      ],
    }));
  }
  async function openJob(agentName, id) {
    const base = `/api/v1/agents/${encodeURIComponent(agentName)}/jobs/${encodeURIComponent(id)}`;
    const job = await attempt(() => get(base));
    if (!job) { return; }
    const images = h('div.result#job-result');
    clear(detail, section(`Job ${job.id}`, h('dl.kv',
      ['state', 'kind', 'attempt', 'errorCode', 'errorMessage', 'createdAt', 'finishedAt', 'resultExpiresAt'].map((k) => [h('dt', k), h('dd', k === 'state' ? fmt.pill(job[k]) : (job[k] ?? ''))])), images));
    if (job.state === 'succeeded') {
      const result = await attempt(() => get(`${base}/result`));
      for (const im of result?.images || []) {
        // The image answers only with the credential, so it is fetched with it and shown from a blob URL.
        const url = await attempt(() => blobUrl(im.url));
        if (url) { images.append(h('figure', h('img.result-image', { src: url, alt: `image ${im.index} of ${job.id}` }), h('figcaption.muted', `seed ${im.seed} · ${fmt.bytes(im.size)}`))); }
      }
    }
  }
  agent.addEventListener('change', listJobs);
  filter.addEventListener('change', () => holder.firstChild?.reload());
  if (agent.options.length) { listJobs(); show(); }
});

register('images', 'Images', 'tenant', (main) => {
  const selected = new Set();
  const gallery = h('div.gallery#gallery');
  const count = h('span.muted#selected-count', '0 selected');
  const remove = h('button.danger#delete-selected', { type: 'button', disabled: true }, 'Delete selected');
  let page = 1;
  async function load() {
    const data = await attempt(() => get(`/api/v1/images?pageNumber=${page}&pageSize=24`));
    if (!data) { return; }
    selected.clear();
    sync();
    clear(gallery, data.items.length ? null : h('p.muted.empty', 'No images yet.'));
    for (const im of data.items) {
      const img = h('img', { alt: `image ${im.id}` });
      const box = h('input', { type: 'checkbox', 'data-image': im.id });
      const fig = h('figure', { 'data-image': im.id }, img, h('figcaption', box, h('span', `${im.width}×${im.height} · ${fmt.date(im.createdAt)}`)));
      box.addEventListener('change', () => { if (box.checked) { selected.add(im.id); } else { selected.delete(im.id); } fig.classList.toggle('selected', box.checked); sync(); });
      gallery.append(fig);
      // The signed URL of the image (GET /api/v1/images/{id}) needs no credential: it is one.
      get(`/api/v1/images/${im.id}`).then((full) => { img.src = full.url; }).catch(() => { img.alt = 'image unavailable'; });
    }
  }
  function sync() { count.textContent = `${selected.size} selected`; remove.disabled = selected.size === 0; }
  remove.addEventListener('click', async () => {
    if (!confirm(`Delete ${selected.size} image(s)?`)) { return; }
    const r = await attempt(() => post('/api/v1/images/delete', { ids: [...selected] }));
    if (r) { toast(`${r.deleted.length} deleted${r.notFound.length ? `, ${r.notFound.length} not found` : ''}`); load(); }
  });
  clear(main, section('Images', h('div.toolbar', count, remove, h('span.grow'),
    h('button', { type: 'button', on: { click: () => { if (page > 1) { page--; load(); } } } }, 'Previous'),
    h('button', { type: 'button', on: { click: () => { page++; load(); } } }, 'Next')), gallery));
  load();
});

register('webhooks', 'Webhooks', 'tenant', (main) => {
  const filter = h('select#delivery-state', ['', 'pending', 'delivered', 'failed'].map((x) => h('option', { value: x }, x || 'any state')));
  const detail = h('div#delivery-detail');
  const list = resourceList({
    path: '/api/v1/webhook-deliveries',
    query: () => ({ state: filter.value }),
    columns: [{ key: 'id', label: 'Id', fmt: fmt.code }, { key: 'event', label: 'Event' }, { key: 'jobId', label: 'Job', fmt: fmt.code }, { key: 'state', label: 'State', fmt: fmt.pill },
      { key: (d) => `${d.tries}/${d.maxTries}`, label: 'Tries' }, { key: 'lastStatus', label: 'Last status' }, { key: 'createdAt', label: 'Created', fmt: fmt.date }],
    actions: (d) => [
      h('button', { type: 'button', on: { click: () => open(d.id) } }, 'Attempts'),
      h('button', { type: 'button', on: { click: async () => { await attempt(() => post(`/api/v1/webhook-deliveries/${d.id}/replay`), 'Replay queued'); list.refresh(); open(d.id); } } }, 'Replay'),
    ],
  });
  async function open(id) {
    const d = await attempt(() => get(`/api/v1/webhook-deliveries/${id}`));
    if (d) {
      clear(detail, section(`Delivery ${d.id} → ${d.url}`, table([{ key: 'number', label: '#' }, { key: 'at', label: 'At', fmt: fmt.date }, { key: 'status', label: 'Status' },
        { key: 'latencyMs', label: 'Latency (ms)' }, { key: 'error', label: 'Error' }], d.attempts || [], null, { empty: 'No attempt yet.' })));
    }
  }
  filter.addEventListener('change', () => list.reload());
  clear(main, section('Webhook deliveries', h('div.toolbar', filter), list), detail);
});

register('entitlements', 'Entitlements', 'tenant', async (main) => {
  const data = await attempt(() => get('/api/v1/entitlements'));
  const rows = Array.isArray(data) ? data : (data?.items ?? []);
  clear(main, section('Entitlements', table([{ key: 'scope', label: 'Scope', fmt: fmt.code }, { key: 'maxConcurrentJobs', label: 'Concurrent jobs' },
    { key: 'maxJobsPerPeriod', label: 'Jobs per period' }, { key: 'periodSeconds', label: 'Period (s)' }, { key: 'credits', label: 'Credits' }, { key: 'updatedAt', label: 'Updated', fmt: fmt.date }],
  rows, null, { empty: 'No limits set: nothing is limited.' })));
});

register('usage', 'Usage', 'tenant', async (main) => {
  const to = new Date();
  const from = new Date(to.getTime() - 7 * 86400_000);
  const holder = h('div.charts#charts');
  clear(main, section('Usage', h('p.muted', `${fmt.date(from)} to ${fmt.date(to)} (UTC)`)), holder);
  let list;
  try {
    list = await get('/api/v1/usage/charts');
  } catch (e) {
    clear(holder, h('p.muted#usage-unavailable', e.status === 404 ? 'Usage is not available on this server.' : `Usage could not be read: ${e.message}`));
    return;
  }
  for (const item of list.items || []) {
    const card = h('div.card.chart', { 'data-chart': item.id }, h('h3', item.title), h('p.muted', 'Loading…'));
    holder.append(card);
    const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), step: item.step });
    get(`/api/v1/usage/charts/${encodeURIComponent(item.id)}?${q}`)
      .then((r) => clear(card, h('h3', item.title), h('p.muted', `${r.data.indicator}${r.data.unit ? ` (${r.data.unit})` : ''} per ${r.data.step}`), drawChart(item.type, r.data)))
      .catch((e) => clear(card, h('h3', item.title), h('p.error', e.message)));
  }
  if (!(list.items || []).length) { holder.append(h('p.muted', 'No charts.')); }
});

// ---- platform sections --------------------------------------------------------------------------------------------

register('accounts', 'Accounts', 'platform', (main) => {
  const list = resourceList({ path: '/api/v1/accounts', tenant: false, columns: [{ key: 'uid', label: 'Uid', fmt: fmt.code }, { key: 'name', label: 'Name' }, { key: 'createdAt', label: 'Created', fmt: fmt.date }] });
  clear(main, section('Accounts', form([{ name: 'uid', label: 'Uid', required: true }, { name: 'name', label: 'Name', required: true }], 'Create account', async (v, f) => {
    if (await attempt(() => api('POST', '/api/v1/accounts', { uid: v.uid, name: v.name }, { tenant: false }), 'Account created')) { f.reset(); list.reload(); }
  }, { id: 'account-form' }), list));
});

register('tenants', 'Tenants', 'platform', (main) => {
  const list = resourceList({
    path: '/api/v1/tenants', tenant: false,
    columns: [{ key: 'id', label: 'Id', fmt: fmt.code }, { key: 'name', label: 'Name' }, { key: 'accountUid', label: 'Account' }, { key: 'state', label: 'State', fmt: fmt.pill }, { key: 'createdAt', label: 'Created', fmt: fmt.date }],
    actions: (t) => [
      h('button', { type: 'button', on: { click: async () => { await attempt(() => api('POST', `/api/v1/tenants/${t.id}/init`, {}, { tenant: false }), 'Initialised'); list.refresh(); } } }, 'Init'),
      t.state === 'active'
        ? h('button', { type: 'button', on: { click: async () => { await attempt(() => api('POST', `/api/v1/tenants/${t.id}/deactivate`, {}, { tenant: false }), 'Deactivated'); list.refresh(); } } }, 'Deactivate')
        : h('button', { type: 'button', on: { click: async () => { await attempt(() => api('POST', `/api/v1/tenants/${t.id}/activate`, {}, { tenant: false }), 'Activated'); list.refresh(); } } }, 'Activate'),
      h('button', { type: 'button', on: { click: () => { session.tenant = session.tenant === t.id ? null : t.id; showShell(); } } }, session.tenant === t.id ? 'Leave' : 'Act in'),
    ],
  });
  clear(main, section('Tenants', form([{ name: 'accountUid', label: 'Account uid', required: true }, { name: 'name', label: 'Name', required: true }], 'Create tenant', async (v, f) => {
    if (await attempt(() => api('POST', '/api/v1/tenants', { accountUid: v.accountUid, name: v.name }, { tenant: false }), 'Tenant created')) { f.reset(); list.reload(); }
  }, { id: 'tenant-form' }), list));
});

register('worker-keys', 'Worker keys', 'platform', (main) => {
  const slot = h('div');
  const list = resourceList({
    path: '/api/v1/platform/worker-keys', tenant: false,
    columns: [{ key: 'name', label: 'Name' }, { key: 'displayPrefix', label: 'Prefix', fmt: fmt.code }, { key: (k) => (k.revokedAt ? 'revoked' : 'active'), label: 'State', fmt: fmt.pill },
      { key: 'lastUsedAt', label: 'Last used', fmt: fmt.date }, { key: 'createdAt', label: 'Created', fmt: fmt.date }],
    actions: (k) => (k.revokedAt ? [] : [h('button.danger', { type: 'button', on: { click: async () => { if (confirm('Revoke this worker key?')) { await attempt(() => api('POST', `/api/v1/platform/worker-keys/${k.id}/revoke`, {}, { tenant: false }), 'Revoked'); list.refresh(); } } } }, 'Revoke')]),
  });
  clear(main, section('Worker keys', form([{ name: 'name', label: 'Name' }], 'Create key', async (v, f) => {
    const k = await attempt(() => api('POST', '/api/v1/platform/worker-keys', { name: v.name || null }, { tenant: false }));
    if (k) { clear(slot, secretBox('Worker key', k.secret, 'new-secret')); f.reset(); list.reload(); }
  }, { id: 'worker-key-form' }), slot, list),
  section('Workers', resourceList({ path: '/api/v1/platform/workers', tenant: false, columns: [{ key: 'id', label: 'Worker', fmt: fmt.code }, { key: 'engine', label: 'Engine' }, { key: 'slots', label: 'Slots', fmt: (v) => (Array.isArray(v) ? v.length : v) }, { key: 'lastSeenAt', label: 'Last seen', fmt: fmt.date }] })));
});

function readOnly(id, title, path, columns) {
  register(id, title, 'platform', (main) => clear(main, section(title, resourceList({ path, columns, tenant: false }))));
}
readOnly('functions', 'Functions', '/api/v1/platform/function-templates', [{ key: 'name', label: 'Template' }, { key: 'engine', label: 'Engine' }, { key: 'image', label: 'Image', fmt: fmt.code }, { key: 'id', label: 'Id', fmt: fmt.code }]);
readOnly('regions', 'Regions', '/api/v1/platform/regions', [{ key: 'name', label: 'Region' }, { key: 'backend', label: 'Backend' }, { key: 'namespace', label: 'Namespace' }, { key: 'createdAt', label: 'Created', fmt: fmt.date }]);
readOnly('pools', 'Pools', '/api/v1/platform/computing-pools', [{ key: 'name', label: 'Pool' }, { key: 'description', label: 'Description' }, { key: 'id', label: 'Id', fmt: fmt.code }, { key: (p) => (p.regions || []).map((r) => r.region).join(', '), label: 'Regions' }]);
readOnly('units', 'Units', '/api/v1/platform/agent-functions', [{ key: 'id', label: 'Agent function', fmt: fmt.code }, { key: 'tenantId', label: 'Tenant', fmt: fmt.code }, { key: 'unitId', label: 'Unit', fmt: fmt.code }, { key: 'state', label: 'State', fmt: fmt.pill }]);

// ---- start --------------------------------------------------------------------------------------------------------

document.getElementById('signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const token = document.getElementById('signin-token');
  const operator = document.getElementById('signin-operator').value.trim() || 'console';
  const button = document.getElementById('signin-submit');
  button.disabled = true;
  try {
    await signIn(token.value.trim(), operator);
    token.value = '';
  } catch (err) {
    showSignIn(err.status === 401 ? 'That credential was refused.' : err.message);
  } finally {
    button.disabled = false;
  }
});
document.getElementById('signout').addEventListener('click', () => {
  session.signOut();
  state.who = null;
  clear(document.getElementById('main'));
  showSignIn();
});
window.addEventListener('hashchange', route);
document.body.dataset.ready = 'true';

if (session.token) {
  // A reload of the tab: sign in again with what this tab kept.
  detect().then((who) => { state.who = who; state.platform = who.platform; showShell(); })
    .catch(() => { session.signOut(); showSignIn('Signed out: the credential is no longer accepted.'); });
}
