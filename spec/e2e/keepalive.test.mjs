// HTTP/1.1 persistent connections: several requests per socket, pipelining, Connection: close,
// HTTP/1.0.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { describeServer, parseResponses, rawExchange } from './support/server.mjs';

describeServer('keep-alive', { WORKERS: '2' }, (h) => {
  it('several requests (GET, POST, 404, 500) run on one socket', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const seen = new Set();
      const steps = [
        ['/hello', {}, 200],
        ['/echo-form', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1' }, 200],
        ['/no/such/page', {}, 404],
        ['/boom', {}, 500],
        ['/json', {}, 200],
        ['/hello', { method: 'HEAD' }, 200],
        ['/static/hello.txt', {}, 200],
        ['/hello', {}, 200],
      ];
      for (const [p, opts, status] of steps) {
        const res = await h.server.request(p, { ...opts, agent });
        assert.equal(res.status, status, p);
        assert.notEqual(String(res.headers.connection).toLowerCase(), 'close', `${p}: server closed the connection`);
        seen.add(`${res.socket.localPort}`);
      }
      assert.equal(seen.size, 1, `requests used ${seen.size} connections`);
    } finally {
      agent.destroy();
    }
  });

  it('pipelined requests are answered in order on one connection', async () => {
    const req = (p) => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`;
    const data = req('/users/1') + req('/hello') + req('/users/3') + 'GET /users/4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    const r = await rawExchange(h.server.port, data, { timeoutMs: 5000 });
    assert.equal(r.closed, true, 'closed after the request with Connection: close');
    const res = parseResponses(r.text);
    assert.deepEqual(res.map((x) => x.status), [200, 200, 200, 200]);
    assert.match(res[0].body, /^user 1\b/);
    assert.equal(res[1].body, 'hello');
    assert.match(res[2].body, /^user 3\b/);
    assert.match(res[3].body, /^user 4\b/);
  });

  it('Connection: close is honoured', async () => {
    const r = await rawExchange(h.server.port, 'GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { timeoutMs: 3000 });
    assert.equal(r.closed, true);
    const [res] = parseResponses(r.text);
    assert.equal(res.status, 200);
    assert.equal(res.body, 'hello');
  });

  it('HTTP/1.0 without keep-alive is closed after the response', async () => {
    const r = await rawExchange(h.server.port, 'GET /hello HTTP/1.0\r\n\r\n', { timeoutMs: 3000 });
    assert.equal(r.closed, true);
    assert.match(r.text, /^HTTP\/1\.[01] 200/);
    assert.match(r.text, /\r\n\r\nhello$/);
  });

  it('an idle keep-alive connection stays usable for a second', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const a = await h.server.request('/hello', { agent });
      await new Promise((r) => setTimeout(r, 1000));
      const b = await h.server.request('/hello', { agent });
      assert.equal(b.status, 200);
      assert.equal(a.socket.localPort, b.socket.localPort);
    } finally {
      agent.destroy();
    }
  });

  it('many connections at once, each with several requests', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
    try {
      const all = [];
      for (let i = 1; i <= 200; i++) all.push(h.server.request(`/users/${i}`, { agent }));
      const res = await Promise.all(all);
      res.forEach((r, i) => {
        assert.equal(r.status, 200);
        assert.match(r.text, new RegExp(`^user ${i + 1}\\b`));
      });
      const sockets = new Set(res.map((r) => r.socket.localPort));
      assert.ok(sockets.size <= 20, `${sockets.size} sockets`);
    } finally {
      agent.destroy();
    }
  });
});
