// File uploads (multipart/form-data, core/multipart.c): a real form in headless Chromium posts a
// file, several files under one name and the CSRF token (refused without it); hand-made bodies
// over raw HTTP: binary content kept byte for byte, unsafe file names made safe, malformed bodies
// 400, a file over MAX_UPLOAD or a body over MAX_BODY 413, too many parts 400 — and nothing of a
// refused body reaches the handler. (The entries app's own multipart form: entries.test.mjs.)
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { Client } from './support/client.mjs';
import { FIXTURES, sanitizerReport, startServer } from './support/server.mjs';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);
const APP = { SCRIPTS_DIR: path.join(FIXTURES, 'uploads'), VIEWS_DIR: path.join(FIXTURES, 'views') };
const B = 'h2luaBoundary0123';

/**
 * A multipart/form-data body: parts are { name, value } or { name, filename, type, data }
 * (value/data: string or Buffer). Returns the Buffer; the Content-Type is ctype(boundary).
 */
function multipart(parts, { boundary = B, close = true } = {}) {
  const chunks = [];
  for (const p of parts) {
    let h = `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"`;
    if (p.filename !== undefined) h += `; filename="${p.filename}"`;
    h += '\r\n';
    if (p.type !== undefined) h += `Content-Type: ${p.type}\r\n`;
    chunks.push(Buffer.from(`${h}\r\n`), Buffer.from(p.value ?? p.data ?? ''), Buffer.from('\r\n'));
  }
  if (close) chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}
const ctype = (boundary = B) => `multipart/form-data; boundary=${boundary}`;
const post = (server, p, body, contentType = ctype(), headers = {}) =>
  server.request(p, { method: 'POST', body, headers: { 'content-type': contentType, ...headers } });
const b64 = (buf) => Buffer.from(buf).toString('base64url');

describe('uploads in Chromium', { skip: haveChromium ? false : `${CHROMIUM} is not installed (apt-get install chromium)` }, () => {
  let server;
  let context;
  let page;
  let profile;
  before(async () => {
    server = await startServer({ env: APP });
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
      timeout: 60000,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(15000);
  });
  after(async () => {
    if (context) await context.close();
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
    if (server) await server.stop();
  });

  /** Fills the form on / and submits it; resolves the response of the post. */
  async function submit({ withToken = true } = {}) {
    await page.goto(`http://127.0.0.1:${server.port}/`);
    if (!withToken) await page.evaluate(() => document.querySelector('input[name=csrf_token]').remove());
    await page.fill('#title', 'Quarterly report ✓');
    await page.setInputFiles('#doc', { name: 'naïve "report".txt', mimeType: 'text/plain', buffer: Buffer.from('line 1\r\nline 2\n') });
    await page.setInputFiles('#photos', [
      { name: 'a.png', mimeType: 'image/png', buffer: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 255]) },
      { name: 'b.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(3000, 0x2d) },
    ]);
    const [res] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/upload')), page.click('#send')]);
    return { status: res.status(), text: await res.text() };
  }

  it('a real form posts its fields, a file and two files under one name, with the CSRF token', async () => {
    const res = await submit();
    assert.equal(res.status, 200, res.text);
    const got = JSON.parse(res.text);
    assert.equal(got.form.title, 'Quarterly report ✓');
    assert.match(got.form.csrf_token, /^\d+\.[0-9a-f]{64}$/);
    assert.equal(got.files.length, 3);
    const [doc, a, b] = got.files;
    // Chromium sends '"' as %22 (the HTML standard's encoding): the name as sent keeps it
    assert.deepEqual(doc, {
      name: 'doc', filename: 'naïve %22report%22.txt', safe_filename: 'naïve %22report%22.txt',
      content_type: 'text/plain', size: 15, data: b64('line 1\r\nline 2\n'), first: true,
    });
    assert.equal(a.name, 'photos');
    assert.equal(a.filename, 'a.png');
    assert.equal(a.content_type, 'image/png');
    assert.equal(a.data, b64([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 255]));
    assert.equal(a.first, true);
    assert.equal(b.filename, 'b.bin');
    assert.equal(b.size, 3000);
    assert.equal(b.data, b64(Buffer.alloc(3000, 0x2d)));
    assert.equal(b.first, false);
  });

  it('the same form without its CSRF token is refused (403)', async () => {
    const res = await submit({ withToken: false });
    assert.equal(res.status, 403, res.text);
  });
});

