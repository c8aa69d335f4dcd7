// The team's work on conversations: the "Mine / Unassigned / All" views with their counts and
// the status and label filters above the chat list; the bar in an open conversation that
// assigns it, sets its status (snooze until a time), labels it and shows its activity trail.
// Changes arrive from everyone as conversation.* events and are applied with `applyEvent`.

import { h, replace, fullTime, toastError, ask, debounce } from './dom.js';
import { get, post, put, del as api_del, qs, chatPath, explain } from './api.js';

const STATUSES = [['open', 'Open'], ['pending', 'Pending'], ['snoozed', 'Snoozed'], ['resolved', 'Resolved']];
const statusName = (s) => (STATUSES.find(([v]) => v === s) || [s, s])[1];

/** The box's labels, read once per page load and after an admin changes them. */
export const labels = {
  list: [],
  async load() {
    try { this.list = await get('/api/v1/labels'); } catch (e) { toastError('Labels: ' + explain(e)); }
    return this.list;
  },
  byId(id) { return this.list.find((l) => l.id === id); },
};

export function labelChip(id) {
  const l = labels.byId(id);
  if (!l) return null;
  const chip = h('span', { class: 'label-chip', 'data-label': id }, l.name);
  chip.style.setProperty('--label', l.color);
  return chip;
}

/** Applies a conversation.* event to a chat record from the list (returns true if it did). */
export function applyEvent(c, e) {
  if (!c || !e.type.startsWith('conversation.')) return false;
  const conv = c.conversation || (c.conversation = { status: 'open', snoozed_until: null, assignee: null, labels: [] });
  if (e.type === 'conversation.assigned') conv.assignee = e.assignee || null;
  if (e.type === 'conversation.status') { conv.status = e.status; conv.snoozed_until = e.snoozed_until ?? null; }
  if (e.type === 'conversation.labels') conv.labels = e.labels || [];
  return true;
}

/** Who did a change, for people: "you", a name, or "lanbox" for the box itself. */
function byName(by, me) {
  if (!by) return 'lanbox';
  return by.user === me ? 'you' : by.name || `user ${by.user}`;
}

export function describe(a, me) {
  const who = byName(a.by, me);
  switch (a.type) {
    case 'assigned': return a.assignee ? `${who} assigned it to ${a.assignee.user === me ? 'you' : a.assignee.name}` : `${who} unassigned it`;
    case 'status': return a.status === 'snoozed' && a.snoozed_until
      ? `${who} snoozed it until ${new Date(a.snoozed_until * 1000).toLocaleString()}` : `${who} marked it ${statusName(a.status).toLowerCase()}`;
    case 'labels': return a.labels.length ? `${who} set the labels ${a.labels.map((l) => labels.byId(l)?.name || l).join(', ')}` : `${who} removed the labels`;
    case 'reopened': return 'a new message reopened it';
    case 'exported': return `${who} exported it (${a.format === 'pdf' ? 'PDF' : 'JSON Lines'})`;
    default: return a.type;
  }
}

/** The view tabs and filters above the chat list. `inbox.filter` gains view, status, label. */
export class ListViews {
  constructor(inbox) {
    this.inbox = inbox;
    const f = inbox.filter;
    f.view = 'all';
    f.status = '';
    f.label = null;
    this.counts = { mine: 0, unassigned: 0, all: 0 };
    this.tabs = h('div', { class: 'views', role: 'tablist', 'aria-label': 'Conversations' });
    this.status = h('select', { 'aria-label': 'Status', onchange: () => { f.status = this.status.value; inbox.loadChats(); } },
      h('option', { value: '' }, 'Any status'), STATUSES.map(([v, n]) => h('option', { value: v }, n)));
    this.label = h('select', { 'aria-label': 'Label', onchange: () => { f.label = this.label.value ? Number(this.label.value) : null; inbox.loadChats(); } });
    this.el = h('div', { class: 'view-bar' }, this.tabs, this.status, this.label);
    this.refreshCounts = debounce(() => this.loadCounts(), 200);
    this.render();
  }

