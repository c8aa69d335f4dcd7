// The open conversation: history with infinite scroll both ways, albums grouped, live
// changes, typing notices, mark-read, jumping to a message, the photo viewer; the composer
// below it is compose.js.

import { h, replace, dayLabel, toastError, ask } from './dom.js';
import { get, post, patch, del, qs, chatPath, explain } from './api.js';
import { Composer } from './compose.js';
import { ContactPanel } from './contact.js';
import { renderMessage, senderName, preview } from './render.js';
import { ConversationBar } from './team.js';

const PAGE = 50;

export class Conversation {
  constructor(inbox) {
    this.inbox = inbox;
    this.chat = null;
    this.msgs = new Map();
    this.els = new Map();
    this.attachments = new Map();
    this.waiting = new Map();
    this.recheck = new Map();
    this.typers = new Map();
    this.readMark = null;
    this.build();
    this.team = new ConversationBar(this);
    this.composer = new Composer(this);
    this.contact = new ContactPanel(this);
    this.head.append(this.contact.toggle);
  }

  build() {
    this.title = h('h2', null, '');
    this.sub = h('div', { class: 'sub' });
    this.typing = h('div', { class: 'typing', 'aria-live': 'polite' });
    const back = h('button', { class: 'icon-btn back', type: 'button', 'aria-label': 'Back to the chat list', onclick: () => { location.hash = '#/'; } }, '←');
    // Not a live region itself (re-rendering would re-announce everything): new messages are
    // announced once through `announcer`.
    this.list = h('div', { class: 'messages', role: 'list', 'aria-label': 'Messages', tabindex: 0 });
    this.announcer = h('div', { class: 'sr-only', 'aria-live': 'polite' });
    this.list.addEventListener('scroll', () => this.onScroll());
    // Someone scrolling (wheel, touch, keys) takes over from the automatic positioning.
    for (const ev of ['wheel', 'touchmove', 'keydown']) this.list.addEventListener(ev, () => { this.anchor = null; }, { passive: true });
    const unreadBtn = h('button', { class: 'btn mark-unread', type: 'button', title: 'Mark the newest received message unread (for you only) and go back to the list',
      onclick: () => this.markUnread() }, 'Mark unread');
    // A plain link: the browser streams the transcript straight to a file (the session cookie
    // authenticates a GET; nothing is held in the page).
    this.exportLink = h('a', { class: 'btn export-pdf', download: '', title: 'Download this conversation as a PDF transcript' }, 'Export PDF');
    this.exportNotes = h('a', { class: 'btn export-pdf-notes', download: '', title: 'The PDF transcript with the team\'s private notes (for the team, not the customer)' }, 'PDF with notes');
    this.head = h('div', { class: 'convo-head' }, back, h('div', { class: 'head-main' }, this.title, this.sub, this.typing), this.exportLink, this.exportNotes, unreadBtn);
    this.empty = h('div', { class: 'empty' }, 'Choose a conversation.');
    this.el = h('section', { class: 'convo', 'aria-label': 'Conversation' }, this.empty);
    document.body.append(this.announcer);
  }

  close() {
    this.chat = null;
    replace(this.el, this.empty);
  }

  chatRecord() { return this.inbox.chats.get(this.chat); }

