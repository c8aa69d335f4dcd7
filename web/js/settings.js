// Settings for admins: Telegram accounts (add a bot or a person's own account, rename, rented, daily limit, webhook or
// polling, status and last error, remove or release), users (grants, passwords, disabling)
// and the system (version, certificate, uptime, counts, outbox backlog, storage use,
// attachment and S3 sync backlogs, backups: passphrase, back up now, download; and the update:
// slots, a bundle uploaded and checked, its install with progress, the reboot). Every
// user, agents included, manages their own API tokens here. Questions are asked in the page (`ask`), never with
// `window.prompt`, so a password is never shown.

import { h, replace, fullTime, toast, toastError, ask, size, fingerprint } from './dom.js';
import { get, post, patch, put, del, explain, sendFile } from './api.js';
import { labelSettings, notifySettings } from './team.js';
import { cannedSettings } from './canned.js';
import { userLoginForm } from './userlogin.js';

const ADMIN_TABS = [['accounts', 'Telegram accounts'], ['users', 'Users'], ['labels', 'Labels'], ['canned', 'Canned replies'], ['system', 'System'], ['tokens', 'API tokens'], ['notifications', 'Notifications']];
const AGENT_TABS = [['tokens', 'API tokens'], ['canned', 'Canned replies'], ['notifications', 'Notifications']];

export async function renderSettings(page, tab, inbox) {
  const admin = inbox.me.role === 'admin';
  const tabs = admin ? ADMIN_TABS : AGENT_TABS;
  if (!tabs.some(([id]) => id === tab)) tab = tabs[0][0];
  const body = h('div');
  replace(page, h('h1', null, 'Settings'),
    h('div', { class: 'tabs', role: 'tablist' }, tabs.map(([id, label]) => h('button', {
      role: 'tab', type: 'button', 'aria-selected': id === tab ? 'true' : 'false',
      onclick: () => { location.hash = '#/settings/' + id; },
    }, label))), body);
  try {
    if (tab === 'tokens') await tokens(body, inbox);
    else if (tab === 'canned') await cannedSettings(body, inbox, () => renderSettings(page, 'canned', inbox));
    else if (tab === 'users') await users(body, inbox);
    else if (tab === 'system') await system(body);
    else if (tab === 'labels') await labelSettings(body, inbox);
    else if (tab === 'notifications') await notifySettings(body, inbox);
    else await accounts(body, inbox);
  } catch (e) {
    replace(body, h('p', { class: 'error' }, explain(e)));
  }
}

/** The caller's own API tokens: list, create (the token shown once), revoke. */
async function tokens(body, inbox) {
  const list = await get('/api/v1/tokens');
  const again = () => renderSettings(body.parentElement, 'tokens', inbox);
  const rows = list.map((t) => h('tr', { 'data-token': t.id },
    h('td', { 'data-label': 'Label' }, t.label || h('span', { class: 'muted' }, 'no label')),
    h('td', { 'data-label': 'Starts with' }, h('span', { class: 'mono' }, t.prefix + '…')),
    h('td', { 'data-label': 'Created' }, fullTime(t.created_at)),
    h('td', { 'data-label': 'Expires' }, t.expires_at ? fullTime(t.expires_at) : 'never'),
    h('td', { class: 'actions' }, h('button', { class: 'btn danger', type: 'button', onclick: async () => {
      const yes = await ask({ title: `Revoke ${t.label || t.prefix + '…'}?`, confirm: 'Revoke', danger: true,
        body: ['Programs using this token stop working at once; live connections made with it are closed.'] });
      if (!yes) return;
      try { await del(`/api/v1/tokens/${encodeURIComponent(t.id)}`); toast('Token revoked'); again(); } catch (x) { toastError(explain(x)); }
    } }, 'Revoke…'))));
  const label = h('input', { type: 'text', name: 'label', placeholder: 'what uses it', autocomplete: 'off' });
  const days = h('input', { type: 'number', name: 'expires_in_days', min: 1, placeholder: 'never' });
  const err = h('p', { class: 'error', role: 'alert' });
  const shown = h('div');
  const form = h('form', { 'aria-label': 'Create an API token', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    const b = { label: label.value.trim() };
    if (days.value !== '') b.expires_in_days = Number(days.value);
    try {
      const t = await post('/api/v1/tokens', b);
      const value = h('input', { type: 'text', readonly: true, value: t.token, class: 'mono', 'aria-label': 'The new token' });
      replace(shown, h('div', { class: 'created-token', role: 'status' },
        h('p', null, h('strong', null, 'Copy the token now: '), 'it is shown only this once (lanbox keeps only its hash).'),
        value, ' ', h('button', { class: 'btn', type: 'button', onclick: () => { value.select(); navigator.clipboard?.writeText(t.token).catch(() => {}); toast('Copied'); } }, 'Copy'),
        ' ', h('button', { class: 'btn', type: 'button', onclick: again }, 'Done')));
      value.select();
    } catch (x) { err.textContent = explain(x); }
  } }, h('fieldset', null, h('legend', null, 'Create an API token'),
    h('p', { class: 'muted' }, `A token acts as you (${inbox.me.name}, ${inbox.me.role}) in the REST API and the WebSocket: send it as "Authorization: Bearer …".`),
    h('div', { class: 'grid' }, labelled('Label', label), labelled('Expires after (days)', days),
      h('button', { class: 'btn primary', type: 'submit' }, 'Create')), err));
  replace(body, shown, h('table', null,
    h('thead', null, h('tr', null, ['Label', 'Starts with', 'Created', 'Expires', ''].map((t) => h('th', null, t)))),
    h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: 5, class: 'muted' }, 'No API tokens.')))), form);
}

