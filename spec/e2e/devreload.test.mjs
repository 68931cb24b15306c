// The page follows the edits (development only), in headless Chromium (driven by playwright-core as
// in browser.test.mjs) on a copy of scripts/ and views/: a view changed on disk shows in the open
// page with no navigation by the test; app.lua broken, the page shows the load error (file and
// line); fixed, the page is back — with no CSP violation or script error. In production
// /_dev/events and /_dev/reload.js are 404 and pages carry no script.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startMariaDB } from './support/mariadb.mjs';
import { APP_DIRS, startApp } from './support/client.mjs';
import { ROOT } from './support/server.mjs';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const DB = 'flaskcrud_devreload';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const haveChromium = fs.existsSync(CHROMIUM);

if (!haveChromium && process.env.CI === 'true') {
  it('Chromium is installed for the dev reload test', () => {
    assert.fail(`${CHROMIUM} is not installed (ops/test installs it: apt-get install chromium)`);
  });
}

/** Writes file as editors do: a new file renamed over the old one. */
function save(file, text) {
  fs.writeFileSync(`${file}.tmp`, text);
  fs.renameSync(`${file}.tmp`, file);
}

describe('in development the open page follows the edits', { skip: haveChromium ? false : `${CHROMIUM} is not installed` }, () => {
  let db;
  let server;
  let context;
  let page;
  let dir;
  let profile;
  const problems = [];
  let navigations = 0; // navigations of the main frame not made by the test

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-devreload-'));
    fs.cpSync(path.join(ROOT, 'scripts'), path.join(dir, 'scripts'), { recursive: true });
    fs.cpSync(path.join(ROOT, 'views'), path.join(dir, 'views'), { recursive: true });
    db = await startMariaDB();
    await db.freshDatabase(DB);
    server = await startApp(db, DB, {
      APP_ENV: 'development',
      SCRIPTS_DIR: path.join(dir, 'scripts'),
      VIEWS_DIR: path.join(dir, 'views'),
      MIGRATIONS_DIR: APP_DIRS.MIGRATIONS_DIR,
    });
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 60000,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(15000);
    page.on('console', (m) => {
      if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) navigations++;
    });
  });

  after(async () => {
    if (context) await context.close().catch(() => {});
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
    if (server) await server.stop({ signal: 'SIGKILL' });
    if (db) await db.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Waits until the page's reloader is connected to /_dev/events. */
  async function connected() {
    await page.waitForFunction(() => document.documentElement.dataset.devReload === 'connected');
  }

  it('the page loads with its reloader, a same-origin script under a self-only CSP', async () => {
    const res = await page.goto(server.url('/'));
    assert.equal(res.status(), 200);
    assert.match(res.headers()['content-security-policy'], /script-src 'self'/);
    assert.doesNotMatch(res.headers()['content-security-policy'], /unsafe-inline/);
    const html = await res.text();
    assert.match(html, /<script src="\/_dev\/reload\.js" data-version="[0-9a-f]{16}\.\d+" defer><\/script>/);
    assert.doesNotMatch(html, /<script>/, 'no inline script');
    await connected();
    navigations = 0;
  });

  it('a view changed on disk shows in the open page, with no navigation by the test', async () => {
    const file = path.join(dir, 'views/index.etlua');
    const marker = `devreload-view-${process.pid}`;
    save(file, fs.readFileSync(file, 'utf8') + `\n<p id="devreload-marker">${marker}</p>\n`);
    await page.waitForSelector('#devreload-marker', { timeout: 10000 });
    assert.equal(await page.textContent('#devreload-marker'), marker);
    assert.ok(navigations >= 1, 'the page reloaded itself');
    await connected();
  });

  it('app.lua broken, the open page shows the load error with file and line', async () => {
    const file = path.join(dir, 'scripts/app.lua');
    const good = fs.readFileSync(file, 'utf8');
    save(file, good.replace('local r = router.new()', 'local r = router.new(\nlocal broken = ('));
    try {
      await page.waitForSelector('#dev-load-error', { timeout: 10000 });
      const text = await page.textContent('#dev-load-error');
      assert.match(text, /app\.lua:\d+:/, `file and line in: ${text}`);
      // a page opened now is the load error page, with the reloader too
      const res = await fetch(server.url('/'));
      assert.equal(res.status, 500);
      assert.match(await res.text(), /<script src="\/_dev\/reload\.js" data-version="[0-9a-f]{16}\.\d+" defer>/);
    } finally {
      save(file, good);
    }
    // fixed: the page is back by itself
    await page.waitForSelector('#dev-load-error', { state: 'detached', timeout: 10000 });
    await page.waitForSelector('#devreload-marker', { timeout: 10000 });
    assert.equal(await page.title(), 'Entries');
    await connected();
  });

  it('the server restarted (its generations start again at 0), the open page reloads from the new process', async () => {
    const port = server.port;
    const before = await page.getAttribute('script[src="/_dev/reload.js"]', 'data-version');
    await server.stopClean(); // SIGTERM: the open event stream ends, the page's EventSource retries
    // saved while no server runs: only the new process can show it
    const file = path.join(dir, 'views/index.etlua');
    const marker = `devreload-restart-${process.pid}`;
    save(file, fs.readFileSync(file, 'utf8') + `\n<p id="devreload-restart">${marker}</p>\n`);
    server = await startApp(db, DB, {
      APP_ENV: 'development',
      SCRIPTS_DIR: path.join(dir, 'scripts'),
      VIEWS_DIR: path.join(dir, 'views'),
      MIGRATIONS_DIR: APP_DIRS.MIGRATIONS_DIR,
      PORT: String(port),
    });
    await page.waitForSelector('#devreload-restart', { timeout: 10000 });
    assert.equal(await page.textContent('#devreload-restart'), marker);
    const now = await page.getAttribute('script[src="/_dev/reload.js"]', 'data-version');
    assert.match(now, /^[0-9a-f]{16}\.0$/, 'the new process serves its first generation');
    assert.notEqual(now.split('.')[0], before.split('.')[0], `another run of the server: ${before} -> ${now}`);
    await connected();
  });

  it('no CSP violation or script error on the way', () => {
    assert.deepEqual(problems, []);
  });

  it('exits 0 on SIGTERM without a sanitizer report', async () => {
    await server.stopClean();
  });
});

describe('in production there is no page reloader', () => {
  let db;
  let server;
  before(async () => {
    db = await startMariaDB();
    await db.freshDatabase(DB);
    server = await startApp(db, DB);
  });
  after(async () => {
    if (server) await server.stop({ signal: 'SIGKILL' });
    if (db) await db.destroy();
  });

  it('/_dev/events and /_dev/reload.js are 404 and the page has no script', async () => {
    assert.equal((await server.get('/_dev/events')).status, 404);
    assert.equal((await server.get('/_dev/reload.js')).status, 404);
    const res = await server.get('/');
    assert.equal(res.status, 200);
    assert.doesNotMatch(res.text, /<script/);
  });

  it('exits 0 on SIGTERM without a sanitizer report', async () => {
    await server.stopClean();
  });
});
