// What the browser tests share: a real omsd on 127.0.0.1 port 0 (temp data
// dir, auth.dev_tokens = true; ports read from DATA_DIR/ports.json), Debian's
// headless chromium through playwright-core, the page helpers, the admin
// endpoint, and run(): start, scenario, screenshots on failure, stop.
//
//   node SCRIPT.mjs --omsd PATH --chromium PATH --artifacts DIR
//
// Every wait is for a condition with a deadline; screenshots go to --artifacts.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

export const WAIT_MS = 15_000;        // one UI condition
const START_MS = 30_000;              // omsd start (ports.json), slower under ASan
const STOP_MS = 15_000;               // omsd exit after SIGTERM

const { values: opts } = parseArgs({
  options: {
    omsd: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    artifacts: { type: 'string', default: join(process.cwd(), 'browser-artifacts') },
  },
});

const t0 = Date.now();
export const log = (msg) => console.log(`[${((Date.now() - t0) / 1000).toFixed(2)}s] ${msg}`);

// Polls `pred` until it returns a truthy value or the deadline passes.
export async function waitFor(what, pred, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

// ---- omsd ------------------------------------------------------------------

function startOmsd(extraConfig) {
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
    ...extraConfig,
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

// A request to the admin endpoint without keep-alive (an idle kept-alive
// admin connection would hold omsd's shutdown until it times out).
export function adminRequest(method, url, token) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, headers: { Authorization: `Bearer ${token}` }, timeout: WAIT_MS }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        try { resolve({ status: res.statusCode, body: text ? JSON.parse(text) : {} }); } catch (e) { reject(e); }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

// ---- the page ----------------------------------------------------------------

export const tid = (page, id, extra = '') => page.locator(`[data-testid="${id}"]${extra}`);

// Signs in on a page already showing the sign-in form (the device name as filled in).
export async function submitSignIn(page, user) {
  await tid(page, 'user-input').fill(user);
  await tid(page, 'signin').click();
  await tid(page, 'me').filter({ hasText: `Signed in as ${user}` }).waitFor({ timeout: WAIT_MS });
}

export async function signIn(page, base, user) {
  await page.goto(base, { timeout: WAIT_MS });
  await submitSignIn(page, user);
}

export async function signOut(page) {
  await tid(page, 'signout').click();
  await tid(page, 'signin-form').waitFor({ state: 'visible', timeout: WAIT_MS });
}

export async function watch(page, user) {
  await tid(page, 'contact-input').fill(user);
  await tid(page, 'contact-add').click();
  await tid(page, 'contact', `[data-user="${user}"]`).waitFor({ timeout: WAIT_MS });
}

export async function contactState(page, user, state) {
  await page.locator(`[data-testid="contact"][data-user="${user}"] [data-testid="contact-state"][data-state="${state}"]`)
    .waitFor({ timeout: WAIT_MS });
}

// Sends an IM and waits for its `sent` status; returns the outgoing <li>.
export async function sendIm(page, to, body, expectedStatus) {
  await tid(page, 'to-input').fill(to);
  await tid(page, 'body-input').fill(body);
  await tid(page, 'send').click();
  const out = tid(page, 'outgoing').filter({ hasText: body });
  await out.locator(`[data-testid="send-status"][data-status="${expectedStatus}"]`).waitFor({ timeout: WAIT_MS });
  return out;
}

export async function shot(page, name) {
  const path = join(opts.artifacts, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  log(`screenshot ${path}`);
}

// ---- one run -------------------------------------------------------------------

// Starts omsd (config: lines added to its omsd.toml) and chromium, runs
// scenario(env) with env = {browser, base, adminBase, adminToken, pages}
// (pages: name -> page, screenshotted on failure), stops both, exits 0 on
// success.
export async function run(name, scenario, { config = [] } = {}) {
  if (!opts.omsd) throw new Error('--omsd PATH is required');
  // Screenshots of this run only (no stale failure-*.png from an earlier one).
  mkdirSync(opts.artifacts, { recursive: true });
  for (const f of readdirSync(opts.artifacts)) if (f.endsWith('.png')) rmSync(join(opts.artifacts, f));

  const omsd = startOmsd(config);
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

    await scenario({ browser, base, adminBase, adminToken, pages });
    ok = true;
  } catch (e) {
    console.error(`FAILED: ${e.stack || e}`);
    for (const [pageName, page] of Object.entries(pages)) {
      try { await shot(page, `failure-${pageName}`); } catch (_) { /* page gone */ }
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
  log(ok ? `${name} passed` : `${name} FAILED`);
  process.exit(ok ? 0 : 1);
}

// A new page in a context of its own (its own localStorage: its own device
// name), with page errors and console errors logged under `name`.
export async function newPage(env, name) {
  const context = await env.browser.newContext({ viewport: { width: 1100, height: 760 } });
  const page = await context.newPage();
  watchPage(env, name, page);
  return page;
}

export function watchPage(env, name, page) {
  env.pages[name] = page;
  page.on('pageerror', (e) => log(`${name} page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') log(`${name} console: ${m.text()}`); });
}