const labelled = (text, input) => h('label', null, text, input);

// A user account's history backfill, as one line: how far, how much, and what it is doing.
function backfillText(b) {
  if (b.limit === 'none') return 'History: not fetched';
  const state = b.state === 'paused'
    ? `paused: Telegram asks to wait until ${new Date(b.flood_wait_until * 1000).toLocaleTimeString()}`
    : { pending: 'waiting to start', listing: 'listing chats', running: 'fetching', done: 'done', off: 'off' }[b.state] ?? b.state;
  return `History (${b.limit === 'all' ? 'all' : `${b.days} days`}): ${b.dialogs_done} of ${b.dialogs_total} chats, ${b.messages} messages; ${state}`;
}

async function accounts(body, inbox) {
  const list = await get('/api/v1/accounts');
  const rows = list.map((a) => {
    const name = h('input', { type: 'text', value: a.name, 'aria-label': `Label of ${a.name}` });
    const rented = h('input', { type: 'checkbox', checked: a.rented, 'aria-label': `${a.name} is rented (hide login codes)` });
    const limit = h('input', { type: 'number', min: 0, value: a.daily_limit ?? '', placeholder: 'none', 'aria-label': `Daily limit of ${a.name}` });
    const b = a.backfill;
    const history = b ? h('select', { 'aria-label': `History of ${a.name}` },
      ...[['none', 'No history'], ['days', 'History of the last…'], ['all', 'All history']].map(([v, t]) => h('option', { value: v, selected: b.limit === v }, t))) : null;
    const days = b ? h('input', { type: 'number', min: 1, max: 3650, value: b.days ?? 30, 'aria-label': `Days of history of ${a.name}` }) : null;
    const backfill = () => (!b ? {} : history.value === 'days' ? { backfill: 'days', backfill_days: Number(days.value) } : { backfill: history.value });
    const save = h('button', { class: 'btn', type: 'button', onclick: async () => {
      try {
        await patch(`/api/v1/accounts/${a.id}`, { name: name.value.trim(), rented: rented.checked, daily_limit: limit.value === '' ? null : Number(limit.value), ...backfill() });
        toast(`Saved ${name.value.trim()}`);
        inbox.loadAccounts();
      } catch (e) { toastError(explain(e)); }
    } }, 'Save');
    const again = () => renderSettings(body.parentElement, 'accounts', inbox);
    const user = a.kind === 'user';
    const receive = user ? null : h('button', { class: 'btn', type: 'button', onclick: () => switchReceive(a).then((changed) => changed && again()) },
      a.mode === 'webhook' ? 'Switch to polling…' : 'Switch to webhook…');
    const remove = h('button', { class: 'btn', type: 'button', onclick: async () => {
      const yes = await ask({ title: `Remove ${a.name}?`, confirm: 'Remove', body: [
        user ? 'It is logged out of Telegram (the session ends there too) and stops receiving and sending. Its conversations and messages stay in the inbox, readable as before.'
          : 'Its token is erased and it stops receiving and sending. Its conversations and messages stay in the inbox, readable as before.'] });
      if (!yes) return;
      try { await del(`/api/v1/accounts/${a.id}`); toast(`Removed ${a.name}`); inbox.loadAccounts(); again(); } catch (e) { toastError(explain(e)); }
    } }, 'Remove…');
    const release = h('button', { class: 'btn danger', type: 'button', onclick: async () => {
      const typed = h('input', { type: 'text', autocomplete: 'off' });
      const yes = await ask({ title: `Release ${a.name}?`, confirm: 'Release and delete', danger: true, body: [
        'Releasing gives the account back (a rented number, a bot handed over). It deletes, and cannot be undone:',
        h('ul', null, h('li', null, 'every conversation, message and attachment only this account received (chats another account shares keep their messages);'),
          h('li', null, 'its token and its encryption key, so copies of its sealed data can no longer be read;'),
          h('li', null, 'its unsent outbox items.')),
        'It runs in the background and may take minutes on a large account.'],
      fields: [h('label', null, `Type ${a.name} to confirm`, typed)],
      check: () => (typed.value.trim() === a.name ? null : `Type the name exactly: ${a.name}`) });
      if (!yes) return;
      try { await del(`/api/v1/accounts/${a.id}?release=true`); toast(`Releasing ${a.name}…`); inbox.loadAccounts(); again(); } catch (e) { toastError(explain(e)); }
    } }, 'Release…');
    return h('tr', { 'data-account': a.id },
      h('td', { 'data-label': 'Account' }, name, h('div', { class: 'muted' }, user ? 'user account' : a.bot_username ? '@' + a.bot_username : '', ` · #${a.id} · `, h('span', { 'data-mode': a.mode }, a.mode))),
      h('td', { 'data-label': 'Status' }, h('span', { class: 'dot ' + a.status }), ' ', a.status.replace('_', ' '), a.status_detail ? h('div', { class: 'error' }, a.status_detail) : null,
        b ? h('div', { class: 'muted', 'data-backfill': b.state }, h('span', { class: 'backfill' }, backfillText(b)), h('div', null, history, ' ', days, ' days')) : null),
      h('td', { 'data-label': 'Rented' }, rented), h('td', { 'data-label': 'Daily limit' }, limit), h('td', { 'data-label': 'Unread' }, String(a.unread)),
      h('td', { class: 'actions' }, save, ' ', receive, ' ', remove, ' ', release));
  });
  const token = h('input', { type: 'password', name: 'token', autocomplete: 'off', required: true, placeholder: '123456:ABC…' });
  const name = h('input', { type: 'text', name: 'name', placeholder: 'default: bot username' });
  const rented = h('input', { type: 'checkbox', name: 'rented' });
  const limit = h('input', { type: 'number', min: 0, name: 'daily_limit', placeholder: 'none' });
  const apiBase = h('input', { type: 'text', name: 'api_base', placeholder: 'https://api.telegram.org' });
  const err = h('p', { class: 'error', role: 'alert' });
  const add = h('form', { 'aria-label': 'Add a Telegram bot', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = 'Checking the token with Telegram…';
    const b = { token: token.value.trim(), rented: rented.checked };
    if (name.value.trim()) b.name = name.value.trim();
    if (limit.value !== '') b.daily_limit = Number(limit.value);
    if (apiBase.value.trim()) b.api_base = apiBase.value.trim();
    try {
      const a = await post('/api/v1/accounts', b);
      toast(`Added @${a.bot_username || a.name}`);
      inbox.loadAccounts();
      renderSettings(body.parentElement, 'accounts', inbox);
    } catch (x) { err.textContent = explain(x); }
  } }, h('fieldset', null, h('legend', null, 'Add a Telegram bot'),
    h('div', { class: 'grid' }, labelled('Bot token', token), labelled('Label', name), labelled('Daily limit', limit),
      labelled('Bot API server (advanced)', apiBase), h('label', { class: 'check' }, rented, 'Rented (hide login codes)'),
      h('button', { class: 'btn primary', type: 'submit' }, 'Check and add')), err));
  replace(body, h('table', null,
    h('thead', null, h('tr', null, ['Account', 'Status', 'Rented', 'Daily limit', 'Unread', ''].map((t) => h('th', null, t)))),
    h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: 6, class: 'muted' }, 'No accounts yet.')))), add,
  userLoginForm(() => { inbox.loadAccounts(); renderSettings(body.parentElement, 'accounts', inbox); }));
  followBackfill(body, list);
}

