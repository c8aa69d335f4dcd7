// Small DOM helpers. Everything from the server goes in as text nodes, never as HTML.

/** h('div', {class: 'x', onclick: f, 'aria-label': 'y'}, child, 'text', [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'selected' || k === 'hidden') el[k] = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

const pad = (n) => String(n).padStart(2, '0');

/** The name of a day, the same in the chat list and the conversation: "Yesterday", a weekday
 *  within the last week, else the date (`long` adds the year and the month's name). */
function dayName(d, long) {
  const today = new Date();
  const y = new Date(today);
  y.setDate(today.getDate() - 1);
  if (d.toDateString() === y.toDateString()) return 'Yesterday';
  const week = new Date(today);
  week.setHours(0, 0, 0, 0);
  week.setDate(week.getDate() - 6);
  if (d >= week && d <= today) return d.toLocaleDateString(undefined, { weekday: long ? 'long' : 'short' });
  return long ? d.toLocaleDateString(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' }) : d.toLocaleDateString();
}

/** A time for lists: the clock today, else the day's name (see `dayName`). */
export function shortTime(unix) {
  if (!unix) return '';
  const d = new Date(unix * 1000);
  if (d.toDateString() === new Date().toDateString()) return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return dayName(d, false);
}

export function clock(unix) {
  const d = new Date(unix * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The day separator in a conversation: "Today", else the day's name (see `dayName`). */
export function dayLabel(unix) {
  const d = new Date(unix * 1000);
  if (d.toDateString() === new Date().toDateString()) return 'Today';
  return dayName(d, true);
}

export function fullTime(unix) {
  return unix ? new Date(unix * 1000).toLocaleString() : '';
}

export function size(bytes) {
  if (bytes === null || bytes === undefined) return 'size unknown';
  const units = ['B', 'KB', 'MB', 'GB'];
  let v = bytes, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i ? v.toFixed(v < 10 ? 1 : 0) : v} ${units[i]}`;
}

/** The first letter of the first two words, as whole characters (an emoji or a character
 *  outside the BMP is never cut in half). */
export function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const first = (w) => (w ? firstGrapheme(w) : '');
  return (first(parts[0] || '?') + first(parts[1])).toUpperCase();
}

const graphemes = typeof Intl !== 'undefined' && Intl.Segmenter ? new Intl.Segmenter(undefined, { granularity: 'grapheme' }) : null;

function firstGrapheme(s) {
  if (graphemes) for (const { segment } of graphemes.segment(s)) return segment;
  return [...s][0] || '';
}

/** A stable hue for a name, so avatars are told apart at a glance. */
export function hue(s) {
  let x = 0;
  for (const c of String(s)) x = (x * 31 + c.codePointAt(0)) >>> 0;
  return x % 360;
}

/** A certificate fingerprint that wraps only between bytes (after a colon), never inside one. */
export function fingerprint(fp, tag = 'span') {
  const parts = String(fp || '').split(':');
  return h(tag, { class: 'mono fingerprint', 'data-fingerprint': '' },
    parts.map((b, i) => (i < parts.length - 1 ? [b + ':', h('wbr')] : b)));
}

/** A confirmation: shown for a few seconds, then gone. */
export function toast(text, ms = 3000) {
  const box = document.getElementById('toasts');
  const t = h('div', { class: 'toast' }, text);
  box.append(t);
  setTimeout(() => t.remove(), ms);
}

/** An error: looks like one and stays until the user closes it (or the same error shows
 *  again, which does not stack a second copy). */
export function toastError(text) {
  const box = document.getElementById('toasts');
  for (const old of box.querySelectorAll('.toast.error')) if (old.dataset.text === text) old.remove();
  const t = h('div', { class: 'toast error', role: 'alert', dataset: { text } },
    h('span', null, text),
    h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Dismiss this error', onclick: () => t.remove() }, '×'));
  box.append(t);
}

/** A modal question in the page (never `window.prompt`/`confirm`): a title, explanatory
 *  paragraphs, optional `fields` (inputs, read back by the caller) and a confirm button.
 *  `check(values)` may return an error text to keep the dialog open. Resolves true once
 *  confirmed, false when cancelled. */
export function ask({ title, body = [], fields = [], confirm = 'OK', danger = false, check = null }) {
  return new Promise((resolve) => {
    const err = h('p', { class: 'error', role: 'alert' });
    const ok = h('button', { class: 'btn ' + (danger ? 'danger' : 'primary'), type: 'submit' }, confirm);
    const cancel = h('button', { class: 'btn', type: 'button', onclick: () => { d.close(); } }, 'Cancel');
    const form = h('form', { method: 'dialog', novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      const problem = check ? await check() : null;
      if (problem) { err.textContent = problem; return; }
      done = true;
      d.close();
    } }, h('h2', null, title), body.map((p) => (p instanceof Node ? p : h('p', null, p))), fields, err,
      h('div', { class: 'dlg-bar' }, cancel, ok));
    const d = h('dialog', { class: 'ask', 'aria-label': title }, form);
    let done = false;
    // Leaving the page (another route) cancels the question.
    const away = () => d.close();
    window.addEventListener('hashchange', away);
    d.addEventListener('close', () => { window.removeEventListener('hashchange', away); d.remove(); resolve(done); });
    document.body.append(d);
    d.showModal();
    (form.querySelector('input') || ok).focus();
  });
}

/** Runs f at most once per `ms`, the last call winning. */
export function debounce(f, ms) {
  let t = null;
  return (...a) => { clearTimeout(t); t = setTimeout(() => f(...a), ms); };
}
