// The sealed box's page (sealed boot): the master key is wrapped by a passphrase, so the box
// has opened nothing and ingests nothing until an admin enters it. After the unlock the box
// starts its service on the same address; the page waits for it, then loads the inbox.

import { h, replace, fingerprint as fingerprintEl } from './dom.js';
import { get, post, explain } from './api.js';

export function unlockView(root, fingerprint) {
  const pass = h('input', { type: 'password', name: 'passphrase', autocomplete: 'current-password', required: true, autofocus: true });
  pass.id = 'f-unlock';
  const err = h('p', { class: 'error', role: 'alert' });
  const note = h('p', { class: 'muted', role: 'status' });
  const btn = h('button', { class: 'btn primary', type: 'submit' }, 'Unlock');
  const form = h('form', { class: 'card', 'aria-label': 'Unlock the box', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    btn.disabled = true;
    note.textContent = 'Checking the passphrase…';
    try {
      await post('/api/v1/unlock', { passphrase: pass.value });
      pass.value = '';
      note.textContent = 'Unlocked. Starting the inbox…';
      await started();
      location.reload();
    } catch (x) {
      note.textContent = '';
      err.textContent = x.code === 'wrong_passphrase' ? 'Wrong passphrase. ' + (x.message.match(/heard in \d+ s/) ? 'Wait a moment before the next try.' : '')
        : x.code === 'too_many_requests' ? 'Too many attempts; wait a moment and try again.' : explain(x);
      btn.disabled = false;
    }
  } },
  h('h1', null, 'This box is locked'),
  h('p', null, 'Its master key is sealed by a passphrase, so nothing has been opened and no Telegram updates are fetched until an admin unlocks it (bots’ updates wait at Telegram for up to 24 hours).'),
  h('label', { for: pass.id }, 'Unlock passphrase'), pass, err, note,
  h('div', { class: 'row' }, btn),
  fingerprint ? h('p', { class: 'muted' }, 'Certificate SHA-256 (compare with the box’s console): ', fingerprintEl(fingerprint)) : null);
  replace(root, form);
  pass.focus();
}

/** Resolves once the box answers as an unlocked box (its setup state no longer says sealed). */
async function started() {
  for (let i = 0; i < 600; i++) {
    try {
      const s = await get('/api/v1/setup');
      if (!s.sealed) return;
    } catch { /* the socket changes hands: try again */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('the box did not start after the unlock; see its console');
}
