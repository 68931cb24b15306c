// HTTP/2 over cleartext with prior knowledge (h2c): streams in parallel on one connection.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { assertSecurityHeaders, describeServer } from './support/server.mjs';

/** One request on an http2 session: resolves { status, headers, text }. */
function h2request(session, path, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': method, ':path': path, ...headers }, { endStream: body === undefined });
    let status = 0;
    let hdrs = {};
    const chunks = [];
    stream.on('response', (h) => {
      status = h[':status'];
      hdrs = h;
    });
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => resolve({ status, headers: hdrs, text: Buffer.concat(chunks).toString('utf8') }));
    stream.on('error', reject);
    stream.setTimeout(10000, () => stream.close(http2.constants.NGHTTP2_CANCEL));
    if (body !== undefined) stream.end(body);
  });
}

function connect(origin) {
  return new Promise((resolve, reject) => {
    const session = http2.connect(origin);
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

describeServer('http2 (h2c prior knowledge)', { WORKERS: '1', HTTP2: 'on' }, (h) => {
  it('serves a GET and tells the app the version', async () => {
    const session = await connect(h.server.origin);
    try {
      const res = await h2request(session, '/hello');
      assert.equal(res.status, 200);
      assert.equal(res.text, 'hello');
      const echo = await h2request(session, '/echo?x=1', { headers: { 'x-test': 'h2' } });
      const req = JSON.parse(echo.text);
      assert.equal(req.version, 'HTTP/2');
      assert.equal(req.method, 'GET');
      assert.equal(req.path, '/echo');
      assert.deepEqual(req.query, { x: '1' });
      assert.equal(req.headers['x-test'], 'h2');
      assert.equal(req.headers.host, `127.0.0.1:${h.server.port}`, 'the :authority reaches the app as the host header');
      assert.equal(req.id, echo.headers['x-request-id']);
    } finally {
      session.close();
    }
  });

  it('runs many streams concurrently on one connection', async () => {
    const session = await connect(h.server.origin);
    try {
      const t0 = Date.now();
      const all = [];
      for (let i = 0; i < 8; i++) all.push(h2request(session, '/sleep?ms=500'));
      for (let i = 1; i <= 40; i++) all.push(h2request(session, `/users/${i}`));
      const res = await Promise.all(all);
      const ms = Date.now() - t0;
      for (const r of res) assert.equal(r.status, 200);
      res.slice(8).forEach((r, i) => assert.match(r.text, new RegExp(`^user ${i + 1}\\b`)));
      assert.ok(ms < 3000, `8 sleeps of 500 ms on one worker took ${ms} ms: they did not overlap`);
    } finally {
      session.close();
    }
  });

  it('POST with a form body, HEAD, 404 and 405', async () => {
    const session = await connect(h.server.origin);
    try {
      const post = await h2request(session, '/echo-form', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'a=1&b=two',
      });
      assert.equal(post.status, 200);
      assert.deepEqual(JSON.parse(post.text), { a: '1', b: 'two' });
      const head = await h2request(session, '/hello', { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.text, '');
      assert.equal(head.headers['content-length'], '5');
      assert.equal((await h2request(session, '/nope')).status, 404);
      const m = await h2request(session, '/hello', { method: 'DELETE' });
      assert.equal(m.status, 405);
      assert.match(String(m.headers.allow), /GET/);
    } finally {
      session.close();
    }
  });

  it('a body over MAX_BODY is 413', async () => {
    const session = await connect(h.server.origin);
    try {
      const body = `v=${'x'.repeat(2 * 1024 * 1024)}`;
      const res = await h2request(session, '/echo-form', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) },
        body,
      });
      assert.equal(res.status, 413);
    } finally {
      session.close();
    }
  });

  it('responses carry the security headers, two set-cookie values, and no connection header', async () => {
    const session = await connect(h.server.origin);
    try {
      for (const p of ['/hello', '/nope', '/boom', '/static/hello.txt']) {
        const res = await h2request(session, p);
        assertSecurityHeaders(res, `h2 ${p}`);
        assert.equal(res.headers.connection, undefined);
      }
      const c = await h2request(session, '/cookies');
      assert.deepEqual(c.headers['set-cookie'], ['a=1; Path=/; HttpOnly', 'b=2; Path=/']);
    } finally {
      session.close();
    }
  });

  it('a handler error on one stream leaves the others alone', async () => {
    const session = await connect(h.server.origin);
    try {
      const [a, b, c] = await Promise.all([h2request(session, '/sleep?ms=200'), h2request(session, '/boom'), h2request(session, '/hello')]);
      assert.deepEqual([a.status, b.status, c.status], [200, 500, 200]);
    } finally {
      session.close();
    }
  });
});
