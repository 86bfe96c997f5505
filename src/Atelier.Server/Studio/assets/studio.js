// The Atelier studio: one end user's page for a session. The session credential comes in the URL fragment (which no
// browser ever sends to a server), is moved to sessionStorage and taken out of the address bar at once, and is sent
// only in the Authorization header of the public API's calls. Nothing here puts it in a URL.
const $ = (id) => document.getElementById(id);
const sessionId = decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] || '');
const storeKey = `atelier.studio.${sessionId}`;
let credential = null;
let session = null;
let running = null; // { taskId, controller }

function takeCredential() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const fromUrl = fragment.get('credential');
  if (fromUrl) {
    sessionStorage.setItem(storeKey, fromUrl);
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(storeKey);
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  headers.set('Authorization', `Bearer ${credential}`);
  if (options.json !== undefined) {
    headers.set('Content-Type', 'application/json');
    options = { ...options, body: JSON.stringify(options.json) };
  }
  const response = await fetch(path, { ...options, headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' });
  return response;
}

async function apiJson(path, options) {
  const response = await api(path, options);
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!response.ok) {
    const error = new Error((body && (body.errMessage || body.subErrMessage)) || `HTTP ${response.status}`);
    error.code = body && body.subErrCode;
    error.status = response.status;
    throw error;
  }
  return body && Object.prototype.hasOwnProperty.call(body, 'data') && Object.prototype.hasOwnProperty.call(body, 'success') ? body.data : body;
}

function show(which) {
  for (const id of ['loading', 'closed', 'studio']) $(id).hidden = id !== which;
}

function closed(title, text) {
  stopClock();
  sessionStorage.removeItem(storeKey);
  $('closed-title').textContent = title;
  $('closed-text').textContent = text;
  $('clock').textContent = '';
  document.body.dataset.state = 'closed';
  show('closed');
}

// Shows the closed page when the API says the session is over or unknown; answers whether it did.
function closedFor(error) {
  if (error.code === 'b_session_sessionexpired') closed('This session has expired', 'Its time is up. Ask the site that sent you here for a new link.');
  else if (error.code === 'b_session_tokennotvalid') closed('This session is no longer valid', 'The access it was opened with has been withdrawn.');
  else if (error.code === 'p_session_sessionnotfound' || error.status === 401) closed('This link is not valid', 'The session it names does not exist, or the link is incomplete.');
  else return false;
  return true;
}

let clockTimer = null;
function stopClock() { if (clockTimer) clearInterval(clockTimer); clockTimer = null; }
function startClock() {
  const ends = Date.parse(session.expiredAt);
  const tick = () => {
    const left = Math.max(0, Math.round((ends - Date.now()) / 1000));
    const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
    $('clock').textContent = (h ? `${h}:${String(m).padStart(2, '0')}` : `${m}`) + `:${String(s).padStart(2, '0')} left`;
    $('clock').classList.toggle('low', left < 120);
    if (left === 0) { stopClock(); recheck(); }
  };
  tick();
  clockTimer = setInterval(tick, 1000);
}

async function recheck() {
  try {
    session = await apiJson('/api/v1/session');
    startClock();
  } catch (error) {
    if (!closedFor(error)) setTimeout(recheck, 5000);
  }
}

function option(select, value, label) {
  const o = document.createElement('option');
  o.value = value; o.textContent = label;
  select.append(o);
}

async function loadChoices() {
  const [models, samplers] = await Promise.all([apiJson('/sdapi/v1/sd-models'), apiJson('/sdapi/v1/samplers')]);
  const model = $('model');
  model.replaceChildren();
  for (const m of models) option(model, m.title, m.model_name || m.title);
  if (!models.length) option(model, '', 'the default model');
  const sampler = $('sampler');
  sampler.replaceChildren();
  for (const s of samplers) option(sampler, s.name, s.name);
  if ([...sampler.options].some((o) => o.value === 'Euler a')) sampler.value = 'Euler a';
}

function setError(text) {
  $('error').textContent = text || '';
  $('error').hidden = !text;
}

function setProgress(fraction, text) {
  $('progress').hidden = false;
  $('progress-fill').style.width = `${Math.round(Math.max(0, Math.min(1, fraction)) * 100)}%`;
  $('progress-text').textContent = text;
  $('progress').dataset.fraction = String(fraction);
}

function request() {
  const number = (id) => Number($(id).value);
  const body = {
    prompt: $('prompt').value,
    negative_prompt: $('negative').value,
    sampler_name: $('sampler').value || undefined,
    steps: number('steps'), width: number('width'), height: number('height'),
    seed: number('seed'), batch_size: number('batch'), cfg_scale: number('cfg'),
  };
  if ($('model').value) body.override_settings = { sd_model_checkpoint: $('model').value };
  return body;
}

// Reads text/event-stream from a fetch (EventSource cannot send an Authorization header).
async function* events(path, signal) {
  const response = await api(path, { signal, headers: { Accept: 'text/event-stream' } });
  if (!response.ok || !response.body) throw Object.assign(new Error(`events: HTTP ${response.status}`), { status: response.status });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = 'message', data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data += line.slice(5).trim();
      }
      if (data) yield { name, job: JSON.parse(data) };
    }
  }
}

async function blobUrl(path) {
  const response = await api(path);
  if (!response.ok) return null;
  return URL.createObjectURL(await response.blob());
}

