// Signing in, and the first run: the admin account (with the setup code from the box's
// console), a Telegram bot token checked with Telegram, and the certificate fingerprint to
// compare with the console.

import { h, replace, fingerprint as fingerprintEl } from './dom.js';
import { get, post, explain } from './api.js';

function field(label, input) {
  const id = 'f-' + Math.random().toString(36).slice(2);
  input.id = id;
  return [h('label', { for: id }, label), input];
}

export function loginView(root, fingerprint, done) {
  const user = h('input', { type: 'text', name: 'username', autocomplete: 'username', required: true, autofocus: true });
  const pass = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const err = h('p', { class: 'error', role: 'alert' });
  const btn = h('button', { class: 'btn primary', type: 'submit' }, 'Sign in');
  const form = h('form', { class: 'card', 'aria-label': 'Sign in', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    btn.disabled = true;
    try {
      const r = await post('/api/v1/auth/login', { username: user.value.trim(), password: pass.value });
      done(r.user);
    } catch (x) {
      err.textContent = x.code === 'invalid_credentials' ? 'Wrong user name or password.' : explain(x);
      btn.disabled = false;
    }
  } }, h('h1', null, 'Sign in to lanbox'), field('User name', user), field('Password', pass), err,
  h('div', { class: 'row' }, btn),
  fingerprint ? h('p', { class: 'muted' }, 'Certificate SHA-256 (compare with the box’s console): ', fingerprintEl(fingerprint)) : null);
  replace(root, form);
  user.focus();
}

const steps = (n) => h('ol', { class: 'steps', 'aria-label': 'Set-up steps' },
  ['Admin', 'Telegram bot', 'Done'].map((s, i) => h('li', { class: i === n ? 'on' : null, 'aria-current': i === n ? 'step' : null }, `${i + 1}. ${s}`)));

export function setupView(root, fingerprint, done) {
  const code = h('input', { type: 'text', name: 'setup_code', autocomplete: 'off', required: true, placeholder: 'XXXXX-XXXXX-XXXXX', spellcheck: 'false' });
  const user = h('input', { type: 'text', name: 'username', autocomplete: 'username', required: true, value: 'admin' });
  const pass = h('input', { type: 'password', name: 'password', autocomplete: 'new-password', required: true, minlength: 10 });
  const pass2 = h('input', { type: 'password', name: 'password2', autocomplete: 'new-password', required: true, minlength: 10 });
  const err = h('p', { class: 'error', role: 'alert' });
  const btn = h('button', { class: 'btn primary', type: 'submit' }, 'Create the admin');
  replace(root, h('form', { class: 'card', 'aria-label': 'First run', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    if (pass.value !== pass2.value) { err.textContent = 'The passwords differ.'; return; }
    btn.disabled = true;
    try {
      await post('/api/v1/setup', { username: user.value.trim(), password: pass.value, setup_code: code.value });
      const r = await post('/api/v1/auth/login', { username: user.value.trim(), password: pass.value });
      botStep(root, fingerprint, r.user, done);
    } catch (x) {
      err.textContent = x.code === 'bad_setup_code' ? 'That is not the setup code printed on the box’s console.' : explain(x);
      btn.disabled = false;
    }
  } }, steps(0), h('h1', null, 'Welcome to lanbox'),
  h('p', null, 'First, check that this page really comes from your box: the fingerprint below must match the one the box printed on its console.'),
  fingerprintEl(fingerprint, 'p'),
  field('Setup code (printed on the box’s console)', code), field('Admin user name', user),
  field('Password (at least 10 characters)', pass), field('Password again', pass2), err,
  h('div', { class: 'row' }, btn, h('button', { class: 'btn', type: 'button', onclick: () => restoreView(root, fingerprint) }, 'Restore from a backup instead'))));
  code.focus();
}

/** First run, the other way: a backup file of another box, its passphrase, the setup code.
 *  The box restores it, restarts on it, and the page then signs in to the restored box. */
