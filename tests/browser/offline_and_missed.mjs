// Browser test browser/offline_and_missed: omsd's embedded client (served at
// /) in headless Chromium, driven by playwright-core (Debian's chromium, no
// browser download).
//
//   node offline_and_missed.mjs --omsd PATH --chromium PATH --artifacts DIR
//
// Starts a real omsd on 127.0.0.1 port 0 (temp data dir, auth.dev_tokens =
// true), reads the ports from DATA_DIR/ports.json, then: Alice leaves Bob
// (offline) a message; Bob signs in and sees the sign-in notification and
// the message; Bob goes Do not disturb; Alice's next message shows as a
// missed notice on Bob's page and as status "missed" on Alice's. Every wait
// is for a condition with a deadline; screenshots go to --artifacts.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

const ALICE = 'alice@contoso.com';
const BOB = 'bob@contoso.com';
const WAIT_MS = 15_000;        // one UI condition
const START_MS = 30_000;       // omsd start (ports.json), slower under ASan
const STOP_MS = 15_000;        // omsd exit after SIGTERM

const { values: opts } = parseArgs({
  options: {
    omsd: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    artifacts: { type: 'string', default: join(process.cwd(), 'browser-artifacts') },
  },
});
if (!opts.omsd) throw new Error('--omsd PATH is required');
// Screenshots of this run only (no stale failure-*.png from an earlier one).
mkdirSync(opts.artifacts, { recursive: true });
for (const f of readdirSync(opts.artifacts)) if (f.endsWith('.png')) rmSync(join(opts.artifacts, f));

const t0 = Date.now();
const log = (msg) => console.log(`[${((Date.now() - t0) / 1000).toFixed(2)}s] ${msg}`);