async function showPreview(taskId, step) {
  const url = await blobUrl(`/api/v1/tasks/${encodeURIComponent(taskId)}/preview`);
  if (!url || !running || running.taskId !== taskId) return;
  let img = $('canvas').querySelector('img.preview');
  if (!img) {
    img = document.createElement('img');
    img.className = 'preview';
    img.alt = 'live preview';
    $('canvas').replaceChildren(img);
  }
  const old = img.src;
  img.src = url;
  img.dataset.step = String(step);
  if (old.startsWith('blob:')) URL.revokeObjectURL(old);
}

async function generate(event) {
  event.preventDefault();
  if (running) return;
  setError('');
  $('generate').disabled = true;
  $('cancel').hidden = false;
  setProgress(0, 'Queued…');
  let task;
  try {
    task = await apiJson('/api/v1/predict/txt2img', { method: 'POST', json: request() });
  } catch (error) {
    finish();
    if (!closedFor(error)) setError(error.message);
    return;
  }
  running = { taskId: task.taskId, controller: new AbortController() };
  let last = null;
  let previewStep = null;
  try {
    for await (const { name, job } of events(task.eventsUrl, running.controller.signal)) {
      last = job;
      const p = job.progress || {};
      if (job.state === 'queued') setProgress(0, 'Waiting for a worker…');
      else if (p.stage === 'downloading') setProgress(p.bytesTotal ? p.bytesDone / p.bytesTotal : 0, 'Fetching the model…');
      else setProgress(p.fraction || 0, p.steps ? `Step ${p.step} of ${p.steps}` : 'Starting…');
      if (p.previewStep != null && p.previewStep !== previewStep) {
        previewStep = p.previewStep;
        showPreview(task.taskId, previewStep);
      }
      if (name === 'done') break;
    }
  } catch (error) {
    if (error.name !== 'AbortError' && !closedFor(error)) setError(error.message);
  }
  if (last && last.state === 'succeeded') {
    setProgress(1, 'Done');
    await showResult(task.taskId);
    await loadGallery();
  } else if (last && (last.state === 'failed' || last.state === 'aborted')) {
    setError(last.errorMessage || `The job ${last.state}.`);
    $('progress').hidden = true;
  } else if (last && last.state === 'canceled') {
    setProgress(0, 'Canceled');
  }
  finish();
}

function finish() {
  running = null;
  $('generate').disabled = false;
  $('cancel').hidden = true;
}

async function showResult(taskId) {
  const result = await apiJson(`/api/v1/tasks/${encodeURIComponent(taskId)}/result`);
  const canvas = $('canvas');
  canvas.replaceChildren();
  for (const image of result.images) {
    const url = await blobUrl(`/api/v1/tasks/${encodeURIComponent(taskId)}/images/${image.index}`);
    if (!url) continue;
    const img = document.createElement('img');
    img.src = url;
    img.alt = `image ${image.index + 1}, seed ${image.seed}`;
    img.className = 'result';
    img.title = image.infotext;
    img.dataset.seed = String(image.seed);
    canvas.append(img);
  }
}

async function cancel() {
  if (!running) return;
  try { await apiJson(`/api/v1/tasks/${encodeURIComponent(running.taskId)}/cancellation`, { method: 'POST' }); } catch (error) { setError(error.message); }
}

async function loadGallery() {
  const page = await apiJson(`/api/v1/images?sessionId=${encodeURIComponent(sessionId)}&pageSize=48`);
  const gallery = $('gallery');
  gallery.replaceChildren();
  $('gallery-empty').hidden = page.items.length > 0;
  for (const item of page.items) {
    const full = await apiJson(`/api/v1/images/${encodeURIComponent(item.id)}`);
    const figure = document.createElement('figure');
    const img = document.createElement('img');
    img.src = full.url; // a signed URL of its own: no credential in it
    img.alt = item.infotext;
    img.loading = 'lazy';
    const caption = document.createElement('figcaption');
    caption.textContent = `seed ${item.seed} · ${item.width}×${item.height}`;
    caption.title = item.infotext;
    figure.append(img, caption);
    gallery.append(figure);
  }
}

async function main() {
  credential = takeCredential();
  if (!credential) return closed('This link is not valid', 'It carries no session credential. Open the whole link you were given.');
  try {
    session = await apiJson('/api/v1/session');
  } catch (error) {
    if (!closedFor(error)) closed('The studio cannot open', error.message);
    return;
  }
  if (session.sessionId !== sessionId) return closed('This link is not valid', 'The credential belongs to another session.');
  if (session.dedicated) {
    // A session with its own compute: its instance's web UI, started for it and served through Atelier.
    try {
      await apiJson(`/studio/${encodeURIComponent(sessionId)}/connect`, { method: 'POST' });
      // The instance's page runs on this origin: it must find no credential in this tab's storage (the cookie,
      // HttpOnly and scoped to this session's path, carries it from here on).
      sessionStorage.removeItem(storeKey);
      location.replace(`/studio/${encodeURIComponent(sessionId)}/ui/`);
    } catch (error) {
      if (!closedFor(error)) closed('Your studio cannot start', error.message);
    }
    return;
  }
  $('who').textContent = session.roleName ? `role: ${session.roleName}` : '';
  startClock();
  show('studio');
  document.body.dataset.state = 'open';
  $('form').addEventListener('submit', generate);
  $('cancel').addEventListener('click', cancel);
  try {
    await loadChoices();
    await loadGallery();
  } catch (error) {
    if (!closedFor(error)) setError(error.message);
  }
  document.body.dataset.ready = 'true';
}

main();