  /** The query the list is loaded with. */
  query() {
    const f = this.inbox.filter;
    return { assignee: f.view === 'mine' ? 'me' : f.view === 'unassigned' ? 'none' : null, status: f.status || null, label: f.label };
  }

  matches(c) {
    const f = this.inbox.filter;
    const conv = c.conversation || { status: 'open', assignee: null, labels: [] };
    if (f.view === 'mine' && conv.assignee?.user !== this.inbox.me.id) return false;
    if (f.view === 'unassigned' && conv.assignee) return false;
    if (f.status && conv.status !== f.status) return false;
    if (f.label !== null && !conv.labels.includes(f.label)) return false;
    return true;
  }

  setCounts(counts) {
    if (!counts) return;
    this.counts = counts;
    this.render();
  }

  async loadCounts() {
    const f = this.inbox.filter;
    try {
      const page = await get('/api/v1/chats' + qs({ account: f.account, unread: f.unread ? 'true' : null, kind: f.kind, status: f.status || null, label: f.label, limit: 1 }));
      this.setCounts(page.counts);
    } catch { /* the next change tries again */ }
  }

  render() {
    const f = this.inbox.filter;
    const tab = (v, name) => h('button', { class: 'tab', type: 'button', role: 'tab', 'data-view': v, 'aria-selected': f.view === v ? 'true' : 'false',
      onclick: () => { f.view = v; this.render(); this.inbox.loadChats(); } }, name, ' ', h('span', { class: 'count', 'data-count': this.counts[v] }, String(this.counts[v])));
    replace(this.tabs, tab('mine', 'Mine'), tab('unassigned', 'Unassigned'), tab('all', 'All'));
    replace(this.label, h('option', { value: '' }, 'Any label'),
      labels.list.map((l) => h('option', { value: l.id, selected: f.label === l.id }, l.name)));
  }
}

/** The bar in an open conversation: assignee, status, labels, history. */
export class ConversationBar {
  constructor(convo) {
    this.convo = convo;
    this.assignee = h('select', { class: 'assignee', 'aria-label': 'Assignee', onchange: () => this.assign() });
    this.status = h('select', { class: 'status', 'aria-label': 'Status', onchange: () => this.setStatus() },
      STATUSES.map(([v, n]) => h('option', { value: v }, v === 'snoozed' ? 'Snooze…' : n)));
    this.snoozed = h('span', { class: 'muted snoozed' });
    this.labelBox = h('span', { class: 'labels' });
    this.addLabel = h('select', { class: 'add-label', 'aria-label': 'Add a label', onchange: () => this.changeLabels(Number(this.addLabel.value), true) });
    this.notes = new Notes(convo);
    this.el = h('div', { class: 'team-bar' }, this.assignee, this.status, this.snoozed, this.labelBox, this.addLabel,
      h('button', { class: 'btn history', type: 'button', onclick: () => this.history() }, 'History'),
      h('button', { class: 'btn add-note', type: 'button', onclick: () => this.notes.write() }, 'Add note'));
  }

  chat() { return this.convo.chatRecord(); }

  async open(chat) {
    this.people = [];
    this.render();
    this.notes.open(chat);
    try {
      const people = await get(chatPath(chat) + '/assignees');
      if (chat === this.convo.chat) { this.people = people; this.render(); }
    } catch (e) { toastError('Assignees: ' + explain(e)); }
  }

  render() {
    const c = this.chat();
    const conv = (c && c.conversation) || { status: 'open', snoozed_until: null, assignee: null, labels: [] };
    const me = this.convo.inbox.me.id;
    const people = [...this.people];
    if (conv.assignee && !people.some((p) => p.user === conv.assignee.user)) people.push(conv.assignee);
    replace(this.assignee, h('option', { value: '' }, 'Unassigned'),
      people.map((p) => h('option', { value: p.user, selected: conv.assignee?.user === p.user }, p.user === me ? `${p.name} (you)` : p.name || `user ${p.user}`)));
    this.status.value = conv.status;
    this.el.dataset.status = conv.status;
    this.snoozed.textContent = conv.status === 'snoozed' && conv.snoozed_until ? `until ${fullTime(conv.snoozed_until)}` : '';
    replace(this.labelBox, conv.labels.map((id) => {
      const chip = labelChip(id);
      if (chip) chip.append(h('button', { class: 'chip-x', type: 'button', 'aria-label': `Remove label ${labels.byId(id).name}`, onclick: () => this.changeLabels(id, false) }, '×'));
      return chip;
    }));
    const free = labels.list.filter((l) => !conv.labels.includes(l.id));
    replace(this.addLabel, h('option', { value: '' }, '+ Label'), free.map((l) => h('option', { value: l.id }, l.name)));
    this.addLabel.hidden = !free.length;
  }

