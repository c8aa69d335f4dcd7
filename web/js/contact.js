// The contact panel beside a conversation: who it is with (name, username, Telegram ID,
// language), the accounts they wrote to and their other conversations, all as the server cuts
// them to your grants. Toggled from the conversation's header (the choice is remembered); at
// phone width it covers the conversation until closed. The conversation's labels show with it
// (kept current by `renderLabels` as conversation.labels events arrive).

import { h, replace, shortTime } from './dom.js';
import { get, chatPath, explain } from './api.js';
import { labelChip } from './team.js';

const KEY = 'lanbox.contactPanel';

function languageName(tag) {
  try {
    const name = new Intl.DisplayNames([navigator.language || 'en'], { type: 'language' }).of(tag);
    return name && name !== tag ? `${name} (${tag})` : tag;
  } catch { return tag; }
}

export class ContactPanel {
  constructor(convo) {
    this.convo = convo;
    this.chat = null;
    this.body = h('div', { class: 'cp-body' });
    this.labels = h('div', { class: 'cp-labels', 'aria-label': 'Labels' });
    const close = h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Close the contact panel', onclick: () => this.setOpen(false) }, '✕');
    this.el = h('aside', { class: 'contact-panel', 'aria-label': 'Contact', hidden: true },
      h('div', { class: 'cp-head' }, h('h3', null, 'Contact'), close), this.body);
    this.toggle = h('button', { class: 'btn contact-toggle', type: 'button', 'aria-pressed': 'false', 'aria-label': 'Contact details', title: 'Contact details',
      onclick: () => this.setOpen(this.el.hidden) }, 'ⓘ Contact');
    const saved = localStorage.getItem(KEY);
    this.wanted = saved === null ? window.matchMedia('(min-width: 1200px)').matches : saved === 'open';
  }

  setOpen(open) {
    this.wanted = open;
    try { localStorage.setItem(KEY, open ? 'open' : 'closed'); } catch { /* private mode */ }
    this.apply();
    if (open) this.load();
    else this.convo.composer.focus();
  }

  apply() {
    const open = this.wanted && !!this.chat;
    this.el.hidden = !open;
    this.toggle.setAttribute('aria-pressed', open ? 'true' : 'false');
  }

  /** A conversation was opened (or re-opened). */
  show(chat) {
    if (chat !== this.chat) replace(this.body);
    this.chat = chat;
    this.apply();
    if (this.wanted) this.load();
  }

  /** This conversation's labels, as the chat list knows them. */
  renderLabels() {
    const ids = this.convo.inbox.chats.get(this.chat)?.conversation?.labels || [];
    replace(this.labels, ids.length ? ids.map(labelChip) : h('span', { class: 'muted' }, 'None'));
  }

  async load() {
    const chat = this.chat;
    if (!chat) return;
    if (!this.body.firstChild) replace(this.body, h('p', { class: 'muted' }, 'Loading…'));
    let v;
    try { v = await get(chatPath(chat) + '/contact'); } catch (e) {
      if (chat === this.chat) replace(this.body, h('p', { class: 'error' }, explain(e)));
      return;
    }
    if (chat !== this.chat) return;
    const p = v.contact;
    const inbox = this.convo.inbox;
    const person = p ? [
      h('p', { class: 'cp-name' }, p.name || '(no name)', p.is_bot ? h('span', { class: 'muted' }, ' · bot') : null),
      v.role === 'last_writer' ? h('p', { class: 'muted cp-note' }, 'Last to write in this group') : null,
      h('dl', { class: 'cp-facts' },
        h('dt', null, 'Username'), h('dd', { 'data-field': 'username' }, p.username ? '@' + p.username : '—'),
        h('dt', null, 'Telegram ID'), h('dd', { class: 'mono', 'data-field': 'telegram_id' }, String(p.telegram_id)),
        h('dt', null, 'Language'), h('dd', { 'data-field': 'language' }, p.language ? languageName(p.language) : 'not shared')),
    ] : h('p', { class: 'muted' }, 'Nobody has written here yet.');
    const accounts = v.accounts.length ? h('ul', { class: 'cp-accounts' }, v.accounts.map((a) => h('li', { 'data-account': a.id }, a.name))) : null;
    const others = v.conversations.map((c) => h('li', null, h('a', { href: '#/chat/' + encodeURIComponent(c.id), 'data-chat': c.id },
      h('span', { class: 'cp-title' }, inbox.chatTitle(c)), ' ',
      h('span', { class: 'muted' }, [c.kind, c.accounts.map((a) => inbox.accountName(a)).join(', '), shortTime(c.last_date)].filter(Boolean).join(' · ')),
      ...(inbox.chats.get(c.id)?.conversation?.labels || []).map(labelChip))));
    this.renderLabels();
    replace(this.body, person,
      h('h4', null, 'Labels'), this.labels,
      accounts ? [h('h4', null, 'Accounts'), accounts] : null,
      h('h4', null, 'Other conversations'),
      others.length ? h('ul', { class: 'cp-convos' }, others) : h('p', { class: 'muted' }, 'None you can see.'));
  }
}
