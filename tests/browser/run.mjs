// Browser tests of the lanbox web inbox: Debian's Chromium driven by playwright-core.
//
// Real parts only: the debug `lanbox` binary serving HTTPS on a temp data dir, the Bot API
// simulator (`lanbox dev telegram-sim`) and the MTProto simulator (`lanbox dev mtproto-sim`,
// a person's own account) as Telegram, and a TCP pass-through between the browser
// and lanbox that the test can cut, to drop the WebSocket the way a network does.
//
//   node tests/browser/run.mjs            (LANBOX_BIN overrides target/debug/lanbox;
//                                          LANBOX_BROWSER_ONLY=<regexp> picks checks)
//
// Screenshots of the main views go to target/browser-artifacts/.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, dirname, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import zlib from 'node:zlib';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const BIN = process.env.LANBOX_BIN || join(process.env.CARGO_TARGET_DIR || join(repo, 'target'), 'debug', 'lanbox');
const ART = join(repo, 'target', 'browser-artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const T1 = '111111:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const T2 = '222222:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';
const ADMIN_PW = 'correct horse battery';
const AGENT_PW = 'agent password 1';
const TIMEOUT = 15000;
// The MTProto simulator's account (`lanbox dev mtproto-sim`): a person's own Telegram account.
const MT_PW = 'two step canary';
const MT_WELCOME = 'Hello from Ann to your own account';

rmSync(ART, { recursive: true, force: true });
mkdirSync(ART, { recursive: true });
const children = [];
const results = [];
const t0 = Date.now();
const log = (...a) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);

// ---- processes --------------------------------------------------------------------------------

/** Starts a command and resolves once `want` (a regexp per line) all matched its stdout. */
function start(args, env, want) {
  const p = spawn(BIN, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(p);
  const found = {};
  let err = '';
  p.stderr.on('data', (d) => { err = (err + d).slice(-4000); if (process.env.LANBOX_BROWSER_VERBOSE) process.stderr.write(d); });
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start: ${err}`)), 30000);
    p.on('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}: ${err}`)));
    p.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        for (const [k, re] of Object.entries(want)) {
          const m = line.match(re);
          if (m) found[k] = m[1];
        }
        if (Object.keys(want).every((k) => k in found)) { clearTimeout(timer); resolve({ proc: p, ...found }); }
      }
    });
  });
}

function run(args, env = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(BIN, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args.join(' ')}: ${err}`))));
  });
}

/** A TCP pass-through to `target` whose connections can be cut (a network drop). */
function passThrough(target) {
  const conns = new Set();
  let down = false;
  const server = net.createServer((c) => {
    if (down) { c.destroy(); return; }
    const up = net.connect(target.port, target.host);
    conns.add(c); conns.add(up);
    c.pipe(up); up.pipe(c);
    const end = () => { c.destroy(); up.destroy(); conns.delete(c); conns.delete(up); };
    c.on('error', end); up.on('error', end); c.on('close', end); up.on('close', end);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    port: server.address().port,
    cut() { down = true; for (const c of conns) c.destroy(); conns.clear(); },
    restore() { down = false; },
    close() { server.close(); for (const c of conns) c.destroy(); },
  })));
}

// ---- the simulator ----------------------------------------------------------------------------

let SIM;
let nextMsg = 100;
const now = () => Math.floor(Date.now() / 1000);

async function sim(path, body, raw) {
  const res = await fetch(SIM + path, body === undefined ? {} : {
    method: 'POST', body: raw ? body : JSON.stringify(body),
    headers: { 'content-type': raw ? 'application/octet-stream' : 'application/json' },
  });
  const j = await res.json();
  if (!res.ok || j.ok === false) throw new Error(`${path}: ${JSON.stringify(j)}`);
  return j.result !== undefined ? j.result : j;
}

const people = {
  ann: { id: 5001, is_bot: false, first_name: 'Ann', last_name: 'Lee' },
  bob: { id: 5002, is_bot: false, first_name: 'Bob' },
  eve: { id: 5003, is_bot: false, first_name: 'Eve', last_name: 'Secret' },
  wang: { id: 5004, is_bot: false, first_name: '王小明', last_name: '🌸' },
};

function privateUpdate(who, fields) {
  const u = people[who];
  return { message: { message_id: nextMsg++, date: now(), chat: { id: u.id, type: 'private', first_name: u.first_name, last_name: u.last_name }, from: u, ...fields } };
}

/** Injects updates. New messages get IDs past the bot's own sends: a chat has one sequence of
 *  message IDs (as in Telegram), and reusing one would be the same message again. */
async function inject(token, update) {
  for (const a of await sim(`/_sim/bot${token}/sent?since=0`)) if (a.message_id) nextMsg = Math.max(nextMsg, a.message_id + 1);
  for (const u of Array.isArray(update) ? update : [update]) if (u.message) u.message.message_id = nextMsg++;
  return sim(`/_sim/bot${token}/updates`, update);
}

/** A small valid PNG (solid colour), so the browser really decodes what it downloads. */
function png(w, h, [r, g, b]) {
  const crcTable = Array.from({ length: 256 }, (_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
  const crc = (buf) => { let c = 0xffffffff; for (const x of buf) c = crcTable[(c ^ x) & 255] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4); c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2;
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set([(r + x) & 255, (g + y) & 255, b], y * (w * 3 + 1) + 1 + x * 3);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

// ---- checks -----------------------------------------------------------------------------------

class Blocked extends Error {}

let current = null; // the page a failure screenshot is taken of
let openBrowser = null; // every other open page is shot too (a second agent's, say)

// LANBOX_BROWSER_ONLY=<regexp> runs only the checks whose names match (to chase one failure).
const ONLY = process.env.LANBOX_BROWSER_ONLY ? new RegExp(process.env.LANBOX_BROWSER_ONLY) : null;

async function check(name, f) {
  if (ONLY && !ONLY.test(name)) return;
  const s = Date.now();
  try {
    await f();
    results.push([name, 'pass']);
    log('PASS', name, `(${Date.now() - s} ms)`);
  } catch (e) {
    const blocked = e instanceof Blocked;
    results.push([name, blocked ? 'blocked' : 'FAIL', e.message]);
    log(blocked ? 'BLOCKED' : 'FAIL', name, '-', e.message.split('\n')[0]);
    const base = 'FAILED-' + name.replace(/\W+/g, '-').slice(0, 60);
    if (!blocked && current) await current.screenshot({ path: join(ART, base + '.png') }).catch(() => {});
    if (!blocked && openBrowser) {
      const others = openBrowser.contexts().flatMap((c) => c.pages()).filter((p) => p !== current);
      for (const [i, p] of others.entries()) {
        await p.screenshot({ path: join(ART, `${base}-page${i + 2}.png`) }).catch(() => {});
        log(`  page ${i + 2}: ${p.url()}`);
      }
    }
    if (!blocked && process.env.LANBOX_BROWSER_VERBOSE) console.log(e.stack);
  }
}

async function shot(page, name) {
  // Images on screen first (they load lazily).
  await page.evaluate(() => Promise.all([...document.images].filter((i) => !i.complete)
    .map((i) => new Promise((r) => { i.addEventListener('load', r); i.addEventListener('error', r); setTimeout(r, 2000); }))));
  await page.screenshot({ path: join(ART, name + '.png'), fullPage: false });
}

async function until(f, what, ms = TIMEOUT) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { last = await f(); if (last) return last; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last instanceof Error ? ': ' + last.message : ''}`);
}

/** Waits until lanbox has stored a message with `text` as some chat's last message (as `p`'s
 *  user sees it over REST, at `origin`: the page's own unless given). */
async function stored(p, text, origin = new URL(p.url()).origin) {
  await until(async () => {
    const page = await (await p.request.get(origin + '/api/v1/chats?limit=200')).json();
    return page.chats.some((c) => c.last_message && (c.last_message.text || '').includes(text));
  }, `lanbox to store "${text}"`);
}

/** Keys (openssl) and RAUC bundles for the update check, or null where RAUC is missing. */
function updateBundles(data) {
  try { execFileSync('sh', ['-c', 'command -v rauc && command -v mksquashfs && command -v openssl'], { stdio: 'ignore' }); } catch { return null; }
  const dir = join(data, '..', `${basename(data)}-update`);
  mkdirSync(dir, { recursive: true });
  const keys = (name) => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '30', '-subj', `/CN=lanbox ${name}`,
      '-keyout', join(dir, `${name}.key.pem`), '-out', join(dir, `${name}.cert.pem`)], { stdio: 'ignore' });
    return [join(dir, `${name}.cert.pem`), join(dir, `${name}.key.pem`)];
  };
  const bundle = (version, [cert, key], name) => {
    const c = join(dir, `content-${name}`);
    mkdirSync(c, { recursive: true });
    writeFileSync(join(c, 'manifest.raucm'), `[update]\ncompatible=lanbox-browser\nversion=${version}\n\n[bundle]\nformat=verity\n\n[image.rootfs]\nfilename=rootfs.ext4\n`);
    writeFileSync(join(c, 'rootfs.ext4'), randomBytes(256 << 10));
    const out = join(dir, `${name}.raucb`);
    execFileSync('rauc', ['bundle', `--cert=${cert}`, `--key=${key}`, c, out], { stdio: 'ignore' });
    return out;
  };
  const ours = keys('ours');
  const conf = join(dir, 'system.conf');
  writeFileSync(conf, `[system]\ncompatible=lanbox-browser\nbootloader=noop\n\n[keyring]\npath=${ours[0]}\n\n[slot.rootfs.0]\ndevice=${dir}/a\nbootname=A\n\n[slot.rootfs.1]\ndevice=${dir}/b\nbootname=B\n`);
  const junk = join(dir, 'junk.raucb');
  writeFileSync(junk, randomBytes(64 << 10));
  return { conf, keyring: ours[0], good: bundle('2026.12.2', ours, 'good'), foreign: bundle('2026.12.3', keys('theirs'), 'foreign'), junk };
}

// ---- main -------------------------------------------------------------------------------------

