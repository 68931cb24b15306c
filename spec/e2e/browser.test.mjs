// The entries page in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven by
// playwright-core. Adds, edits, toggles and deletes an entry through the page, checking the table
// after each step, with no CSP violation or script error; saves a screenshot of the list to
// /tmp/h2lua-index.png.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startMariaDB } from './support/mariadb.mjs';
import { startApp } from './support/client.mjs';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const SCREENSHOT = '/tmp/h2lua-index.png';
const DB = 'flaskcrud_browser';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const haveChromium = fs.existsSync(CHROMIUM);

// Skipped only outside CI: in CI (CI=true, set by the CI runner) a missing browser is a failure.
if (!haveChromium && process.env.CI === 'true') {
  it('Chromium is installed for the browser test', () => {
    assert.fail(`${CHROMIUM} is not installed (ops/test installs it: apt-get install chromium)`);
  });
}

describe('the entries page in Chromium', { skip: haveChromium ? false : `${CHROMIUM} is not installed (apt-get install chromium)` }, () => {
  let db;
  let server;
  let context;
  let page;
  let profile;
  const problems = []; // console errors (CSP violations among them), uncaught page errors, failed loads
  const failed = []; // responses with a status >= 400: "422 POST /add"

  before(async () => {
    db = await startMariaDB();
    await db.freshDatabase(DB);
    server = await startApp(db, DB);
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1280, height: 800 },
      timeout: 60000,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(15000);
    page.on('console', (m) => {
      // failed loads are reported by status below; anything else (a CSP violation) is a problem
      if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of/.test(m.text())) {
        problems.push(`console: ${m.text()}`);
      }
    });
    page.on('response', (r) => {
      if (r.status() >= 400) failed.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
    });
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  });

  after(async () => {
    if (context) await context.close().catch(() => {});
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
    if (server) await server.stop({ signal: 'SIGKILL' });
    if (db) await db.destroy();
  });

  /** The table as the user sees it: [{ id, title, description, status }] from the rows. */
  async function table() {
    return page.$$eval('#entries tbody tr', (rows) =>
      rows.map((tr) => ({
        id: Number(tr.querySelector('.entry-id').textContent.trim()),
        title: tr.querySelector('.entry-title').textContent,
        description: tr.querySelector('.entry-description').textContent,
        status: tr.querySelector('.entry-status').textContent.trim(),
      })),
    );
  }

  async function dbRows() {
    const rows = await db.root(`SELECT id, title, description, status FROM \`${DB}\`.entry ORDER BY id`);
    return rows.map((r) => ({ id: r.id, title: r.title, description: r.description, status: r.status ? 'Done' : 'Pending' }));
  }

  async function submit(buttonLocator) {
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), buttonLocator.click()]);
  }

  it('shows the empty list, styled by the local Bootstrap', async () => {
    const res = await page.goto(server.url('/'), { waitUntil: 'load' });
    assert.equal(res.status(), 200);
    assert.equal(await page.title(), 'Entries');
    assert.match(await page.textContent('main'), /No entries yet/);
    const style = await page.$eval('button.btn-primary', (b) => {
      const s = getComputedStyle(b);
      return { bg: s.backgroundColor, color: s.color, radius: s.borderTopLeftRadius };
    });
    assert.equal(style.bg, 'rgb(13, 110, 253)', 'Bootstrap 5 primary button');
    assert.equal(style.color, 'rgb(255, 255, 255)');
    assert.notEqual(style.radius, '0px');
  });

  it('adds an entry through the form beside the table', async () => {
    const title = 'Water the plants 🌱';
    const description = '中文 and <b>not bold</b>';
    await page.fill('#add-form #title', title);
    await page.fill('#add-form #description', description);
    await submit(page.locator('#add-form button[type=submit]'));
    assert.equal(new URL(page.url()).pathname, '/');
    assert.equal(await page.textContent('.alert.flash'), 'Entry added.');
    const rows = await table();
    assert.equal(rows.length, 1);
    assert.deepEqual(rows, await dbRows());
    assert.deepEqual({ ...rows[0], id: 0 }, { id: 0, title, description, status: 'Pending' });
    assert.equal(await page.locator('#entries b').count(), 0, 'markup shown as text');

    // the form sits to the right of the table
    const tableBox = await page.locator('#entries').boundingBox();
    const formBox = await page.locator('#add-form').boundingBox();
    assert.ok(formBox.x > tableBox.x + tableBox.width - 1, `form at x=${formBox.x}, table ends at ${tableBox.x + tableBox.width}`);
  });

  it('shows the validation messages for an invalid add and keeps the typed text', async () => {
    await page.fill('#add-form #title', 'x'.repeat(65));
    await page.fill('#add-form #description', 'kept');
    await submit(page.locator('#add-form button[type=submit]'));
    assert.match(await page.textContent('#add-form .invalid-feedback'), /at most 64 characters/);
    assert.equal(await page.inputValue('#add-form #description'), 'kept');
    assert.equal((await table()).length, 1);
  });

  it('edits the entry', async () => {
    await page.goto(server.url('/'));
    await submit(page.locator('#entries tbody tr').first().getByRole('link', { name: 'Edit' }));
    assert.match(new URL(page.url()).pathname, /^\/update\/\d+$/);
    assert.equal(await page.inputValue('#update-form #title'), 'Water the plants 🌱');
    await page.fill('#update-form #title', 'Water the garden 🌻');
    await page.fill('#update-form #description', 'Edited in Chromium');
    await submit(page.locator('#update-form button[type=submit]'));
    assert.equal(new URL(page.url()).pathname, '/');
    assert.equal(await page.textContent('.alert.flash'), 'Entry saved.');
    const rows = await table();
    assert.deepEqual(rows, await dbRows());
    assert.equal(rows[0].title, 'Water the garden 🌻');
    assert.equal(rows[0].description, 'Edited in Chromium');
  });

  it('toggles the status both ways', async () => {
    await submit(page.locator('#entries tbody tr').first().getByRole('button', { name: 'Mark done' }));
    let rows = await table();
    assert.equal(rows[0].status, 'Done');
    assert.deepEqual(rows, await dbRows());
    assert.equal(await page.locator('#entries .badge.text-bg-success').count(), 1);
    await submit(page.locator('#entries tbody tr').first().getByRole('button', { name: 'Mark pending' }));
    rows = await table();
    assert.equal(rows[0].status, 'Pending');
    assert.deepEqual(rows, await dbRows());
  });

  it('takes a screenshot of a list with a few entries', async () => {
    const samples = [
      ['Buy milk', 'Two litres, semi-skimmed'],
      ['Call the plumber', 'The kitchen tap drips'],
      ['Read 三体', 'Liu Cixin — the first book'],
    ];
    for (const [title, description] of samples) {
      await page.fill('#add-form #title', title);
      await page.fill('#add-form #description', description);
      await submit(page.locator('#add-form button[type=submit]'));
    }
    await submit(page.locator('#entries tbody tr').nth(1).getByRole('button', { name: 'Mark done' }));
    assert.deepEqual(await table(), await dbRows());
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.ok(fs.statSync(SCREENSHOT).size > 10000);
  });

  it('deletes entries', async () => {
    let rows = await table();
    const first = rows[0].id;
    await submit(page.locator(`#entry-${first}`).getByRole('button', { name: 'Delete' }));
    assert.equal(await page.textContent('.alert.flash'), 'Entry deleted.');
    rows = await table();
    assert.equal(rows.some((r) => r.id === first), false);
    assert.deepEqual(rows, await dbRows());
    while ((await table()).length > 0) {
      await submit(page.locator('#entries tbody tr').first().getByRole('button', { name: 'Delete' }));
    }
    assert.match(await page.textContent('main'), /No entries yet/);
    assert.deepEqual(await dbRows(), []);
  });

  it('saw no CSP violation, no script error and no failed load but the invalid add', () => {
    assert.deepEqual(problems, []);
    assert.deepEqual(failed, ['422 POST /add']);
  });

  it('the server exits 0 on SIGTERM without a sanitizer report', async () => {
    await server.stopClean();
  });
});
