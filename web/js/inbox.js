// The signed-in page: top bar, accounts sidebar with unread counts, the chat list with its
// filters, and the routes (#/chat/ID[/m/MSG], #/search/Q, #/settings/TAB). Live events are
// dispatched from here to the list and the open conversation.

import { h, replace, shortTime, initials, hue, toast, toastError, debounce } from './dom.js';
import { get, post, qs, chatPath, explain } from './api.js';
import { preview, senderName, setMe } from './render.js';
import { Conversation } from './convo.js';
import { renderSearch, parseFilters } from './search.js';
import { renderSettings } from './settings.js';
import { renderReports } from './reports.js';
import { ListViews, applyEvent, labels, labelChip, notify, setFavicon } from './team.js';

export class Inbox {
  constructor(root, me, live) {
    this.root = root;
    this.me = me;
    setMe(me.id);
    this.live = live;
    this.accounts = [];
    this.chats = new Map();
    this.next = null;
    this.filter = { account: null, unread: false, kind: '', q: '' };
    this.current = null;
    this.refreshAccounts = debounce(() => this.loadAccounts(), 250);
    this.build();
    this.convo = new Conversation(this);
    this.convoBox.replaceWith(this.convo.el);
    live.addEventListener('event', (e) => this.onEvent(e.detail));
    live.addEventListener('state', (e) => {
      this.setConn(e.detail.online ? 'online' : 'offline');
      // Failing again and again: is it the network, or did the session end? (/me tells.)
      if (!e.detail.online && e.detail.attempt >= 2) get('/api/v1/me').catch((x) => x.status === 401 && location.reload());
    });
    live.addEventListener('reconnected', (e) => this.onReconnected(e.detail));
    live.addEventListener('resync', () => this.reloadAll());
    addEventListener('hashchange', () => { this.navigated = true; this.route(); });
    document.addEventListener('keydown', (e) => this.onKey(e));
    document.addEventListener('visibilitychange', () => !document.hidden && this.convo.maybeMarkRead());
  }

  async start() {
    // The chat list says where the event log stood when it was read; the live feed resumes
    // from there, so nothing that happens between the page load and the WebSocket's
    // subscription is lost (a reply's "sent" status, a message arriving meanwhile).
    await labels.load();
    this.views.render();
    const [, seq] = await Promise.all([this.loadAccounts(), this.loadChats()]);
    this.live.start(seq);
    // The page the address names, unless the person already went somewhere while this loaded
    // (routing again would render that page afresh and wipe what they had typed into it).
    if (!this.navigated) this.route();
  }

  accountName(id) {
    const a = this.accounts.find((x) => x.id === id);
    return a ? a.name : `account ${id}`;
  }

  // ---- layout -------------------------------------------------------------------------------

