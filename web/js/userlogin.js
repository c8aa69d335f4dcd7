// Settings -> Telegram accounts -> "Add a Telegram account": a person's own Telegram account
// (a user account, over MTProto), logged in one step at a time through /api/v1/account-logins:
// phone number -> the code Telegram sends to their Telegram app -> the 2FA password when the
// account has one. A wrong code or password can be typed again; an expired code or login
// starts over at the phone number. The code and the password are sent once and kept nowhere.

import { h, replace, toast } from './dom.js';
import { post, del, explain } from './api.js';

const labelled = (text, input) => h('label', null, text, input);

/** The form; `onAdded(account)` runs once an account was added. */
export function userLoginForm(onAdded) {
  const box = h('div');
  const err = h('p', { class: 'error', role: 'alert' });
  let login = null;

  // Errors that end the login on the box: back to the phone number, the reason kept shown.
  const ENDS = ['code_expired', 'login_not_found', 'phone_banned'];
  const failed = (x) => {
    const why = explain(x);
    if (login && ENDS.includes(x.code)) { login = null; phoneStep(); }
    err.textContent = why;
  };
  const cancel = () => h('button', { class: 'btn', type: 'button', onclick: async () => {
    const id = login;
    login = null;
    phoneStep();
    if (id) await del(`/api/v1/account-logins/${encodeURIComponent(id)}`).catch(() => {});
  } }, 'Cancel');
  const done = (step) => {
    login = null;
    toast(`Added ${step.account.name}`);
    onAdded(step.account);
  };

  function phoneStep() {
    const phone = h('input', { type: 'tel', name: 'phone', autocomplete: 'off', required: true, placeholder: '+49 30 1234567' });
    const name = h('input', { type: 'text', name: 'name', placeholder: 'default: their first name' });
    const rented = h('input', { type: 'checkbox', name: 'rented' });
    const go = h('button', { class: 'btn primary', type: 'submit' }, 'Send the code');
    replace(box, h('form', { 'aria-label': 'Add a Telegram account', 'data-step': 'phone', onsubmit: async (e) => {
      e.preventDefault();
      err.textContent = 'Asking Telegram to send a code…';
      go.disabled = true;
      const b = { phone: phone.value.trim(), rented: rented.checked };
      if (name.value.trim()) b.name = name.value.trim();
      try {
        login = (await post('/api/v1/account-logins', b)).login;
        err.textContent = '';
        codeStep();
      } catch (x) { failed(x); go.disabled = false; }
    } }, h('fieldset', null, h('legend', null, 'Add a Telegram account'),
      h('p', { class: 'muted' }, 'A person’s own Telegram account, connected with their phone number: Telegram sends a login code to their Telegram app.'),
      h('div', { class: 'grid' }, labelled('Phone number', phone), labelled('Label', name),
        h('label', { class: 'check' }, rented, 'Rented (hide login codes)'), go), err)));
  }

  function codeStep() {
    const code = h('input', { type: 'text', name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', required: true });
    const go = h('button', { class: 'btn primary', type: 'submit' }, 'Sign in');
    replace(box, h('form', { 'aria-label': 'Add a Telegram account', 'data-step': 'code', onsubmit: async (e) => {
      e.preventDefault();
      go.disabled = true;
      err.textContent = 'Signing in…';
      try {
        const step = await post(`/api/v1/account-logins/${encodeURIComponent(login)}/code`, { code: code.value.trim() });
        err.textContent = '';
        if (step.status === 'password_required') passwordStep();
        else done(step);
      } catch (x) { failed(x); go.disabled = false; code.select(); }
    } }, h('fieldset', null, h('legend', null, 'Add a Telegram account'),
      h('p', { class: 'muted' }, 'Telegram sent a code to the account’s Telegram app (or by SMS). Type it here.'),
      h('div', { class: 'grid' }, labelled('Login code', code), go, cancel()), err)));
    code.focus();
  }

  function passwordStep() {
    const pw = h('input', { type: 'password', name: 'password', autocomplete: 'off', required: true });
    const go = h('button', { class: 'btn primary', type: 'submit' }, 'Sign in');
    replace(box, h('form', { 'aria-label': 'Add a Telegram account', 'data-step': 'password', onsubmit: async (e) => {
      e.preventDefault();
      go.disabled = true;
      err.textContent = 'Checking the password…';
      try {
        const step = await post(`/api/v1/account-logins/${encodeURIComponent(login)}/password`, { password: pw.value });
        pw.value = '';
        err.textContent = '';
        done(step);
      } catch (x) { pw.value = ''; failed(x); go.disabled = false; }
    } }, h('fieldset', null, h('legend', null, 'Add a Telegram account'),
      h('p', { class: 'muted' }, 'This account has a two-step verification password. lanbox proves it to Telegram and does not keep it.'),
      h('div', { class: 'grid' }, labelled('2FA password', pw), go, cancel()), err)));
    pw.focus();
  }

  phoneStep();
  return box;
}
