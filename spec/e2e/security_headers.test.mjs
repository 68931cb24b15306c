// Security headers on every response: app pages, errors, static files, health check.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { assertSecurityHeaders, describeServer, parseResponses, rawExchange } from './support/server.mjs';

const CASES = [
  ['GET', '/hello', 200],
  ['GET', '/escape?s=x', 200],
  ['GET', '/json', 200],
  ['GET', '/redirect', 303],
  ['GET', '/healthz', 200],
  ['GET', '/no/such/page', 404],
  ['POST', '/hello', 405],
  ['GET', '/http-error', 418],
  ['GET', '/boom', 500],
  ['GET', '/static/hello.txt', 200],
  ['GET', '/static/bootstrap/css/bootstrap.min.css', 200],
  ['GET', '/static/no-such-file.css', 404],
  ['HEAD', '/hello', 200],
];

describeServer('security headers', { MAX_BODY: '100' }, (h) => {
  for (const [method, path, status] of CASES) {
    it(`${method} ${path} (${status}) carries them`, async () => {
      const res = await h.server.request(path, { method });
      assert.equal(res.status, status);
      assertSecurityHeaders(res, `${method} ${path}`);
    });
  }

  it('a 413 carries them', async () => {
    const res = await h.server.request('/echo-form', { method: 'POST', body: 'v='.padEnd(200, 'x') });
    assert.equal(res.status, 413);
    assertSecurityHeaders(res, '413');
  });

  it('a 400 for a bad path carries them', async () => {
    const r = await rawExchange(h.server.port, 'GET /hello%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const [res] = parseResponses(r.text);
    assert.equal(res?.status, 400);
    assertSecurityHeaders(res, '400');
  });

  it('HTML pages are text/html; charset=utf-8', async () => {
    for (const p of ['/escape?s=x', '/no/such/page', '/boom']) {
      const res = await h.server.get(p);
      assert.equal(res.headers['content-type'], 'text/html; charset=utf-8', p);
    }
  });

  it('each response has its own request id', async () => {
    const ids = new Set();
    for (let i = 0; i < 20; i++) ids.add((await h.server.get('/hello')).headers['x-request-id']);
    assert.equal(ids.size, 20);
  });

  it('each header is sent once', async () => {
    const res = await h.server.get('/hello');
    const names = res.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    for (const n of ['x-content-type-options', 'x-frame-options', 'referrer-policy', 'content-security-policy', 'x-request-id', 'content-type']) {
      assert.equal(names.filter((x) => x === n).length, 1, `${n} once`);
    }
  });
});