  build() {
    const isAdmin = this.me.role === 'admin';
    this.conn = h('span', { class: 'conn', role: 'status', 'aria-live': 'polite', 'data-state': 'connecting' }, 'Connecting…');
    this.searchInput = h('input', { type: 'search', name: 'q', placeholder: 'Search', title: 'Search messages (press / to get here)', 'aria-label': 'Search messages', autocomplete: 'off' });
    const searchForm = h('form', { role: 'search', onsubmit: (e) => {
      e.preventDefault();
      const q = this.searchInput.value.trim();
      if (q) location.hash = '#/search/' + encodeURIComponent(q);
    } }, this.searchInput);
    const top = h('header', { class: 'topbar' },
      h('a', { class: 'brand', href: '#/' }, h('img', { src: document.querySelector('link[rel=icon]').href, alt: '' }), h('span', null, 'lanbox')),
      searchForm, this.conn, h('span', { class: 'spacer' }),
      h('a', { class: 'icon-btn', href: '#/reports', 'aria-label': 'Reports', title: 'Reports' }, '▤'),
      h('a', { class: 'icon-btn', href: isAdmin ? '#/settings/accounts' : '#/settings/tokens', 'aria-label': 'Settings', title: 'Settings' }, '⚙'),
      h('button', { class: 'icon-btn kbd-help', type: 'button', 'aria-label': 'Keyboard shortcuts', title: 'Keyboard shortcuts (?)', onclick: () => this.help() }, '⌨'),
      h('span', { class: 'muted me' }, this.me.name),
      h('button', { class: 'btn', type: 'button', onclick: () => this.logout() }, 'Sign out'));

    this.accountList = h('div', { role: 'list', 'aria-label': 'Accounts' });
    const sidebar = h('nav', { class: 'sidebar', 'aria-label': 'Accounts' }, h('h2', null, 'Accounts'), this.accountList);

    this.filterQ = h('input', { type: 'search', placeholder: 'Filter chats', 'aria-label': 'Filter chats by name', oninput: () => { this.filter.q = this.filterQ.value.trim().toLowerCase(); this.renderChats(); } });
    this.filterAccount = h('select', { class: 'acct-filter', 'aria-label': 'Account', onchange: () => this.setAccount(this.filterAccount.value ? Number(this.filterAccount.value) : null) });
    this.filterUnread = h('input', { type: 'checkbox', onchange: () => { this.filter.unread = this.filterUnread.checked; this.loadChats(); } });
    this.filterKind = h('select', { 'aria-label': 'Kind of chat', onchange: () => { this.filter.kind = this.filterKind.value; this.loadChats(); } },
      h('option', { value: '' }, 'All kinds'), h('option', { value: 'private' }, 'Private'), h('option', { value: 'group' }, 'Groups'),
      h('option', { value: 'supergroup' }, 'Supergroups'), h('option', { value: 'channel' }, 'Channels'));
    this.chatList = h('ul', { class: 'chats', 'aria-label': 'Chats', onkeydown: (e) => this.listKeys(e) });
    this.chatList.addEventListener('scroll', () => {
      const l = this.chatList;
      if (this.next && l.scrollTop + l.clientHeight > l.scrollHeight - 200) this.loadChats(true);
    });
    this.views = new ListViews(this);
    this.chatPane = h('section', { class: 'chatlist', 'aria-label': 'Chat list' }, this.views.el,
      h('div', { class: 'filters' }, this.filterQ, this.filterAccount,
        h('label', null, this.filterUnread, 'Unread only'), this.filterKind),
      this.chatList);
    this.convoBox = h('section');
    this.page = h('section', { class: 'page', hidden: true });
    this.main = h('div', { class: 'main' }, sidebar, this.chatPane, this.convoBox, this.page);
    this.storeBanner = h('div', { class: 'store-banner', role: 'alert', hidden: true });
    replace(this.root, h('div', { class: 'shell' }, h('div', null, top, this.storeBanner), this.main));
  }

  /** Follows `store.status` (and the `hello`'s `store`): a banner while the box cannot write. */
  setStore({ status, reasons = [] }) {
    const b = this.storeBanner;
    b.hidden = status !== 'degraded';
    b.dataset.reasons = reasons.join(' ');
    if (b.hidden) return;
    const admin = this.me.role === 'admin';
    b.textContent = reasons.includes('disk_full')
      ? 'The box’s disk is full. New Telegram messages wait upstream (Telegram keeps them for 24 hours) and sending is paused; reading works. '
        + (admin ? 'Free space on the data partition: lanbox resumes by itself, nothing is lost.' : 'An administrator has been told; nothing is lost.')
      : 'The box cannot write to its database right now. New messages wait upstream and sending is paused; reading works. '
        + (admin ? 'See /api/v1/health and the service log.' : 'An administrator has been told.');
  }

  setConn(state, text) {
    this.conn.dataset.state = state;
    this.conn.className = 'conn ' + (state === 'offline' ? 'offline' : 'online');
    this.conn.textContent = text || (state === 'offline' ? 'Offline — reconnecting…' : 'Live');
  }

  onReconnected({ replayed }) {
    const text = `Reconnected — caught up on ${replayed} update${replayed === 1 ? '' : 's'}`;
    this.setConn('reconnected', 'Reconnected');
    toast(text);
    this.convo.notice(text);
    setTimeout(() => this.conn.dataset.state === 'reconnected' && this.setConn('online'), 6000);
    this.refreshAccounts();
  }

  async reloadAll() {
    await Promise.all([this.loadAccounts(), this.loadChats()]);
    if (this.current) this.convo.open(this.current);
  }

  // ---- accounts -----------------------------------------------------------------------------

  async loadAccounts() {
    try {
      this.accounts = await get('/api/v1/accounts');
    } catch (e) {
      toastError('Accounts: ' + explain(e));
      return;
    }
    this.renderAccounts();
  }