// Polls `pred` until it returns a truthy value or the deadline passes.
async function waitFor(what, pred, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// ---- omsd ------------------------------------------------------------------

function startOmsd() {
  const root = mkdtempSync(join(tmpdir(), 'oms-browser-'));
  const dataDir = join(root, 'data');
  const config = join(root, 'omsd.toml');
  writeFileSync(config, [
    '[server]',
    `data_dir = ${JSON.stringify(dataDir)}`,
    'listen = "127.0.0.1:0"',
    'admin_listen = "127.0.0.1:0"',
    '[auth]',
    'dev_tokens = true',
    '',
  ].join('\n'));
  const logFile = join(root, 'omsd.log');
  const out = createWriteStream(logFile);
  const child = spawn(opts.omsd, ['--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let exit = null;
  exited.then((e) => { exit = e; });
  return { root, dataDir, logFile, child, exited, exitStatus: () => exit };
}

async function omsdPorts(omsd) {
  const file = join(omsd.dataDir, 'ports.json');
  return waitFor('DATA_DIR/ports.json', () => {
    if (omsd.exitStatus()) throw new Error(`omsd exited at start: ${JSON.stringify(omsd.exitStatus())}`);
    if (!existsSync(file)) return null;
    try {
      const p = JSON.parse(readFileSync(file, 'utf8'));
      return p.client > 0 && p.admin > 0 ? p : null;
    } catch (_) { return null; }  // being written
  }, START_MS);
}

async function stopOmsd(omsd) {
  if (omsd.exitStatus()) return omsd.exitStatus();
  omsd.child.kill('SIGTERM');
  const timer = setTimeout(() => omsd.child.kill('SIGKILL'), STOP_MS);
  const e = await omsd.exited;
  clearTimeout(timer);
  return e;
}

function logTail(omsd, lines = 40) {
  try {
    return readFileSync(omsd.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch (_) { return '(no log)'; }
}

// ---- the page ----------------------------------------------------------------

const tid = (page, id, extra = '') => page.locator(`[data-testid="${id}"]${extra}`);

async function signIn(page, base, user) {
  await page.goto(base, { timeout: WAIT_MS });
  await tid(page, 'user-input').fill(user);
  await tid(page, 'signin').click();
  await tid(page, 'me').filter({ hasText: `Signed in as ${user}` }).waitFor({ timeout: WAIT_MS });
}

async function watch(page, user) {
  await tid(page, 'contact-input').fill(user);
  await tid(page, 'contact-add').click();
  await tid(page, 'contact', `[data-user="${user}"]`).waitFor({ timeout: WAIT_MS });
}

async function contactState(page, user, state) {
  await page.locator(`[data-testid="contact"][data-user="${user}"] [data-testid="contact-state"][data-state="${state}"]`)
    .waitFor({ timeout: WAIT_MS });
}

async function sendIm(page, to, body, expectedStatus) {
  await tid(page, 'to-input').fill(to);
  await tid(page, 'body-input').fill(body);
  await tid(page, 'send').click();
  const out = tid(page, 'outgoing').filter({ hasText: body });
  await out.locator(`[data-testid="send-status"][data-status="${expectedStatus}"]`).waitFor({ timeout: WAIT_MS });
}

async function shot(page, name) {
  const path = join(opts.artifacts, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  log(`screenshot ${path}`);
}

// GET on the admin endpoint without keep-alive (an idle kept-alive admin
// connection would hold omsd's shutdown until it times out).
function adminGet(url, token) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { Authorization: `Bearer ${token}` }, timeout: WAIT_MS }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        try { resolve({ status: res.statusCode, body: JSON.parse(text) }); } catch (e) { reject(e); }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on('error', reject);
  });
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

// ---- the scenario ----------------------------------------------------------------

async function scenario(browser, base, adminBase, adminToken, pages) {
  const alice = await (await browser.newContext({ viewport: { width: 1100, height: 760 } })).newPage();
  const bob = await (await browser.newContext({ viewport: { width: 1100, height: 760 } })).newPage();
  pages.alice = alice;
  pages.bob = bob;
  for (const [name, page] of Object.entries(pages)) {
    page.on('pageerror', (e) => log(`${name} page error: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') log(`${name} console: ${m.text()}`); });
  }

  // Alice signs in (dev token) and watches Bob, who is offline.
  await signIn(alice, base, ALICE);
  await tid(alice, 'signin-notice').filter({ hasText: 'No messages waited for you.' }).waitFor({ timeout: WAIT_MS });
  await watch(alice, BOB);
  await contactState(alice, BOB, 'offline');
  log('alice signed in, bob is offline');

  // An offline message: stored.
  await sendIm(alice, BOB, 'Lunch at noon?', 'stored');
  await shot(alice, '01-alice-offline-message-stored');
  log('alice: sent, status stored');

  // Bob signs in: the sign-in notification, then the message (acked by the page).
  await signIn(bob, base, BOB);
  const notice = tid(bob, 'signin-notice');
  await notice.filter({ hasText: '1 message waited for you' }).waitFor({ timeout: WAIT_MS });
  await tid(bob, 'signin-notice-from').filter({ hasText: `${ALICE} (1)` }).waitFor({ timeout: WAIT_MS });
  check((await notice.getAttribute('data-count')) === '1', 'welcome mailbox.count is 1');
  await tid(bob, 'message', '[data-kind="offline"]').filter({ hasText: 'Lunch at noon?' })
    .filter({ hasText: ALICE }).waitFor({ timeout: WAIT_MS });
  await tid(bob, 'drained').waitFor({ state: 'visible', timeout: WAIT_MS });  // acked and drained
  await shot(bob, '02-bob-signin-notification');
  log('bob: sign-in notification and the offline message shown');

  // Alice sees Bob come online.
  await contactState(alice, BOB, 'available');

  // Bob goes Do not disturb; Alice sees it.
  await tid(bob, 'presence-select').selectOption('dnd');
  await tid(bob, 'presence-state', '[data-state="dnd"]').waitFor({ timeout: WAIT_MS });
  await contactState(alice, BOB, 'dnd');
  log('bob: dnd');

  // Alice's next message is a missed message.
  await sendIm(alice, BOB, 'Call me when you are free', 'missed');
  await tid(bob, 'missed-notice').filter({ hasText: ALICE }).filter({ hasText: 'Call me when you are free' })
    .waitFor({ timeout: WAIT_MS });
  await tid(bob, 'message', '[data-kind="missed"]').filter({ hasText: 'Call me when you are free' })
    .waitFor({ timeout: WAIT_MS });
  await shot(alice, '03-alice-status-missed');
  await shot(bob, '04-bob-missed-notice');
  log('alice: status missed; bob: missed notice and the missed message');

  // Bob is available again: the missed.summary digest.
  await tid(bob, 'presence-select').selectOption('available');
  await tid(bob, 'missed-summary').waitFor({ timeout: WAIT_MS });
  await contactState(alice, BOB, 'available');
  await shot(bob, '05-bob-missed-summary');
  log('bob: missed.summary shown');

  // The page acked everything it showed: Bob's mailbox is empty.
  await waitFor('bob\'s mailbox to be empty', async () => {
    const { status, body } = await adminGet(`${adminBase}/v1/users/${encodeURIComponent(BOB)}`, adminToken);
    return status === 200 && body.mailbox && body.mailbox.count === 0;
  }, WAIT_MS);
  log('bob\'s mailbox is empty (acked)');
}

async function main() {
  const omsd = startOmsd();
  let browser = null;
  const pages = {};
  let ok = false;
  try {
    const ports = await omsdPorts(omsd);
    const base = `http://127.0.0.1:${ports.client}/`;
    const adminBase = `http://127.0.0.1:${ports.admin}`;
    const adminToken = readFileSync(join(omsd.dataDir, 'admin.token'), 'utf8').trim();
    log(`omsd up: ${base} (admin ${adminBase})`);

    const args = ['--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'];
    // Chromium refuses to run as root with its sandbox (CI runs as root).
    if (typeof process.getuid === 'function' && process.getuid() === 0) args.push('--no-sandbox');
    browser = await chromium.launch({ executablePath: opts.chromium, headless: true, args, timeout: START_MS });
    log(`chromium ${browser.version()}`);

    await scenario(browser, base, adminBase, adminToken, pages);
    ok = true;
  } catch (e) {
    console.error(`FAILED: ${e.stack || e}`);
    for (const [name, page] of Object.entries(pages)) {
      try { await shot(page, `failure-${name}`); } catch (_) { /* page gone */ }
    }
  } finally {
    if (browser) await browser.close().catch(() => {});
    log('browser closed');
    const e = await stopOmsd(omsd);
    log(`omsd stopped: ${JSON.stringify(e)}`);
    if (e.code !== 0) {
      console.error(`omsd exited with ${JSON.stringify(e)}`);
      ok = false;
    }
    if (!ok) console.error(`---- omsd log (tail) ----\n${logTail(omsd)}`);
    rmSync(omsd.root, { recursive: true, force: true });
  }
  log(ok ? 'browser/offline_and_missed passed' : 'browser/offline_and_missed FAILED');
  process.exit(ok ? 0 : 1);
}

main();
