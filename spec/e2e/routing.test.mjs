// Routing through the core: methods, params, 404/405, HEAD, redirects, cookies, req fields.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { describeServer, parseResponses, rawExchange } from './support/server.mjs';

describeServer('routing', {}, (h) => {
  it('GET /healthz answers 200', async () => {
    const res = await h.server.get('/healthz');
    assert.equal(res.status, 200);
  });

  it('GET /hello runs the Lua handler', async () => {
    const res = await h.server.get('/hello');
    assert.equal(res.status, 200);
    assert.equal(res.text, 'hello');
    assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(res.headers['content-length'], '5');
  });

  it('route params are decoded from the path', async () => {
    const res = await h.server.get('/users/42');
    assert.equal(res.status, 200);
    assert.match(res.text, /^user 42\b/);
    const enc = await h.server.get('/users/%34%32');
    assert.equal(enc.status, 200);
    assert.match(enc.text, /^user 42\b/, 'percent-encoded path is decoded before routing');
  });

  it('POST, DELETE with params', async () => {
    const created = await h.server.request('/things', { method: 'POST', body: '' });
    assert.equal(created.status, 201);
    assert.equal(created.text, 'created');
    const deleted = await h.server.request('/things/7', { method: 'DELETE' });
    assert.equal(deleted.status, 200);
    assert.equal(deleted.text, 'deleted 7');
  });

  it('an unknown path is 404 with an HTML page', async () => {
    const res = await h.server.get('/no/such/page');
    assert.equal(res.status, 404);
    assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
    assert.match(res.text, /404/);
  });

  it('a known path with another method is 405 with Allow', async () => {
    const res = await h.server.request('/hello', { method: 'POST', body: 'x=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(res.status, 405);
    const allow = String(res.headers.allow ?? '').split(/,\s*/).sort();
    assert.deepEqual(allow, ['GET', 'HEAD']);
    const del = await h.server.request('/things', { method: 'DELETE' });
    assert.equal(del.status, 405);
    assert.deepEqual(String(del.headers.allow ?? '').split(/,\s*/), ['POST']);
  });

  it('HEAD has no body and the content-length of GET', async () => {
    for (const p of ['/hello', '/json', '/escape?s=x', '/no/such/page']) {
      const get = await h.server.get(p);
      const head = await h.server.request(p, { method: 'HEAD' });
      assert.equal(head.status, get.status, `${p} status`);
      assert.equal(head.body.length, 0, `${p} HEAD body`);
      assert.equal(head.headers['content-length'], String(get.body.length), `${p} HEAD content-length`);
      assert.equal(head.headers['content-type'], get.headers['content-type'], `${p} content-type`);
    }
  });

  it('GET /redirect is a 303 with Location', async () => {
    const res = await h.server.get('/redirect');
    assert.equal(res.status, 303);
    assert.equal(res.headers.location, '/hello');
  });

  it('a header given as a table sends one line per value (two Set-Cookie)', async () => {
    const res = await h.server.get('/cookies');
    assert.equal(res.status, 200);
    assert.deepEqual(res.headers['set-cookie'], ['a=1; Path=/; HttpOnly', 'b=2; Path=/']);
  });

  it('GET /json sends JSON', async () => {
    const res = await h.server.get('/json');
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'], /^application\/json/);
    assert.deepEqual(JSON.parse(res.text), { ok: true, n: 42, list: [1, 2, 3], empty: [], text: '<é>' });
  });

  it('req carries method, path, query, headers, cookies, remote_addr, id, worker, version', async () => {
    const res = await h.server.get('/echo?a=1&b=x%20y&c=%C3%A9', {
      headers: { 'X-Test': 'one', Cookie: 'k1=v1; k2=v2' },
    });
    assert.equal(res.status, 200);
    const req = JSON.parse(res.text);
    assert.equal(req.method, 'GET');
    assert.equal(req.path, '/echo');
    assert.deepEqual(req.query, { a: '1', b: 'x y', c: 'é' });
    assert.equal(req.headers['x-test'], 'one');
    assert.equal(req.headers.host, `127.0.0.1:${h.server.port}`);
    assert.deepEqual(req.cookies, { k1: 'v1', k2: 'v2' });
    assert.equal(req.remote_addr, '127.0.0.1');
    assert.match(req.id, /^[0-9a-f]{16}$/);
    assert.equal(req.id, res.headers['x-request-id']);
    assert.ok(Number.isInteger(req.worker) && req.worker >= 0 && req.worker < 2, `worker ${req.worker}`);
    assert.equal(req.version, 'HTTP/1.1');
  });

  it('repeated request headers are joined with ", "', async () => {
    const res = await h.server.get('/echo', { headers: { 'X-Multi': ['a', 'b'] } });
    assert.equal(JSON.parse(res.text).headers['x-multi'], 'a, b');
  });

  it('an HTTP/1.0 request reports its version', async () => {
    const r = await rawExchange(h.server.port, 'GET /echo HTTP/1.0\r\nHost: x\r\n\r\n');
    const [res] = parseResponses(r.text);
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body).version, 'HTTP/1.0');
  });

  it('POST /echo-form decodes an urlencoded body', async () => {
    const res = await h.server.request('/echo-form', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'title=Hello+world&note=%3Cb%3E%20%26&empty=',
    });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.text), { title: 'Hello world', note: '<b> &', empty: '' });
  });

  it('a form of another content type is empty', async () => {
    const res = await h.server.request('/echo-form', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'title=x',
    });
    assert.equal(res.status, 200);
    assert.equal(res.text.trim(), '{}');
  });

  it('a malformed query is a 400', async () => {
    const bad = await h.server.get('/echo?a=%zz');
    assert.equal(bad.status, 400);
    const repeated = await h.server.get('/echo?a=1&a=2');
    assert.equal(repeated.status, 400);
    const utf8 = await h.server.get('/echo?a=%ff');
    assert.equal(utf8.status, 400);
  });
});
