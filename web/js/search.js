// Search results: snippets with the matched words highlighted; a hit opens its conversation
// scrolled to the message.

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

export async function renderSearch(page, q, inbox) {
  const list = h('ul', { class: 'hits', 'aria-label': 'Search results' });
  const more = h('button', { class: 'btn', type: 'button', hidden: true }, 'More results');
  const status = h('p', { class: 'muted', role: 'status' }, 'Searching…');
  replace(page, h('h1', null, 'Search: ', q), status, list, more);
  let cursor = null;
  const load = async () => {
    try {
      const r = await get('/api/v1/search' + qs({ q, account: inbox.filter.account, limit: 30, cursor }));
      for (const hit of r.hits) {
        const m = hit.message;
        const c = inbox.chats.get(m.chat);
        list.append(h('li', null, h('button', {
          class: 'hit', type: 'button', 'data-chat': m.chat, 'data-id': m.id,
          onclick: () => { location.hash = `#/chat/${encodeURIComponent(m.chat)}/m/${m.id}`; },
        }, h('div', { class: 'h-head' }, h('b', null, c ? inbox.chatTitle(c) : m.chat), h('span', null, senderName(m)), h('span', null, fullTime(m.date))),
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