// While a history backfill runs, its line follows it (every 3 s, as long as the list is shown).
function followBackfill(body, list) {
  const moving = (l) => l.some((a) => a.backfill && !['done', 'off'].includes(a.backfill.state));
  if (!moving(list)) return;
  setTimeout(async () => {
    if (!body.isConnected || !body.querySelector('[data-backfill]')) return;
    let now;
    try { now = await get('/api/v1/accounts'); } catch { now = list; }
    for (const a of now) {
      const line = a.backfill && body.querySelector(`tr[data-account="${a.id}"] [data-backfill]`);
      if (!line) continue;
      line.dataset.backfill = a.backfill.state;
      line.querySelector('.backfill').textContent = backfillText(a.backfill);
    }
    followBackfill(body, now);
  }, 3000);
}

async function users(body, inbox) {
  const [list, accts] = await Promise.all([get('/api/v1/users'), get('/api/v1/accounts')]);
  const grantBoxes = (u) => accts.map((a) => h('label', { class: 'check' }, h('input', {
    type: 'checkbox', checked: u.role === 'admin' || u.accounts.includes(a.id), disabled: u.role === 'admin',
    'data-account': a.id, 'aria-label': `${u.name} may see ${a.name}`,
    onchange: async (e) => {
      const boxes = [...e.target.closest('td').querySelectorAll('input')];
      try {
        await put(`/api/v1/users/${u.id}/grants`, { accounts: boxes.filter((b) => b.checked).map((b) => Number(b.dataset.account)) });
        toast(`Grants of ${u.name} saved`);
      } catch (x) { toastError(explain(x)); e.target.checked = !e.target.checked; }
    },
  }), a.name));
  const again = () => renderSettings(body.parentElement, 'users', inbox);
  const rows = list.map((u) => h('tr', { 'data-user': u.name },
    h('td', { 'data-label': 'User' }, h('strong', null, u.name), h('div', { class: 'muted' }, u.disabled ? 'disabled · ' : '', 'since ', fullTime(u.created_at)),
      h('select', { 'aria-label': `Role of ${u.name}`, disabled: u.id === inbox.me.id, onchange: async (e) => {
        try { await patch(`/api/v1/users/${u.id}`, { role: e.target.value }); toast(`${u.name} is now ${e.target.value === 'admin' ? 'an admin' : 'an agent'}`); again(); }
        catch (x) { toastError(explain(x)); e.target.value = u.role; }
      } }, h('option', { value: 'agent', selected: u.role === 'agent' }, 'Agent'), h('option', { value: 'admin', selected: u.role === 'admin' }, 'Admin'))),
    h('td', { 'data-label': 'Accounts it may see' }, u.role === 'admin' ? h('span', { class: 'muted' }, 'all accounts') : grantBoxes(u)),
    h('td', { class: 'actions' },
      h('button', { class: 'btn', type: 'button', onclick: async () => {
        try { await patch(`/api/v1/users/${u.id}`, { disabled: !u.disabled }); again(); } catch (x) { toastError(explain(x)); }
      } }, u.disabled ? 'Enable' : 'Disable'), ' ',
      h('button', { class: 'btn', type: 'button', onclick: () => resetPassword(u) }, 'Password…'), ' ',
      u.id === inbox.me.id ? null : h('button', { class: 'btn danger', type: 'button', onclick: async () => {
        const yes = await ask({ title: `Delete ${u.name}?`, confirm: 'Delete', danger: true,
          body: ['They are signed out everywhere and their API tokens stop working. Messages they sent stay.'] });
        if (!yes) return;
        try { await del(`/api/v1/users/${u.id}`); toast(`Deleted ${u.name}`); again(); } catch (x) { toastError(explain(x)); }
      } }, 'Delete…'))));
  const name = h('input', { type: 'text', name: 'name', required: true, autocomplete: 'off' });
  const role = h('select', { name: 'role' }, h('option', { value: 'agent' }, 'Agent'), h('option', { value: 'admin' }, 'Admin'));
  const pw = h('input', { type: 'password', name: 'password', required: true, minlength: 10, autocomplete: 'new-password' });
  const grants = h('div', null, accts.map((a) => h('label', { class: 'check' }, h('input', { type: 'checkbox', 'data-account': a.id }), a.name)));
  const err = h('p', { class: 'error', role: 'alert' });
  const form = h('form', { 'aria-label': 'Add a user', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    try {
      await post('/api/v1/users', { name: name.value.trim(), role: role.value, password: pw.value,
        accounts: [...grants.querySelectorAll('input:checked')].map((b) => Number(b.dataset.account)) });
      toast(`Added ${name.value.trim()}`);
      renderSettings(body.parentElement, 'users', inbox);
    } catch (x) { err.textContent = explain(x); }
  } }, h('fieldset', null, h('legend', null, 'Add a user'),
    h('div', { class: 'grid' }, labelled('User name', name), labelled('Role', role), labelled('Password', pw),
      labelled('Accounts (agents)', grants), h('button', { class: 'btn primary', type: 'submit' }, 'Add')), err));
  replace(body, h('table', null,
    h('thead', null, h('tr', null, ['User', 'Accounts it may see', ''].map((t) => h('th', null, t)))),
    h('tbody', null, rows)), form);
}