  async change(path, body, put_ = false) {
    const chat = this.convo.chat;
    try {
      const conv = await (put_ ? put : post)(chatPath(chat) + path, body);
      const c = this.convo.inbox.chats.get(chat);
      if (c) { c.conversation = conv; this.convo.inbox.renderChats(); this.convo.inbox.views.refreshCounts(); this.convo.contact.renderLabels(); }
    } catch (e) { toastError(explain(e)); }
    this.render();
  }

  assign() {
    const v = this.assignee.value;
    return this.change('/assign', { assignee: v ? Number(v) : null });
  }

  async setStatus() {
    const status = this.status.value;
    if (status !== 'snoozed') return this.change('/status', { status });
    const until = await this.askSnooze();
    if (until === null) { this.render(); return; }
    return this.change('/status', { status, snoozed_until: until });
  }

  /** Asks until when; a Unix time or null when cancelled. */
  async askSnooze() {
    const now = new Date();
    const at = (d, hour) => { const x = new Date(now); x.setDate(x.getDate() + d); x.setHours(hour, 0, 0, 0); return x; };
    const options = [['1 hour', new Date(now.getTime() + 3600e3)], ['Tomorrow, 9:00', at(1, 9)], ['Next week, 9:00', at(7, 9)]];
    const pick = h('select', { 'aria-label': 'Snooze until' }, options.map(([n, d], i) => h('option', { value: i }, n)));
    const ok = await ask({ title: 'Snooze this conversation', confirm: 'Snooze',
      body: ['It leaves the open conversations until then, or until the customer writes again.'], fields: [pick] });
    return ok ? Math.floor(options[Number(pick.value)][1].getTime() / 1000) : null;
  }

  changeLabels(id, add) {
    const c = this.chat();
    if (!id || !c) return;
    const now = (c.conversation?.labels || []).filter((l) => l !== id);
    return this.change('/labels', { labels: add ? [...now, id] : now }, true);
  }

  async history() {
    const chat = this.convo.chat;
    let page;
    try { page = await get(chatPath(chat) + '/activity' + qs({ limit: 100 })); } catch (e) { toastError('History: ' + explain(e)); return; }
    const me = this.convo.inbox.me.id;
    const rows = page.activity.map((a) => h('li', { 'data-type': a.type }, h('time', { datetime: new Date(a.at * 1000).toISOString() }, fullTime(a.at)), ' ', describe(a, me)));
    await ask({ title: 'History of this conversation', confirm: 'Close',
      body: [rows.length ? h('ol', { class: 'activity' }, rows) : h('p', { class: 'muted' }, 'Nobody has assigned, labelled or changed the status of this conversation yet.')] });
  }
}

/** Settings → Labels (admins): the box's labels, create and delete. */
export async function labelSettings(body, inbox) {
  const list = await labels.load();
  inbox.views.render();
  const again = () => labelSettings(body, inbox);
  const name = h('input', { type: 'text', name: 'name', maxlength: 40, placeholder: 'billing, vip, urgent…', autocomplete: 'off', required: true });
  const color = h('input', { type: 'color', name: 'color', value: '#2563eb', 'aria-label': 'Colour' });
  const err = h('p', { class: 'error', role: 'alert' });
  const form = h('form', { 'aria-label': 'Create a label', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    try { await post('/api/v1/labels', { name: name.value.trim(), color: color.value }); again(); } catch (x) { err.textContent = explain(x); }
  } }, h('label', null, 'Name ', name), h('label', null, 'Colour ', color), h('button', { class: 'btn primary', type: 'submit' }, 'Create label'), err);
  const rows = list.map((l) => h('tr', { 'data-label-id': l.id },
    h('td', { 'data-label': 'Label' }, labelChip(l.id)),
    h('td', { class: 'actions' }, h('button', { class: 'btn danger', type: 'button', onclick: async () => {
      const yes = await ask({ title: `Delete the label ${l.name}?`, confirm: 'Delete', danger: true, body: ['It is taken off every conversation that has it.'] });
      if (!yes) return;
      try { await api_del(`/api/v1/labels/${l.id}`); again(); } catch (x) { toastError(explain(x)); }
    } }, 'Delete…'))));
  replace(body, h('p', { class: 'muted' }, 'Agents put labels on conversations; the chat list filters by them.'),
    rows.length ? h('table', { class: 'grid' }, h('tbody', null, rows)) : h('p', { class: 'muted' }, 'No labels yet.'), form);
}

