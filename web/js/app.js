// Boot: signed in → the inbox; otherwise the unlock page of a sealed box, the first-run page
// while the box has no user, or the sign-in page.

import { get } from './api.js';
import { Live } from './live.js';
import { Inbox } from './inbox.js';
import { loginView, setupView, setupState } from './setup.js';
import { unlockView } from './unlock.js';

const root = document.getElementById('root');

async function open(me) {
  const inbox = new Inbox(root, me, new Live());
  inbox.live.addEventListener('unauthorized', () => location.reload());
  await inbox.start();
}

async function boot() {
  let me = null;
  try { me = await get('/api/v1/me'); } catch { me = null; }
  if (me) return open(me);
  const s = await setupState();
  if (s.sealed) return unlockView(root, s.certificate_sha256);
  (s.needed ? setupView : loginView)(root, s.certificate_sha256, (user) => open(user));
}

addEventListener('lanbox:unauthorized', () => location.reload());

boot();