/** Sets a user's password in a dialog: typed twice in password fields, never shown. */
async function resetPassword(u) {
  const pw = h('input', { type: 'password', autocomplete: 'new-password', minlength: 10, required: true });
  const again = h('input', { type: 'password', autocomplete: 'new-password', required: true });
  const yes = await ask({ title: `New password for ${u.name}`, confirm: 'Set password',
    body: ['At least 10 characters. They are signed out of their other sessions.'],
    fields: [h('label', null, 'New password', pw), h('label', null, 'The same again', again)],
    check: async () => {
      if (pw.value.length < 10) return 'At least 10 characters.';
      if (pw.value !== again.value) return 'The two passwords differ.';
      try { await post(`/api/v1/users/${u.id}/password`, { password: pw.value }); return null; } catch (x) { return explain(x); }
    } });
  if (yes) toast(`Password of ${u.name} changed`);
}

/** Switches an account between polling and a webhook; resolves true when it changed. */
async function switchReceive(a) {
  const toWebhook = a.mode !== 'webhook';
  const base = h('input', { type: 'url', placeholder: 'https://inbox.example.org:8443', value: toWebhook ? `https://${location.host}` : '' });
  const selfSigned = h('input', { type: 'checkbox', checked: true });
  const fields = toWebhook ? [h('label', null, 'Public address Telegram reaches this box at (HTTPS, port 443, 80, 88 or 8443)', base),
    h('label', { class: 'check' }, selfSigned, 'Send this box\'s self-signed certificate to Telegram')] : [];
  return ask({
    title: toWebhook ? `Receive ${a.name} by webhook` : `Receive ${a.name} by polling`,
    confirm: toWebhook ? 'Switch to webhook' : 'Switch to polling',
    body: [toWebhook
      ? 'Telegram will push updates to this box, which must be reachable from the internet at the address below. Updates waiting at Telegram are kept.'
      : 'This box will fetch updates from Telegram itself (nothing needs to reach it from outside). The webhook is removed at Telegram.'],
    fields,
    check: async () => {
      try {
        await patch(`/api/v1/accounts/${a.id}`, toWebhook
          ? { mode: 'webhook', webhook_base: base.value.trim(), webhook_self_signed: selfSigned.checked }
          : { mode: 'polling' });
        toast(toWebhook ? `${a.name} now receives by webhook` : `${a.name} now polls Telegram`);
        return null;
      } catch (x) { return explain(x); }
    },
  });
}