// ---- private notes --------------------------------------------------------------------------

/** A conversation's notes, shown among its messages by time, and written from the bar. */
export class Notes {
  constructor(convo) {
    this.convo = convo;
    this.byId = new Map();
    this.els = new Map();
  }

  async open(chat) {
    this.byId.clear();
    this.els.clear();
    try {
      const page = await get(chatPath(chat) + '/notes' + qs({ limit: 200 }));
      if (chat !== this.convo.chat) return;
      for (const n of page.notes) this.byId.set(n.id, n);
      this.convo.renderSoon();
    } catch (e) { toastError('Notes: ' + explain(e)); }
  }

  sorted() { return [...this.byId.values()].sort((a, b) => a.at - b.at || a.id - b.id); }

  onEvent(e) {
    if (e.type === 'note.created' && e.note) this.byId.set(e.note.id, e.note);
    else if (e.type === 'note.deleted') { this.byId.delete(e.note_id); this.els.delete(e.note_id); }
    else return false;
    this.convo.renderSoon();
    return true;
  }

  el(n) {
    if (this.els.has(n.id)) return this.els.get(n.id);
    const me = this.convo.inbox.me;
    const mine = n.by.user === me.id;
    // `@name` of a mentioned teammate stands out; the rest is text.
    const names = new Set(n.mentions.map((m) => '@' + m.name));
    const parts = n.text.split(/(@[A-Za-z0-9._-]+)/).map((w) => (names.has(w.toLowerCase()) ? h('span', { class: 'mention' }, w) : w));
    const el = h('div', { class: 'note', role: 'listitem', 'data-note': n.id, 'aria-label': `Private note by ${mine ? 'you' : n.by.name}` },
      h('div', { class: 'note-head' }, h('span', { class: 'note-tag' }, 'Private note'), ' ', mine ? 'you' : n.by.name || `user ${n.by.user}`,
        ' · ', fullTime(n.at),
        mine || me.role === 'admin' ? h('button', { class: 'chip-x', type: 'button', 'aria-label': 'Delete this note', onclick: () => this.remove(n) }, '×') : null),
      h('div', { class: 'note-text', dir: 'auto' }, parts));
    this.els.set(n.id, el);
    return el;
  }

  async write() {
    const chat = this.convo.chat;
    const text = h('textarea', { 'aria-label': 'Note', dir: 'auto', rows: 4, placeholder: 'Only your team sees this. @name tells a teammate.' });
    await ask({ title: 'Add a private note', confirm: 'Add note', body: ['Notes are never sent to Telegram.'], fields: [text],
      check: async () => {
        if (!text.value.trim()) return 'Write something first.';
        try {
          const n = await post(chatPath(chat) + '/notes', { text: text.value });
          if (chat === this.convo.chat) { this.byId.set(n.id, n); this.convo.renderSoon(); }
          return null;
        } catch (x) { return explain(x); }
      } });
  }

  async remove(n) {
    const yes = await ask({ title: 'Delete this note?', confirm: 'Delete', danger: true, body: ['The team will not see it any more.'] });
    if (!yes) return;
    try { await api_del(chatPath(this.convo.chat) + `/notes/${n.id}`); } catch (x) { toastError(explain(x)); }
  }
}

// ---- notifications ----------------------------------------------------------------------------