  renderAccounts() {
    const total = this.accounts.reduce((n, a) => n + a.unread, 0);
    const item = (id, name, unread, status, detail) => h('button', {
      class: 'acct', type: 'button', role: 'listitem', 'aria-current': this.filter.account === id ? 'true' : 'false',
      'data-account': id ?? 'all', onclick: () => this.setAccount(id),
      'aria-label': `${name}${unread ? `, ${unread} unread` : ''}${status ? `, ${status.replace('_', ' ')}` : ''}`,
    }, status ? h('span', { class: 'dot ' + status, title: detail ? `${status}: ${detail}` : status }) : null,
    h('span', { class: 'name' }, name), unread ? h('span', { class: 'badge', 'data-unread': unread }, String(unread)) : null);
    replace(this.accountList, item(null, 'All accounts', total),
      this.accounts.map((a) => item(a.id, a.name, a.unread, a.status, a.status_detail)));
    if (!this.accounts.length) {
      this.accountList.append(h('p', { class: 'empty' }, this.me.role === 'admin'
        ? h('a', { href: '#/settings/accounts' }, 'Add a Telegram bot') : 'No accounts are shared with you yet.'));
    }
    replace(this.filterAccount, h('option', { value: '' }, 'All accounts'),
      this.accounts.map((a) => h('option', { value: a.id, selected: this.filter.account === a.id }, `${a.name}${a.unread ? ` (${a.unread})` : ''}`)));
    document.title = total ? `(${total}) lanbox` : 'lanbox';
    setFavicon(total);
  }

  setAccount(id) {
    this.filter.account = id;
    this.renderAccounts();
    this.loadChats();
    if (!location.hash.startsWith('#/chat/') && location.hash !== '#/' && location.hash !== '') location.hash = '#/';
  }

  // ---- chat list ----------------------------------------------------------------------------

  async loadChats(more = false) {
    if (more && this.loadingMore) return;
    this.loadingMore = more;
    const f = this.filter;
    try {
      const page = await get('/api/v1/chats' + qs({ account: f.account, unread: f.unread ? 'true' : null, kind: f.kind, ...this.views.query(), limit: 100, cursor: more ? this.next : null }));
      if (!more) { this.chats.clear(); this.views.setCounts(page.counts); }
      for (const c of page.chats) this.chats.set(c.id, c);
      this.next = page.next;
      return page.last_seq;
    } catch (e) {
      toastError('Chats: ' + explain(e));
    } finally {
      this.loadingMore = false;
      this.renderChats();
    }
    return null;
  }

  matches(c) {
    const f = this.filter;
    if (f.account !== null && !c.accounts.includes(f.account)) return false;
    if (f.unread && !c.unread && c.id !== this.current) return false;
    if (f.kind && c.kind !== f.kind) return false;
    if (!this.views.matches(c) && c.id !== this.current) return false;
    if (f.q) {
      const hay = `${this.chatTitle(c)} ${c.username || ''} ${preview(c.last_message)}`.toLowerCase();
      if (!hay.includes(f.q)) return false;
    }
    return true;
  }

  chatTitle(c) {
    return c.title || (c.username ? '@' + c.username : `Chat ${c.telegram_id}`);
  }

  sortedChats() {
    return [...this.chats.values()].filter((c) => this.matches(c))
      .sort((a, b) => (b.last_date ?? -Infinity) - (a.last_date ?? -Infinity) || (a.id < b.id ? -1 : 1));
  }

  /** Re-draws the list once per frame however many events arrive (a burst after a resume). */
  renderChats() {
    if (this.chatsFrame) return;
    this.chatsFrame = requestAnimationFrame(() => {
      this.chatsFrame = null;
      this.renderChatsNow();
    });
  }

