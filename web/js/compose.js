// The composer of the open conversation: reply-to, file attach with upload progress, typing
// sent while writing, and each message's way out (queued, sent, failed with the reason, retry),
// with errors said plainly (daily limit, file too large, not connected).

import { h, replace, size } from './dom.js';
import { get, post, chatPath, upload, explain } from './api.js';
import { renderMessage, senderName, preview } from './render.js';
import { CannedPicker } from './canned.js';

export class Composer {
  constructor(convo) {
    this.convo = convo;
    this.pending = new Map();
    this.early = new Map();
    this.replyTo = null;
    this.file = null;
    this.lastTyping = 0;
    this.text = h('textarea', { rows: 1, placeholder: 'Write a message…', 'aria-label': 'Message', maxlength: 4096,
      onkeydown: (e) => this.keys(e), oninput: () => this.onInput() });
    this.fileInput = h('input', { type: 'file', class: 'sr-only', tabindex: -1, 'aria-hidden': 'true', onchange: () => this.pickFile() });
    this.replyBar = h('div', { class: 'replybar', hidden: true });
    this.attachBar = h('div', { class: 'attachbar', hidden: true });
    this.err = h('div', { class: 'err', role: 'alert' });
    this.sendBtn = h('button', { class: 'btn primary', type: 'submit', 'aria-label': 'Send' }, 'Send');
    const form = h('form', { onsubmit: (e) => { e.preventDefault(); this.send(); } },
      h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Attach a file', title: 'Attach a file', onclick: () => this.fileInput.click() }, '📎'),
      this.fileInput, this.text, this.sendBtn);
    this.canned = new CannedPicker(this);
    this.el = h('div', { class: 'composer' }, this.canned.list, this.replyBar, this.attachBar, form, this.err);
  }

  /** A fresh composer for another chat. */
  reset() {
    this.pending.clear();
    this.replyTo = null;
    this.file = null;
    this.renderBars();
    this.err.textContent = '';
    this.text.value = '';
    this.canned.close();
  }

  focus() {
    if (!this.convo.chat || !this.text.isConnected) return false;
    this.text.focus();
    return true;
  }