  async open(chat, focus) {
    const same = chat === this.chat;
    if (!same) {
      this.chat = chat;
      this.exportLink.href = chatPath(chat) + '/export.pdf';
      this.exportNotes.href = chatPath(chat) + '/export.pdf?notes=include';
      this.msgs.clear();
      this.els.clear();
      this.typers.clear();
      this.composer.reset();
      replace(this.el, this.head, this.team.el, this.list, this.composer.el, this.contact.el);
      this.contact.show(chat);
      replace(this.list, h('div', { class: 'notice' }, 'Loading…'));
    }
    const c = this.inbox.chats.get(chat) || await this.inbox.fetchChat(chat);
    if (chat !== this.chat) return;
    if (!c) { this.unavailable('This conversation does not exist or is not shared with you.'); return; }
    this.title.textContent = this.inbox.chatTitle(c);
    this.sub.textContent = [c.kind, c.username ? '@' + c.username : null, c.accounts.map((a) => 'via ' + this.inbox.accountName(a)).join(', ')].filter(Boolean).join(' · ');
    if (!same) this.team.open(chat); else this.team.render();
    // Pages are fetched first and applied only if this chat is still the open one (another
    // open() may have started meanwhile).
    let loaded = null;
    try {
      if (focus) {
        const [older, newer] = await Promise.all([
          get(chatPath(chat) + '/messages' + qs({ before: focus + 1, limit: 30 })),
          get(chatPath(chat) + '/messages' + qs({ after: focus, limit: 30 })),
        ]);
        loaded = { messages: [...older.messages, ...newer.messages], older: older.older, newer: newer.newer };
      } else if (!same || !this.msgs.size) {
        loaded = await get(chatPath(chat) + '/messages' + qs({ limit: PAGE }));
      }
    } catch (e) {
      if (chat !== this.chat) return;
      if (e.status === 403 || e.status === 404) this.unavailable('This conversation does not exist or is not shared with you.');
      else replace(this.list, h('div', { class: 'empty error' }, explain(e)));
      return;
    }
    if (chat !== this.chat) return;
    if (loaded) {
      this.msgs.clear();
      this.els.clear();
      this.add(loaded.messages);
      this.older = loaded.older;
      // Where "New messages" goes: after what was read when the chat was opened.
      this.readMark = c.unread ? c.read_up_to ?? -Infinity : null;
      this.newer = loaded.newer;
    }
    this.render();
    const firstNew = !focus && loaded && this.readMark !== null ? this.list.querySelector('.unread-mark') : null;
    if (focus) { this.anchor = focus; this.flash(focus); } else if (firstNew) {
      // Opened where your unread part begins; the rest is read as you scroll to it.
      this.anchor = null;
      this.pinned = false;
      firstNew.scrollIntoView({ block: 'start' });
    } else { this.anchor = null; this.pinned = true; this.list.scrollTop = this.list.scrollHeight; }
    this.maybeMarkRead();
  }

  /** Edits a message you sent (its text), in a dialog; the change arrives as message.updated. */
  async editMessage(m) {
    const chat = this.chat;
    const text = h('textarea', { 'aria-label': 'New text', dir: 'auto' });
    text.value = m.text || '';
    await ask({ title: 'Edit your message', confirm: 'Save', body: ['Telegram shows the message as edited to everyone in the chat.'], fields: [text],
      check: async () => {
        if (!text.value.trim()) return 'The text cannot be empty (delete the message instead).';
        try { await patch(chatPath(chat) + `/messages/${m.id}`, { text: text.value }); return null; } catch (x) { return explain(x); }
      } });
  }

  /** Deletes a message you sent, for everyone in the chat, after asking. */
  async deleteMessage(m) {
    const chat = this.chat;
    const yes = await ask({ title: 'Delete your message?', confirm: 'Delete for everyone', danger: true,
      body: ['It is deleted in Telegram for everyone in the chat, and from this inbox.'] });
    if (!yes) return;
    try { await del(chatPath(chat) + `/messages/${m.id}`); } catch (x) { toastError('Delete: ' + explain(x)); }
  }

  /** Marks the newest received message unread for you and leaves the chat (staying would
   *  read it again). */
  async markUnread() {
    const chat = this.chat;
    const last = this.sorted().filter((m) => m.direction === 'incoming').pop();
    if (!chat || !last) return;
    try {
      const r = await post(chatPath(chat) + '/read', { up_to: last.id - 1 });
      const c = this.chatRecord();
      if (c) c.read_up_to = last.id - 1;
      this.inbox.setUnread(r.chat, r.unread);
      location.hash = '#/';
    } catch (x) { toastError('Mark unread: ' + explain(x)); }
  }