/** Settings -> System -> Backup: the passphrase, a backup now, the generations kept. */
async function backups(box) {
  let st;
  try { st = await get('/api/v1/backups'); } catch (e) { replace(box, h('p', { class: 'error' }, 'Backups: ' + explain(e))); return; }
  const again = () => backups(box);
  const where = st.target === 's3' ? 'the S3 bucket (under backups/)' : 'this box (the backups folder of its data directory)';
  const every = st.every_s ? `every ${st.every_s % 86400 === 0 ? plural(st.every_s / 86400, 'day', 'days') : plural(Math.round(st.every_s / 3600), 'hour', 'hours')}` : 'only when asked';
  const status = h('p', { 'data-backup-status': '' });
  const now = h('button', { class: 'btn primary', type: 'button', disabled: !st.passphrase_set, onclick: async () => {
    now.disabled = true;
    status.textContent = 'Backing up and verifying…';
    try {
      const made = await post('/api/v1/backups', {});
      toast(`Backup ${made.name} written and verified (${size(made.bytes)})`);
      again();
    } catch (e) { status.textContent = ''; toastError('Backup: ' + explain(e)); now.disabled = false; }
  } }, 'Back up now');
  const setPass = h('button', { class: 'btn', type: 'button', onclick: async () => {
    const pw = h('input', { type: 'password', autocomplete: 'new-password', minlength: 12, required: true });
    const pw2 = h('input', { type: 'password', autocomplete: 'new-password', required: true });
    const yes = await ask({ title: st.passphrase_set ? 'Change the backup passphrase' : 'Set a backup passphrase', confirm: 'Save passphrase',
      body: ['Backups are encrypted with a key made from this passphrase. A restore needs it: keep it somewhere safe, away from the box. Nobody, lanbox included, can open a backup without it.',
        st.passphrase_set ? 'Backups made before keep their old passphrase.' : 'At least 12 characters; a few unrelated words are good.'],
      fields: [h('label', null, 'Backup passphrase', pw), h('label', null, 'The same again', pw2)],
      check: async () => {
        if (pw.value.length < 12) return 'At least 12 characters.';
        if (pw.value !== pw2.value) return 'The two passphrases differ.';
        try { await put('/api/v1/backups/passphrase', { passphrase: pw.value }); return null; } catch (x) { return explain(x); }
      } });
    if (yes) { toast('Backup passphrase saved'); again(); }
  } }, st.passphrase_set ? 'Change passphrase…' : 'Set passphrase…');
  const rows = st.backups.map((b) => h('tr', { 'data-backup': b.name },
    h('td', { 'data-label': 'Backup' }, b.name), h('td', { 'data-label': 'Made' }, fullTime(b.created_at)),
    h('td', { 'data-label': 'Size' }, size(b.bytes)), h('td', { 'data-label': 'Where' }, b.location === 's3' ? 'S3' : 'this box'),
    h('td', null, h('a', { href: `/api/v1/backups/${encodeURIComponent(b.name)}`, download: b.name }, 'Download'))));
  replace(box,
    h('p', null, st.passphrase_set
      ? `Backups go to ${where}, ${every}; the newest ${st.keep} are kept. Each is encrypted with the backup passphrase and verified after writing.`
      : 'No backup passphrase yet: set one to make backups (encrypted; restore with `lanbox restore`).'),
    h('p', null, now, ' ', setPass), status,
    rows.length ? h('table', null, h('thead', null, h('tr', null, ['Backup', 'Made', 'Size', 'Where', ''].map((t) => h('th', null, t)))), h('tbody', null, rows))
      : h('p', { class: 'muted' }, 'No backups yet.'));
}

