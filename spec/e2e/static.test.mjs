// Static files: the app's /static/ (STATIC_DIR, default VIEWS_DIR/static) and Bootstrap from
// the Debian package at /static/bootstrap/. The fixture's static directory holds hello.txt; the
// application's stylesheet is served from views/static with STATIC_DIR.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FIXTURES, ROOT, assertSecurityHeaders, describeServer, parseResponses, rawExchange } from './support/server.mjs';

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
