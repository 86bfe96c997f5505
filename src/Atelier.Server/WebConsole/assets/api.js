// The console's only way to the server: the public API under /api/v1, as every other client calls it. The credential
// lives in this tab's sessionStorage and goes only in the Authorization header: never in a URL, never in a cookie,
// never written to the console.

const TOKEN = 'atelier.console.token';
const OPERATOR = 'atelier.console.operator';
const TENANT = 'atelier.console.tenant';

export const session = {
  get token() { return sessionStorage.getItem(TOKEN); },
  get operator() { return sessionStorage.getItem(OPERATOR) || 'console'; },
  get tenant() { return sessionStorage.getItem(TENANT); },
  set tenant(id) { if (id) { sessionStorage.setItem(TENANT, id); } else { sessionStorage.removeItem(TENANT); } },
  signIn(token, operator) {
    sessionStorage.setItem(TOKEN, token);
    sessionStorage.setItem(OPERATOR, operator || 'console');
  },
  signOut() { sessionStorage.removeItem(TOKEN); sessionStorage.removeItem(OPERATOR); sessionStorage.removeItem(TENANT); },
};

/** An answer that was not a success: the envelope's code, errCode and message. */
export class ApiError extends Error {
  constructor(status, code, errCode, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.errCode = errCode;
  }
}

// How many API calls are in flight, on the document (tests wait for 0 before they look).
let pending = 0;
function track(delta) {
  pending += delta;
  document.documentElement.dataset.pending = String(pending);
}

function send(path, init) { return fetch(path, { ...init, credentials: 'omit', cache: 'no-store' }); }

/** Counts a call as in flight until it and what its caller does with it right after are done. */
async function tracked(work) {
  track(1);
  try {
    return await work();
  } finally {
    setTimeout(() => track(-1), 0);
  }
}

function headers(method, extra) {
  const h = { Accept: 'application/json', ...extra };
  if (session.token) { h.Authorization = `Bearer ${session.token}`; }
  if (method !== 'GET') { h['X-Operator-Id'] = session.operator; }
  if (session.tenant) { h['X-Tenant-Id'] = session.tenant; }
  return h;
}

/** Calls the API; resolves to the envelope's data, rejects with an ApiError. */
export function api(method, path, body, opts) { return tracked(() => call(method, path, body, opts)); }

async function call(method, path, body, { tenant = true } = {}) {
  const extra = body === undefined ? {} : { 'Content-Type': 'application/json' };
  const h = headers(method, extra);
  if (!tenant) { delete h['X-Tenant-Id']; }
  const resp = await send(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  let json = null;
  try { json = await resp.json(); } catch { /* not JSON */ }
  if (!resp.ok || (json && json.success === false)) {
    const e = json || {};
    const message = [e.subErrMessage, e.errMessage].filter(Boolean).join(': ') || `HTTP ${resp.status}`;
    throw new ApiError(resp.status, e.subErrCode, e.errCode, message);
  }
  return json && 'data' in json ? json.data : json;
}

export const get = (path, opts) => api('GET', path, undefined, opts);
export const post = (path, body) => api('POST', path, body ?? {});
export const put = (path, body) => api('PUT', path, body);
export const del = (path) => api('DELETE', path);

/** A binary answer (an image) fetched with the credential, as an object URL for an <img>. */
export function blobUrl(path) { return tracked(() => fetchBlob(path)); }

async function fetchBlob(path) {
  const resp = await send(path, { headers: headers('GET', { Accept: 'image/png,*/*' }) });
  if (!resp.ok) { throw new ApiError(resp.status, null, null, `HTTP ${resp.status}`); }
  return URL.createObjectURL(await resp.blob());
}

/**
 * Sends an upload's bytes where the server said (with XMLHttpRequest, so that the browser's upload progress events
 * drive the progress bar; the local store's one-time upload secret goes as a header, never in the URL): one PUT to its URL (with the headers it names), or, for a file past
 * the store's one-PUT limit, each slice to its part's presigned URL in turn. Resolves to { data, completion }: the
 * upload as the server answered a PUT through Atelier (else null), and the body to complete it with (the parts'
 * ETags; null for one PUT). A browser reads a part's ETag only where the bucket's CORS rule exposes it.
 */
export async function uploadBytes(upload, file, onProgress) {
  if (Array.isArray(upload.parts)) {
    const parts = [];
    for (const part of upload.parts) {
      const sent = await putBlob('PUT', part.url, {}, file.slice(part.offset, part.offset + part.size), (loaded) => onProgress(part.offset + loaded, file.size));
      const etag = sent.getResponseHeader('ETag');
      if (!etag) { throw new ApiError(0, null, null, `part ${part.partNumber} answered no ETag: the bucket's CORS rule must expose the ETag header`); }
      parts.push({ partNumber: part.partNumber, etag });
    }
    onProgress(file.size, file.size);
    return { data: null, completion: { parts } };
  }
  const sent = await putBlob(upload.method || 'PUT', upload.url, upload.headers || {}, file, (loaded) => onProgress(loaded, file.size));
  onProgress(file.size, file.size);
  let data = null;
  try { data = JSON.parse(sent.responseText)?.data ?? null; } catch { /* a presigned store answers no JSON */ }
  return { data, completion: null };
}

function putBlob(method, url, headers, blob, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [k, v] of Object.entries(headers)) { xhr.setRequestHeader(k, v); }
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) { onProgress(e.loaded); } };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(xhr);
      } else {
        let message = `upload answered ${xhr.status}`;
        try { message = JSON.parse(xhr.responseText)?.subErrMessage || message; } catch { /* keep */ }
        reject(new ApiError(xhr.status, null, null, message));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, null, null, 'the upload failed (network)'));
    xhr.send(blob);
  });
}
