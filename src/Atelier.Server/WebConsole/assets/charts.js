// Usage charts drawn as inline SVG (line, bar, stacked bar) or an HTML table, from the usage API's series:
// data { indicator, unit, step, from, to, series: [{ key, points: [{ at, value }] }] }. No chart library.
import { h } from './ui.js';

const NS = 'http://www.w3.org/2000/svg';
const W = 560;
const H = 220;
const PAD = { l: 48, r: 12, t: 10, b: 28 };

function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) { el.setAttribute(k, String(v)); }
  for (const c of children) { if (c !== null && c !== undefined) { el.append(c instanceof Node ? c : document.createTextNode(String(c))); } }
  return el;
}

function number(v) {
  if (Math.abs(v) >= 1e6) { return `${(v / 1e6).toFixed(1)}M`; }
  if (Math.abs(v) >= 1e3) { return `${(v / 1e3).toFixed(1)}k`; }
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

function label(at) { return new Date(at).toISOString().slice(5, 16).replace('T', ' '); }

/** Every time of any series, in order, and each series' value at each (0 where it has none). */
function grid(series) {
  const times = [...new Set(series.flatMap((x) => x.points.map((p) => p.at)))].sort();
  const rows = series.map((x) => {
    const at = new Map(x.points.map((p) => [p.at, Number(p.value) || 0]));
    return times.map((t) => at.get(t) ?? 0);
  });
  return { times, rows };
}

function axes(svg, max, times, x) {
  const plotH = H - PAD.t - PAD.b;
  for (let i = 0; i <= 4; i++) {
    const y = PAD.t + plotH - (plotH * i) / 4;
    svg.append(s('line', { class: 'axis', x1: PAD.l, x2: W - PAD.r, y1: y, y2: y }));
    svg.append(s('text', { x: PAD.l - 6, y: y + 3, 'text-anchor': 'end' }, number((max * i) / 4)));
  }
  const every = Math.max(1, Math.ceil(times.length / 6));
  times.forEach((t, i) => {
    if (i % every === 0) { svg.append(s('text', { x: x(i), y: H - 8, 'text-anchor': 'middle' }, label(t))); }
  });
}

export function drawChart(type, data) {
  const series = data.series || [];
  if (!series.length || series.every((x) => !x.points.length)) { return h('p.muted.no-data', 'No usage in this period.'); }
  if (type === 'table') { return drawTable(data); }
  const { times, rows } = grid(series);
  const stacked = type === 'stacked';
  const max = Math.max(1, ...(stacked ? times.map((_, i) => rows.reduce((a, r) => a + r[i], 0)) : rows.flat()));
  const plotW = W - PAD.l - PAD.r;
  const plotH = H - PAD.t - PAD.b;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${data.indicator} (${type})`, 'data-type': type });
  const y = (v) => PAD.t + plotH - (plotH * v) / max;
  if (type === 'line') {
    const x = (i) => PAD.l + (times.length === 1 ? plotW / 2 : (plotW * i) / (times.length - 1));
    axes(svg, max, times, x);
    rows.forEach((r, k) => {
      svg.append(s('polyline', { class: `line s${k % 6}`, points: r.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ') }));
      r.forEach((v, i) => svg.append(s('circle', { class: `s${k % 6}`, cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 2.5 }, s('title', {}, `${series[k].key} ${label(times[i])}: ${v}`))));
    });
  } else {
    const slot = plotW / times.length;
    const x = (i) => PAD.l + slot * i + slot / 2;
    axes(svg, max, times, x);
    const bars = stacked ? 1 : rows.length;
    const bw = Math.max(1, (slot * 0.8) / bars);
    times.forEach((t, i) => {
      let base = 0;
      rows.forEach((r, k) => {
        const v = r[i];
        const x0 = stacked ? x(i) - bw / 2 : PAD.l + slot * i + slot * 0.1 + bw * k;
        const top = stacked ? y(base + v) : y(v);
        const height = stacked ? y(base) - y(base + v) : PAD.t + plotH - y(v);
        svg.append(s('rect', { class: `bar s${k % 6}`, x: x0.toFixed(1), y: top.toFixed(1), width: bw.toFixed(1), height: Math.max(0, height).toFixed(1) },
          s('title', {}, `${series[k].key} ${label(t)}: ${v}`)));
        base += v;
      });
    });
  }
  return h('div', svg, h('div.legend', series.map((x, k) => h('span', { class: `s${k % 6}` }, x.key))));
}

function drawTable(data) {
  const { times, rows } = grid(data.series);
  return h('table.usage-table', h('thead', h('tr', h('th', 'at'), data.series.map((x) => h('th', x.key)))),
    h('tbody', times.map((t, i) => h('tr', h('td', label(t)), rows.map((r) => h('td', number(r[i])))))));
}