  keys(e) {
    if (this.canned.keys(e)) return;
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.send(); }
    else if (e.key === 'Escape') {
      if (this.replyTo) { this.replyTo = null; this.renderBars(); } else this.text.blur();
    }
  }

  onInput() {
    this.canned.onInput();
    this.text.style.height = 'auto';
    this.text.style.height = Math.min(this.text.scrollHeight, 160) + 'px';
    const now = Date.now();
    if (this.text.value && now - this.lastTyping > 4000) {
      this.lastTyping = now;
      post(chatPath(this.convo.chat) + '/typing').catch(() => {});
    }
  }

  setReply(m) {
    this.replyTo = m;
    this.renderBars();
    this.text.focus();
  }

  /** Whether this box takes files with a send (its OpenAPI document says so). */
  async canSendFiles() {
    if (this.fileSends === undefined) {
      try {
        const doc = await get('/api/v1/openapi.json');
        this.fileSends = !!doc.components.schemas.SendMessage.properties.attachment;
      } catch { return false; }
    }
    return this.fileSends;
  }

  async pickFile() {
    const file = this.fileInput.files[0] || null;
    this.fileInput.value = '';
    this.err.textContent = '';
    if (file && !(await this.canSendFiles())) {
      this.err.textContent = `${file.name}: sending files is not available on this box yet (it can receive them).`;
      return;
    }
    this.file = file;
    this.renderBars();
    this.text.focus();
  }

  renderBars() {
    this.replyBar.hidden = !this.replyTo;
    if (this.replyTo) {
      replace(this.replyBar, h('span', { class: 'txt' }, 'Replying to ', h('strong', null, senderName(this.replyTo)), ': ', preview(this.replyTo)),
        h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Cancel the reply', onclick: () => { this.replyTo = null; this.renderBars(); } }, '✕'));
    }
    this.attachBar.hidden = !this.file;
    if (this.file) {
      this.progress = h('progress', { max: 100, value: 0, 'aria-label': 'Upload progress' });
      replace(this.attachBar, h('span', { class: 'txt' }, '📎 ', this.file.name, ' · ', size(this.file.size)), this.progress,
        h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Remove the file', onclick: () => { this.file = null; this.renderBars(); } }, '✕'));
    }
  }

  sendingAccount() {
    const c = this.convo.chatRecord();
    if (!c) return null;
    return this.convo.inbox.filter.account !== null && c.accounts.includes(this.convo.inbox.filter.account) ? this.convo.inbox.filter.account : c.accounts[0];
  }

  async send() {
    const text = this.text.value.trim();
    if (!this.convo.chat || (!text && !this.file)) return;
    this.err.textContent = '';
    const chat = this.convo.chat;
    const body = { text, reply_to: this.replyTo ? this.replyTo.id : null, account: this.sendingAccount(),
      idempotency_key: crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random() };
    if (this.file) {
      const file = this.file;
      this.sendBtn.disabled = true;
      try {
        const up = await upload(body.account, file, (done, total) => { if (this.progress) this.progress.value = Math.round(100 * done / total); });
        body.attachment = up.id;
      } catch (e) {
        this.err.textContent = file.name + ': ' + (e.code === 'too_large' ? 'the file is too large for this box.' : explain(e));
        this.sendBtn.disabled = false;
        return;
      } finally { this.sendBtn.disabled = false; }
    }
    const pending = this.pendingBubble(chat, body);
    this.text.value = '';
    this.onInput();
    const reply = this.replyTo;
    this.replyTo = null;
    this.file = null;
    this.renderBars();
    try {
      const item = await post(chatPath(chat) + '/messages', body);
      if (chat !== this.convo.chat) return;
      pending.el.dataset.outbox = item.id;
      this.pending.set(item.id, pending);
      this.convo.render();
      this.convo.list.scrollTop = this.convo.list.scrollHeight;
      const early = this.early.get(item.id);
      if (early) { this.early.delete(item.id); this.onStatus(early); }
    } catch (e) {
      this.text.value = text;
      this.replyTo = reply;
      this.renderBars();
      this.err.textContent = 'Not sent: ' + explain(e);
    }
  }

  /** The bubble of a message on its way, until the sent message replaces it. */
  pendingBubble(chat, body) {
    const el = renderMessage({ id: 0, telegram_id: 0, chat, direction: 'outgoing', date: Math.floor(Date.now() / 1000), kind: 'text',
      text: body.text, entities: [], status: 'queued', sender: { name: this.convo.inbox.me.name }, sent_by: { user: this.convo.inbox.me.id, name: this.convo.inbox.me.name }, reply_to: null, reactions: [] }, this.convo.ctx());
    el.classList.add('pending');
    return { text: body.text, body, el };
  }

  /** Sends a failed message again (a new idempotency key: the failed item is final). */
  async retry(id) {
    const old = this.pending.get(id);
    if (!old) return;
    this.pending.delete(id);
    const chat = this.convo.chat;
    const body = { ...old.body, idempotency_key: crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random() };
    const p = this.pendingBubble(chat, body);
    try {
      const item = await post(chatPath(chat) + '/messages', body);
      if (chat !== this.convo.chat) return;
      p.el.dataset.outbox = item.id;
      this.pending.set(item.id, p);
      this.convo.render();
      const early = this.early.get(item.id);
      if (early) { this.early.delete(item.id); this.onStatus(early); }
    } catch (e) {
      this.pending.set(id, old);
      this.convo.render();
      this.err.textContent = 'Not sent: ' + explain(e);
    }
  }

  onStatus(e) {
    const id = e.outbox && e.outbox.id;
    const p = id ? this.pending.get(id) : null;
    if (!p) {
      if (id) this.early.set(id, e);
      if (e.message && this.convo.msgs.has(e.message.id)) { this.convo.add([e.message]); this.convo.render(); }
      return;
    }
    const st = p.el.querySelector('.status');
    if (st) {
      st.className = 'status ' + e.status;
      st.dataset.status = e.status;
      st.textContent = (e.status === 'failed' ? '⚠ failed' : e.status === 'sent' ? '✓ sent' : e.status === 'read' ? '✓✓ read' : '🕓 ' + e.status) + (e.status_reason ? ': ' + e.status_reason : '');
    }
    if (e.status === 'failed' && !p.el.querySelector('.retry')) {
      p.el.querySelector('.meta').append(h('button', { class: 'btn retry', type: 'button', 'aria-label': 'Send this message again', onclick: () => this.retry(id) }, 'Retry'));
    }
    if (e.status === 'sent' && e.message) {
      this.pending.delete(id);
      this.convo.add([e.message]);
      this.convo.render();
    }
  }

  dropPendingFor(m) {
    if (m.direction !== 'outgoing' || (m.sent_by && m.sent_by.user !== this.convo.inbox.me.id)) return;
    for (const [id, p] of this.pending) if (p.text === m.text) { this.pending.delete(id); return; }
  }
}
