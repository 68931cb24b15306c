// Streaming responses (response.stream, core/stream.c) on the fixture app's /stream/* routes:
// chunks reach the client before the handler finishes (HTTP/1.1 and HTTP/2), buffered writes go
// out with the end, HEAD gets no body, an error cuts the response; a slow client holds its stream,
// not the worker; 1,000 clients that leave mid-stream leave the server's RSS and fds flat; SIGTERM
// ends open streams within DRAIN_TIMEOUT and the process exits 0.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { assertSecurityHeaders, sleep, startServer } from './support/server.mjs';

/** GET p over HTTP/1.1; resolves { status, headers, chunks: [{ ms, text }], text, ms } at the end. */
function getChunks(port, p) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const chunks = [];
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d) => chunks.push({ ms: Date.now() - t0, text: d }));
      res.on('end', () => resolve({
        status: res.statusCode, headers: res.headers, chunks, text: chunks.map((c) => c.text).join(''), ms: Date.now() - t0,
      }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(30000, () => req.destroy(new Error(`GET ${p} timed out`)));
  });
}

/** The server's resident set (bytes) and number of open fds, from /proc. */
function usage(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) * 1024;
  return { rss, fds: fs.readdirSync(`/proc/${pid}/fd`).length };
}

async function stats(server) {
  return JSON.parse((await server.get('/stream/stats')).text);
}

/** Polls until the worker runs no stream function any more. */
async function noStreamOpen(server, timeoutMs = 20000) {
  const t0 = Date.now();
  for (;;) {
    const s = await stats(server);
    if (s.open === 0) return s;
    if (Date.now() - t0 > timeoutMs) assert.fail(`${s.open} streams still open after ${timeoutMs} ms`);
    await sleep(50);
  }
}