  /** A chat the user may not read: a notice and no composer (nothing to send into). */
  unavailable(text) {
    this.title.textContent = 'Not available';
    this.sub.textContent = '';
    replace(this.el, this.head, this.list);
    replace(this.list, h('div', { class: 'empty', role: 'status' }, text));
  }

  add(messages) {
    for (const m of messages) {
      this.msgs.set(m.id, m);
      this.els.delete(m.id);
      if (m.media_group) this.els.delete('g:' + m.media_group);
    }
  }

  /** Oldest first: by date, then by key (keys follow Telegram's order within a chat). */
  sorted() { return [...this.msgs.values()].sort((a, b) => a.date - b.date || a.id - b.id); }

  /** Rebuilds the list from cached elements (new or changed messages get new ones). */
  render(keep = 'bottom') {
    const l = this.list;
    const atBottom = l.scrollHeight - l.scrollTop - l.clientHeight < 80;
    const anchor = keep === 'top' ? l.querySelector('.msg, .service') : null;
    const anchorTop = anchor ? anchor.getBoundingClientRect().top : 0;
    const nodes = [];
    if (this.older) nodes.push(h('div', { class: 'notice' }, 'Loading older messages…'));
    else if (this.msgs.size) nodes.push(h('div', { class: 'notice' }, 'Start of the conversation'));
    else nodes.push(h('div', { class: 'empty' }, 'No messages yet.'));
    let day = '';
    let marked = false;
    const list = this.sorted();
    // Private notes go among the messages by time (those before the loaded pages wait for them).
    const notes = this.team.notes.sorted();
    let ni = 0;
    if (this.older && list.length) while (ni < notes.length && notes[ni].at < list[0].date) ni++;
    for (let i = 0; i < list.length; i++) {
      const m = list[i];
      while (ni < notes.length && notes[ni].at < m.date) nodes.push(this.team.notes.el(notes[ni++]));
      const d = dayLabel(m.date);
      if (d !== day) { nodes.push(h('div', { class: 'day' }, d)); day = d; }
      if (this.readMark !== null && !marked && m.direction === 'incoming' && m.id > this.readMark) {
        nodes.push(h('div', { class: 'day unread-mark', role: 'separator' }, 'New messages'));
        marked = true;
      }
      if (m.media_group) {
        const group = [m];
        while (i + 1 < list.length && list[i + 1].media_group === m.media_group) group.push(list[++i]);
        const key = 'g:' + m.media_group;
        if (!this.els.has(key)) this.els.set(key, renderMessage(m, this.ctx(), group));
        nodes.push(this.els.get(key));
        continue;
      }
      if (!this.els.has(m.id)) this.els.set(m.id, renderMessage(m, this.ctx()));
      const el = this.els.get(m.id);
      // A run of messages from one sender within a few minutes shows the name once.
      const prev = nodes[nodes.length - 1];
      const p = i > 0 ? list[i - 1] : null;
      el.classList.toggle('cont', !!(p && prev && prev.classList.contains('msg') && m.kind !== 'service' && p.kind !== 'service'
        && p.direction === m.direction && senderName(p) === senderName(m) && m.date - p.date < 300));
      nodes.push(el);
    }
    if (!this.newer) while (ni < notes.length) nodes.push(this.team.notes.el(notes[ni++]));
    for (const p of this.composer.pending.values()) nodes.push(p.el);
    if (this.newer) nodes.push(h('div', { class: 'notice' }, 'Loading newer messages…'));
    l.replaceChildren(...nodes);
    if (anchor && anchor.isConnected) l.scrollTop += anchor.getBoundingClientRect().top - anchorTop;
    else if (keep === 'bottom' && atBottom) l.scrollTop = l.scrollHeight;
  }