describe('uploads over raw HTTP', () => {
  let server;
  before(async () => {
    server = await startServer({ env: { ...APP, MAX_UPLOAD: '1000', MAX_BODY: '16384', MAX_FORM_FIELDS: '6' } });
  });
  after(async () => {
    if (server) await server.stop();
  });

  it('binary content with CRLFs, NULs and delimiter-like bytes is kept byte for byte', async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const tricky = Buffer.concat([
      Buffer.from(`\r\n--${B.slice(0, -1)}x\r\n--\r\n\r\n-- ${B}\r\r\n--`),
      all,
      Buffer.from(`--${B}--`), // not after a CRLF: content
      Buffer.from('\r\n'),
    ]);
    const res = await post(server, '/raw', multipart([
      { name: 'bin', filename: 'all.bin', type: 'application/octet-stream', data: tricky },
      { name: 'empty', filename: 'e.txt', data: '' },
      { name: 'note', value: 'x\r\ny' },
    ]));
    assert.equal(res.status, 200, res.text);
    const got = JSON.parse(res.text);
    assert.deepEqual(got.form, { note: 'x\r\ny' });
    assert.equal(got.files[0].size, tricky.length);
    assert.equal(got.files[0].data, b64(tricky));
    assert.equal(got.files[1].size, 0);
    assert.equal(got.files[1].content_type, 'application/octet-stream'); // none sent
  });

  it('file names with paths and control characters are made safe; the name as sent is kept', async () => {
    const names = [
      ['../../etc/passwd', 'passwd'],
      ['..\\..\\boot.ini', 'boot.ini'],
      ['.hidden\x01\x07\x1b[31m.sh', 'hidden[31m.sh'],
      ['a<b>c:d|e?.txt', 'a_b_c_d_e_.txt'],
      ['...', 'upload'],
      [`${'n'.repeat(300)}.pdf`, `${'n'.repeat(124)}.pdf`],
    ];
    const res = await post(server, '/raw', multipart(names.map(([n], i) => ({ name: `f${i}`, filename: n, data: 'x' }))));
    assert.equal(res.status, 200, res.text);
    const got = JSON.parse(res.text);
    assert.deepEqual(got.files.map((f) => f.filename), names.map(([n]) => n));
    assert.deepEqual(got.files.map((f) => f.safe_filename), names.map(([, s]) => s));
    // an input left empty (no name, no content) is not a file
    const empty = await post(server, '/raw', multipart([{ name: 'doc', filename: '', data: '' }]));
    assert.deepEqual(JSON.parse(empty.text), { form: {}, files: [] });
  });

  it('malformed bodies are 400, and neither req.form nor req.files is half-filled', async () => {
    const good = { name: 'a', value: '1' };
    const cases = [
      ['no closing delimiter', multipart([good], { close: false }), ctype(), /no closing delimiter/],
      ['no boundary parameter', multipart([good]), 'multipart/form-data', /boundary/],
      ['a boundary over 70 characters', multipart([good], { boundary: 'b'.repeat(71) }), ctype('b'.repeat(71)), /boundary/],
      ['a boundary the body does not use', multipart([good]), ctype('other'), /no closing delimiter/],
      ['a header line without a colon', Buffer.from(`--${B}\r\nContent-Disposition form-data; name=a\r\n\r\n1\r\n--${B}--`), ctype(), /part headers/],
      ['no Content-Disposition', Buffer.from(`--${B}\r\nContent-Type: text/plain\r\n\r\n1\r\n--${B}--`), ctype(), /Content-Disposition/],
      ['no name', Buffer.from(`--${B}\r\nContent-Disposition: form-data; filename="x"\r\n\r\n1\r\n--${B}--`), ctype(), /name/],
      ['a field that is not UTF-8', multipart([good, { name: 'b', value: Buffer.from([0xc3, 0x28]) }]), ctype(), /UTF-8/],
      ['a field given twice', multipart([good, good]), ctype(), /more than once/],
      ['garbage after a delimiter', Buffer.from(`--${B}\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--${B}x\r\n`), ctype(), /delimiter/],
      ['part headers over 8 KiB', multipart([{ name: 'a', filename: 'f'.repeat(8200), data: '' }]), ctype(), /too large/],
    ];
    for (const [what, body, ct, message] of cases) {
      for (const p of ['/raw', '/raw/form', '/raw/files']) {
        const res = await post(server, p, body, ct);
        assert.equal(res.status, 400, `${what} ${p}: ${res.text}`);
        assert.match(res.text, message, what);
      }
    }
  });

  it('a file over MAX_UPLOAD is 413, one of MAX_UPLOAD bytes is taken; a body over MAX_BODY is 413', async () => {
    const at = await post(server, '/raw', multipart([{ name: 'f', filename: 'f', data: Buffer.alloc(1000, 7) }]));
    assert.equal(at.status, 200, at.text);
    assert.equal(JSON.parse(at.text).files[0].size, 1000);
    const over = await post(server, '/raw', multipart([{ name: 'f', filename: 'f', data: Buffer.alloc(1001, 7) }]));
    assert.equal(over.status, 413, over.text);
    assert.match(over.text, /MAX_UPLOAD/);
    // a field is bounded by the body only
    const field = await post(server, '/raw/form', multipart([{ name: 'long', value: 'v'.repeat(5000) }]));
    assert.equal(field.status, 200, field.text);
    const body = await post(server, '/raw', multipart([{ name: 'f', filename: 'f', data: Buffer.alloc(900) }, { name: 'v', value: 'v'.repeat(16000) }]));
    assert.equal(body.status, 413, body.text);
  });

  it('more parts than MAX_FORM_FIELDS is 400', async () => {
    const parts = (n) => Array.from({ length: n }, (_, i) => (i % 2 ? { name: `f${i}`, filename: 'x', data: 'x' } : { name: `v${i}`, value: 'x' }));
    assert.equal((await post(server, '/raw', multipart(parts(6)))).status, 200);
    const res = await post(server, '/raw', multipart(parts(7)));
    assert.equal(res.status, 400, res.text);
    assert.match(res.text, /too many parts/);
  });

  it('the CSRF token travels in the multipart form: without it 403, with the session\'s 200', async () => {
    const c = new Client(server);
    const token = await c.token();
    const without = await c.request('/upload', { method: 'POST', body: multipart([{ name: 'title', value: 't' }]), headers: { 'content-type': ctype() } });
    assert.equal(without.status, 403, without.text);
    const forged = await c.request('/upload', {
      method: 'POST',
      body: multipart([{ name: 'csrf_token', value: `${token.split('.')[0]}.${'0'.repeat(64)}` }]),
      headers: { 'content-type': ctype() },
    });
    assert.equal(forged.status, 403, forged.text);
    const res = await c.request('/upload', {
      method: 'POST',
      body: multipart([{ name: 'csrf_token', value: token }, { name: 'doc', filename: 'a.txt', data: 'hi' }]),
      headers: { 'content-type': ctype() },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(JSON.parse(res.text).files[0].data, b64('hi'));
  });

  it('then serves on, and exits cleanly', async () => {
    assert.equal((await server.get('/healthz')).status, 200);
    assert.equal(sanitizerReport(server.stderr), null);
    await server.stopClean();
  });
});
