// Small DOM helpers and the generic resource list: every section is a few of these. No innerHTML with data: text
// goes in as text nodes.
import { get } from './api.js';

/** h('tag.class#id', {attrs, on: {click}}, ...children) */
export function h(spec, attrs, ...children) {
  const [, tag, rest] = /^([a-z0-9]+)(.*)$/i.exec(spec);
  const el = document.createElement(tag);
  for (const m of rest.matchAll(/([.#])([\w-]+)/g)) {
    if (m[1] === '.') { el.classList.add(m[2]); } else { el.id = m[2]; }
  }
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'on') { for (const [ev, fn] of Object.entries(v)) { el.addEventListener(ev, fn); } }
    else if (v === true) { el.setAttribute(k, ''); }
    else if (v !== false && v !== null && v !== undefined) { el.setAttribute(k, String(v)); }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) { continue; }
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) { el.replaceChildren(); append(el, children); return el; }

let toastTimer = 0;
export function toast(message, isError = false) {
  const t = document.getElementById('toast');
  t.textContent = message;
  t.classList.toggle('error', isError);
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, isError ? 8000 : 3500);
}

/** Runs an action, reporting its failure (the API's message) instead of throwing. */
export async function attempt(fn, done) {
  try {
    const r = await fn();
    if (done) { toast(done); }
    return r;
  } catch (e) {
    toast(e.message || String(e), true);
    return undefined;
  }
}

export const fmt = {
  date: (v) => (v ? new Date(v).toISOString().replace('T', ' ').slice(0, 19) : ''),
  bytes: (n) => {
    if (n === null || n === undefined) { return ''; }
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return `${i === 0 ? n : n.toFixed(1)} ${u[i]}`;
  },
  pill: (v) => (v === null || v === undefined ? '' : h('span.pill', { class: `pill ${v}` }, v)),
  list: (v) => (Array.isArray(v) ? v.join(', ') : v ?? ''),
  code: (v) => (v ? h('code', v) : ''),
};

function cell(v) {
  if (v === null || v === undefined) { return ''; }
  return typeof v === 'object' && !Array.isArray(v) ? JSON.stringify(v) : v;
}

/** A table of rows: columns [{key, label, fmt}], actions(row) → buttons. */
export function table(columns, rows, actions, { empty = 'Nothing here yet.', rowAttrs } = {}) {
  if (!rows.length) { return h('p.muted.empty', empty); }
  return h('table', h('thead', h('tr', columns.map((c) => h('th', c.label ?? c.key)), actions ? h('th') : null)),
    h('tbody', rows.map((r) => h('tr', rowAttrs ? rowAttrs(r) : null,
      columns.map((c) => { const v = typeof c.key === 'function' ? c.key(r) : r[c.key]; return h('td', c.fmt ? c.fmt(v, r) : cell(v)); }),
      actions ? h('td.actions', actions(r)) : null))));
}

/**
 * A paged list of a resource: GETs `path` (with `query()` and the page), renders a table, and re-renders on reload().
 * Lists that answer a bare array (not {items, total}) are shown whole.
 */
export function resourceList({ path, query = () => ({}), columns, actions, empty, pageSize = 20, rowAttrs, tenant = true }) {
  const root = h('div.resource', { 'data-path': path });
  let page = 1;
  async function reload() {
    const q = new URLSearchParams({ ...Object.fromEntries(Object.entries(query()).filter(([, v]) => v !== '' && v !== null && v !== undefined)), pageNumber: page, pageSize });
    try {
      const data = await get(`${path}?${q}`, { tenant });
      const items = Array.isArray(data) ? data : (data.items ?? []);
      const total = Array.isArray(data) ? items.length : (data.total ?? items.length);
      const pages = Math.max(1, Math.ceil(total / pageSize));
      clear(root, table(columns, items, actions, { empty, rowAttrs }),
        Array.isArray(data) ? null : h('div.pager', h('span.muted', `${total} in all`),
          h('button', { disabled: page <= 1, on: { click: () => { page--; reload(); } } }, 'Previous'),
          h('span', `${page} / ${pages}`),
          h('button', { disabled: page >= pages, on: { click: () => { page++; reload(); } } }, 'Next')));
    } catch (e) {
      clear(root, h('p.error', e.message));
    }
  }
  root.reload = () => { page = 1; return reload(); };
  root.refresh = reload;
  reload();
  return root;
}

/** A small form: fields [{name, label, type, options, value, required}] → onSubmit(values, form). */
export function form(fields, submitLabel, onSubmit, { id } = {}) {
  const f = h('form.inline', { id, autocomplete: 'off' },
    fields.map((fd) => h('div.field',
      h('label', { for: `${id || 'f'}-${fd.name}` }, fd.label ?? fd.name),
      fd.options
        ? h('select', { id: `${id || 'f'}-${fd.name}`, name: fd.name }, fd.options.map((o) => h('option', { value: o, selected: o === fd.value }, o)))
        : h('input', { id: `${id || 'f'}-${fd.name}`, name: fd.name, type: fd.type || 'text', value: fd.value ?? false, required: !!fd.required, placeholder: fd.placeholder ?? false }))),
    h('button.primary', { type: 'submit' }, submitLabel));
  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    const values = {};
    for (const fd of fields) {
      const el = f.elements.namedItem(fd.name);
      values[fd.name] = fd.type === 'file' ? el.files[0] : el.value.trim();
    }
    const button = f.querySelector('button[type=submit]');
    button.disabled = true;
    try { await onSubmit(values, f); } finally { button.disabled = false; }
  });
  return f;
}

/** Shows a secret once, with a note that it will not be shown again. */
export function secretBox(label, secret, id) {
  const box = h('div.secret', { id },
    h('strong', label), h('code.mono', { 'data-secret': '' }, secret),
    h('span.muted', 'Shown once: copy it now; the server keeps only its hash.'), ' ',
    h('button', { type: 'button', on: { click: () => { navigator.clipboard?.writeText(secret); toast('Copied'); } } }, 'Copy'), ' ',
    h('button', { type: 'button', on: { click: () => box.remove() } }, 'Done'));
  return box;
}

export function section(title, ...children) { return h('section.card', h('h2', title), ...children); }
