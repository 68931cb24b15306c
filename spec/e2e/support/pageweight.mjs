// What a browser pays for the entries list: the bytes of a first and a repeat view of / with 50
// entries, measured in Debian's Chromium, and a Lighthouse (mobile) report of the same page.
// Used by spec/e2e/lighthouse.test.mjs (which asserts the targets) and ops/bench/run (which prints
// them, Lighthouse's performance among them, which depends on the machine's load).
//
//   const site = await startSite();          // MariaDB + h2lua on the entries app, 50 entries
//   const views = await measureViews(site.url);   // { first, repeat } bytes over the wire
//   const scores = await runLighthouse(site.url); // { performance, accessibility, ... } 0..1
//   await site.stop();
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import lighthouse from 'lighthouse';
import { chromium } from 'playwright-core';
import { startMariaDB } from './mariadb.mjs';
import { startApp } from './client.mjs';

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const ENTRIES = 50;
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-extensions'];

/** MariaDB and h2lua (bin: H2LUA_BIN) on the entries app with ENTRIES entries; stop() ends both. */
export async function startSite(dbName = 'flaskcrud_pageweight') {
  const db = await startMariaDB();
  let server;
  try {
    await db.freshDatabase(dbName);
    server = await startApp(db, dbName);
    const values = [];
    for (let i = 1; i <= ENTRIES; i++) {
      values.push(`('Entry number ${i}', 'The description of entry ${i}, a line of ordinary text', ${i % 3 === 0 ? 1 : 0})`);
    }
    await db.root(`INSERT INTO \`${dbName}\`.entry (title, description, status) VALUES ${values.join(', ')}`);
  } catch (e) {
    if (server) await server.stop({ signal: 'SIGKILL' });
    await db.destroy();
    throw e;
  }
  return {
    url: server.url('/'),
    server,
    async stop() {
      await server.stop({ signal: 'SIGKILL' });
      await db.destroy();
    },
  };
}

/**
 * Loads url twice in one fresh Chromium profile (the second time as a new navigation, as a user who
 * comes back does) and sums the bytes received over the network for each (headers and bodies,
 * nothing for what came from the cache). Resolves { first, repeat, firstRequests, repeatRequests,
 * rows (of the list in the first view) }.
 */
export async function measureViews(url) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-pageweight-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 60000,
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    let bytes = 0;
    let requests = [];
    const urls = new Map();
    cdp.on('Network.requestWillBeSent', (e) => urls.set(e.requestId, e.request.url));
    cdp.on('Network.loadingFinished', (e) => {
      bytes += e.encodedDataLength;
      if (e.encodedDataLength > 0) requests.push(`${new URL(urls.get(e.requestId) ?? url).pathname} ${e.encodedDataLength}`);
    });
    const view = async () => {
      bytes = 0;
      requests = [];
      await page.goto(url, { waitUntil: 'load', timeout: 60000 });
      await page.waitForLoadState('networkidle', { timeout: 60000 });
      const rows = await page.$$eval('#entries tbody tr', (r) => r.length);
      return { bytes, requests, rows };
    };
    const first = await view();
    await page.goto('about:blank');
    const repeat = await view();
    return {
      first: first.bytes, repeat: repeat.bytes, firstRequests: first.requests, repeatRequests: repeat.requests, rows: first.rows,
    };
  } finally {
    await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

/** Starts Chromium with a DevTools port; resolves { port, stop() }. */
function launchChromium() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-lighthouse-'));
  const child = spawn(CHROMIUM, [...ARGS, '--remote-debugging-port=0', `--user-data-dir=${profile}`, 'about:blank'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => {
      stop().then(() => reject(new Error(`Chromium gave no DevTools port within 60 s: ${err.slice(-1000)}`)));
    }, 60000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => {
      err += d;
      const m = /DevTools listening on ws:\/\/[^:]+:(\d+)\//.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ port: Number(m[1]), stop });
      }
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** Lighthouse's mobile report of url: resolves { performance, accessibility, 'best-practices', seo,
 * bytes (its total byte weight), failed: [audit ids that scored below 1 in the asserted categories] }. */
export async function runLighthouse(url) {
  const chrome = await launchChromium();
  try {
    const result = await lighthouse(url, {
      port: chrome.port, output: 'json', logLevel: 'error',
      onlyCategories: ['performance', 'accessibility', 'best-practices', 'seo'],
    });
    const lhr = result.lhr;
    const scores = {};
    const failed = [];
    for (const [id, cat] of Object.entries(lhr.categories)) {
      scores[id] = cat.score;
      if (id === 'performance') continue;
      for (const ref of cat.auditRefs) {
        const a = lhr.audits[ref.id];
        if (ref.weight > 0 && a.score !== null && a.score < 1) failed.push(`${id}: ${ref.id} (${a.title})`);
      }
    }
    scores.bytes = lhr.audits['total-byte-weight']?.numericValue;
    scores.failed = failed;
    return scores;
  } finally {
    await chrome.stop();
  }
}