  /** `render()` once per frame, for bursts of live events. */
  renderSoon() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      if (this.chat) this.render();
    });
  }

  ctx() {
    if (this._ctx && this._ctx.chat === this.chat) return this._ctx;
    const chat = this.chat;
    this._ctx = {
      chat,
      attachments: (m) => {
        const key = `${chat}/${m.id}`;
        if (!this.attachments.has(key)) {
          const p = get(chatPath(chat) + `/messages/${m.id}/attachments`).then((r) => r.attachments);
          p.catch(() => this.attachments.delete(key));
          this.attachments.set(key, p);
        }
        return this.attachments.get(key);
      },
      waitFor: (m, f) => {
        // Woken by the attachment.ready event, or by a re-check with growing pauses (the event
        // may have come before the answer that said "pending").
        const key = `${chat}/${m.id}`;
        this.waiting.set(key, f);
        const pause = Math.min(30000, (this.recheck.get(key) || 1000) * 2);
        this.recheck.set(key, pause);
        setTimeout(() => {
          if (this.waiting.get(key) !== f || chat !== this.chat) return;
          this.waiting.delete(key);
          this.attachments.delete(key);
          f();
        }, pause);
      },
      grew: () => chat === this.chat && this.grew(),
      view: (url, alt, name) => this.viewer(url, alt, name),
      reply: (m) => this.composer.setReply(m),
      edit: (m) => this.editMessage(m),
      remove: (m) => this.deleteMessage(m),
      jump: (tg) => this.jumpTelegram(tg),
      quote: (r) => {
        const m = [...this.msgs.values()].find((x) => x.telegram_id === r.message_id);
        return m ? { who: senderName(m), text: preview(m) } : null;
      },
      fetchQuote: async (r) => {
        try {
          const m = await get(chatPath(chat) + `/messages/${r.message_id}`);
          return { who: senderName(m), text: preview(m) };
        } catch { return null; }
      },
    };
    return this._ctx;
  }

  async jumpTelegram(tg) {
    const m = [...this.msgs.values()].find((x) => x.telegram_id === tg);
    if (m) { this.flash(m.id); return; }
    location.hash = `#/chat/${encodeURIComponent(this.chat)}/m/${tg}`;
  }

  flash(id) {
    const el = this.list.querySelector(`[data-id="${id}"]`);
    if (!el) return;
    el.scrollIntoView({ block: 'center' });
    el.classList.add('flash');
    el.focus({ preventScroll: true });
    setTimeout(() => el.classList.remove('flash'), 2500);
  }

  notice(text) {
    if (!this.chat) return;
    this.list.append(h('div', { class: 'notice reconnected' }, text));
  }

  /** Media that finished loading moved things: keep the bottom, or the message jumped to, in view. */
  grew() {
    if (this.anchor) this.list.querySelector(`[data-id="${this.anchor}"]`)?.scrollIntoView({ block: 'center' });
    else if (this.pinned) this.list.scrollTop = this.list.scrollHeight;
  }

  async onScroll() {
    const l = this.list;
    this.pinned = l.scrollHeight - l.scrollTop - l.clientHeight < 80;
    if (this.loading) return;
    if (this.older && l.scrollTop < 300) {
      this.loading = true;
      const chat = this.chat;
      try {
        const page = await get(chatPath(chat) + '/messages' + qs({ before: this.older, limit: PAGE }));
        if (chat === this.chat) { this.add(page.messages); this.older = page.older; this.render('top'); }
      } catch (e) { toastError(explain(e)); } finally { this.loading = false; }
    } else if (this.newer && l.scrollHeight - l.scrollTop - l.clientHeight < 300) {
      this.loading = true;
      const chat = this.chat;
      try {
        const page = await get(chatPath(chat) + '/messages' + qs({ after: this.newer, limit: PAGE }));
        if (chat === this.chat) { this.add(page.messages); this.newer = page.newer; this.render('none'); }
      } catch (e) { toastError(explain(e)); } finally { this.loading = false; }
    }
    this.maybeMarkRead();
  }

  /** The newest message whose bottom edge is on screen (what the user has actually seen). */
  lastSeen() {
    const box = this.list.getBoundingClientRect();
    let best = null;
    for (const el of this.list.querySelectorAll('.msg[data-id], .service[data-id]')) {
      const r = el.getBoundingClientRect();
      if (r.bottom <= box.bottom + 2 && r.bottom > box.top) {
        const ids = [Number(el.dataset.id), ...[...el.querySelectorAll('[data-id]')].map((x) => Number(x.dataset.id))];
        for (const id of ids) if (id && (best === null || id > best)) best = id;
      }
    }
    return best;
  }

  /** Marks your read position up to the newest message you have seen on screen (read state
   *  is yours alone: teammates keep theirs). */
  async maybeMarkRead() {
    const c = this.chatRecord();
    if (!c || !c.unread || document.hidden || !this.msgs.size || this.marking) return;
    const upTo = this.lastSeen();
    if (upTo === null || (c.read_up_to !== null && c.read_up_to !== undefined && upTo <= c.read_up_to)) return;
    this.marking = true;
    try {
      const chat = this.chat;
      const r = await post(chatPath(chat) + '/read', { up_to: upTo });
      c.read_up_to = upTo;
      this.inbox.setUnread(r.chat, r.unread);
      // The "New messages" divider has done its job once the chat is read: it goes after a
      // moment (long enough to see where the new part began).
      if (this.readMark !== null && !r.unread) {
        clearTimeout(this.markTimer);
        this.markTimer = setTimeout(() => { if (this.chat === chat && this.readMark !== null) { this.readMark = null; this.renderSoon(); } }, 4000);
      }
    } catch (e) { toastError('Mark read: ' + explain(e)); } finally { this.marking = false; }
  }

  onEvent(e) {
    if (e.type.startsWith('conversation.')) { this.team.render(); this.contact.renderLabels(); return; }
    if (this.team.notes.onEvent(e)) return;
    switch (e.type) {
      case 'message.created': case 'message.updated': case 'message.reaction':
        if (e.message && !this.newer) {
          this.composer.dropPendingFor(e.message);
          this.add([e.message]);
          this.renderSoon();
          if (e.type === 'message.created') {
            requestAnimationFrame(() => this.maybeMarkRead());
            if (e.message.direction === 'incoming') this.announcer.textContent = `${senderName(e.message)}: ${preview(e.message)}`;
          }
        }
        break;
      case 'message.deleted': {
        const m = this.msgs.get(e.message_id);
        if (m) {
          this.msgs.delete(e.message_id);
          this.els.delete(e.message_id);
          if (m.media_group) this.els.delete('g:' + m.media_group);
          this.renderSoon();
        }
        break;
      }
      case 'message.status': this.composer.onStatus(e); break;
      case 'attachment.ready': {
        const key = `${this.chat}/${e.message_id}`;
        this.attachments.delete(key);
        const f = this.waiting.get(key);
        if (f) { this.waiting.delete(key); f(); }
        break;
      }
      case 'typing':
        if (e.user !== this.inbox.me.name) {
          this.typers.set(e.user, Date.now());
          this.showTyping();
          setTimeout(() => this.showTyping(), 6000);
        }
        break;
    }
  }

  showTyping() {
    const now = Date.now();
    const names = [...this.typers].filter(([, t]) => now - t < 5500).map(([n]) => n);
    this.typing.textContent = names.length ? `${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} typing…` : '';
  }

  focusComposer() { return this.composer.focus(); }

  viewer(url, alt, name) {
    const d = h('dialog', { class: 'viewer', 'aria-label': alt },
      h('img', { src: url, alt }),
      h('div', { class: 'dlg-bar' }, h('a', { class: 'btn', href: url, download: name }, 'Download'),
        h('button', { class: 'btn', type: 'button', onclick: () => d.close() }, 'Close')));
    d.addEventListener('close', () => d.remove());
    d.addEventListener('click', (e) => e.target === d && d.close());
    document.body.append(d);
    d.showModal();
  }
}