async function main() {
  const data = mkdtempSync(join(tmpdir(), 'lanbox-browser-'));
  const cleanup = () => { for (const c of children) { try { c.kill('SIGTERM'); } catch { /* gone */ } } rmSync(data, { recursive: true, force: true }); };
  process.on('exit', cleanup);

  const s = await start(['dev', 'telegram-sim', '--listen', '127.0.0.1:0', '--token', T1, '--token', T2], {}, { base: /simulator at (\S+)/ });
  SIM = s.base.replace(/\/$/, '');
  log('simulator', SIM);
  const mt = await start(['dev', 'mtproto-sim', '--listen', '127.0.0.1:0', '--password', MT_PW, '--welcome', MT_WELCOME], {}, {
    addr: /^LANBOX_TELEGRAM_DEV_SIMULATOR=(\S+)/, key: /^LANBOX_TELEGRAM_DEV_SIMULATOR_KEY=(\S+)/, code: /login code (\S+)\)/,
  });
  log('MTProto simulator', mt.addr);
  await run(['init', '--data', data]);
  const env = { LANBOX_SERVER_LISTEN: '127.0.0.1:0', LANBOX_SERVER_MDNS: 'false', LANBOX_DATA: data,
    LANBOX_TELEGRAM_API_ID: '12345', LANBOX_TELEGRAM_API_HASH: '0123456789abcdef0123456789abcdef',
    LANBOX_TELEGRAM_DEV_SIMULATOR: mt.addr, LANBOX_TELEGRAM_DEV_SIMULATOR_KEY: mt.key };
  // Update bundles made and signed by the real RAUC, and the keyring the box checks them with.
  const upd = updateBundles(data);
  if (upd) Object.assign(env, { LANBOX_UPDATE_CONF: upd.conf, LANBOX_UPDATE_KEYRING: upd.keyring, LANBOX_UPDATE_REBOOT: 'false' });
  const box = await start(['serve', '--data', data], env, {
    fp: /fingerprint: (\S+)/, code: /setup code (\S+)/, addr: /listening on https:\/\/(\S+)/,
  });
  const [host, port] = [box.addr.slice(0, box.addr.lastIndexOf(':')), Number(box.addr.slice(box.addr.lastIndexOf(':') + 1))];
  const proxy = await passThrough({ host, port });
  const BASE = `https://127.0.0.1:${proxy.port}`;
  log('lanbox', box.addr, 'via', BASE);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  openBrowser = browser;
  /** A new browser context signed in as `name` (its own cookies): [context, page]. */
  const signIn = async (name, pw) => {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    const p = await ctx.newPage();
    p.setDefaultTimeout(TIMEOUT);
    await p.goto(BASE + '/');
    await p.getByLabel('User name').fill(name);
    await p.getByLabel('Password').fill(pw);
    await p.getByRole('button', { name: 'Sign in' }).click();
    return [ctx, p];
  };
  const admin = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true, viewport: { width: 1280, height: 800 } });
  const page = await admin.newPage();
  page.setDefaultTimeout(TIMEOUT);
  current = page;
  const consoleErrors = [];
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  let acct1 = null, acct2 = null;

  await check('first run: setup code, admin, bot token checked, fingerprint shown', async () => {
    await page.goto(BASE + '/');
    await page.getByRole('heading', { name: 'Welcome to lanbox' }).waitFor();
    const fp = await page.locator('[data-fingerprint]').first().textContent();
    if (fp.trim() !== box.fp) throw new Error(`page shows fingerprint ${fp}, console ${box.fp}`);
    await page.getByLabel('Setup code').fill('WRONG-WRONG-WRONG');
    await page.getByLabel('Admin user name').fill('admin');
    await page.getByLabel('Password (at least').fill(ADMIN_PW);
    await page.getByLabel('Password again').fill(ADMIN_PW);
    await page.getByRole('button', { name: 'Create the admin' }).click();
    await page.getByText('not the setup code').waitFor();
    await shot(page, '01-first-run');
    await page.getByLabel('Setup code').fill(box.code.toLowerCase());
    await page.getByRole('button', { name: 'Create the admin' }).click();
    await page.getByRole('heading', { name: 'Add a Telegram bot' }).waitFor();
    await page.getByLabel('Bot token').fill('123:not-a-token');
    await page.locator('summary').click();
    await page.getByLabel('Bot API server').fill(SIM);
    await page.getByRole('button', { name: 'Check and add' }).click();
    await page.locator('[role=alert]').filter({ hasText: /./ }).waitFor();
    await page.getByLabel('Bot token').fill(T1);
    await page.getByLabel('Label').fill('Support bot');
    await page.getByRole('button', { name: 'Check and add' }).click();
    await page.getByText('Connected to Telegram as @').waitFor();
    const fp2 = await page.locator('[data-fingerprint]').textContent();
    if (fp2.trim() !== box.fp) throw new Error('fingerprint on the last step differs');
    await shot(page, '02-first-run-done');
    await page.getByRole('button', { name: 'Open the inbox' }).click();
    await page.locator('.acct', { hasText: 'Support bot' }).waitFor();
    const r = await fetch(`${SIM}/_sim/bots`).then((x) => x.json()).catch(() => null);
    if (!r) throw new Error('simulator control API unreachable');
  });

  await check('settings: add a second bot, then an agent granted only the first', async () => {
    await page.goto(BASE + '/#/settings/accounts');
    await page.getByRole('group', { name: 'Add a Telegram bot' }).waitFor();
    const form = page.locator('form[aria-label="Add a Telegram bot"]');
    await form.getByLabel('Bot token').fill(T2);
    await form.getByLabel('Label').fill('Sales bot');
    await form.getByLabel('Daily limit').fill('500');
    await form.getByLabel('Bot API server').fill(SIM);
    await form.getByRole('button', { name: 'Check and add' }).click();
    await page.locator('tr[data-account]').nth(1).waitFor();
    const accounts = await page.evaluate(() => fetch('/api/v1/accounts').then((r) => r.json()));
    acct1 = accounts.find((a) => a.name === 'Support bot').id;
    acct2 = accounts.find((a) => a.name === 'Sales bot').id;
    await until(() => page.locator(`tr[data-account="${acct2}"]`).textContent().then((t) => /online|starting/.test(t)), 'the account status');
    await shot(page, '07-settings-accounts');
    await page.goto(BASE + '/#/settings/users');
    const uf = page.locator('form[aria-label="Add a user"]');
    await uf.getByLabel('User name').fill('agent1');
    await uf.getByLabel('Password').fill(AGENT_PW);
    await uf.locator(`input[data-account="${acct1}"]`).check();
    await uf.getByRole('button', { name: 'Add' }).click();
    await page.locator('tr[data-user="agent1"]').waitFor();
    await shot(page, '08-settings-users');
    await page.goto(BASE + '/#/settings/system');
    await page.getByText(box.fp).waitFor();
    // Storage use and backlogs, in human units, agreeing with what the API reports.
    const sys = (await page.evaluate(() => fetch('/api/v1/stats').then((r) => r.json()))).system;
    if (!sys || !(sys.storage.database_bytes > 0) || !(sys.storage.disk_total_bytes > 0)) throw new Error(`no system figures: ${JSON.stringify(sys)}`);
    const statText = (name) => page.locator(`[data-stat="${name}"]`).textContent();
    const UNIT = String.raw`\d+(\.\d)? (B|KB|MB|GB)`;
    const want = {
      disk: new RegExp(`^${UNIT} of ${UNIT} free$`),
      database: new RegExp(`^${UNIT}$`),
      attachments: new RegExp(`^${UNIT} in ${sys.storage.attachment_files} files?`),
      s3: sys.attachments.s3_configured
        ? new RegExp(`^${sys.attachments.sync_backlog} files? to upload, ${sys.attachments.delete_backlog} objects? to delete$`)
        : /^S3 not configured/,
      fetch: new RegExp(`^${sys.attachments.fetch_backlog} waiting, ${sys.attachments.failed} failed$`),
    };
    for (const [name, re] of Object.entries(want)) {
      const text = await statText(name);
      if (!re.test(text)) throw new Error(`system page ${name}: ${JSON.stringify(text)} does not match ${re}`);
    }
    if (/not reported/.test(await page.locator('dl.kv').textContent())) throw new Error('a figure is still not reported');
    await shot(page, '09-settings-system');
  });

  await check('a message pushed into the simulator appears live, with its unread count', async () => {
    await page.goto(BASE + '/#/');
    await page.locator('.conn[data-state=online]').waitFor();
    await inject(T1, privateUpdate('ann', { text: 'Hello from Ann, is the parcel 7731 on its way? https://example.org/track', entities: [{ type: 'url', offset: 47, length: 25 }] }));
    await inject(T2, privateUpdate('eve', { text: 'confidential pricing zebracorn' }));
    const item = page.locator('.chat', { hasText: 'Ann Lee' });
    await item.waitFor();
    await item.locator('.badge').waitFor();
    await page.locator(`.acct[data-account="${acct1}"] .badge`).waitFor();
    await shot(page, '03-inbox');
  });

  // Regression: without Debian's CJK and emoji fonts Chromium drew CJK names and emoji as
  // empty boxes, and no check noticed.
  await check('CJK names and emoji render as real glyphs, not missing-glyph boxes', async () => {
    await inject(T1, privateUpdate('wang', { text: '你好，我想预约 🙂 こんにちは 안녕하세요' }));
    const item = page.locator('.chat', { hasText: '王小明' });
    await item.waitFor();
    const missing = await item.evaluate((el) => {
      // Each character drawn in the element's own font, compared with a character no font has:
      // identical pixels mean the missing-glyph box (or nothing) was drawn.
      const font = getComputedStyle(el).font;
      const c = document.createElement('canvas');
      c.width = 96; c.height = 96;
      const g = c.getContext('2d', { willReadFrequently: true });
      const draw = (ch) => {
        g.clearRect(0, 0, 96, 96);
        g.font = font.replace(/\d+(\.\d+)?px/, '48px');
        g.fillStyle = '#000';
        g.textBaseline = 'top';
        g.fillText(ch, 8, 8);
        return g.getImageData(0, 0, 96, 96).data.join(',');
      };
      const box = draw('\u{10FFFD}');
      const text = el.textContent;
      return ['王', '小', '明', '🌸', '你', '预', '🙂', 'こ', '안']
        .filter((ch) => text.includes(ch) && draw(ch) === box);
    });
    if (missing.length) throw new Error('drawn as missing glyphs: ' + missing.join(' '));
    // The avatar's initials are whole characters (the emoji was once cut in half: "王\uFFFD").
    const avatar = await item.locator('.avatar').textContent();
    if (avatar !== '王🌸') throw new Error('avatar initials: ' + JSON.stringify(avatar));
    await shot(page, '03b-cjk-emoji');
    // Read, so the account's unread badge is Ann's alone again for the checks that follow.
    const marked = await page.evaluate(async () => {
      const list = await fetch('/api/v1/chats').then((r) => r.json());
      const c = list.chats.find((x) => x.title && x.title.includes('王小明'));
      const res = await fetch(`/api/v1/chats/${c.id}/read`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ up_to: c.last_message.id }),
      });
      return res.status;
    });
    if (marked !== 200) throw new Error('marking the chat read answered ' + marked);
    await until(async () => (await item.locator('.badge').count()) === 0, 'the CJK chat badge to clear');
  });

  await check('conversation renders kinds; marking read updates the counts everywhere', async () => {
    await inject(T1, [
      privateUpdate('ann', { text: 'Bold and link', entities: [{ type: 'bold', offset: 0, length: 4 }, { type: 'text_link', offset: 9, length: 4, url: 'https://example.com/' }] }),
      privateUpdate('ann', { location: { latitude: 52.520008, longitude: 13.404954 } }),
      privateUpdate('ann', { contact: { phone_number: '+491701234567', first_name: 'Max', last_name: 'Muster' } }),
      privateUpdate('ann', { poll: { id: 'p1', question: 'Which day suits you?', options: [{ text: 'Monday', voter_count: 3 }, { text: 'Friday', voter_count: 1 }], total_voter_count: 4, is_closed: false, is_anonymous: true, type: 'regular', allows_multiple_answers: false } }),
    ]);
    await until(() => page.locator('.chat', { hasText: 'Ann Lee' }).locator('.last').textContent().then((t) => t.includes('Which day')), 'the poll in the list');
    await page.locator('.chat', { hasText: 'Ann Lee' }).click();
    await page.locator('.msg strong', { hasText: 'Bold' }).waitFor();
    await page.locator('.msg a[href="https://example.com/"]').waitFor();
    await page.locator('.msg .location a[href*="openstreetmap"]').waitFor();
    await page.locator('.msg .contact', { hasText: 'Max Muster' }).waitFor();
    await page.locator('.msg .poll', { hasText: 'Monday' }).waitFor();
    await until(async () => (await page.locator(`.acct[data-account="${acct1}"] .badge`).count()) === 0, 'the account badge to clear');
    await until(async () => (await page.locator('.chat', { hasText: 'Ann Lee' }).locator('.badge').count()) === 0, 'the chat badge to clear');
    const chats = await page.evaluate(() => fetch('/api/v1/chats').then((r) => r.json()));
    const ann = chats.chats.find((c) => c.title && c.title.includes('Ann'));
    if (!ann || ann.unread !== 0) throw new Error('the server still counts unread: ' + JSON.stringify(ann && ann.unread));
    await shot(page, '04-conversation');
  });

  await check('search finds a message and jumps to it', async () => {
    await page.getByRole('searchbox', { name: 'Search messages' }).fill('parcel');
    await page.keyboard.press('Enter');
    const hit = page.locator('.hit', { hasText: 'parcel' });
    await hit.waitFor();
    if (await hit.locator('mark').count() === 0) throw new Error('no highlighted words');
    await shot(page, '05-search');
    const id = await hit.getAttribute('data-id');
    await hit.click();
    await page.locator(`.msg[data-id="${id}"].flash`).waitFor();
    await until(() => page.locator(`.msg[data-id="${id}"]`).isVisible(), 'the message in view');
  });

  // Regression (issue 17): the browser offered none of the API's search filters, and result
  // rows repeated the sender's name.
  await check('search filters: account, kind, direction, dates; the sender named once', async () => {
    await page.goto(BASE + '/#/search/zebracorn');
    const hit = page.locator('.hit', { hasText: 'zebracorn' }).first();
    await hit.waitFor();
    if (await hit.locator('.h-who').count()) throw new Error('the sender repeats the chat title: ' + await hit.locator('.h-head').textContent());
    const filters = page.getByRole('form', { name: 'Search filters' });
    const nothing = page.getByText('Nothing found.');
    await filters.getByLabel('Account').selectOption({ label: 'Support bot' });
    await nothing.waitFor();
    if (!(await page.evaluate(() => location.hash)).includes('account=')) throw new Error('the filter is not in the route');
    await filters.getByRole('button', { name: 'Clear filters' }).click();
    await hit.waitFor();
    await filters.getByLabel('Kind').selectOption('image');
    await nothing.waitFor();
    await filters.getByRole('button', { name: 'Clear filters' }).click();
    await filters.getByLabel('Direction').selectOption('incoming');
    await hit.waitFor();
    await filters.getByLabel('Direction').selectOption('outgoing');
    await nothing.waitFor();
    await filters.getByRole('button', { name: 'Clear filters' }).click();
    const tomorrow = new Date(Date.now() + 864e5);
    const iso = `${tomorrow.getFullYear()}-${String(tomorrow.getMonth() + 1).padStart(2, '0')}-${String(tomorrow.getDate()).padStart(2, '0')}`;
    await filters.getByLabel('From').fill(iso);
    await nothing.waitFor();
    await filters.getByRole('button', { name: 'Clear filters' }).click();
    await hit.waitFor();
    await shot(page, '05b-search-filters');
    // Back where the next check starts: Ann's conversation at the parcel message.
    await page.goto(BASE + '/#/search/parcel');
    const parcel = page.locator('.hit', { hasText: 'parcel' }).first();
    const id = await parcel.getAttribute('data-id');
    await parcel.click();
    await page.locator(`.msg[data-id="${id}"]`).waitFor();
  });

  await check('a reply reaches the simulator and shows its sending status', async () => {
    const target = page.locator('.msg', { hasText: 'parcel 7731' });
    await target.hover();
    await target.getByRole('button', { name: 'Reply to this message' }).click();
    await page.locator('.replybar', { hasText: 'Replying to' }).waitFor();
    const targetTg = Number(await target.getAttribute('data-tg'));
    await page.getByLabel('Message', { exact: true }).fill('Yes Ann, it left this morning.');
    const [posted] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && /\/messages$/.test(r.url())),
      page.keyboard.press('Enter'),
    ]);
    const item = await posted.json();
    if (posted.status() !== 202 || item.reply_to !== targetTg) throw new Error(`outbox item ${posted.status()} ${JSON.stringify(item)}`);
    const sent = await until(async () => {
      const acts = await sim(`/_sim/bot${T1}/sent?since=0`);
      return acts.find((a) => a.method === 'sendMessage' && a.text === 'Yes Ann, it left this morning.');
    }, 'sendMessage at the simulator');
    // The simulator's control API does not echo reply_parameters (its Rust API does); when it
    // does, check it here too.
    const rp = sent.reply_parameters || (sent.message && sent.message.reply_to_message);
    if (rp && (rp.message_id ?? rp) !== targetTg) throw new Error('replied to the wrong message: ' + JSON.stringify(rp));
    await page.locator('.msg.out', { hasText: 'it left this morning' }).locator('[data-status=sent]').waitFor();
    const typing = (await sim(`/_sim/bot${T1}/sent?since=0`)).find((a) => a.method === 'sendChatAction');
    if (!typing) throw new Error('typing was not sent while composing');
  });

  await check('an attachment shows and downloads', async () => {
    const bytes = png(48, 32, [200, 60, 20]);
    const f = await sim(`/_sim/bot${T1}/files?kind=photo&file_name=parcel.png`, bytes, true);
    await inject(T1, privateUpdate('ann', { photo: [{ file_id: f.file_id, file_unique_id: f.file_unique_id, width: 48, height: 32, file_size: bytes.length }], caption: 'Photo of the label' }));
    const msg = page.locator('.msg', { hasText: 'Photo of the label' });
    await msg.waitFor();
    const img = msg.locator('img');
    try {
      await img.waitFor({ timeout: 20000 });
    } catch {
      const why = await msg.locator('.placeholder').textContent().catch(() => '');
      if (/not available/.test(why)) throw new Blocked('attachments API not available: ' + why);
      throw new Error('no image: ' + why);
    }
    await until(() => img.evaluate((i) => i.complete && i.naturalWidth > 0), 'the image to decode');
    await img.click();
    const dl = page.locator('dialog.viewer a[download]');
    await dl.waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), dl.click()]);
    const path = await download.path();
    const got = (await import('node:fs')).readFileSync(path);
    if (!got.equals(bytes)) throw new Error(`downloaded ${got.length} bytes, sent ${bytes.length}`);
    await shot(page, '06-photo-viewer');
    await page.keyboard.press('Escape');
    // An album (two photos, one media group) shows as one bubble; a voice message gets a player.
    const album = { file_id: f.file_id, file_unique_id: f.file_unique_id, width: 48, height: 32, file_size: bytes.length };
    await inject(T1, [
      privateUpdate('ann', { media_group_id: 'alb1', photo: [album], caption: 'Album of two' }),
      privateUpdate('ann', { media_group_id: 'alb1', photo: [album] }),
    ]);
    await page.locator('.msg .album img').nth(1).waitFor();
    const voice = await sim(`/_sim/bot${T1}/files?kind=voice&file_name=note.oga`, Buffer.from('OggS voice note bytes'), true);
    await inject(T1, privateUpdate('ann', { voice: { file_id: voice.file_id, file_unique_id: voice.file_unique_id, duration: 3, mime_type: 'audio/ogg', file_size: 21 } }));
    await page.locator('.msg audio[src]').waitFor({ state: 'attached' });
  });

  await check('Export PDF downloads a transcript of the open conversation', async () => {
    const link = page.locator('.convo-head a.export-pdf');
    await link.waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    const path = await download.path();
    const got = (await import('node:fs')).readFileSync(path);
    if (got.subarray(0, 5).toString() !== '%PDF-') throw new Error('not a PDF: ' + got.subarray(0, 40).toString());
    if (!got.subarray(-8).toString().includes('%%EOF')) throw new Error('the PDF is cut short');
    // Its text layer holds the conversation (poppler-utils, installed by scripts/install-deps.sh).
    const { execFileSync } = await import('node:child_process');
    const text = execFileSync('pdftotext', ['-enc', 'UTF-8', path, '-']).toString();
    if (!text.includes('Photo of the label')) throw new Error('the caption is not in the transcript');
  });

  await check('an edit shows live with its marker', async () => {
    const u = privateUpdate('ann', { text: 'Meeting at 3 pm?' });
    await inject(T1, u);
    const msg = page.locator('.msg', { hasText: 'Meeting at 3 pm?' });
    await msg.waitFor();
    await inject(T1, { edited_message: { ...u.message, text: 'Meeting at 4 pm?', edit_date: now() } });
    await page.locator('.msg', { hasText: 'Meeting at 4 pm?' }).locator('.edited').waitFor();
    if (await page.locator('.msg', { hasText: 'Meeting at 3 pm?' }).count()) throw new Error('the old text is still shown');
  });

  await check('attaching a file: upload progress, or a clear "not available"', async () => {
    const input = page.locator('.composer input[type=file]');
    await input.setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('a file from the browser\n'.repeat(1000)) });
    const bar = page.locator('.attachbar progress');
    const refused = page.locator('.composer .err', { hasText: 'not available on this box yet' });
    await until(async () => (await bar.count()) || (await refused.count()), 'the attach bar or a clear refusal');
    if (await refused.count()) throw new Blocked('sending files: the API has no attachment field in SendMessage yet');
    await page.getByLabel('Message', { exact: true }).fill('Here is the file');
    await page.keyboard.press('Enter');
    await until(async () => (await sim(`/_sim/bot${T1}/sent?since=0`)).some((a) => a.method === 'sendDocument'), 'sendDocument at the simulator');
    // Regression: the browser sent every file as `file-N`, `application/octet-stream` (a PNG
    // went as a document named `file-7`) and the inbox showed "file-3".
    const doc = (await sim(`/_sim/bot${T1}/sent?since=0`)).filter((a) => a.method === 'sendDocument').pop();
    const d = doc.message && doc.message.document;
    if (!d || d.file_name !== 'notes.txt' || d.mime_type !== 'text/plain') throw new Error('sent as ' + JSON.stringify(d));
    await page.locator('.msg', { hasText: 'notes.txt' }).first().waitFor();
    await input.setInputFiles({ name: 'receipt.png', mimeType: 'image/png', buffer: png(64, 48, [200, 40, 40]) });
    await until(async () => (await bar.count()) > 0, 'the attach bar');
    await page.getByLabel('Message', { exact: true }).fill('The receipt');
    await page.keyboard.press('Enter');
    await until(async () => (await sim(`/_sim/bot${T1}/sent?since=0`)).some((a) => a.method === 'sendPhoto'), 'the PNG sent as a photo');
  });

  await check('a clear error when the daily limit is reached', async () => {
    await page.evaluate((id) => fetch(`/api/v1/accounts/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ daily_limit: 0 }) }), acct1);
    await page.getByLabel('Message', { exact: true }).fill('This one is over the limit');
    await page.keyboard.press('Enter');
    await page.locator('.composer .err', { hasText: 'Daily sending limit reached' }).waitFor();
    if (await page.getByLabel('Message', { exact: true }).inputValue() !== 'This one is over the limit') throw new Error('the text was lost');
    await shot(page, '06b-daily-limit');
    await page.evaluate((id) => fetch(`/api/v1/accounts/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ daily_limit: null }) }), acct1);
    await page.getByLabel('Message', { exact: true }).fill('');
  });

  await check('a send Telegram refuses shows failed with the reason, and Retry sends it', async () => {
    await sim('/_sim/faults', { token: T1, method: 'sendMessage', fault: { status: 400 }, count: 1 });
    await page.getByLabel('Message', { exact: true }).fill('Will this one fail?');
    await page.keyboard.press('Enter');
    const failed = page.locator('.msg.out', { hasText: 'Will this one fail?' }).locator('[data-status=failed]');
    await failed.waitFor();
    await shot(page, '06c-send-failed');
    await page.getByRole('button', { name: 'Send this message again' }).click();
    await page.locator('.msg.out', { hasText: 'Will this one fail?' }).locator('[data-status=sent]').waitFor();
    await until(async () => (await sim(`/_sim/bot${T1}/sent?since=0`)).some((a) => a.text === 'Will this one fail?'), 'the retried send at the simulator');
  });

  await check('infinite scroll back through history; search jumps far back', async () => {
    const batch = [];
    for (let i = 1; i <= 130; i++) batch.push(privateUpdate('bob', { text: i === 3 ? 'history marker quokka number 3' : `Bob's line ${i} of the long history` }));
    await inject(T1, batch);
    await page.getByRole('link', { name: 'lanbox' }).click();
    await until(() => page.locator('.chat', { hasText: 'Bob' }).locator('.last').textContent().then((t) => t.includes('line 130')), 'the long history to arrive');
    await page.locator('.chat', { hasText: 'Bob' }).click();
    await page.locator('.msg', { hasText: 'line 130 of' }).waitFor();
    const before = await page.locator('.messages .msg').count();
    if (before >= 130) throw new Error('the whole history came in one page');
    await until(async () => {
      await page.locator('.messages').evaluate((l) => { l.scrollTop = 0; l.dispatchEvent(new Event('scroll')); });
      return page.locator('.notice', { hasText: 'Start of the conversation' }).count();
    }, 'the start of the history');
    await page.locator('.msg', { hasText: "line 1 of" }).waitFor({ state: 'attached' });
    // Far back and out of the loaded pages: the search hit loads the page around it.
    await page.locator('.chat', { hasText: 'Ann Lee' }).click();
    await page.getByRole('searchbox', { name: 'Search messages' }).fill('quokka');
    await page.keyboard.press('Enter');
    await page.locator('.hit', { hasText: 'quokka' }).click();
    await page.locator('.msg.flash', { hasText: 'quokka' }).waitFor();
    const loaded = await page.locator('.messages .msg').count();
    if (loaded > 70) throw new Error(`the jump loaded ${loaded} messages instead of a page around the hit`);
  });

  await check('an agent without a grant never sees that account', async () => {
    const [ctx, p] = await signIn('agent1', AGENT_PW);
    await p.locator('.chat', { hasText: 'Ann Lee' }).waitFor();
    await p.locator('.conn[data-state=online]').waitFor();
    if (await p.locator('.acct', { hasText: 'Sales bot' }).count()) throw new Error('the agent sees the Sales bot account');
    if (await p.locator('.chat', { hasText: 'Eve' }).count()) throw new Error('the agent sees Eve\'s chat');
    await inject(T2, privateUpdate('eve', { text: 'second secret zebracorn' }));
    await inject(T1, privateUpdate('bob', { text: 'Bob here, visible to the agent' }));
    await p.locator('.chat', { hasText: 'Bob' }).waitFor();
    await p.waitForTimeout(500);
    if (await p.locator('text=zebracorn').count()) throw new Error('a message of the ungranted account reached the agent live');
    await p.getByRole('searchbox', { name: 'Search messages' }).fill('zebracorn');
    await p.keyboard.press('Enter');
    await p.getByText('Nothing found.').waitFor();
    const direct = await p.evaluate(() => fetch('/api/v1/chats').then((r) => r.json()));
    if (direct.chats.some((c) => c.accounts.some((a) => a !== direct.chats[0].accounts[0]))) throw new Error('REST shows another account');
    await shot(p, '10-agent-view');
    // Typing: the admin writes in Ann's chat; the agent, in the same chat, sees it.
    await p.getByRole('link', { name: 'lanbox' }).click();
    await p.locator('.chat', { hasText: 'Ann Lee' }).click();
    await p.locator('.msg').first().waitFor();
    await page.getByRole('link', { name: 'lanbox' }).click();
    await page.locator('.chat', { hasText: 'Ann Lee' }).click();
    await until(async () => {
      await page.getByLabel('Message', { exact: true }).fill('typing… ' + Date.now());
      return (await p.locator('.typing').textContent()).includes('admin is typing');
    }, 'the typing notice at the agent', 12000);
    await page.getByLabel('Message', { exact: true }).fill('');
    await ctx.close();
  });

  // Regression (issue 15): a message a teammate sent showed to everyone as "You".
  await check("a teammate's reply shows their name; only your own say You", async () => {
    const [ctx, a] = await signIn('agent1', AGENT_PW);
    await a.locator('.chat', { hasText: 'Ann Lee' }).click();
    await a.locator('.msg').first().waitFor();
    await page.goto(BASE + '/#/');
    await page.locator('.chat', { hasText: 'Ann Lee' }).click();
    await page.locator('.msg').first().waitFor();
    await a.getByLabel('Message', { exact: true }).fill('Sent by the agent');
    await a.getByLabel('Message', { exact: true }).press('Enter');
    // The admin sees the agent's name on the bubble and in the list, live.
    const theirs = page.locator('.msg.out', { hasText: 'Sent by the agent' });
    await theirs.locator('.who', { hasText: 'agent1' }).waitFor();
    await page.locator('.chat', { hasText: 'agent1: Sent by the agent' }).waitFor();
    // The agent's own bubble has no name; the list says "You".
    await a.locator('.msg.out', { hasText: 'Sent by the agent' }).locator('[data-status=sent]').waitFor();
    if (await a.locator('.msg.out', { hasText: 'Sent by the agent' }).locator('.who').count()) throw new Error('the agent sees a name on their own message');
    await a.locator('.chat', { hasText: 'You: Sent by the agent' }).waitFor();
    // And the other way round.
    await page.getByLabel('Message', { exact: true }).fill('Sent by the admin');
    await page.getByLabel('Message', { exact: true }).press('Enter');
    await a.locator('.msg.out', { hasText: 'Sent by the admin' }).locator('.who', { hasText: 'admin' }).waitFor();
    await page.locator('.chat', { hasText: 'You: Sent by the admin' }).waitFor();
    await shot(page, '18-teammate-names');
    await ctx.close();
  });

  // Regression (issue 15): opening a chat marked every message read for the whole team, the
  // view landed at the bottom of a backlog and marked all of it read, and nothing marked a
  // chat unread again.
  await check('read state is per user: the first unread shown, only what was seen read, mark unread', async () => {
    const ruth = { id: 5010, is_bot: false, first_name: 'Ruth' };
    const batch = [];
    for (let i = 1; i <= 40; i++) batch.push({ message: { message_id: 0, date: now(), chat: { id: ruth.id, type: 'private', first_name: 'Ruth' }, from: ruth, text: `Ruth's backlog line ${i}.` } });
    await inject(T1, batch);
    const chatOf = async (p) => (await (await p.request.get(new URL(p.url()).origin + '/api/v1/chats?limit=200')).json()).chats.find((c) => c.title === 'Ruth');
    await until(async () => (await chatOf(page))?.unread === 40, 'the backlog stored');
    const [ctx, a] = await signIn('agent1', AGENT_PW);
    await a.locator('.chat', { hasText: 'Ruth' }).waitFor();

    await page.goto(BASE + '/#/');
    await page.locator('.chat', { hasText: 'Ruth' }).click();
    // It opens at the first unread message, and reads only what is on screen.
    await page.locator('.unread-mark').waitFor();
    if (!(await page.locator('.msg', { hasText: "Ruth's backlog line 1." }).isVisible())) throw new Error('not opened at the first unread message');
    await until(async () => { const c = await chatOf(page); return c.unread > 0 && c.unread < 40 && c; }, 'part of the backlog read');
    if ((await chatOf(a)).unread !== 40) throw new Error("the admin's reading changed the agent's count");
    await page.locator('.msg', { hasText: "Ruth's backlog line 40." }).scrollIntoViewIfNeeded();
    await until(async () => (await chatOf(page)).unread === 0, 'all read after scrolling down');
    if ((await chatOf(a)).unread !== 40) throw new Error("the admin's reading changed the agent's count");
    await page.locator('.chat', { hasText: 'Ruth' }).locator('.badge').waitFor({ state: 'detached' });
    // Mark unread: back to the list with one unread, for the admin only.
    await page.getByRole('button', { name: 'Mark unread' }).click();
    await page.locator('.chat', { hasText: 'Ruth' }).locator('.badge', { hasText: '1' }).waitFor();
    if ((await chatOf(page)).unread !== 1) throw new Error('mark unread did not leave one unread');
    await until(async () => /^\(\d+\) lanbox$/.test(await page.title()), 'the unread count in the tab title');
    // …and on the tab's icon.
    await until(async () => Number(await page.locator('link[rel=icon]').getAttribute('data-count')) > 0, 'the unread count on the favicon');
    // The agent still sees the whole backlog as unread.
    await a.locator('.chat', { hasText: 'Ruth' }).locator('.badge', { hasText: '40' }).waitFor();
    await ctx.close();
  });

  // Issue 15, points 3 and 6: nobody could say who handles a conversation or whether it is
  // done. Two people in two browser contexts watch each other's changes arrive live.
  await check('team: assign, status, snooze, labels and history, live between two agents', async () => {
    const tina = { id: 5020, is_bot: false, first_name: 'Tina', last_name: 'Team' };
    const tinaSays = (text) => ({ message: { message_id: 0, date: now(), chat: { id: tina.id, type: 'private', first_name: 'Tina', last_name: 'Team' }, from: tina, text } });
    await inject(T1, tinaSays('Tina needs help with an order.'));
    // An admin creates a label in Settings.
    await page.goto(BASE + '/#/settings/labels');
    await page.getByRole('form', { name: 'Create a label' }).getByLabel('Name').fill('VIP');
    await page.getByRole('button', { name: 'Create label' }).click();
    await page.locator('tr[data-label-id] .label-chip', { hasText: 'VIP' }).waitFor();
    const [ctx, a] = await signIn('agent1', AGENT_PW);
    await page.goto(BASE + '/#/');
    const row = (p) => p.locator('.chat', { hasText: 'Tina Team' });
    await row(page).click();
    await row(a).click();
    const bar = (p) => p.locator('.team-bar');
    await bar(a).locator('select.assignee option', { hasText: 'agent1 (you)' }).waitFor({ state: 'attached' });

    // The agent takes it: the admin's list and bar show it; the agent's "Mine" counts it.
    await bar(a).locator('select.assignee').selectOption({ label: 'agent1 (you)' });
    await row(page).locator('.assignee-tag', { hasText: 'agent1' }).waitFor();
    await until(async () => (await bar(page).locator('select.assignee option:checked').textContent()) === 'agent1', "the admin's assignee select");
    await a.locator('.views [data-view=mine] .count', { hasText: /^[1-9]/ }).waitFor();
    // Pending, then a label; both show on the other side.
    await bar(a).locator('select.status').selectOption('pending');
    await page.locator('.team-bar[data-status=pending]').waitFor();
    await row(page).locator('.status-tag[data-status=pending]').waitFor();
    await bar(a).locator('select.add-label').selectOption({ label: 'VIP' });
    await row(page).locator('.label-chip', { hasText: 'VIP' }).waitFor();
    await bar(page).locator('.label-chip', { hasText: 'VIP' }).waitFor();
    // The contact panel shows the conversation's labels too.
    if (await page.locator('.contact-panel').isHidden()) await page.getByRole('button', { name: 'Contact details' }).click();
    await page.locator('.contact-panel .cp-labels .label-chip', { hasText: 'VIP' }).waitFor();
    // The views: the admin's Mine and Unassigned leave it out; the label filter keeps it.
    await page.locator('.views [data-view=unassigned]').click();
    await until(async () => (await page.locator('.chat[aria-current=false]', { hasText: 'Tina Team' }).count()) === 0, 'Unassigned without it');
    await page.locator('.views [data-view=all]').click();
    await page.getByLabel('Label', { exact: true }).selectOption({ label: 'VIP' });
    await until(async () => (await page.locator('.chat').count()) === 1, 'only the labelled conversation');
    await page.getByLabel('Label', { exact: true }).selectOption('');
    // Snoozed until tomorrow; Tina writes and it is open again, for both.
    await bar(a).locator('select.status').selectOption('snoozed');
    await a.getByRole('dialog', { name: 'Snooze this conversation' }).getByLabel('Snooze until').selectOption({ label: 'Tomorrow, 9:00' });
    await a.getByRole('button', { name: 'Snooze', exact: true }).click();
    await page.locator('.team-bar[data-status=snoozed]').waitFor();
    await inject(T1, tinaSays('Tina again: any news?'));
    await page.locator('.team-bar[data-status=open]').waitFor();
    await a.locator('.team-bar[data-status=open]').waitFor();
    // The history says who did what.
    await bar(page).getByRole('button', { name: 'History' }).click();
    const hist = page.getByRole('dialog', { name: 'History of this conversation' });
    for (const line of ['agent1 assigned it to agent1', 'agent1 marked it pending', 'agent1 set the labels VIP', 'agent1 snoozed it until', 'a new message reopened it']) {
      await hist.locator('li', { hasText: line }).waitFor();
    }
    await shot(page, '09-team-history');
    await hist.getByRole('button', { name: 'Close' }).click();
    await page.locator('.msg', { hasText: 'Tina again: any news?' }).waitFor();
    await shot(page, '09-team-bar');

    // How long a change takes from one agent's click to the other's screen (REST, commit,
    // WebSocket, DOM), measured on the watching page by a MutationObserver.
    const times = [];
    for (let i = 0; i < 10; i++) {
      const want = i % 2 ? 'open' : 'pending';
      await page.evaluate((want) => {
        window.__seen = new Promise((resolve) => {
          const el = document.querySelector('.team-bar');
          const mo = new MutationObserver(() => { if (el.dataset.status === want) { mo.disconnect(); resolve(Date.now()); } });
          mo.observe(el, { attributes: true, attributeFilter: ['data-status'] });
        });
      }, want);
      const t0 = await a.evaluate(() => Date.now());
      await bar(a).locator('select.status').selectOption(want);
      const seen = await page.evaluate(() => window.__seen);
      times.push(seen - t0);
    }
    times.sort((x, y) => x - y);
    log(`team: a status change reaches the other agent's screen in ${times[4]} ms median, ${times[8]} ms p90 (${times.join(', ')} ms)`);
    await bar(a).locator('select.assignee').selectOption('');
    await row(page).locator('.assignee-tag').waitFor({ state: 'detached' });
    await ctx.close();
  });

  // Issue 15, points 4 and 7: no way to leave a colleague a note, and nothing told an agent of
  // what arrived while the tab was in the background.
  await check('team: a private note with a mention, and notifications for mentions and assigned conversations', async () => {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    await ctx.grantPermissions(['notifications'], { origin: BASE });
    // The page's Notification, recorded as it is called (the real one still runs).
    await ctx.addInitScript(() => {
      const N = window.Notification;
      window.__shown = [];
      class Recorded extends N { constructor(title, o) { super(title, o); window.__shown.push({ title, body: o && o.body }); } }
      Object.defineProperty(Recorded, 'permission', { get: () => N.permission });
      Recorded.requestPermission = N.requestPermission.bind(N);
      window.Notification = Recorded;
    });
    const a = await ctx.newPage();
    a.setDefaultTimeout(TIMEOUT);
    await a.goto(BASE + '/');
    await a.getByLabel('User name').fill('agent1');
    await a.getByLabel('Password').fill(AGENT_PW);
    await a.getByRole('button', { name: 'Sign in' }).click();
    await a.goto(BASE + '/#/settings/notifications');
    await a.locator('[data-permission=granted]').waitFor();
    await a.goto(BASE + '/#/');
    await a.locator('.chat', { hasText: 'Tina Team' }).waitFor();
    const shown = () => a.evaluate(() => window.__shown);

    // The admin leaves a note that mentions the agent: it sits among the messages, marked.
    await page.goto(BASE + '/#/');
    await page.locator('.chat', { hasText: 'Tina Team' }).click();
    await page.getByRole('button', { name: 'Add note' }).click();
    await page.getByRole('dialog', { name: 'Add a private note' }).getByLabel('Note').fill('@agent1 please call Tina back about order 5531');
    await page.getByRole('button', { name: 'Add note', exact: true }).last().click();
    const adminNote = page.locator('.note', { hasText: 'order 5531' });
    await adminNote.waitFor();
    // The team finds it with the search box, beside the messages.
    await page.getByRole('searchbox', { name: 'Search messages' }).fill('order 5531');
    await page.keyboard.press('Enter');
    await page.locator('.note-hit', { hasText: 'call Tina back' }).click();
    await adminNote.waitFor();
    await until(async () => (await shown()).some((n) => n.title === 'admin mentioned you'), 'the mention notification');
    await a.locator('.chat', { hasText: 'Tina Team' }).click();
    const note = a.locator('.note', { hasText: 'order 5531' });
    await note.locator('.mention', { hasText: '@agent1' }).waitFor();
    await note.locator('.note-tag', { hasText: 'Private note' }).waitFor();
    if (await note.getByRole('button', { name: 'Delete this note' }).count()) throw new Error("the agent may delete the admin's note");
    const [bg, fg] = await note.evaluate((el) => [getComputedStyle(el).backgroundColor, getComputedStyle(el.closest('.messages').querySelector('.msg .bubble, .msg') || el).backgroundColor]);
    if (bg === fg) throw new Error(`a note looks like a message (${bg})`);
    await shot(a, '10-private-note');

    // A message in a conversation assigned to the agent, while they look at another.
    const agentId = (await (await a.request.get(BASE + '/api/v1/me')).json()).id;
    await page.evaluate(([chat, id]) => fetch(`/api/v1/chats/${encodeURIComponent(chat)}/assign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ assignee: id }) }),
      [await a.evaluate(() => decodeURIComponent(location.hash.split('/')[2])), agentId]);
    await a.locator('.chat', { hasText: 'Ann Lee' }).click();
    await a.locator('.chat', { hasText: 'Tina Team' }).locator('.assignee-tag', { hasText: 'you' }).waitFor();
    const tina = { id: 5020, is_bot: false, first_name: 'Tina', last_name: 'Team' };
    await inject(T1, { message: { message_id: 0, date: now(), chat: { id: tina.id, type: 'private', first_name: 'Tina', last_name: 'Team' }, from: tina, text: 'Tina: calling you now' } });
    await until(async () => (await shown()).some((n) => n.title === 'Tina Team' && n.body.includes('calling you now')), 'the assigned-conversation notification');
    // Turned off, it stays quiet.
    await a.goto(BASE + '/#/settings/notifications');
    await a.getByLabel('A message in a conversation assigned to you').uncheck();
    const before = (await shown()).length;
    await inject(T1, { message: { message_id: 0, date: now(), chat: { id: tina.id, type: 'private', first_name: 'Tina', last_name: 'Team' }, from: tina, text: 'Tina: hello?' } });
    await stored(a, 'Tina: hello?');
    await a.goto(BASE + '/#/');
    await a.locator('.chat', { hasText: 'Tina: hello?' }).waitFor();
    if ((await shown()).length !== before) throw new Error('notified although turned off');

    // The transcript with notes carries it, marked; the plain one does not.
    const pdfText = async (sel) => {
      const [download] = await Promise.all([a.waitForEvent('download'), a.locator(sel).click()]);
      const { execFileSync } = await import('node:child_process');
      return execFileSync('pdftotext', ['-enc', 'UTF-8', await download.path(), '-']).toString();
    };
    await a.locator('.chat', { hasText: 'Tina Team' }).click();
    const withNotes = await pdfText('.convo-head a.export-pdf-notes');
    if (!withNotes.includes('PRIVATE NOTE by admin') || !withNotes.includes('order 5531')) throw new Error('the note is not in the transcript with notes');
    if ((await pdfText('.convo-head a.export-pdf')).includes('order 5531')) throw new Error('the plain transcript carries a private note');

    // Deleting the note takes it off the agent's screen too.
    await page.locator('.chat', { hasText: 'Tina Team' }).click();
    await adminNote.getByRole('button', { name: 'Delete this note' }).click();
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await a.locator('.chat', { hasText: 'Tina Team' }).click();
    await a.locator('.msg', { hasText: 'Tina: hello?' }).waitFor();
    await until(async () => (await a.locator('.note', { hasText: 'order 5531' }).count()) === 0, "the note gone from the agent's screen");
    await page.evaluate((chat) => fetch(`/api/v1/chats/${encodeURIComponent(chat)}/assign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ assignee: null }) }),
      await a.evaluate(() => decodeURIComponent(location.hash.split('/')[2])));
    await ctx.close();
  });

  // Issue 15, point 10: no reports of the team's work.
  await check('reports: conversations by status and account, workload, response times and messages per day', async () => {
    await page.getByRole('link', { name: 'Reports' }).click();
    const status = page.getByRole('img', { name: 'Conversations by status' });
    await status.waitFor();
    const open = Number(await status.locator('[data-row=Open] rect').getAttribute('data-value'));
    if (!(open > 0)) throw new Error(`no open conversations charted (${open})`);
    await page.locator('[data-figure="First response"] .big').waitFor();
    const days = await page.locator('[data-day]').count();
    if (days < 30 || days > 31) throw new Error(`${days} days charted for 30`);
    await page.getByLabel('Period').selectOption('7');
    await until(async () => { const n = await page.locator('[data-day]').count(); return n >= 7 && n <= 8; }, 'seven days charted');
    const incoming = await page.locator('[data-day] rect.in').evaluateAll((rs) => rs.reduce((n, r) => n + Number(r.getAttribute('height') > 0), 0));
    if (!incoming) throw new Error('no incoming messages charted this week');
    await shot(page, '11-reports');
    // An agent's figures cover only their accounts.
    const [ctx, a] = await signIn('agent1', AGENT_PW);
    await a.getByRole('link', { name: 'Reports' }).click();
    const byAccount = a.getByRole('img', { name: 'Conversations by account' });
    await byAccount.waitFor();
    const rows = await byAccount.locator('[data-row]').evaluateAll((gs) => gs.map((g) => g.dataset.row));
    if (rows.join() !== 'Support bot') throw new Error(`the agent's report lists ${rows.join()}`);
    await ctx.close();
    await page.goto(BASE + '/#/');
  });

  // Issue 15: the API could edit and delete sent messages and manage tokens and roles; the
  // browser could not.
  // Issue 15, point 5: canned replies, the team's and an agent's own, inserted by shortcut.
  await check('canned replies: "/" opens the picker, a reply goes in with its variables filled, and is sent', async () => {
    people.lena = { id: 5020, is_bot: false, first_name: 'Lena', last_name: 'Berg', username: 'lena_b', language_code: 'de' };
    await inject(T1, privateUpdate('lena', { text: 'Hallo, where is my order 5531?' }));
    // The admin saves a team reply in Settings; a variable the box does not know is refused.
    await page.goto(BASE + '/#/settings/canned');
    const form = page.locator('form[aria-label="Add a canned reply"]');
    await form.getByLabel('Shortcut').fill('thanks');
    await form.getByLabel('Who can use it').selectOption('team');
    await form.getByLabel('Text').fill('Thanks {{contact.first_name}}, {{agent.name}} here.');
    await form.getByRole('button', { name: 'Save' }).click();
    await page.locator('tr[data-canned]', { hasText: '/thanks' }).waitFor();
    await form.getByLabel('Shortcut').fill('oops');
    await form.getByLabel('Text').fill('Hi {{contact.email}}');
    await form.getByRole('button', { name: 'Save' }).click();
    await form.getByText('unknown variable').waitFor();
    await shot(page, '20-settings-canned');
    // The agent adds one of their own (no team option for them); the admin never sees it.
    const [ctx, a] = await signIn('agent1', AGENT_PW);
    await a.locator('.chat').first().waitFor();
    await a.goto(BASE + '/#/settings/canned');
    const af = a.locator('form[aria-label="Add a canned reply"]');
    await af.waitFor();
    if (await af.locator('option[value=team]').count()) throw new Error('an agent is offered team replies');
    await af.getByLabel('Shortcut').fill('mysig');
    await af.getByLabel('Text').fill('Best, {{agent.name}}');
    await af.getByRole('button', { name: 'Save' }).click();
    await a.locator('tr[data-canned]', { hasText: '/mysig' }).waitFor();
    if (await a.locator('tr[data-canned]', { hasText: '/thanks' }).getByRole('button', { name: 'Edit…' }).count()) throw new Error('an agent may edit a team reply');
    const adminSees = await page.evaluate(() => fetch('/api/v1/canned').then((r) => r.json()));
    if (adminSees.replies.some((r) => r.shortcut === 'mysig')) throw new Error("the admin sees the agent's personal reply");
    // In Lena's chat: "/" lists both, "/tha" only the team's, Enter inserts it filled in.
    await a.goto(BASE + '/#/');
    await a.locator('.chat', { hasText: 'Lena Berg' }).click();
    await a.locator('.msg', { hasText: 'order 5531' }).waitFor();
    const box = a.getByLabel('Message', { exact: true });
    await box.pressSequentially('/');
    const picker = a.getByRole('listbox', { name: 'Canned replies' });
    await picker.getByRole('option', { name: /\/thanks/ }).waitFor();
    await picker.getByRole('option', { name: /\/mysig/ }).waitFor();
    await shot(a, '21-canned-picker');
    await box.pressSequentially('tha');
    await until(async () => (await picker.getByRole('option').count()) === 1, 'the picker filtered to /thanks');
    await box.press('Enter');
    await until(async () => (await box.inputValue()) === 'Thanks Lena, agent1 here.', 'the reply filled in');
    if (await picker.isVisible()) throw new Error('the picker stayed open');
    await box.press('Enter');
    await until(async () => (await sim(`/_sim/bot${T1}/sent?since=0`)).find((x) => x.method === 'sendMessage' && x.text === 'Thanks Lena, agent1 here.'),
      'the canned reply at the simulator');
    await a.locator('.msg.out', { hasText: 'Thanks Lena, agent1 here.' }).locator('[data-status=sent]').waitFor();
    // A click inserts too; Escape closes the picker and leaves the text alone.
    await box.pressSequentially('/my');
    await picker.getByRole('option', { name: /\/mysig/ }).click();
    await until(async () => (await box.inputValue()) === 'Best, agent1', 'the clicked reply');
    await box.fill('');
    await box.pressSequentially('/');
    await picker.waitFor();
    await box.press('Escape');
    await picker.waitFor({ state: 'hidden' });
    if ((await box.inputValue()) !== '/') throw new Error('Escape changed the text');
    await box.fill('');
    await ctx.close();
  });

  // Issue 15, point 8: the contact panel, cut to the viewer's grants.
  await check('contact panel: name, username, Telegram ID, language, accounts and other chats, cut to grants; phone width', async () => {
    if (!people.lena) throw new Blocked('needs the canned replies check (Lena)');
    await inject(T2, privateUpdate('lena', { text: 'Also asking sales about 5531' }));
    await stored(page, 'Also asking sales');
    await page.goto(BASE + `/#/chat/${encodeURIComponent(`${acct1}:5020`)}`);
    await page.locator('.msg', { hasText: 'order 5531' }).waitFor();
    const panel = page.getByRole('complementary', { name: 'Contact' });
    if (!(await panel.isVisible())) await page.getByRole('button', { name: 'Contact details' }).click();
    await panel.locator('.cp-name', { hasText: 'Lena Berg' }).waitFor();
    const field = (p, f) => p.locator(`[data-field=${f}]`).textContent();
    if ((await field(panel, 'username')) !== '@lena_b') throw new Error('username: ' + await field(panel, 'username'));
    if ((await field(panel, 'telegram_id')) !== '5020') throw new Error('telegram id: ' + await field(panel, 'telegram_id'));
    if (!(await field(panel, 'language')).includes('(de)')) throw new Error('language: ' + await field(panel, 'language'));
    await until(async () => (await panel.locator('li[data-account]').count()) === 2, 'both accounts for the admin');
    const other = panel.locator(`a[data-chat="${acct2}:5020"]`);
    await other.waitFor();
    await shot(page, '22-contact-panel');
    // The agent, granted only the Support bot, sees neither the Sales bot nor Lena's chat there.
    const [ctx, a] = await signIn('agent1', AGENT_PW);
    await a.locator('.chat').first().waitFor();
    await a.goto(BASE + `/#/chat/${encodeURIComponent(`${acct1}:5020`)}`);
    await a.locator('.msg', { hasText: 'order 5531' }).waitFor();
    const ap = a.getByRole('complementary', { name: 'Contact' });
    if (!(await ap.isVisible())) await a.getByRole('button', { name: 'Contact details' }).click();
    await ap.locator('.cp-name', { hasText: 'Lena Berg' }).waitFor();
    await ap.getByText('None you can see.').waitFor();
    const names = await ap.locator('li[data-account]').allTextContents();
    if (names.join() !== 'Support bot') throw new Error('agent sees accounts ' + names.join());
    if ((await ap.textContent()).includes('Sales')) throw new Error('the Sales bot leaked into the agent\'s panel');
    // Closing is remembered; the toggle brings it back.
    await ap.getByRole('button', { name: 'Close the contact panel' }).click();
    await ap.waitFor({ state: 'hidden' });
    await a.reload();
    await a.locator('.msg', { hasText: 'order 5531' }).waitFor();
    if (await ap.isVisible()) throw new Error('the closed panel came back after a reload');
    await a.getByRole('button', { name: 'Contact details' }).click();
    await ap.locator('.cp-name', { hasText: 'Lena Berg' }).waitFor();
    // At phone width it covers the conversation until closed.
    await a.setViewportSize({ width: 390, height: 800 });
    const boxSize = await ap.boundingBox();
    if (!boxSize || boxSize.width < 380) throw new Error('at phone width the panel is ' + JSON.stringify(boxSize));
    await shot(a, '23-contact-panel-phone');
    await ap.getByRole('button', { name: 'Close the contact panel' }).click();
    await a.locator('.msg', { hasText: 'order 5531' }).waitFor({ state: 'visible' });
    await ctx.close();
    // The admin follows the link to Lena's other conversation.
    await other.click();
    await page.locator('.msg', { hasText: 'Also asking sales' }).waitFor();
  });

  await check('edit and delete your own message; API tokens and roles in Settings', async () => {
    await page.goto(BASE + '/#/');
    await page.locator('.chat', { hasText: 'Ann Lee' }).click();
    const mine = page.locator('.msg.out', { hasText: 'Sent by the admin' });
    await mine.locator('[data-status=sent]').waitFor();
    // A teammate's message offers no edit or delete.
    const theirs = page.locator('.msg.out', { hasText: 'Sent by the agent' });
    await theirs.hover();
    if (await theirs.getByRole('button', { name: 'Edit this message' }).count()) throw new Error("a teammate's message can be edited");
    await mine.hover();
    await mine.getByRole('button', { name: 'Edit this message' }).click();
    const ed = page.getByRole('dialog', { name: 'Edit your message' });
    await ed.getByLabel('New text').fill('Sent by the admin, corrected');
    await ed.getByRole('button', { name: 'Save' }).click();
    const edited = page.locator('.msg.out', { hasText: 'Sent by the admin, corrected' });
    await edited.locator('.edited').waitFor();
    const calls = await sim(`/_sim/bot${T1}/sent?since=0`);
    if (!calls.some((c) => (c.text || '') === 'Sent by the admin, corrected')) throw new Error('the edit did not reach Telegram');
    await edited.hover();
    await edited.getByRole('button', { name: 'Delete this message' }).click();
    await page.getByRole('dialog', { name: 'Delete your message?' }).getByRole('button', { name: 'Delete for everyone' }).click();
    await edited.waitFor({ state: 'detached' });

    // An agent makes an API token (shown once), uses it, revokes it.
    const [ctx, a] = await signIn('agent1', AGENT_PW);
    await a.getByRole('link', { name: 'Settings' }).click();
    const form = a.locator('form[aria-label="Create an API token"]');
    await form.getByLabel('Label').fill('nightly export');
    await form.getByRole('button', { name: 'Create' }).click();
    const token = await a.getByLabel('The new token').inputValue();
    const ok = await a.evaluate(async ([url, t]) => (await fetch(url, { headers: { authorization: 'Bearer ' + t }, credentials: 'omit' })).json(), [`${BASE}/api/v1/me`, token]);
    if (ok.name !== 'agent1') throw new Error('the token does not act as agent1: ' + JSON.stringify(ok));
    await a.getByRole('button', { name: 'Done' }).click();
    const row = a.locator('tr[data-token]', { hasText: 'nightly export' });
    await row.getByRole('button', { name: 'Revoke…' }).click();
    await a.getByRole('dialog', { name: 'Revoke nightly export?' }).getByRole('button', { name: 'Revoke' }).click();
    await row.waitFor({ state: 'detached' });
    const gone = await a.evaluate(async ([url, t]) => (await fetch(url, { headers: { authorization: 'Bearer ' + t }, credentials: 'omit' })).status, [`${BASE}/api/v1/me`, token]);
    if (gone !== 401) throw new Error('a revoked token still answers ' + gone);
    if (await a.getByRole('tab', { name: 'Users' }).count()) throw new Error('an agent sees the Users tab');
    await ctx.close();

    // An admin changes a role there (and back).
    await page.goto(BASE + '/#/settings/users');
    await page.getByLabel('Role of agent1').selectOption('admin');
    await page.getByText('agent1 is now an admin').waitFor();
    await page.getByLabel('Role of agent1').selectOption('agent');
    await page.getByText('agent1 is now an agent').waitFor();
    const users = await page.evaluate(() => fetch('/api/v1/users').then((r) => r.json()));
    if (users.find((u) => u.name === 'agent1').role !== 'agent') throw new Error('role not restored');
  });

  await check('a page opened while the inbox still loads keeps what was typed into it', async () => {
    // Regression: when its first load finished, the inbox routed once more, so a page opened
    // meanwhile was rendered afresh and what the person had typed was gone (seen in CI under
    // load: an agent's token label, so the token was made without it). The chat list is held
    // back here until the label is typed.
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    let release;
    const held = new Promise((r) => { release = r; });
    await ctx.route(/\/api\/v1\/chats(\?|$)/, async (route) => { await held; await route.continue(); });
    const p = await ctx.newPage();
    p.setDefaultTimeout(TIMEOUT);
    await p.goto(BASE + '/');
    await p.getByLabel('User name').fill('admin');
    await p.getByLabel('Password').fill(ADMIN_PW);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByRole('link', { name: 'Settings' }).waitFor();
    await p.evaluate(() => { location.hash = '#/settings/tokens'; });
    const label = p.locator('form[aria-label="Create an API token"]').getByLabel('Label');
    await label.fill('typed while loading');
    const loaded = p.waitForResponse(/\/api\/v1\/chats(\?|$)/);
    release();
    await loaded;
    // Live starts right after the load, and the start's last step follows it at once.
    await p.locator('.conn[data-state=online]').waitFor();
    const kept = await label.inputValue();
    if (kept !== 'typed while loading') throw new Error(`the label typed while loading became "${kept}"`);
    await ctx.close();
  });

  await check('the page recovers from a dropped connection and resumes from its last seq', async () => {
    await page.goto(BASE + '/#/');
    await page.locator('.conn[data-state=online]').waitFor();
    await page.locator('.chat', { hasText: 'Ann Lee' }).click();
    // Ann's message itself (our reply quotes it too).
    await page.locator('.msg:not(.out)', { hasText: 'parcel 7731' }).waitFor();
    proxy.cut();
    await page.locator('.conn[data-state=offline]').waitFor();
    await inject(T1, privateUpdate('ann', { text: 'Sent while you were offline' }));
    await stored(page, 'Sent while you were offline', `https://${box.addr}`); // the proxy is down
    proxy.restore();
    await page.locator('.conn[data-state=reconnected]').waitFor({ timeout: 20000 });
    await page.getByText(/Reconnected — caught up on [1-9]/).first().waitFor();
    await page.locator('.msg', { hasText: 'Sent while you were offline' }).waitFor();
    await shot(page, '11-reconnected');
  });

  // Regression: the page loaded its chats, then subscribed to the live feed "from now": what
  // happened in between (a message, a reply's "sent" status) never reached the page. Under
  // load that lost the demo's "sent" status. The WebSocket is held back here until a message
  // has been stored after the page load.
  await check('nothing is lost between the page load and the live feed', async () => {
    let release;
    const held = new Promise((r) => { release = r; });
    const p = await page.context().newPage();
    p.setDefaultTimeout(TIMEOUT);
    current = p;
    await p.routeWebSocket(/\/api\/v1\/ws$/, async (ws) => { await held; ws.connectToServer(); });
    await p.goto(BASE + '/#/');
    await p.locator('.chat', { hasText: 'Bob' }).waitFor();
    const text = 'Written while the live feed was connecting';
    await inject(T1, privateUpdate('bob', { text }));
    await stored(p, text);
    release();
    await p.locator('.chat', { hasText: text }).waitFor();
    await p.close();
    current = page;
  });

  // Regression: an 800-character unbroken token quoted in a reply made the page 7,392 px wide
  // on a 1,366 px window, with Send and Sign out off-screen.
  await check('long unbroken tokens wrap at desktop and phone widths', async () => {
    const token = 'x'.repeat(400) + 'LONGTOKEN' + 'y'.repeat(391);
    const first = privateUpdate('ann', { text: 'quokkalong ' + token });
    await inject(T1, first);
    const quoting = privateUpdate('ann', { text: token, reply_to_message: first.message });
    await inject(T1, quoting);
    // The same kind of token as a caption, a file name, a chat title and a search result.
    const bytes = png(16, 16, [20, 90, 200]);
    const photo = await sim(`/_sim/bot${T1}/files?kind=photo&file_name=p.png`, bytes, true);
    const longName = 'report-' + 'q'.repeat(300) + '.pdf';
    const doc = await sim(`/_sim/bot${T1}/files?kind=document&file_name=${longName}`, Buffer.from('%PDF-1.4 long name'), true);
    const longTitle = 'Group' + 'w'.repeat(300);
    await inject(T1, [
      privateUpdate('ann', { photo: [{ file_id: photo.file_id, file_unique_id: photo.file_unique_id, width: 16, height: 16, file_size: bytes.length }], caption: 'quokkalong CAPTION' + 'c'.repeat(500) }),
      privateUpdate('ann', { document: { file_id: doc.file_id, file_unique_id: doc.file_unique_id, file_name: longName, mime_type: 'application/pdf', file_size: 18 } }),
      { message: { message_id: nextMsg++, date: now(), chat: { id: -1001234567, type: 'supergroup', title: longTitle }, from: people.bob, text: 'in the long-titled group' } },
    ]);
    const inView = async (p, locator, what) => {
      const b = await locator.boundingBox();
      const w = await p.evaluate(() => window.innerWidth);
      if (!b || b.x < 0 || b.x + b.width > w + 1) throw new Error(`${what} is off-screen at ${w} px: ${JSON.stringify(b)}`);
    };
    const fits = async (p, where) => {
      const wide = await p.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      if (wide[0] > wide[1]) throw new Error(`${where}: the page is ${wide[0]} px wide in a ${wide[1]} px window`);
    };
    for (const viewport of [{ width: 1366, height: 800 }, { width: 390, height: 780 }]) {
      const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport, storageState: await admin.storageState() });
      const p = await ctx.newPage();
      p.setDefaultTimeout(TIMEOUT);
      await p.goto(BASE + '/#/');
      await p.locator('.chat', { hasText: 'wwwwwwww' }).waitFor();
      await fits(p, 'chat list with a long title');
      await p.locator('.chat', { hasText: 'wwwwwwww' }).click();
      await p.locator('.msg', { hasText: 'in the long-titled group' }).waitFor();
      await fits(p, 'a chat with a long title');
      await inView(p, p.getByRole('button', { name: 'Send' }), 'Send');
      await p.goto(BASE + '/#/');
      await p.locator('.chat', { hasText: 'Ann Lee' }).click();
      await p.locator('.msg .quote').last().waitFor();
      await p.locator('.msg', { hasText: 'CAPTION' }).waitFor();
      await p.locator('.msg', { hasText: 'report-qqqq' }).waitFor();
      await fits(p, 'messages, a quote, a caption and a file name');
      await inView(p, p.getByRole('button', { name: 'Send' }), 'Send');
      await shot(p, `12b-long-token-${viewport.width}`);
      await p.goto(BASE + '/#/search/quokkalong');
      await p.locator('.hit').nth(1).waitFor();
      await fits(p, 'search results');
      await inView(p, p.getByRole('button', { name: 'Sign out' }), 'Sign out');
      await shot(p, `12c-long-token-search-${viewport.width}`);
      await ctx.close();
    }
  });

  await check('phone width and dark mode', async () => {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 390, height: 780 }, colorScheme: 'dark', storageState: await admin.storageState() });
    const p = await ctx.newPage();
    await p.goto(BASE + '/#/');
    await p.locator('.chat', { hasText: 'Ann Lee' }).waitFor();
    await shot(p, '12-phone-list-dark');
    await p.locator('.chat', { hasText: 'Ann Lee' }).click();
    await p.locator('.msg').first().waitFor();
    if (await p.locator('.chatlist').isVisible()) throw new Error('the chat list stays visible beside the conversation at phone width');
    const bg = await p.evaluate(() => getComputedStyle(document.body).backgroundColor);
    if (bg === 'rgb(244, 245, 247)') throw new Error('dark mode not applied');
    await shot(p, '13-phone-conversation-dark');
    await p.getByRole('button', { name: 'Back to the chat list' }).click();
    await p.locator('.chatlist').waitFor();
    await ctx.close();
  });

  await check('keyboard: move between chats, focus the composer, send', async () => {
    await page.goto(BASE + '/#/');
    await page.locator('.chat').first().waitFor();
    await page.locator('body').click({ position: { x: 5, y: 700 } });
    await page.keyboard.press('Alt+ArrowDown');
    await until(() => page.evaluate(() => location.hash.startsWith('#/chat/')), 'a chat to open');
    await page.locator('.msg, .service').first().waitFor();
    await page.locator('.messages').focus();
    await page.keyboard.press('c');
    const focused = await page.evaluate(() => document.activeElement.getAttribute('aria-label'));
    if (focused !== 'Message') throw new Error('composer not focused: ' + focused);
  });

  // Regression: the README says admins switch webhook/polling and release accounts in the
  // browser, but Settings had neither; a password reset showed the password in
  // window.prompt; a chat the user may not see still showed a composer.
  await check('settings: webhook and polling, a password dialog, no composer for an unshared chat, release with a confirmation', async () => {
    const native = [];
    const onDialog = (d) => { native.push(d.type()); d.dismiss().catch(() => {}); };
    page.on('dialog', onDialog);
    try {
      const row = () => page.locator(`tr[data-account="${acct2}"]`);
      await page.goto(BASE + '/#/settings/accounts');
      // Polling -> webhook at this page's own address (the simulator delivers to loopback).
      await row().getByRole('button', { name: 'Switch to webhook…' }).click();
      const dlg = page.getByRole('dialog', { name: 'Receive Sales bot by webhook' });
      await dlg.getByRole('button', { name: 'Switch to webhook' }).click();
      await row().locator('[data-mode=webhook]').waitFor();
      await inject(T2, privateUpdate('eve', { text: 'delivered by webhook zebracorn' }));
      await stored(page, 'delivered by webhook zebracorn');
      await row().getByRole('button', { name: 'Switch to polling…' }).click();
      await page.getByRole('dialog', { name: 'Receive Sales bot by polling' }).getByRole('button', { name: 'Switch to polling' }).click();
      await row().locator('[data-mode=polling]').waitFor();

      // A new password for agent1, typed twice in password fields.
      await page.goto(BASE + '/#/settings/users');
      await page.locator('tr[data-user="agent1"]').getByRole('button', { name: 'Password…' }).click();
      const pd = page.getByRole('dialog', { name: 'New password for agent1' });
      const NEW_PW = 'a new agent password 2';
      await pd.getByLabel('New password').fill(NEW_PW);
      await pd.getByLabel('The same again').fill(NEW_PW + 'x');
      await pd.getByRole('button', { name: 'Set password' }).click();
      await pd.getByText('The two passwords differ.').waitFor();
      for (const input of await pd.locator('input').all()) if (await input.getAttribute('type') !== 'password') throw new Error('a password field shows its text');
      await pd.getByLabel('The same again').fill(NEW_PW);
      await pd.getByRole('button', { name: 'Set password' }).click();
      await page.getByText('Password of agent1 changed').waitFor();

      // The agent (new password) opens a chat of the account not granted: no composer.
      const eve = (await page.evaluate(() => fetch('/api/v1/chats?limit=200').then((r) => r.json()))).chats.find((c) => (c.title || '').includes('Eve'));
      if (!eve) throw new Error("no chat of Eve's");
      const [ctx, a] = await signIn('agent1', NEW_PW);
      await a.locator('.chat', { hasText: 'Ann Lee' }).waitFor();
      await a.goto(`${BASE}/#/chat/${eve.id}`);
      await a.getByText('not shared with you').waitFor();
      if (await a.getByLabel('Message', { exact: true }).count()) throw new Error('a composer for a chat the agent may not see');
      await ctx.close();

      // Release: the dialog says what goes, and wants the account's name typed.
      await page.goto(BASE + '/#/settings/accounts');
      await row().getByRole('button', { name: 'Release…' }).click();
      const rd = page.getByRole('dialog', { name: 'Release Sales bot?' });
      for (const said of ['cannot be undone', 'every conversation, message and attachment only this account received', 'encryption key']) await rd.getByText(said).waitFor();
      await rd.getByLabel('Type Sales bot to confirm').fill('Sales');
      await rd.getByRole('button', { name: 'Release and delete' }).click();
      await rd.getByText('Type the name exactly').waitFor();
      await shot(page, '16-release-confirmation');
      await rd.getByLabel('Type Sales bot to confirm').fill('Sales bot');
      await rd.getByRole('button', { name: 'Release and delete' }).click();
      await row().waitFor({ state: 'detached' });
      await until(async () => !(await page.evaluate(() => fetch('/api/v1/chats?limit=200').then((r) => r.json()))).chats.some((c) => (c.title || '').includes('Eve')), "Eve's chat released");
      if (native.length) throw new Error('native dialogs shown: ' + native.join(', '));
    } finally {
      page.off('dialog', onDialog);
    }
  });

  // Regression: errors vanished after 3 s like confirmations, and toasts covered the composer.
  await check('an error stays until dismissed and nothing covers the composer', async () => {
    await page.goto(BASE + '/#/');
    await page.locator('.chat', { hasText: 'Ann Lee' }).click();
    await page.locator('.msg').first().waitFor();
    // The page's own module (same URL, same instance) shows them.
    await page.evaluate(() => import(document.querySelector('script[type=module]').src.replace(/app\.js$/, 'dom.js'))
      .then((d) => { d.toastError('A test error'); d.toast('A test confirmation'); }));
    const err = page.locator('.toast.error', { hasText: 'A test error' });
    await err.waitFor();
    const ok = page.locator('.toast:not(.error)', { hasText: 'A test confirmation' });
    const [bgErr, bgOk] = [await err.evaluate((e) => getComputedStyle(e).backgroundColor), await ok.evaluate((e) => getComputedStyle(e).backgroundColor)];
    if (bgErr === bgOk) throw new Error('an error looks like a confirmation');
    const composer = await page.getByLabel('Message', { exact: true }).boundingBox();
    for (const t of await page.locator('.toast').all()) {
      const b = await t.boundingBox({ timeout: 500 }).catch(() => null); // null: that toast has just gone
      if (b && b.y + b.height > composer.y && b.y < composer.y + composer.height) throw new Error('a notice covers the composer');
    }
    await ok.waitFor({ state: 'detached' });
    if (!(await err.count())) throw new Error('the error went by itself');
    await err.getByRole('button', { name: 'Dismiss this error' }).click();
    await err.waitFor({ state: 'detached' });
  });

  // Regression (a new user's list): one sender's run repeated the name on every bubble; the
  // hover reply button covered text; "New messages" stayed after the chat was read; the list
  // said "Thu" where the conversation said "Yesterday"; settings tables lost their labels at
  // phone width; the search placeholder was cut; the fingerprint broke inside a byte.
  await check('polish: grouped senders, reply button, divider, day names, phone tables, placeholder, fingerprint', async () => {
    await page.goto(BASE + '/#/');
    // Bob's 130-line history: one name for the run.
    await page.locator('.chat', { hasText: 'Bob' }).click();
    await page.locator('.msg', { hasText: "Bob's line 130" }).waitFor();
    const [bubbles, names] = await page.locator('.messages').evaluate((l) => [
      l.querySelectorAll('.msg').length, [...l.querySelectorAll('.msg .who')].filter((w) => w.offsetParent !== null).length]);
    if (!(bubbles >= 10 && names <= 2)) throw new Error(`${names} sender names over ${bubbles} bubbles`);
    // The reply button, shown on hover, overlaps no text of its message.
    const msg = page.locator('.msg', { hasText: "Bob's line 130" });
    await msg.hover();
    const [btn, text] = [await msg.locator('.actions').boundingBox(), await msg.locator('.text').boundingBox()];
    if (!btn || btn.x < text.x + text.width && btn.x + btn.width > text.x && btn.y < text.y + text.height && btn.y + btn.height > text.y) throw new Error('the reply button covers the text');
    // A message from yesterday: "Yesterday" in the list and in the conversation.
    await inject(T1, { message: { message_id: nextMsg++, date: now() - 86400, chat: { id: 5009, type: 'private', first_name: 'Yara' }, from: { id: 5009, is_bot: false, first_name: 'Yara' }, text: 'sent yesterday' } });
    const yara = page.locator('.chat', { hasText: 'Yara' });
    await yara.waitFor();
    if (!/Yesterday/.test(await yara.locator('.time').textContent())) throw new Error('the list does not say Yesterday: ' + await yara.locator('.time').textContent());
    await yara.click();
    await page.locator('.day', { hasText: 'Yesterday' }).waitFor();
    // The divider shows where the new part began, then goes once the chat is read.
    await page.locator('.unread-mark').waitFor();
    await page.locator('.unread-mark').waitFor({ state: 'detached' });
    // Phone width: each settings cell says what it is; the placeholder fits; the fingerprint
    // wraps between bytes only.
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 390, height: 780 }, storageState: await admin.storageState() });
    const p = await ctx.newPage();
    p.setDefaultTimeout(TIMEOUT);
    await p.goto(BASE + '/#/settings/accounts');
    const label = await p.locator('tr[data-account] td').nth(1).evaluate((td) => getComputedStyle(td, '::before').content);
    if (label !== '"Status"') throw new Error('no label on a settings cell at phone width: ' + label);
    const search = p.getByRole('searchbox', { name: 'Search messages' });
    const room = await search.evaluate((i) => {
      const c = document.createElement('canvas').getContext('2d');
      const st = getComputedStyle(i);
      c.font = st.font;
      return i.clientWidth - parseFloat(st.paddingLeft) - parseFloat(st.paddingRight) - c.measureText(i.placeholder).width;
    });
    if (room < 0) throw new Error(`the search placeholder is cut by ${-room} px`);
    await p.goto(BASE + '/#/settings/system');
    const fp = p.locator('[data-fingerprint]');
    await fp.waitFor();
    const lines = await fp.evaluate((el) => {
      const seen = new Set();
      for (const n of el.childNodes) {
        if (n.nodeType !== Node.TEXT_NODE) continue;
        const r = document.createRange();
        r.selectNodeContents(n);
        const rects = [...r.getClientRects()].filter((x) => x.width > 0);
        if (new Set(rects.map((x) => Math.round(x.top))).size > 1) return -1; // a byte broken across lines
        rects.forEach((x) => seen.add(Math.round(x.top)));
      }
      return seen.size;
    });
    if (lines < 0) throw new Error('the fingerprint breaks inside a byte');
    if (lines < 2) throw new Error('the fingerprint did not wrap at 390 px (test premise)');
    await shot(p, '17-phone-settings-system');
    await ctx.close();
  });

  await check('settings: a backup passphrase, a verified backup now, and its encrypted download', async () => {
    await page.goto(BASE + '/#/settings/system');
    const box = page.getByRole('region', { name: 'Backup' });
    await box.getByText('No backup passphrase yet').waitFor();
    if (!(await box.getByRole('button', { name: 'Back up now' }).isDisabled())) throw new Error('Back up now without a passphrase');
    await box.getByRole('button', { name: 'Set passphrase…' }).click();
    const d = page.getByRole('dialog', { name: 'Set a backup passphrase' });
    await d.getByLabel('Backup passphrase').fill('short');
    await d.getByLabel('The same again').fill('short');
    await d.getByRole('button', { name: 'Save passphrase' }).click();
    await d.getByText('At least 12 characters.').waitFor();
    const PASS = 'orange kettle under the stairs';
    await d.getByLabel('Backup passphrase').fill(PASS);
    await d.getByLabel('The same again').fill(PASS);
    await d.getByRole('button', { name: 'Save passphrase' }).click();
    await page.getByText('Backup passphrase saved').waitFor();
    await box.getByRole('button', { name: 'Back up now' }).click();
    // Done, or an error said at once (an unknown table failed every backup with a 500 once).
    const outcome = await Promise.race([
      page.getByText(/Backup \S+ written and verified/).waitFor({ timeout: 60000 }).then(() => null),
      page.getByText(/^Backup: /).waitFor({ timeout: 60000 }).then(() => page.getByText(/^Backup: /).first().textContent()),
    ]);
    if (outcome) throw new Error(`the backup failed: ${outcome}`);
    const row = box.locator('tr[data-backup]').first();
    await row.waitFor();
    await shot(page, '19-settings-backup');
    const [download] = await Promise.all([page.waitForEvent('download'), row.getByRole('link', { name: 'Download' }).click()]);
    const got = (await import('node:fs')).readFileSync(await download.path());
    if (got.subarray(0, 8).toString() !== 'LANBOXBK') throw new Error('not a lanbox backup: ' + got.subarray(0, 8).toString('hex'));
    if (got.includes(Buffer.from('zebracorn')) || got.includes(Buffer.from('Sent by the agent'))) throw new Error('message text readable in the backup file');
  });

  await check('settings: an update bundle is checked by RAUC; unsigned and foreign ones are refused with the reason', async () => {
    if (!upd) throw new Blocked('needs rauc, mksquashfs and openssl (scripts/install-deps.sh installs them)');
    await page.goto(BASE + '/#/settings/system');
    const box = page.getByRole('region', { name: 'Update' });
    // This machine has no A/B slots and no RAUC service: said so, and a bundle can still be checked.
    await box.locator('[data-update-unavailable]').waitFor();
    const input = box.getByLabel('Update bundle');
    await input.setInputFiles(upd.junk);
    await box.locator('[data-update-status].error', { hasText: 'bundle was refused' }).waitFor();
    await input.setInputFiles(upd.foreign);
    await box.locator('[data-update-status].error', { hasText: 'bundle was refused' }).waitFor();
    await input.setInputFiles(upd.good);
    await page.getByText('Bundle 2026.12.2 checked').waitFor();
    await box.locator('[data-update-bundle="2026.12.2"]', { hasText: 'signed with this box' }).waitFor();
    // Not installable here (no slots): the button says so by being off.
    if (!(await box.getByRole('button', { name: 'Install' }).isDisabled())) throw new Error('Install offered on a system without slots');
    await box.scrollIntoViewIfNeeded();
    await shot(page, '30-settings-update');
    await box.getByRole('button', { name: 'Discard' }).click();
    await box.locator('[data-update-unavailable]').waitFor();
  });

  await check('a full disk: a banner for admins and agents, reads go on, and it resumes by itself', async () => {
    // A real full disk without root: lanbox's own file-size limit (RLIMIT_FSIZE, set from
    // outside with prlimit) stops its database growing, so the kernel refuses the writes
    // (EFBIG) exactly where a full partition would (ENOSPC); lanbox ignores SIGXFSZ for this.
    // Regression: with the disk full, a small probe write fitted in the file's free pages, so
    // health flickered back to ok (and the banner with it) while every batch was refused.
    const fsize = (v) => execFileSync('prlimit', ['--pid', String(box.proc.pid), `--fsize=${v}:`]);
    await page.goto(BASE + '/#/');
    await page.locator('.conn[data-state=online]').waitFor();
    // An agent of its own: earlier checks change agent1 (its role, its sessions).
    const made = await page.evaluate(async (acct) => (await fetch('/api/v1/users', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'diskagent', role: 'agent', password: 'disk agent password', accounts: [acct] }),
    })).status, acct1);
    if (made !== 201) throw new Error(`creating the agent answered ${made}`);
    const [actx, a] = await signIn('diskagent', 'disk agent password');
    await a.locator('.conn[data-state=online]').waitFor();
    const health = async () => {
      const r = await page.request.get(BASE + '/api/v1/health');
      return [r.status(), await r.json()];
    };
    // Signed in before the disk fills (a sign-in writes a session, which a full disk may refuse).
    const [lctx, late0] = await signIn('diskagent', 'disk agent password');
    await late0.locator('.conn[data-state=online]').waitFor();
    await late0.close();
    fsize(statSync(join(data, 'lanbox.redb')).size);
    let last = '';
    try {
      // Messages until a commit needs the file to grow (about 3 KB each).
      const filler = 'parcel '.repeat(450);
      for (let round = 0; round < 60; round++) {
        const batch = [];
        for (let i = 0; i < 40; i++) batch.push(privateUpdate('bob', { text: `disk filler ${round}.${i} ${filler}` }));
        last = `disk filler ${round}.39`;
        await inject(T1, batch);
        const full = await until(async () => {
          const [st, h] = await health();
          if (st === 503 && (h.reasons || []).some((r) => r.code === 'disk_full')) return 'full';
          // Everything injected so far was stored: the disk is not full yet.
          const page1 = await (await page.request.get(BASE + '/api/v1/chats?limit=200')).json();
          if (page1.chats.some((c) => (c.last_message?.text || '').startsWith(last + ' '))) return 'stored';
          throw new Error(`health ${st} ${JSON.stringify(h)}`);
        }, 'the batch stored or the disk full', 3 * TIMEOUT);
        if (full === 'full') break;
      }
      const [st, h] = await health();
      if (st !== 503 || !(h.reasons || []).some((r) => r.code === 'disk_full')) throw new Error(`the disk never filled: ${st} ${JSON.stringify(h)}`);
      // Both see the banner, worded for their role; reads go on (the agent opens a chat).
      await page.locator('.store-banner:not([hidden])', { hasText: 'disk is full' }).waitFor();
      await page.locator('.store-banner', { hasText: 'Free space on the data partition' }).waitFor();
      await a.locator('.store-banner:not([hidden])', { hasText: 'disk is full' }).waitFor();
      if (await a.locator('.store-banner', { hasText: 'Free space' }).count()) throw new Error('an agent is told to free space on the box');
      // Seen once in CI under load: the agent's conversation showed no message within 15 s
      // while the disk was full. A read that met the writer between closing the database and
      // reopening it failed at once (`store_unavailable`); reads now wait for the reopen
      // (src/store/writer.rs). Opening the chat again stays as a guard, and says when needed.
      let tries = 0;
      await until(async () => {
        tries++;
        await a.locator('.chat', { hasText: 'Bob' }).first().click();
        return a.locator('.msg').first().waitFor({ timeout: 5000 }).then(() => true);
      }, 'the agent to read the conversation while the disk is full', 3 * TIMEOUT);
      if (tries > 1) log(`full disk: the agent's conversation needed ${tries} openings`);
      // A page opened while the disk is full learns it from the WebSocket's hello.
      const late = await lctx.newPage();
      late.setDefaultTimeout(TIMEOUT);
      await late.goto(BASE + '/#/');
      await late.locator('.store-banner:not([hidden])', { hasText: 'disk is full' }).waitFor();
      await lctx.close();
      // A new sign-in writes a session: refused with the reason, or, when it fits in the file's
      // free pages, the inbox with its banner. Either way the person reads why.
      const [nctx, fresh] = await signIn('diskagent', 'disk agent password');
      await fresh.getByText('disk is full', { exact: false }).first().waitFor();
      await nctx.close();
      await shot(page, '16-disk-full');
    } finally {
      fsize('unlimited');
    }
    // Space is back: the writer reopens the database by itself (probes back off to 30 s), the
    // banner goes, and the poller stores what Telegram kept, the last filler included.
    await page.locator('.store-banner').waitFor({ state: 'hidden', timeout: 4 * TIMEOUT });
    await a.locator('.store-banner').waitFor({ state: 'hidden', timeout: 4 * TIMEOUT });
    await until(async () => {
      const page1 = await (await page.request.get(BASE + '/api/v1/chats?limit=200')).json();
      return page1.chats.some((c) => (c.last_message?.text || '').startsWith(last + ' '));
    }, 'the batch refused while the disk was full to be stored after all', 4 * TIMEOUT);
    const [st] = await health();
    if (st !== 200) throw new Error(`health still ${st}`);
    await actx.close();
  });

  await check('sealed boot: the unlock page, a wrong passphrase, then the first-run page', async () => {
    const d2 = mkdtempSync(join(tmpdir(), 'lanbox-sealed-'));
    const PASS = 'correct horse battery staple';
    try {
      await run(['init', '--data', d2]);
      await run(['key', 'seal', '--data', d2], { LANBOX_UNLOCK_PASSPHRASE: PASS });
      const sealed = await start(['serve', '--data', d2], { LANBOX_SERVER_LISTEN: '127.0.0.1:0', LANBOX_SERVER_MDNS: 'false', LANBOX_DATA: d2 }, {
        fp: /fingerprint: (\S+)/, addr: /lanbox is sealed: open https:\/\/([^/\s]+)\//,
      });
      const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
      const p = await ctx.newPage();
      p.setDefaultTimeout(TIMEOUT);
      await p.goto(`https://${sealed.addr}/`);
      await p.getByRole('heading', { name: 'This box is locked' }).waitFor();
      const fp = await p.locator('[data-fingerprint]').first().textContent();
      if (fp.trim() !== sealed.fp) throw new Error(`unlock page shows fingerprint ${fp}, console ${sealed.fp}`);
      const pass = p.getByLabel('Unlock passphrase');
      const btn = p.getByRole('button', { name: 'Unlock' });
      await pass.fill('not the passphrase');
      await btn.click();
      await p.getByText('Wrong passphrase').waitFor();
      await shot(p, '17-unlock');
      // Each wrong attempt delays the next (1 s here): try again until it is heard.
      await until(async () => {
        if (await p.getByRole('heading', { name: 'Welcome to lanbox' }).count()) return true;
        if (await btn.isEnabled() && !(await p.getByText('Unlocked').count())) {
          await pass.fill(PASS);
          await btn.click();
        }
        return false;
      }, 'the unlocked box to show its first-run page', 4 * TIMEOUT);
      await ctx.close();
      sealed.proc.kill('SIGTERM');
      await new Promise((r) => sealed.proc.once('exit', r));
    } finally {
      rmSync(d2, { recursive: true, force: true });
    }
  });

  await check('first run: restore from a backup on a new box, then sign in to the restored inbox', async () => {
    // The backup the settings check above made of this box (its passphrase is set there).
    const dir = join(data, 'backups');
    const file = (() => { try { return readdirSync(dir).filter((n) => n.endsWith('.lbk')).sort().pop(); } catch { return null; } })();
    if (!file) throw new Blocked('needs the backup made by "settings: a backup passphrase, ..."');
    const d3 = mkdtempSync(join(tmpdir(), 'lanbox-restore-'));
    try {
      const nb = await start(['serve', '--data', d3], { LANBOX_SERVER_LISTEN: '127.0.0.1:0', LANBOX_SERVER_MDNS: 'false', LANBOX_DATA: d3 }, {
        code: /setup code (\S+)/, addr: /listening on https:\/\/(\S+)/,
      });
      const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
      const p = await ctx.newPage();
      p.setDefaultTimeout(TIMEOUT);
      await p.goto(`https://${nb.addr}/`);
      await p.getByRole('heading', { name: 'Welcome to lanbox' }).waitFor();
      await p.getByRole('button', { name: 'Restore from a backup instead' }).click();
      await p.getByRole('heading', { name: 'Restore from a backup' }).waitFor();
      await p.getByLabel('Setup code').fill(nb.code);
      await p.getByLabel('Backup file').setInputFiles(join(dir, file));
      await p.getByLabel('Backup passphrase').fill('not the passphrase');
      await p.getByRole('button', { name: 'Restore' }).click();
      await p.getByText('Wrong passphrase for this backup').waitFor({ timeout: 4 * TIMEOUT });
      await shot(p, '18-restore');
      await p.getByLabel('Backup passphrase').fill('orange kettle under the stairs');
      await p.getByRole('button', { name: 'Restore' }).click();
      // The box restarts on the restored data, on the same address; the page reloads to sign-in.
      await p.getByRole('heading', { name: 'Sign in to lanbox' }).waitFor({ timeout: 4 * TIMEOUT });
      await p.getByLabel('User name').fill('admin');
      await p.getByLabel('Password').fill(ADMIN_PW);
      await p.getByRole('button', { name: 'Sign in' }).click();
      await p.locator('.acct', { hasText: 'Support bot' }).waitFor();
      await p.locator('.chat', { hasText: 'Ann' }).first().waitFor();
      await ctx.close();
      nb.proc.kill('SIGTERM');
      await new Promise((r) => nb.proc.once('exit', r));
    } finally {
      rmSync(d3, { recursive: true, force: true });
    }
  });

  await check('settings: add a Telegram user account (phone, code, 2FA password); it receives at once', async () => {
    await page.goto(BASE + '/#/settings/accounts');
    const form = page.locator('form[aria-label="Add a Telegram account"]');
    await form.getByLabel('Phone number').fill('+1 555 0100');
    await form.getByLabel('Label').fill('Own account');
    await form.getByRole('button', { name: 'Send the code' }).click();
    await page.locator('form[data-step=code]').waitFor();
    await form.getByLabel('Login code').fill(mt.code === '00000' ? '11111' : '00000');
    await form.getByRole('button', { name: 'Sign in' }).click();
    await form.locator('[role=alert]', { hasText: 'code is wrong' }).waitFor();
    await form.getByLabel('Login code').fill(mt.code);
    await form.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('form[data-step=password]').waitFor();
    await form.getByLabel('2FA password').fill('not ' + MT_PW);
    await form.getByRole('button', { name: 'Sign in' }).click();
    await form.locator('[role=alert]', { hasText: 'password is wrong' }).waitFor();
    await form.getByLabel('2FA password').fill(MT_PW);
    await form.getByRole('button', { name: 'Sign in' }).click();
    const row = page.locator('tr[data-account]', { hasText: 'user account' });
    await until(() => row.textContent().then((t) => /online|starting/.test(t)), 'the user account listed');
    await until(() => page.evaluate(() => fetch('/api/v1/accounts').then((r) => r.json()))
      .then((l) => l.some((a) => a.kind === 'user' && a.status === 'online')), 'the user account online');
    // The sidebar follows its status live.
    await page.locator('.acct', { hasText: 'Own account' }).waitFor();
    if (await row.getByRole('button', { name: /Switch to/ }).count()) throw new Error('a user account offers a webhook switch');
    // Its history backfill (30 days by default) shows its progress and ends (Ann's welcome may
    // come before or after the dialogs are listed).
    await until(() => row.locator('[data-backfill]').textContent().then((t) => {
      if (/History \(30 days\): (\d) of \1 chats, \d+ messages; done/.test(t)) return true;
      throw new Error(t);
    }), 'the history backfill done');
    await page.locator('form[data-step=phone]').waitFor();
    await shot(page, '16-settings-user-account');
    // Ann writes to the account once it is signed in: it arrives without a restart.
    await stored(page, MT_WELCOME);
  });

  await check('no script errors and a strict CSP', async () => {
    const res = await page.request.get(BASE + '/');
    const csp = res.headers()['content-security-policy'] || '';
    if (!csp.includes("script-src 'self'") || csp.includes('unsafe-inline')) throw new Error('CSP: ' + csp);
    const bad = consoleErrors.filter((e) => !/Failed to load resource|ERR_|WebSocket/.test(e));
    if (bad.length) throw new Error(bad.join('\n'));
  });

  await check('lanbox demo opens a working inbox', async () => {
    const demo = await start(['demo', '--listen', '127.0.0.1:0'], { LANBOX_DATA: '' }, {
      pw: /`demo` \(admin\), password: (\S+)/, addr: /listening on https:\/\/(\S+)/,
    });
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
    const p = await ctx.newPage();
    p.setDefaultTimeout(TIMEOUT);
    await p.goto(`https://${demo.addr}/`);
    await p.getByLabel('User name').fill('demo');
    await p.getByLabel('Password').fill(demo.pw);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await until(async () => (await p.locator('.chat').count()) >= 6, 'six demo chats');
    await p.locator('.chat', { hasText: 'Lager Berlin' }).click();
    await p.locator('.service', { hasText: 'joined' }).waitFor();
    await until(() => p.locator('.msg img').first().evaluate((i) => i.complete && i.naturalWidth > 0), 'a demo photo');
    await shot(p, '14-demo');
    // The customers answer: a reply from the inbox gets Ann's thanks, live.
    await p.locator('.chat', { hasText: 'Ann Lee' }).click();
    await p.locator('.msg').first().waitFor();
    const box = p.getByLabel('Message', { exact: true });
    await box.fill('Your parcel arrives tomorrow morning.');
    await box.press('Enter');
    // Our message shows as sent (the demo answers what the bot sent)...
    await p.locator('.msg.out', { hasText: 'Your parcel arrives tomorrow morning.' }).locator('[data-status=sent]')
      .waitFor({ timeout: 2 * TIMEOUT });
    // ...and Ann's thanks follows (the demo checks for sends every 1.5 s, between its own lines).
    await p.locator('.msg', { hasText: 'Perfect, thank you!' }).waitFor({ timeout: 2 * TIMEOUT });
    await shot(p, '15-demo-answered');
    await ctx.close();
    demo.proc.kill('SIGTERM');
    await new Promise((r) => demo.proc.once('exit', r));
  });

  await browser.close();
  proxy.close();
  const failed = results.filter((r) => r[1] === 'FAIL');
  const blocked = results.filter((r) => r[1] === 'blocked');
  console.log(`\nbrowser tests: ${results.length - failed.length - blocked.length} passed, ${failed.length} failed, ${blocked.length} blocked (${((Date.now() - t0) / 1000).toFixed(1)} s); screenshots in ${ART}`);
  for (const r of [...failed, ...blocked]) console.log(` - ${r[1]}: ${r[0]}: ${r[2]}`);
  // A check that could not run is not a pass: blocked fails the run too.
  process.exitCode = failed.length || blocked.length ? 1 : 0;
}

main().catch((e) => { console.error(e); process.exitCode = 1; }).finally(() => {
  for (const c of children) { try { c.kill('SIGTERM'); } catch { /* gone */ } }
});