function restoreView(root, fingerprint) {
  const code = h('input', { type: 'text', name: 'setup_code', autocomplete: 'off', required: true, placeholder: 'XXXXX-XXXXX-XXXXX', spellcheck: 'false' });
  const file = h('input', { type: 'file', name: 'backup', required: true, accept: '.lbk' });
  const pass = h('input', { type: 'password', name: 'passphrase', autocomplete: 'off', required: true });
  const err = h('p', { class: 'error', role: 'alert' });
  const note = h('p', { class: 'muted', role: 'status' });
  const btn = h('button', { class: 'btn primary', type: 'submit' }, 'Restore');
  replace(root, h('form', { class: 'card', 'aria-label': 'Restore from a backup', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    const f = file.files[0];
    if (!f) { err.textContent = 'Choose the backup file (lanbox-….lbk).'; return; }
    btn.disabled = true;
    try {
      note.textContent = 'Uploading the backup…';
      await uploadBackup(f, code.value, (done, total) => { note.textContent = `Uploading the backup… ${Math.floor(100 * done / total)}%`; });
      note.textContent = 'Decrypting and checking every record…';
      const r = await post('/api/v1/setup/restore', { setup_code: code.value, passphrase: pass.value });
      note.textContent = `Restored ${r.records} records. The box is restarting on them…`;
      await restarted();
      location.reload();
    } catch (x) {
      note.textContent = '';
      err.textContent = x.code === 'bad_setup_code' ? 'That is not the setup code printed on the box’s console.'
        : x.code === 'wrong_passphrase' ? 'Wrong passphrase for this backup. Nothing was changed.'
          : x.code === 'bad_backup' ? 'This file is not a whole lanbox backup: ' + x.message : explain(x);
      btn.disabled = false;
    }
  } }, h('h1', null, 'Restore from a backup'),
  h('p', null, 'Bring back a lanbox backup on this new box: its messages, users, accounts and keys. Nothing is changed unless the whole backup decrypts and checks. Users sign in with their old passwords afterwards.'),
  fingerprintEl(fingerprint, 'p'),
  field('Setup code (printed on the box’s console)', code), field('Backup file', file), field('Backup passphrase', pass), err, note,
  h('div', { class: 'row' }, btn, h('button', { class: 'btn', type: 'button', onclick: () => setupView(root, fingerprint) }, 'Back'))));
  code.focus();
}

/** Streams the backup file to the box, with upload progress (fetch has none). */
function uploadBackup(file, code, onProgress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('POST', '/api/v1/setup/restore/upload');
    x.setRequestHeader('content-type', 'application/octet-stream');
    x.setRequestHeader('x-setup-code', code);
    x.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded, e.total);
    x.onload = () => {
      let body = null;
      try { body = JSON.parse(x.responseText); } catch { body = null; }
      if (x.status >= 200 && x.status < 300) resolve(body);
      else reject(Object.assign(new Error(body?.error?.message || `HTTP ${x.status}`), { code: body?.error?.code }));
    };
    x.onerror = () => reject(Object.assign(new Error('the upload was interrupted'), { code: 'network' }));
    x.send(file);
  });
}

/** Resolves once the restarted box answers as a box with users. */
async function restarted() {
  for (let i = 0; i < 600; i++) {
    try {
      const s = await get('/api/v1/setup');
      if (!s.needed) return;
    } catch { /* restarting */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('the box did not come back after the restore; see its console');
}

function botStep(root, fingerprint, me, done) {
  const token = h('input', { type: 'password', name: 'token', autocomplete: 'off', required: true, placeholder: '123456:ABC…' });
  const name = h('input', { type: 'text', name: 'name', placeholder: 'optional: the bot’s username' });
  const apiBase = h('input', { type: 'text', name: 'api_base', placeholder: 'https://api.telegram.org' });
  const err = h('p', { class: 'error', role: 'alert' });
  const btn = h('button', { class: 'btn primary', type: 'submit' }, 'Check and add');
  replace(root, h('form', { class: 'card', 'aria-label': 'Add a Telegram bot', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    btn.disabled = true;
    btn.textContent = 'Checking with Telegram…';
    try {
      const body = { token: token.value.trim() };
      if (name.value.trim()) body.name = name.value.trim();
      if (apiBase.value.trim()) body.api_base = apiBase.value.trim();
      const a = await post('/api/v1/accounts', body);
      finish(root, fingerprint, me, done, a);
    } catch (x) {
      err.textContent = explain(x);
      btn.disabled = false;
      btn.textContent = 'Check and add';
    }
  } }, steps(1), h('h1', null, 'Add a Telegram bot'),
  h('p', null, 'Paste the token @BotFather gave you. lanbox asks Telegram (getMe) whether it works before keeping it, sealed.'),
  field('Bot token', token), field('Label', name),
  h('details', null, h('summary', null, 'Advanced'), field('Bot API server', apiBase)),
  err, h('div', { class: 'row' }, btn, h('button', { class: 'btn', type: 'button', onclick: () => finish(root, fingerprint, me, done, null) }, 'Later'))));
  token.focus();
}

function finish(root, fingerprint, me, done, account) {
  const go = h('button', { class: 'btn primary', type: 'button', onclick: () => done(me) }, 'Open the inbox');
  replace(root, h('div', { class: 'card' }, steps(2), h('h1', null, 'lanbox is ready'),
    account ? h('p', { class: 'ok' }, `Connected to Telegram as @${account.bot_username || account.name}.`) : h('p', null, 'You can add bots later under Settings.'),
    h('p', null, 'Certificate SHA-256 fingerprint of this box (browsers will warn about its self-signed certificate; this is how you know it is yours):'),
    fingerprintEl(fingerprint, 'p'),
    h('div', { class: 'row' }, go)));
  go.focus();
}

export async function setupState() {
  try { return await get('/api/v1/setup'); } catch { return { needed: false, certificate_sha256: '' }; }
}