const PREFS = { conversation: 'A new conversation', assigned: 'A message in a conversation assigned to you', mention: 'A note that mentions you', sound: 'Play a sound' };

/** What this user wants to be told of, kept in this browser (per user). */
export function notifyPrefs(me) {
  try { return { conversation: true, assigned: true, mention: true, sound: false, ...JSON.parse(localStorage.getItem(`lanbox.notify.${me.id}`) || '{}') }; } catch { return { conversation: true, assigned: true, mention: true, sound: false }; }
}

function beep() {
  try {
    const ac = new AudioContext();
    const o = ac.createOscillator();
    const g = ac.createGain();
    o.frequency.value = 880;
    g.gain.setValueAtTime(0.15, ac.currentTime);
    g.gain.exponentialRampToValueAtTime(0.001, ac.currentTime + 0.25);
    o.connect(g).connect(ac.destination);
    o.start();
    o.stop(ac.currentTime + 0.25);
  } catch { /* no audio here */ }
}

/** Tells the user of `kind` (a key of PREFS) when they want it and are not looking at it. */
export function notify(me, kind, title, body, chat) {
  const p = notifyPrefs(me);
  if (!p[kind]) return;
  const looking = !document.hidden && document.hasFocus() && location.hash === '#/chat/' + encodeURIComponent(chat);
  if (looking) return;
  if ('Notification' in window && Notification.permission === 'granted') {
    const n = new Notification(title, { body, tag: `${kind}:${chat}`, icon: document.querySelector('link[rel=icon]')?.href });
    n.onclick = () => { window.focus(); location.hash = '#/chat/' + encodeURIComponent(chat); n.close(); };
  }
  if (p.sound) beep();
}

/** Settings → Notifications: what to be told of, and the browser's permission. */
export async function notifySettings(body, inbox) {
  const me = inbox.me;
  const prefs = notifyPrefs(me);
  const perm = () => ('Notification' in window ? Notification.permission : 'unsupported');
  const state = h('p', { class: 'muted', 'data-permission': perm() });
  const show = () => {
    state.dataset.permission = perm();
    state.textContent = { granted: 'This browser shows lanbox notifications.', denied: 'This browser blocks lanbox notifications: allow them in the site settings.',
      default: 'This browser has not been asked yet.', unsupported: 'This browser cannot show notifications.' }[perm()];
  };
  show();
  const ask_ = h('button', { class: 'btn', type: 'button', onclick: async () => { if ('Notification' in window) await Notification.requestPermission(); show(); } }, 'Allow notifications');
  const boxes = Object.entries(PREFS).map(([k, label]) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name: k, checked: prefs[k], onchange: (e) => {
      const p = notifyPrefs(me);
      p[k] = e.target.checked;
      localStorage.setItem(`lanbox.notify.${me.id}`, JSON.stringify(p));
    } }), ' ', label));
  replace(body, h('p', null, 'Notifications come while lanbox is in a background tab or another conversation is open. These choices are kept in this browser.'),
    state, ask_, h('fieldset', null, h('legend', null, 'Tell me of'), boxes));
}

/** The tab's icon with your unread count on it (the plain icon at zero). */
let iconBase = null;
let iconImg = null;
export function setFavicon(count) {
  const link = document.querySelector('link[rel=icon]');
  if (!link) return;
  if (!iconBase) iconBase = link.href;
  if (!count) { link.href = iconBase; delete link.dataset.count; return; }
  const draw = () => {
    const c = document.createElement('canvas');
    c.width = c.height = 64;
    const g = c.getContext('2d');
    g.drawImage(iconImg, 0, 0, 64, 64);
    g.fillStyle = '#dc2626';
    g.beginPath();
    g.arc(44, 20, 20, 0, 2 * Math.PI);
    g.fill();
    g.fillStyle = '#fff';
    g.font = 'bold 26px sans-serif';
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.fillText(count > 99 ? '99' : String(count), 44, 21);
    link.href = c.toDataURL('image/png');
    link.dataset.count = String(count);
  };
  if (iconImg && iconImg.complete) return draw();
  iconImg = new Image();
  iconImg.onload = draw;
  iconImg.src = iconBase;
}
