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
    this.el = h('div', { class: 'team-bar' }, this.assignee, this.status, this.snoozed, this.labelBox, this.addLabel,
      h('button', { class: 'btn history', type: 'button', onclick: () => this.history() }, 'History'));
  }

  chat() { return this.convo.chatRecord(); }

  async open(chat) {
    this.people = [];
    this.render();
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
      if (c) { c.conversation = conv; this.convo.inbox.renderChats(); this.convo.inbox.views.refreshCounts(); }
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