/** Settings -> System -> Update: the A/B slots, a bundle uploaded and checked by RAUC, its
 * install into the other slot with progress, then the reboot the admin confirms. */
async function updates(box) {
  let st;
  try { st = await get('/api/v1/system/update'); } catch (e) { replace(box, h('p', { class: 'error' }, 'Update: ' + explain(e))); return; }
  const again = () => updates(box);
  const status = h('p', { 'data-update-status': '', role: 'status' });
  const bar = h('progress', { max: 100, value: st.install.percent, hidden: st.install.state !== 'installing' });
  const showInstall = (i) => {
    bar.hidden = i.state !== 'installing';
    bar.value = i.percent;
    status.className = i.state === 'failed' ? 'error' : '';
    status.textContent = i.state === 'installing' ? `Installing: ${i.percent}% ${i.message}`
      : i.state === 'failed' ? `The install failed; the running system is unchanged. ${i.error || ''}`
        : i.state === 'installed' ? 'Installed. Reboot to start the new version; if it does not come up healthy, the box goes back to this one by itself.' : '';
  };
  showInstall(st.install);
  const onProgress = (e) => {
    if (!box.isConnected) { removeEventListener('lanbox:update-progress', onProgress); return; }
    showInstall(e.detail);
    if (e.detail.state !== 'installing') again();
  };
  addEventListener('lanbox:update-progress', onProgress);
  if (!st.available && !st.bundle) {
    replace(box, h('p', { class: 'muted', 'data-update-unavailable': '' },
      'Updates through RAUC are not available on this system (a box installed from the .deb updates with apt). ',
      st.reason ? `RAUC says: ${st.reason}` : ''), updateUpload(st, again, status), status);
    return;
  }
  const sys = st.system;
  const slots = sys ? sys.slots.filter((s) => s.class === 'rootfs').map((s) => h('tr', { 'data-slot': s.bootname || s.name },
    h('td', { 'data-label': 'Slot' }, s.bootname || s.name), h('td', { 'data-label': 'State' }, s.state),
    h('td', { 'data-label': 'Boot status' }, s.boot_status || ''), h('td', { 'data-label': 'Version' }, s.version || 'unknown'),
    h('td', { 'data-label': 'Installed' }, s.installed_at || ''))) : [];
  const last = st.last ? h('p', { 'data-update-last': st.last.outcome || '' }, `Last update: ${st.last.version} into slot ${st.last.slot || '?'} — `,
    st.last.outcome === 'running' ? 'running now.' : st.last.outcome === 'rolled_back'
      ? `it did not come up healthy, so the box went back to slot ${st.last.from}.` : st.last.outcome === 'waiting_for_reboot' ? 'waiting for a reboot.' : 'outcome unknown.') : null;
  const b = st.bundle;
  const install = h('button', { class: 'btn primary', type: 'button', disabled: !b || st.install.state === 'installing' || !st.available, onclick: async () => {
    install.disabled = true;
    try { await post('/api/v1/system/update/install', {}); showInstall({ state: 'installing', percent: 0, message: 'starting' }); } catch (e) { toastError('Install: ' + explain(e)); install.disabled = false; }
  } }, 'Install');
  const discard = h('button', { class: 'btn', type: 'button', disabled: !b || st.install.state === 'installing', onclick: async () => {
    try { await del('/api/v1/system/update/bundle'); again(); } catch (e) { toastError(explain(e)); }
  } }, 'Discard');
  const reboot = st.install.state === 'installed' ? h('button', { class: 'btn danger', type: 'button', onclick: async () => {
    const yes = await ask({ title: 'Reboot the box now?', confirm: 'Reboot', danger: true,
      body: ['The box restarts into the new version: the inbox is away for a minute or two. Telegram keeps new messages meanwhile.'] });
    if (!yes) return;
    try { await post('/api/v1/system/reboot', {}); status.textContent = 'Rebooting… this page reconnects by itself.'; } catch (e) { toastError('Reboot: ' + explain(e)); }
  } }, 'Reboot now…') : null;
  const target = st.target ? ` It installs into slot ${st.target.bootname || st.target.name} (now ${st.target.version || 'unknown version'}); the running slot stays as it is.` : '';
  replace(box,
    sys ? h('p', null, `Board ${sys.compatible}; booted from slot ${sys.booted || '?'}.`) : h('p', { class: 'muted' }, `This system cannot install updates. RAUC says: ${st.reason || 'nothing'}`),
    slots.length ? h('table', null, h('thead', null, h('tr', null, ['Slot', 'State', 'Boot status', 'Version', 'Installed'].map((t) => h('th', null, t)))), h('tbody', null, slots)) : null,
    last,
    b ? h('p', { 'data-update-bundle': b.version }, `Bundle ${b.version} for ${b.compatible}, checked by RAUC: signed with this box's key.${target}`)
      : h('p', { class: 'muted' }, 'No bundle uploaded.'),
    h('p', null, updateUpload(st, again, status), ' ', install, ' ', discard, ' ', reboot),
    bar, status);
}

