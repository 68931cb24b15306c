// SIGTERM: stop accepting, finish the requests in flight, exit 0 (within DRAIN_TIMEOUT).
// timing: exits within bounds after SIGTERM; ops/test runs this file alone.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { request, sanitizerReport, sleep, startServer } from './support/server.mjs';

/** Connects and resolves true when the connection is accepted, false when refused. */
function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('signals', () => {
  let cutShort = null; // stderr of the server that exited at DRAIN_TIMEOUT with a request running
  it('SIGTERM lets the /sleep requests in flight finish with 200 and exits 0', async () => {
    const server = await startServer({ env: { WORKERS: '2', DRAIN_TIMEOUT: '10' } });
    try {
      const inflight = [];
      for (let i = 0; i < 12; i++) inflight.push(request(server.port, '/sleep?ms=1500', { timeoutMs: 15000 }));
      // give the workers a moment to read the requests and start the handlers
      await sleep(400);
      const t0 = Date.now();
      server.signal('SIGTERM');
      await sleep(300);
      assert.equal(await canConnect(server.port), false, 'new connections are refused while draining');
      const res = await Promise.all(inflight);
      for (const r of res) {
        assert.equal(r.status, 200);
        assert.equal(r.text, 'slept');
      }
      const r = await server.stopClean();
      assert.ok(Date.now() - t0 < 8000, `took ${Date.now() - t0} ms to exit`);
      assert.equal(r.code, 0);
      const logged = server.accessLog().filter((l) => l.path && String(l.path).startsWith('/sleep'));
      assert.equal(logged.length, 12, 'every drained request is in the access log');
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('in-flight HTTP/1.1 keep-alive responses during drain say Connection: close', async () => {
    const server = await startServer({ env: { WORKERS: '1' } });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      await request(server.port, '/hello', { agent });
      const p = request(server.port, '/sleep?ms=800', { agent });
      await sleep(200);
      server.signal('SIGTERM');
      const res = await p;
      assert.equal(res.status, 200);
      assert.equal(String(res.headers.connection).toLowerCase(), 'close');
      await server.stopClean();
    } finally {
      agent.destroy();
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('idle keep-alive connections do not hold up the exit', async () => {
    const server = await startServer({ env: { WORKERS: '2', DRAIN_TIMEOUT: '20' } });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    try {
      await Promise.all([1, 2, 3, 4].map(() => request(server.port, '/hello', { agent })));
      const r = await server.stopClean({ timeoutMs: 5000 });
      assert.ok(r.ms < 3000, `exit took ${r.ms} ms with idle connections open`);
    } finally {
      agent.destroy();
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('an open HTTP/2 session does not hold up the exit', async () => {
    const server = await startServer({ env: { WORKERS: '1', DRAIN_TIMEOUT: '20', HTTP2: 'on' } });
    const session = http2.connect(server.origin);
    session.on('error', () => {});
    try {
      await new Promise((resolve, reject) => {
        const s = session.request({ ':path': '/hello' });
        s.on('error', reject);
        s.resume();
        s.on('end', resolve);
      });
      const r = await server.stopClean({ timeoutMs: 5000 });
      assert.ok(r.ms < 3000, `exit took ${r.ms} ms with an HTTP/2 session open`);
    } finally {
      session.destroy();
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('requests still running after DRAIN_TIMEOUT do not keep the process alive', async () => {
    const server = await startServer({ env: { WORKERS: '1', DRAIN_TIMEOUT: '1' } });
    try {
      const p = request(server.port, '/sleep?ms=20000', { timeoutMs: 25000 }).catch((e) => e);
      await sleep(200);
      const r = await server.stop({ timeoutMs: 6000 });
      assert.equal(r.killed, false, 'still running 6 s after SIGTERM with DRAIN_TIMEOUT=1');
      assert.ok(r.ms >= 800, `exited after ${r.ms} ms, before DRAIN_TIMEOUT`);
      cutShort = server.stderr;
      await p;
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  // The sleep still running at the exit is its state's (lua_api.c lists its timer): nothing leaks.
  it('an exit at DRAIN_TIMEOUT with a request running leaves no sanitizer report', () => {
    assert.notEqual(cutShort, null, 'the test before ran');
    const report = sanitizerReport(cutShort);
    assert.equal(report, null, `sanitizer report on stderr:\n${report}`);
  });
});
