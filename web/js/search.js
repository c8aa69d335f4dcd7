// Search results with filters (account, chat, kind, direction, date range; kept in the
// route, #/search/Q?account=1&kind=image&...), snippets with the matched words highlighted and
// the sender named once; a hit opens its conversation scrolled to the message.

import { h, replace, fullTime } from './dom.js';
import { get, qs, explain } from './api.js';
import { senderName } from './render.js';

function snippet(s) {
  const frag = document.createDocumentFragment();
  const text = s.text || '';
  let at = 0;
  for (const mk of [...(s.marks || [])].sort((a, b) => a.offset - b.offset)) {
    if (mk.offset < at) continue;
    frag.append(text.slice(at, mk.offset), h('mark', null, text.slice(mk.offset, mk.offset + mk.length)));
    at = mk.offset + mk.length;
  }
  frag.append(text.slice(at));
  return frag;
}

const KINDS = [['', 'Any kind'], ['text', 'Text'], ['image', 'Photos'], ['file', 'Files'], ['video', 'Videos'],
  ['voice', 'Voice messages'], ['audio', 'Audio'], ['location', 'Locations'], ['contact', 'Contacts'], ['poll', 'Polls']];

/** The route's filters: `#/search/Q?key=value&...` -> {key: value}. */
export function parseFilters(query) {
  const f = {};
  for (const [k, v] of new URLSearchParams(query || '')) if (v) f[k] = v;
  return f;
}

/** A date input's day as Unix seconds (start or end of that local day). */
const day = (v, end) => (v ? Math.floor(new Date(v + (end ? 'T23:59:59' : 'T00:00:00')).getTime() / 1000) : null);

export async function renderSearch(page, q, inbox, filters = {}) {
  const go = (f) => {
    const rest = new URLSearchParams(Object.entries(f).filter(([, v]) => v)).toString();
    location.hash = '#/search/' + encodeURIComponent(q) + (rest ? '?' + rest : '');
  };
  const sel = (name, label, options) => h('label', null, label, h('select', { name, onchange: (e) => go({ ...filters, [name]: e.target.value }) },
    options.map(([v, t]) => h('option', { value: v, selected: (filters[name] || '') === v }, t))));
  const date = (name, label) => h('label', null, label, h('input', { type: 'date', name, value: filters[name] || '', onchange: (e) => go({ ...filters, [name]: e.target.value }) }));
  const chat = filters.chat ? inbox.chats.get(filters.chat) : null;
  const bar = h('form', { class: 'search-filters', 'aria-label': 'Search filters', onsubmit: (e) => e.preventDefault() },
    sel('account', 'Account', [['', 'All accounts'], ...inbox.accounts.map((a) => [String(a.id), a.name])]),
    filters.chat ? sel('chat', 'Chat', [['', 'All chats'], [filters.chat, chat ? inbox.chatTitle(chat) : filters.chat]]) : null,
    sel('kind', 'Kind', KINDS),
    sel('direction', 'Direction', [['', 'Both ways'], ['incoming', 'Received'], ['outgoing', 'Sent']]),
    date('from', 'From'), date('to', 'To'),
    Object.keys(filters).length ? h('button', { class: 'btn', type: 'button', onclick: () => go({}) }, 'Clear filters') : null);
  const list = h('ul', { class: 'hits', 'aria-label': 'Search results' });
  const more = h('button', { class: 'btn', type: 'button', hidden: true }, 'More results');
  const status = h('p', { class: 'muted', role: 'status' }, 'Searching…');
  const note = h('p', { class: 'muted search-note' });
  // The team's private notes that hold every word (no filters but the query apply to them).
  const notes = h('section', { class: 'note-hits', 'aria-label': 'Notes found', hidden: true });
  replace(page, h('h1', null, 'Search: ', q), bar, notes, status, note, list, more);
  get('/api/v1/notes' + qs({ q, limit: 20 })).then((r) => {
    if (!r.notes.length) return;
    notes.hidden = false;
    replace(notes, h('h2', null, `Private notes (${r.notes.length})`), h('ul', { class: 'hits' }, r.notes.map((n) => {
      const c = inbox.chats.get(n.chat);
      return h('li', null, h('button', { class: 'hit note-hit', type: 'button', 'data-chat': n.chat, 'data-note': n.id,
        onclick: () => { location.hash = '#/chat/' + encodeURIComponent(n.chat); } },
      h('div', { class: 'h-head' }, h('b', null, c ? inbox.chatTitle(c) : n.chat), h('span', { class: 'h-who' }, n.by.name), h('span', null, fullTime(n.at))),
      h('div', { class: 'h-text', dir: 'auto' }, n.text)));
    })));
  }).catch(() => { /* messages still show; a note search failure is not worth a second error */ });
  let cursor = null;
  const load = async () => {
    try {
      const r = await get('/api/v1/search' + qs({
        q, account: filters.account ?? inbox.filter.account, chat: filters.chat, kind: filters.kind, direction: filters.direction,
        since: day(filters.from, false), until: day(filters.to, true), limit: 30, cursor,
      }));
      if (r.prefix) {
        const last = q.trim().split(/\s+/).pop().replace(/^from:/, '');
        note.textContent = `“${last}” also matched longer words (the last word is searched as you type; put it in quotes to match whole words only).`;
      }
      for (const hit of r.hits) {
        const m = hit.message;
        const c = inbox.chats.get(m.chat);
        const title = c ? inbox.chatTitle(c) : m.chat;
        const who = senderName(m);
        list.append(h('li', null, h('button', {
          class: 'hit', type: 'button', 'data-chat': m.chat, 'data-id': m.id,
          onclick: () => { location.hash = `#/chat/${encodeURIComponent(m.chat)}/m/${m.id}`; },
        }, h('div', { class: 'h-head' }, h('b', null, title), who !== title ? h('span', { class: 'h-who' }, who) : null, h('span', null, fullTime(m.date))),
        h('div', { class: 'h-text' }, snippet(hit.snippet)))));
      }
      cursor = r.next;
      more.hidden = !cursor;
      status.textContent = list.children.length ? `${list.children.length}${cursor ? '+' : ''} result${list.children.length === 1 ? '' : 's'}` : 'Nothing found.';
    } catch (e) {
      status.textContent = explain(e);
      status.className = 'error';
    }
  };
  more.addEventListener('click', load);
  await load();
  list.querySelector('.hit')?.focus();
}