/** The file picker that uploads a bundle (streamed, with progress), checked by the box. */
function updateUpload(st, again, status) {
  const input = h('input', { type: 'file', accept: '.raucb', 'aria-label': 'Update bundle', onchange: async () => {
    const f = input.files[0];
    if (!f) return;
    if (f.size > st.max_bundle) { status.className = 'error'; status.textContent = `The file is larger than this box accepts (${size(st.max_bundle)}).`; return; }
    status.className = '';
    try {
      const r = await sendFile('PUT', '/api/v1/system/update/bundle', f, (done, total) => { status.textContent = `Uploading ${Math.round(100 * done / total)}%…`; });
      toast(`Bundle ${r.bundle.version} checked`);
      again();
    } catch (e) { status.className = 'error'; status.textContent = explain(e); }
    input.value = '';
  } });
  return h('label', null, 'Upload a bundle: ', input);
}

async function system(body) {
  const [health, stats] = await Promise.all([get('/api/v1/health'), get('/api/v1/stats')]);
  const up = health.uptime_s;
  const backupBox = h('section', { 'aria-label': 'Backup' }, h('p', { class: 'muted' }, 'Loading…'));
  backups(backupBox);
  const updateBox = h('section', { 'aria-label': 'Update' }, h('p', { class: 'muted' }, 'Loading…'));
  updates(updateBox);
  const kv = (rows) => h('dl', { class: 'kv' }, rows.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
  replace(body,
    kv([
      ['Version', health.version],
      ['Certificate SHA-256', fingerprint(health.certificate_sha256)],
      ['Running for', `${Math.floor(up / 86400)} d ${Math.floor(up % 86400 / 3600)} h ${Math.floor(up % 3600 / 60)} min`],
      ['Event log position', String(health.last_seq)],
      ['Chats', String(stats.totals.chats)],
      ['Messages', String(stats.totals.messages)],
      ['Unread', `${stats.totals.unread} in ${stats.totals.unread_chats} chats`],
      ['Outbox', stats.outbox.available ? `${stats.outbox.backlog} waiting, ${stats.outbox.failed} failed` : 'not available'],
      ...systemRows(stats.system),
    ]),
    h('h2', null, 'Backup'),
    backupBox,
    h('h2', null, 'Update'),
    updateBox,
    h('h2', null, 'By account'),
    h('table', null, h('thead', null, h('tr', null, ['Account', 'Chats', 'Messages', 'Unread'].map((t) => h('th', null, t)))),
      h('tbody', null, stats.by_account.map((a) => h('tr', null, h('td', { 'data-label': 'Account' }, a.name), h('td', { 'data-label': 'Chats' }, String(a.chats)),
        h('td', { 'data-label': 'Messages' }, String(a.messages)), h('td', { 'data-label': 'Unread' }, String(a.unread)))))));
}

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

// Storage use and attachment queues (`system` in the stats, sent to admins only). Each value
// carries `data-stat` so tests and scripts can find it.
function systemRows(sys) {
  const stat = (name, text, title) => h('span', { 'data-stat': name, title }, text);
  if (!sys) return [['Storage use', 'shown to admins only']];
  const st = sys.storage, q = sys.attachments;
  const counted = `Files and failures counted ${fullTime(sys.counted_at)}`;
  return [
    ['Disk', stat('disk', `${size(st.disk_free_bytes)} of ${size(st.disk_total_bytes)} free`)],
    ['Database', stat('database', size(st.database_bytes))],
    ['Attachments on this box', stat('attachments',
      `${size(st.attachment_bytes)} in ${plural(st.attachment_files, 'file', 'files')}`
      + (st.cache_limit_bytes !== null ? ` (cache limit ${size(st.cache_limit_bytes)})` : ''), counted)],
    ['S3 sync backlog', stat('s3', q.s3_configured
      ? `${plural(q.sync_backlog, 'file', 'files')} to upload, ${plural(q.delete_backlog, 'object', 'objects')} to delete`
      : 'S3 not configured (files are kept on this box only)')],
    ['Attachment fetching', stat('fetch', `${q.fetch_backlog} waiting, ${q.failed} failed`, counted)],
  ];
}