describe('streaming responses', () => {
  it('chunks arrive as they are sent, before the handler finishes (HTTP/1.1, chunked)', async () => {
    const server = await startServer({ env: { WORKERS: '1' } });
    try {
      const r = await getChunks(server.port, '/stream/chunks?n=3&ms=500');
      assert.equal(r.status, 200);
      assert.equal(r.text, 'chunk 1\nchunk 2\nchunk 3\n');
      assert.equal(r.headers['transfer-encoding'], 'chunked');
      assert.equal(r.headers['content-length'], undefined);
      assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
      assert.match(r.headers['x-request-id'], /^[0-9a-f]{16}$/);
      assertSecurityHeaders({ headers: r.headers }, 'a streamed response');
      assert.equal(r.chunks[0].text, 'chunk 1\n');
      // the handler sleeps 2 x 500 ms after the first chunk: it came well before the end (half of
      // that is left to a busy machine)
      assert.ok(r.ms - r.chunks[0].ms >= 500, `first chunk at ${r.chunks[0].ms} ms, end at ${r.ms} ms`);
      await server.stopClean();
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('chunks arrive as they are sent over HTTP/2 too', async () => {
    const server = await startServer({ env: { WORKERS: '1', HTTP2: 'on' } });
    const client = http2.connect(server.origin);
    try {
      const r = await new Promise((resolve, reject) => {
        const t0 = Date.now();
        const chunks = [];
        const s = client.request({ ':path': '/stream/chunks?n=3&ms=500' });
        let status;
        s.on('response', (h) => {
          status = h[':status'];
        });
        s.setEncoding('utf8');
        s.on('data', (d) => chunks.push({ ms: Date.now() - t0, text: d }));
        s.on('end', () => resolve({ status, chunks, ms: Date.now() - t0 }));
        s.on('error', reject);
      });
      assert.equal(r.status, 200);
      assert.equal(r.chunks.map((c) => c.text).join(''), 'chunk 1\nchunk 2\nchunk 3\n');
      assert.ok(r.ms - r.chunks[0].ms >= 500, `first chunk at ${r.chunks[0].ms} ms, end at ${r.ms} ms`);
      client.close();
      await server.stopClean();
    } finally {
      client.close();
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('writes without a flush go out with the end; HEAD gets the headers only; an error cuts the response', async () => {
    const server = await startServer({ env: { WORKERS: '1' } });
    try {
      const b = await server.get('/stream/buffered');
      assert.equal(b.status, 200);
      assert.equal(b.text, 'abc\n');

      const h = await server.request('/stream/chunks?n=2&ms=10', { method: 'HEAD' });
      assert.equal(h.status, 200);
      assert.equal(h.text, '');

      // the status went out with the first chunk: a failing stream function cuts the response
      const cut = await getChunks(server.port, '/stream/boom').then(
        () => null,
        (e) => e,
      );
      assert.ok(cut instanceof Error, 'the client sees an incomplete response');
      await sleep(100);
      assert.match(server.stderr, /"msg":"stream error".*boom in a stream/);
      assert.equal((await server.get('/hello')).text, 'hello', 'the worker goes on');
      assert.equal((await stats(server)).open, 0);
      await server.stopClean();
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('a slow client holds its stream, not the worker', async (t) => {
    const server = await startServer({ env: { WORKERS: '1' } });
    try {
      const n = 400;
      const kib = 64; // 25 MiB in all, far more than the socket buffers hold
      const before = usage(server.pid);
      let received = 0;
      let res;
      const done = new Promise((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port: server.port, path: `/stream/big?n=${n}&kib=${kib}`, agent: false }, (r) => {
          res = r;
          r.pause(); // reads nothing: the kernel buffers fill up, then the server must wait
          r.on('data', (d) => {
            received += d.length;
          });
          r.on('end', resolve);
          r.on('error', reject);
        });
        req.on('error', reject);
      });
      await sleep(1000);
      assert.ok(res, 'the response started');
      // the worker answers other requests while the stream waits for the slow client
      for (let i = 0; i < 20; i++) {
        const t0 = Date.now();
        const r = await server.get('/hello');
        assert.equal(r.status, 200);
        assert.ok(Date.now() - t0 < 5000, `GET /hello took ${Date.now() - t0} ms while a client was slow`);
      }
      assert.equal((await stats(server)).open, 1, 'the stream waits in flush');
      // it waits with one chunk in hand, not the whole body
      const during = usage(server.pid);
      t.diagnostic(`while a client is slow: RSS +${during.rss - before.rss} bytes for a 25 MiB response`);
      assert.ok(during.rss - before.rss < 16 * 1024 * 1024, `RSS grew by ${during.rss - before.rss} bytes`);
      res.resume();
      await done;
      assert.equal(received, n * kib * 1024, 'the slow client gets every byte');
      await server.stopClean();
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('1,000 clients that leave mid-stream leave RSS and fds flat', async (t) => {
    // under ASan freed memory waits in a quarantine, which RSS would count: none for this test
    // (LeakSanitizer still checks the exit)
    const asan = process.env.ASAN_OPTIONS !== undefined ? { ASAN_OPTIONS: `${process.env.ASAN_OPTIONS}:quarantine_size_mb=0` } : {};
    const server = await startServer({ env: { WORKERS: '1', ...asan } });
    try {
      /** A client that reads the first tick of a stream and goes. */
      const leave = () => new Promise((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port: server.port, path: '/stream/forever?ms=10', agent: false }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', (e) => (e.code === 'ECONNRESET' ? resolve() : reject(e)));
        req.setTimeout(20000, () => req.destroy(new Error('no first tick within 20 s')));
      });
      const run = async (count, concurrency = 25) => {
        let next = 0;
        await Promise.all(Array.from({ length: concurrency }, async () => {
          while (next < count) {
            next++;
            await leave();
          }
        }));
      };
      await run(200); // warm-up: Lua state, allocator, coroutine cache
      const s0 = await noStreamOpen(server);
      await sleep(200);
      const before = usage(server.pid);
      await run(1000);
      const s1 = await noStreamOpen(server);
      assert.equal(s1.started - s0.started, 1000, 'every client started a stream');
      // fds: back to where they were once the kernel and libh2o have closed the last sockets
      let after = usage(server.pid);
      for (let i = 0; i < 50 && after.fds > before.fds; i++) {
        await sleep(100);
        after = usage(server.pid);
      }
      t.diagnostic(`1,000 clients gone mid-stream: fds ${before.fds} -> ${after.fds}, RSS ${before.rss} -> ${after.rss} bytes`);
      assert.ok(after.fds <= before.fds, `fds ${before.fds} -> ${after.fds}`);
      assert.ok(after.rss - before.rss < 4 * 1024 * 1024, `RSS ${before.rss} -> ${after.rss} (+${after.rss - before.rss} bytes)`);
      assert.equal((await server.get('/hello')).text, 'hello');
      await server.stopClean();
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('SIGTERM ends the open streams within DRAIN_TIMEOUT and the process exits 0', async () => {
    const drain = 3;
    const server = await startServer({ env: { WORKERS: '1', DRAIN_TIMEOUT: String(drain) } });
    try {
      const streams = [];
      for (let i = 0; i < 10; i++) streams.push(getChunks(server.port, '/stream/forever?ms=50'));
      const t0 = Date.now();
      while ((await stats(server)).open < 10) {
        if (Date.now() - t0 > 10000) assert.fail('the 10 streams did not start');
        await sleep(50);
      }
      const tTerm = Date.now();
      server.signal('SIGTERM');
      const ended = await Promise.all(streams);
      const endMs = Date.now() - tTerm;
      for (const r of ended) {
        assert.equal(r.status, 200);
        assert.match(r.text, /^tick 1\n/);
        assert.match(r.text, /bye shutdown\n$/, 'the stream function learnt of the drain and ended the response');
      }
      assert.ok(endMs < drain * 1000, `streams ended ${endMs} ms after SIGTERM (DRAIN_TIMEOUT ${drain} s)`);
      const r = await server.stopClean();
      assert.equal(r.code, 0);
      assert.ok(Date.now() - tTerm < drain * 1000 + 1000, `exited ${Date.now() - tTerm} ms after SIGTERM`);
      assert.doesNotMatch(server.stderr, /drain timeout/);
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });
});

describe('streaming, a client that goes while the handler sleeps', () => {
  it('the handler learns it at its next write and its function ends', async () => {
    const server = await startServer({ env: { WORKERS: '1' } });
    try {
      const sock = net.connect(server.port, '127.0.0.1');
      sock.write('GET /stream/forever?ms=100 HTTP/1.1\r\nHost: x\r\n\r\n');
      await new Promise((resolve) => sock.once('data', resolve));
      assert.equal((await stats(server)).open, 1);
      sock.destroy();
      const s = await noStreamOpen(server, 5000);
      assert.equal(s.open, 0);
      await server.stopClean();
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });
});
