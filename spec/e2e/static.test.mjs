// Static files: the app's /static/ (STATIC_DIR, default VIEWS_DIR/static) and Bootstrap from
// the Debian package at /static/bootstrap/. The fixture's static directory holds hello.txt; the
// application's stylesheet is served from views/static with STATIC_DIR. Fingerprinted URLs
// (static.url: ?v=<hash>) are cached for a year, immutable; a changed file gets a new URL; every
// file has an ETag and a Last-Modified and answers conditional requests with 304.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  FIXTURES, ROOT, assertSecurityHeaders, describeServer, parseResponses, rawExchange, startServer,
} from './support/server.mjs';

const BOOTSTRAP_CSS = '/usr/share/javascript/bootstrap5/css/bootstrap.min.css';
const BOOTSTRAP_JS = '/usr/share/javascript/bootstrap5/js/bootstrap.bundle.min.js';
const HELLO = path.join(FIXTURES, 'views/static/hello.txt');
const APP_STATIC = path.join(ROOT, 'views/static');
const APP_CSS = path.join(APP_STATIC, 'app.css');

describeServer('static files', {}, (h) => {
  it('/static/bootstrap/css/bootstrap.min.css is the Debian file, as text/css', async () => {
    const res = await h.server.get('/static/bootstrap/css/bootstrap.min.css');
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'], /^text\/css\b/);
    assert.ok(res.body.equals(fs.readFileSync(BOOTSTRAP_CSS)), 'body equals the file on disk');
    assertSecurityHeaders(res, 'bootstrap css');
  });

  it('/static/bootstrap/js/bootstrap.bundle.min.js is served as JavaScript', async () => {
    const res = await h.server.get('/static/bootstrap/js/bootstrap.bundle.min.js');
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'], /^(text|application)\/javascript\b/);
    assert.ok(res.body.equals(fs.readFileSync(BOOTSTRAP_JS)));
  });

  it('/static/hello.txt comes from VIEWS_DIR/static by default', async () => {
    const res = await h.server.get('/static/hello.txt');
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'], /^text\/plain\b/);
    assert.ok(res.body.equals(fs.readFileSync(HELLO)), 'body equals the file on disk');
    assertSecurityHeaders(res, 'hello.txt');
  });

  it('HEAD on a static file has its length and no body', async () => {
    const res = await h.server.request('/static/hello.txt', { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.body.length, 0);
    assert.equal(Number(res.headers['content-length']), fs.statSync(HELLO).size);
  });

  it('a missing static file is a 404 with the security headers', async () => {
    for (const p of ['/static/missing.css', '/static/bootstrap/css/missing.css']) {
      const res = await h.server.get(p);
      assert.equal(res.status, 404, p);
      assertSecurityHeaders(res, p);
    }
  });

  it('no path escapes the static directories', async () => {
    const targets = [
      '/static/../scripts/app.lua',
      '/static/%2e%2e/%2e%2e/scripts/app.lua',
      '/static/..%2f..%2fscripts%2fapp.lua',
      '/static/bootstrap/../../../../etc/passwd',
      '/static/bootstrap/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
      '/static/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    ];
    for (const t of targets) {
      const r = await rawExchange(h.server.port, `GET ${t} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      const [res] = parseResponses(r.text);
      assert.ok(res, `no response to ${t}`);
      assert.doesNotMatch(res.body, /root:.*:0:0:|require|h2lua/, `${t} leaked a file`);
      assert.ok(res.status === 404 || res.status === 400 || res.status === 403, `${t} -> ${res.status}`);
    }
  });

  it('a directory is not listed', async () => {
    for (const p of ['/static/', '/static/bootstrap/', '/static/bootstrap/css/']) {
      const res = await h.server.get(p);
      assert.notEqual(res.status, 200, `${p} answered 200: ${res.text.slice(0, 200)}`);
    }
  });
});

describeServer('static files: the application stylesheet', { STATIC_DIR: APP_STATIC }, (h) => {
  it('/static/app.css is served as text/css with the security headers', async () => {
    const res = await h.server.get('/static/app.css');
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'], /^text\/css\b/);
    assert.ok(res.body.equals(fs.readFileSync(APP_CSS)), 'body equals the file on disk');
    assertSecurityHeaders(res, 'app.css');
  });

  it('Bootstrap is still served beside it', async () => {
    const res = await h.server.get('/static/bootstrap/css/bootstrap.min.css');
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'], /^text\/css\b/);
  });
});

/** The fingerprint the server gives a file: the first 16 hex digits of the SHA-256 of its bytes. */
function fingerprint(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex').slice(0, 16);
}

const YEAR = 'public, max-age=31536000, immutable';

describeServer('static files: fingerprints, ETag and 304', {}, (h) => {
  it("static.url gives the file's URL with its fingerprint; that URL is cached for a year, immutable", async () => {
    const cases = [
      ['/static/hello.txt', HELLO],
      ['/static/bootstrap/css/bootstrap.min.css', BOOTSTRAP_CSS],
    ];
    for (const [p, file] of cases) {
      const url = (await h.server.get(`/static-url?path=${encodeURIComponent(p)}`)).text;
      assert.equal(url, `${p}?v=${fingerprint(file)}`);
      const res = await h.server.get(url);
      assert.equal(res.status, 200, url);
      assert.equal(res.headers['cache-control'], YEAR, url);
      assert.ok(res.body.equals(fs.readFileSync(file)), url);
    }
  });

  it('the names without a fingerprint, or with another one, still work, cached for an hour', async () => {
    for (const p of ['/static/hello.txt', '/static/hello.txt?v=0123456789abcdef', '/static/hello.txt?x=1']) {
      const res = await h.server.get(p);
      assert.equal(res.status, 200, p);
      assert.equal(res.headers['cache-control'], 'public, max-age=3600', p);
      assert.ok(res.body.equals(fs.readFileSync(HELLO)), p);
    }
  });

  it('a path the server does not hold keeps its name in static.url', async () => {
    const url = (await h.server.get('/static-url?path=/static/missing.css')).text;
    assert.equal(url, '/static/missing.css');
  });

  it('every file under /static/ has an ETag and a Last-Modified; If-None-Match and If-Modified-Since give 304', async () => {
    for (const p of ['/static/hello.txt', '/static/bootstrap/css/bootstrap.min.css', '/static/bootstrap/js/bootstrap.bundle.min.js']) {
      for (const enc of [{}, { 'accept-encoding': 'gzip' }]) {
        const first = await h.server.get(p, { headers: enc });
        assert.equal(first.status, 200, p);
        assert.match(first.headers.etag ?? '', /^"[0-9a-f]{16}(-gz)?"$/, p);
        assert.ok(first.headers['last-modified'], p);
        const byTag = await h.server.get(p, { headers: { ...enc, 'if-none-match': first.headers.etag } });
        assert.equal(byTag.status, 304, `${p} If-None-Match`);
        assert.equal(byTag.body.length, 0);
        assert.equal(byTag.headers.etag, first.headers.etag);
        const byDate = await h.server.get(p, { headers: { ...enc, 'if-modified-since': first.headers['last-modified'] } });
        assert.equal(byDate.status, 304, `${p} If-Modified-Since`);
        const stale = await h.server.get(p, { headers: { ...enc, 'if-none-match': '"0000000000000000"' } });
        assert.equal(stale.status, 200, `${p} another ETag`);
        const older = await h.server.get(p, { headers: { ...enc, 'if-modified-since': 'Thu, 01 Jan 1970 00:00:01 GMT' } });
        assert.equal(older.status, 200, `${p} older If-Modified-Since`);
      }
    }
  });
});

describe('static files: a changed file gets a new URL', () => {
  it('after a restart, static.url gives the new fingerprint and the old one is no longer immutable', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-static-'));
    const file = path.join(dir, 'site.css');
    try {
      fs.writeFileSync(file, 'body { color: black; }\n');
      let server = await startServer({ env: { STATIC_DIR: dir } });
      const before = (await server.get('/static-url?path=/static/site.css')).text;
      await server.stopClean();
      assert.equal(before, `/static/site.css?v=${fingerprint(file)}`);

      fs.writeFileSync(file, 'body { color: navy; }\n');
      server = await startServer({ env: { STATIC_DIR: dir } });
      try {
        const after = (await server.get('/static-url?path=/static/site.css')).text;
        assert.equal(after, `/static/site.css?v=${fingerprint(file)}`);
        assert.notEqual(after, before);
        const res = await server.get(after);
        assert.equal(res.text, 'body { color: navy; }\n');
        assert.equal(res.headers['cache-control'], YEAR);
        const old = await server.get(before);
        assert.equal(old.headers['cache-control'], 'public, max-age=3600', 'the old URL is not cached as the new file');
      } finally {
        await server.stopClean();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('in development a file is served as it is on disk at each request, under its plain URL', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-static-'));
    const file = path.join(dir, 'site.css');
    try {
      fs.writeFileSync(file, 'body { color: black; }\n');
      const server = await startServer({ env: { STATIC_DIR: dir, APP_ENV: 'development' } });
      try {
        assert.equal((await server.get('/static-url?path=/static/site.css')).text, '/static/site.css');
        assert.equal((await server.get('/static/site.css')).text, 'body { color: black; }\n');
        fs.writeFileSync(file, 'body { color: navy; }\n');
        assert.equal((await server.get('/static/site.css')).text, 'body { color: navy; }\n');
      } finally {
        await server.stopClean();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