  renderChatsNow() {
    const list = this.sortedChats();
    const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest('.chat');
    const focusId = focused ? focused.dataset.chat : null;
    replace(this.chatList, list.map((c) => {
      const title = this.chatTitle(c);
      const last = c.last_message;
      const who = last && last.direction === 'outgoing' ? senderName(last) + ': ' : '';
      const av = h('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(title));
      av.style.background = `hsl(${hue(c.id)} 45% 48%)`;
      return h('li', null, h('button', {
        class: 'chat' + (c.unread ? ' unread' : ''), type: 'button', 'data-chat': c.id,
        'aria-current': c.id === this.current ? 'true' : 'false',
        'aria-label': `${title}${c.unread ? `, ${c.unread} unread` : ''}, ${who}${preview(last)}`,
        onclick: () => { location.hash = '#/chat/' + encodeURIComponent(c.id); },
      }, av,
      h('span', { class: 'title', dir: 'auto' }, title),
      h('span', { class: 'time' }, shortTime(c.last_date)),
      h('span', { class: 'last', dir: 'auto' }, who + preview(last)),
      c.unread ? h('span', { class: 'badge', 'data-unread': c.unread }, String(c.unread)) : h('span'),
      this.teamLine(c)));
    }));
    if (!list.length) this.chatList.append(h('li', { class: 'empty' }, this.chats.size ? 'No chats match the filters.' : 'No conversations yet.'));
    if (focusId) this.chatList.querySelector(`[data-chat="${CSS.escape(focusId)}"]`)?.focus();
  }

  /** Status (when not open), assignee and labels of a conversation, for the list. */
  teamLine(c) {
    const conv = c.conversation;
    if (!conv || (conv.status === 'open' && !conv.assignee && !conv.labels.length)) return null;
    const me = this.me.id;
    return h('span', { class: 'team-line' },
      conv.status !== 'open' ? h('span', { class: 'status-tag', 'data-status': conv.status }, conv.status) : null,
      conv.assignee ? h('span', { class: 'assignee-tag', 'data-user': conv.assignee.user }, conv.assignee.user === me ? 'you' : conv.assignee.name) : null,
      conv.labels.map(labelChip));
  }

  upsertChat(c) {
    this.chats.set(c.id, c);
    this.renderChats();
  }

  async fetchChat(id) {
    try {
      const c = await get(chatPath(id));
      this.upsertChat(c);
      return c;
    } catch { return null; }
  }

  listKeys(e) {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const items = [...this.chatList.querySelectorAll('.chat')];
    const i = items.indexOf(document.activeElement);
    const next = items[Math.max(0, Math.min(items.length - 1, i + (e.key === 'ArrowDown' ? 1 : -1)))];
    if (next) { e.preventDefault(); next.focus(); }
  }

  step(delta) {
    const list = this.sortedChats();
    if (!list.length) return;
    const i = list.findIndex((c) => c.id === this.current);
    const next = list[i < 0 ? 0 : Math.max(0, Math.min(list.length - 1, i + delta))];
    location.hash = '#/chat/' + encodeURIComponent(next.id);
  }

  // ---- live events --------------------------------------------------------------------------

  onEvent(e) {
    const c = e.chat ? this.chats.get(e.chat) : null;
    switch (e.type) {
      case 'message.created':
      case 'message.updated':
      case 'message.reaction': {
        const m = e.message;
        if (c && m && (!c.last_message || m.id >= c.last_message.id)) {
          c.last_message = m;
          c.last_date = Math.max(c.last_date || 0, m.date);
        }
        // Your own unread counts come from the chat itself (read state is per user).
        if (c && e.type === 'message.created' && m && m.direction === 'incoming') this.fetchChatSoon(e.chat);
        if (c) this.renderChats(); else if (e.chat) this.fetchChat(e.chat).then((n) => this.newChatNotice(n, m));
        if (c && e.type === 'message.created' && m && m.direction === 'incoming' && c.conversation?.assignee?.user === this.me.id) {
          notify(this.me, 'assigned', this.chatTitle(c), `${senderName(m)}: ${preview(m)}`, e.chat);
        }
        if (e.type === 'message.created' && m && m.direction === 'incoming') this.refreshAccounts();
        break;
      }
      case 'message.deleted':
        if (c) this.fetchChat(e.chat);
        this.refreshAccounts();
        break;
      case 'message.status':
        if (c && e.message && e.status === 'sent') { c.last_message = e.message; c.last_date = Math.max(c.last_date || 0, e.message.date); this.renderChats(); }
        break;
      case 'chat.read':
        if (c && typeof e.read_up_to === 'number') c.read_up_to = e.read_up_to;
        if (c && typeof e.unread === 'number') { c.unread = e.unread; this.renderChats(); }
        this.refreshAccounts();
        break;
      case 'chat.migrated':
        this.loadChats();
        break;
      case 'note.created':
        if (e.note && e.note.mentions.some((u) => u.user === this.me.id)) {
          notify(this.me, 'mention', `${e.note.by.name} mentioned you`, `In ${c ? this.chatTitle(c) : 'a conversation'}`, e.chat);
        }
        break;
      case 'conversation.assigned': case 'conversation.status': case 'conversation.labels':
        if (applyEvent(c, e)) this.renderChats(); else if (e.chat) this.fetchChat(e.chat);
        this.views.refreshCounts();
        break;
      case 'store.status':
        this.setStore(e);
        break;
      case 'update.progress':
        // Settings -> System follows the install (admins only receive these).
        dispatchEvent(new CustomEvent('lanbox:update-progress', { detail: e }));
        break;
      case 'account.status': {
        const a = this.accounts.find((x) => x.id === e.account);
        if (a) { a.status = e.status; a.status_detail = e.detail ?? null; this.renderAccounts(); }
        break;
      }
    }
    if (e.chat && e.chat === this.current) this.convo.onEvent(e);
    if (this.onPageEvent) this.onPageEvent(e);
  }

  /** A chat the list did not know, whose first message this is: a new conversation. */
  newChatNotice(c, m) {
    if (c && m && m.direction === 'incoming' && c.messages === 1) notify(this.me, 'conversation', 'New conversation', `${this.chatTitle(c)}: ${preview(m)}`, c.id);
  }

  /** Re-reads a chat once per burst of its events (a backlog arriving is one fetch). */
  fetchChatSoon(chat) {
    this.soon = this.soon || new Map();
    if (this.soon.has(chat)) return;
    this.soon.set(chat, setTimeout(() => { this.soon.delete(chat); this.fetchChat(chat); }, 150));
  }

  /** After the open chat was read (here or elsewhere), refresh its badge and the totals. */
  setUnread(chat, unread) {
    const c = this.chats.get(chat);
    if (c) { c.unread = unread; this.renderChats(); }
    this.refreshAccounts();
  }

  // ---- routes and keys ----------------------------------------------------------------------

  route() {
    const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
    const parts = path.split('/').map(decodeURIComponent);
    this.onPageEvent = null;
    if (parts[0] === 'search' && parts[1]) {
      this.searchInput.value = parts[1];
      this.showPage();
      renderSearch(this.page, parts[1], this, parseFilters(query));
    } else if (parts[0] === 'reports') {
      this.showPage();
      renderReports(this.page, this);
    } else if (parts[0] === 'settings') {
      this.showPage();
      renderSettings(this.page, parts[1] || (this.me.role === 'admin' ? 'accounts' : 'tokens'), this);
    } else {
      this.page.hidden = true;
      this.chatPane.hidden = false;
      this.convo.el.hidden = false;
      if (parts[0] === 'chat' && parts[1]) {
        this.current = parts[1];
        this.main.classList.add('in-chat');
        this.convo.open(parts[1], parts[2] === 'm' ? Number(parts[3]) : null);
      } else {
        this.current = null;
        this.main.classList.remove('in-chat');
        this.convo.close();
      }
      this.renderChats();
    }
  }

  showPage() {
    this.page.hidden = false;
    this.chatPane.hidden = true;
    this.convo.el.hidden = true;
  }

  onKey(e) {
    const typing = e.target.closest && e.target.closest('input, textarea, select, [contenteditable]');
    if (e.altKey && (e.key === 'ArrowDown' || e.key === 'ArrowUp')) { e.preventDefault(); this.step(e.key === 'ArrowDown' ? 1 : -1); return; }
    if (e.key === 'Escape' && typing && e.target.type === 'search') { e.target.blur(); return; }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === '/') { e.preventDefault(); this.searchInput.focus(); this.searchInput.select(); }
    else if (e.key === 'c' || e.key === 'i') { if (this.convo.focusComposer()) e.preventDefault(); }
    else if (e.key === 'l') { e.preventDefault(); (this.chatList.querySelector('[aria-current=true]') || this.chatList.querySelector('.chat'))?.focus(); }
    else if (e.key === '?') { e.preventDefault(); this.help(); }
  }

  help() {
    const rows = [['Alt + ↓ / Alt + ↑', 'next / previous chat'], ['l', 'focus the chat list (then ↑ ↓, Enter)'],
      ['c', 'write in the open chat'], ['Enter', 'send (Shift + Enter: new line)'], ['Esc', 'cancel the reply / leave the field'],
      ['/', 'search messages'], ['?', 'this help']];
    const d = h('dialog', { class: 'help', 'aria-label': 'Keyboard shortcuts' },
      h('h2', null, 'Keyboard shortcuts'),
      h('dl', { class: 'kv' }, rows.map(([k, v]) => [h('dt', null, h('kbd', null, k)), h('dd', null, v)])),
      h('div', { class: 'dlg-bar' }, h('button', { class: 'btn', type: 'button', onclick: () => d.close() }, 'Close')));
    d.addEventListener('close', () => d.remove());
    document.body.append(d);
    d.showModal();
  }

  async logout() {
    this.live.stop();
    try { await post('/api/v1/auth/logout'); } catch { /* the cookie is dropped either way */ }
    location.hash = '';
    location.reload();
  }
}
