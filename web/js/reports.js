// The Reports page: conversations by status and account, each assignee's workload, first
// response and resolution times, and messages in and out per day over a chosen period, from
// GET /api/v1/stats. Charts are SVG drawn here (no chart library, nothing from outside).

import { h, replace, toastError } from './dom.js';
import { get, qs, explain } from './api.js';

const NS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

const PERIODS = [[7, 'Last 7 days'], [30, 'Last 30 days'], [90, 'Last 90 days']];
const STATUS = [['open', 'Open', '#2563eb'], ['pending', 'Pending', '#d97706'], ['snoozed', 'Snoozed', '#7c3aed'], ['resolved', 'Resolved', '#16a34a']];

/** "3 h 5 min", "42 s", or "—". */
export function duration(s) {
  if (s === null || s === undefined) return '—';
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.round((s % 86400) / 3600)} h`;
}

/** Horizontal bars: rows of [label, [[value, colour, name], ...]] stacked. */
function bars(title, rows) {
  const max = Math.max(1, ...rows.map(([, parts]) => parts.reduce((n, [v]) => n + v, 0)));
  const rowH = 26;
  const width = 520;
  const labelW = 140;
  const chart = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${rows.length * rowH + 4}`, role: 'img', 'aria-label': title },
    rows.map(([label, parts], i) => {
      let x = labelW;
      const y = i * rowH + 4;
      const total = parts.reduce((n, [v]) => n + v, 0);
      return svg('g', { 'data-row': label },
        svg('text', { x: labelW - 8, y: y + 15, 'text-anchor': 'end', class: 'chart-label' }, label.length > 18 ? label.slice(0, 17) + '…' : label),
        parts.map(([v, colour, name]) => {
          const w = ((width - labelW - 50) * v) / max;
          const r = svg('rect', { x, y, width: Math.max(0, w), height: rowH - 8, fill: colour, 'data-value': v }, svg('title', null, `${name}: ${v}`));
          x += w;
          return r;
        }),
        svg('text', { x: x + 6, y: y + 15, class: 'chart-value' }, String(total)));
    }));
  return h('figure', { class: 'report' }, h('figcaption', null, title), chart);
}

/** Columns per day, incoming and outgoing side by side. */
function perDay(days) {
  const max = Math.max(1, ...days.map((d) => Math.max(d.incoming, d.outgoing)));
  const width = 560;
  const height = 180;
  const step = (width - 40) / Math.max(1, days.length);
  const bw = Math.max(1, step / 2 - 1);
  const y = (v) => height - 20 - ((height - 30) * v) / max;
  const chart = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'Messages per day, incoming and outgoing' },
    svg('line', { x1: 30, y1: height - 20, x2: width, y2: height - 20, stroke: 'currentColor', 'stroke-opacity': 0.3 }),
    svg('text', { x: 26, y: 14, 'text-anchor': 'end', class: 'chart-value' }, String(max)),
    days.map((d, i) => {
      const x = 34 + i * step;
      return svg('g', { 'data-day': d.day },
        svg('rect', { x, y: y(d.incoming), width: bw, height: height - 20 - y(d.incoming), fill: '#2563eb', class: 'in' }, svg('title', null, `${d.day}: ${d.incoming} in`)),
        svg('rect', { x: x + bw + 1, y: y(d.outgoing), width: bw, height: height - 20 - y(d.outgoing), fill: '#16a34a', class: 'out' }, svg('title', null, `${d.day}: ${d.outgoing} out`)),
        i === 0 || i === days.length - 1 ? svg('text', { x, y: height - 5, class: 'chart-label' }, d.day.slice(5)) : null);
    }));
  return h('figure', { class: 'report' }, h('figcaption', null, 'Messages per day ', h('span', { class: 'key in' }, 'in'), ' ', h('span', { class: 'key out' }, 'out')), chart);
}

export async function renderReports(page, inbox, days = 30) {
  const pick = h('select', { 'aria-label': 'Period', onchange: () => renderReports(page, inbox, Number(pick.value)) },
    PERIODS.map(([d, n]) => h('option', { value: d, selected: d === days }, n)));
  const body = h('div', { class: 'reports' }, h('p', { class: 'muted' }, 'Loading…'));
  replace(page, h('h1', null, 'Reports'), h('div', { class: 'filters' }, pick,
    h('span', { class: 'muted' }, inbox.me.role === 'admin' ? 'Every account.' : 'The accounts shared with you.')), body);
  const to = Math.floor(Date.now() / 1000);
  let st;
  try { st = await get('/api/v1/stats' + qs({ from: to - days * 86400, to })); } catch (e) { replace(body, h('p', { class: 'error' }, explain(e))); toastError(explain(e)); return; }
  const c = st.conversations;
  const p = st.period;
  const figure = (name, d) => h('div', { class: 'figure', 'data-figure': name }, h('div', { class: 'big' }, duration(d.median_s)),
    h('div', { class: 'muted' }, `${name}: median; 90% within ${duration(d.p90_s)} (${d.count} conversation${d.count === 1 ? '' : 's'})`));
  replace(body,
    h('div', { class: 'figures' }, figure('First response', p.first_response), figure('Resolution', p.resolution)),
    bars('Conversations by status', STATUS.map(([k, n, col]) => [n, [[c.by_status[k], col, n]]])),
    bars('Conversations by account', c.by_account.map((a) => [a.name, STATUS.map(([k, n, col]) => [a[k], col, n])])),
    bars('Conversations by channel', c.by_channel.map((a) => [a.channel, STATUS.map(([k, n, col]) => [a[k], col, n])])),
    bars('Workload (open and pending per assignee)', c.workload.map((w) => [w.assignee ? w.assignee.name || `user ${w.assignee.user}` : 'Unassigned',
      [[w.open, '#2563eb', 'Open'], [w.pending, '#d97706', 'Pending']]])),
    perDay(p.messages_per_day));
}
