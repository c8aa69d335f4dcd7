// Canned replies: the picker in the composer (`/` at the start opens it, `/short` filters it,
// arrows choose, Enter or Tab or a click inserts, Escape closes) and their management in
// Settings. Variables ({{contact.first_name}}, {{agent.name}}, ...) are filled in when a reply is
// inserted, from the conversation's contact panel data and the signed-in user.

import { h, replace, toast, toastError, ask, fullTime } from './dom.js';
import { get, post, patch, del, chatPath, explain } from './api.js';

/** Fills the variables of a reply (unknown ones stay as written; missing values are empty). */
export function fillVariables(text, values) {
  return text.replace(/\{\{\s*([a-z_.]+)\s*\}\}/g, (all, name) => (name in values ? values[name] ?? '' : all));
}

/** What the variables stand for in a conversation, for a user. */
async function variablesFor(chat, me) {
  const v = { 'contact.first_name': '', 'contact.last_name': '', 'contact.name': '', 'contact.username': '', 'agent.name': me.name };
  try {
    const c = (await get(chatPath(chat) + '/contact')).contact;
    if (c) Object.assign(v, { 'contact.first_name': c.first_name, 'contact.last_name': c.last_name || '', 'contact.name': c.name, 'contact.username': c.username ? '@' + c.username : '' });
  } catch { /* the reply goes in with the contact's variables empty */ }
  return v;
}

let pickerIds = 0;

export class CannedPicker {
  /** `composer` has `text` (the textarea), `convo` (with `chat` and `inbox.me`). */
  constructor(composer) {
    this.composer = composer;
    this.replies = null;
    this.shown = [];
    this.active = 0;
    this.id = 'canned-list-' + (++pickerIds);
    this.list = h('ul', { class: 'canned-picker', role: 'listbox', id: this.id, 'aria-label': 'Canned replies', hidden: true });
    const t = composer.text;
    t.setAttribute('aria-controls', this.id);
    t.setAttribute('aria-autocomplete', 'list');
    t.setAttribute('aria-expanded', 'false');
  }

  get open() { return !this.list.hidden; }

  /** The shortcut being typed (`/sho` → `sho`), or null when the text is not one. */
  query() {
    const m = /^\/([^\s/]*)$/u.exec(this.composer.text.value);
    return m ? m[1].toLowerCase() : null;
  }

  async onInput() {
    const q = this.query();
    if (q === null) { this.close(); return; }
    if (!this.open || this.replies === null) {
      // Fresh each time the picker opens: teammates change the team's replies.
      try { this.replies = (await get('/api/v1/canned')).replies; } catch (e) { this.replies = []; toastError('Canned replies: ' + explain(e)); }
      if (this.query() === null) return;
    }
    this.render(this.query());
  }

  render(q) {
    const seen = new Set();
    this.shown = this.replies.filter((r) => {
      if (seen.has(r.shortcut) || !(r.shortcut.startsWith(q) || (q.length > 1 && r.shortcut.includes(q)))) return false;
      seen.add(r.shortcut);
      return true;
    }).sort((a, b) => (b.shortcut.startsWith(q) - a.shortcut.startsWith(q)) || a.shortcut.localeCompare(b.shortcut));
    this.active = Math.min(this.active, Math.max(0, this.shown.length - 1));
    const items = this.shown.map((r, i) => h('li', {
      role: 'option', id: `${this.id}-${i}`, class: 'canned-item', 'aria-selected': i === this.active ? 'true' : 'false', 'data-shortcut': r.shortcut,
      onmousedown: (e) => e.preventDefault(), onclick: () => this.choose(r),
    }, h('span', { class: 'c-short' }, '/' + r.shortcut), h('span', { class: 'c-scope' }, r.scope), h('span', { class: 'c-text' }, r.text)));
    replace(this.list, items.length ? items : h('li', { class: 'canned-none' },
      this.replies.length ? 'No canned reply starts with /' + q : 'No canned replies yet (Settings → Canned replies).'));
    this.list.hidden = false;
    this.composer.text.setAttribute('aria-expanded', 'true');
    if (this.shown.length) this.composer.text.setAttribute('aria-activedescendant', `${this.id}-${this.active}`);
    else this.composer.text.removeAttribute('aria-activedescendant');
    const a = this.list.children[this.active];
    if (a && a.scrollIntoView) a.scrollIntoView({ block: 'nearest' });
  }

  close() {
    if (!this.open) return;
    this.list.hidden = true;
    this.active = 0;
    this.composer.text.setAttribute('aria-expanded', 'false');
    this.composer.text.removeAttribute('aria-activedescendant');
  }

  /** Handles a key while the picker is open; true when it was the picker's. */
  keys(e) {
    if (!this.open) return false;
    const n = this.shown.length;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      if (!n) return true;
      e.preventDefault();
      this.active = (this.active + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
      this.render(this.query() ?? '');
      return true;
    }
    if ((e.key === 'Enter' && !e.shiftKey && !e.isComposing) || e.key === 'Tab') {
      // Nothing matches: the text goes out as typed (a `/start` for a bot, say).
      if (!n) { this.close(); return false; }
      e.preventDefault();
      this.choose(this.shown[this.active]);
      return true;
    }
    if (e.key === 'Escape') { e.preventDefault(); this.close(); return true; }
    return false;
  }

  async choose(r) {
    const chat = this.composer.convo.chat;
    this.close();
    const values = await variablesFor(chat, this.composer.convo.inbox.me);
    if (chat !== this.composer.convo.chat) return;
    const t = this.composer.text;
    t.value = fillVariables(r.text, values);
    t.focus();
    t.setSelectionRange(t.value.length, t.value.length);
    t.dispatchEvent(new Event('input'));
  }
}

const VARIABLE_HELP = 'Variables, filled in when the reply is inserted: {{contact.first_name}}, {{contact.last_name}}, {{contact.name}}, {{contact.username}}, {{agent.name}}.';

/** Settings → Canned replies: the team's (admins manage them) and the caller's own. */
export async function cannedSettings(body, inbox, again) {
  const admin = inbox.me.role === 'admin';
  const { replies } = await get('/api/v1/canned');
  const rows = replies.map((r) => h('tr', { 'data-canned': r.id },
    h('td', { 'data-label': 'Shortcut' }, h('span', { class: 'mono' }, '/' + r.shortcut)),
    h('td', { 'data-label': 'Text', class: 'canned-text' }, r.text),
    h('td', { 'data-label': 'For' }, r.scope === 'team' ? 'Team' : 'Only me'),
    h('td', { 'data-label': 'Changed' }, fullTime(r.updated_at)),
    h('td', { class: 'actions' }, r.editable ? [
      h('button', { class: 'btn', type: 'button', onclick: () => edit(r).then((done) => done && again()) }, 'Edit…'), ' ',
      h('button', { class: 'btn danger', type: 'button', onclick: async () => {
        const yes = await ask({ title: `Delete /${r.shortcut}?`, confirm: 'Delete', danger: true,
          body: [r.scope === 'team' ? 'Nobody in the team can insert it any more.' : 'You can no longer insert it.'] });
        if (!yes) return;
        try { await del(`/api/v1/canned/${r.id}`); toast(`Deleted /${r.shortcut}`); again(); } catch (x) { toastError(explain(x)); }
      } }, 'Delete…')] : h('span', { class: 'muted' }, 'admins change it'))));
  const shortcut = h('input', { type: 'text', name: 'shortcut', placeholder: 'hello', autocomplete: 'off', maxlength: 33, required: true });
  const text = h('textarea', { name: 'text', rows: 3, maxlength: 4096, required: true, placeholder: 'Hello {{contact.first_name}}, this is {{agent.name}}.' });
  const scope = h('select', { name: 'scope', 'aria-label': 'Who can use it' },
    h('option', { value: 'personal' }, 'Only me'), admin ? h('option', { value: 'team' }, 'The whole team') : null);
  const err = h('p', { class: 'error', role: 'alert' });
  const form = h('form', { 'aria-label': 'Add a canned reply', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    try {
      const r = await post('/api/v1/canned', { shortcut: shortcut.value.trim(), text: text.value, scope: scope.value });
      toast(`Saved /${r.shortcut}`);
      again();
    } catch (x) { err.textContent = explain(x); }
  } }, h('fieldset', null, h('legend', null, 'Add a canned reply'),
    h('p', { class: 'muted' }, 'Type / at the start of a message and the shortcut to insert it. ',
      admin ? 'Team replies are for everybody; replies for you only are seen by nobody else.' : 'Yours are seen by nobody else; admins manage the team\'s.'),
    h('p', { class: 'muted' }, VARIABLE_HELP),
    h('div', { class: 'grid' }, h('label', null, 'Shortcut', shortcut), h('label', null, 'Who can use it', scope)),
    h('label', { class: 'canned-text-field' }, 'Text', text),
    h('button', { class: 'btn primary', type: 'submit' }, 'Save'), err));
  replace(body, h('table', { class: 'canned-table' },
    h('thead', null, h('tr', null, ['Shortcut', 'Text', 'For', 'Changed', ''].map((t) => h('th', null, t)))),
    h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: 5, class: 'muted' }, 'No canned replies yet.')))), form);
}

async function edit(r) {
  const shortcut = h('input', { type: 'text', value: r.shortcut, maxlength: 33, autocomplete: 'off' });
  const text = h('textarea', { maxlength: 4096 });
  text.value = r.text;
  return ask({ title: `Edit /${r.shortcut}`, confirm: 'Save', body: [VARIABLE_HELP],
    fields: [h('label', null, 'Shortcut', shortcut), h('label', null, 'Text', text)],
    check: async () => {
      try { await patch(`/api/v1/canned/${r.id}`, { shortcut: shortcut.value.trim(), text: text.value }); return null; } catch (x) { return explain(x); }
    } });
}
