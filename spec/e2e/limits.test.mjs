// Request limits: MAX_BODY (413), MAX_FORM_FIELDS (400), REQ_TIMEOUT (slow clients are dropped).
// timing: slow clients dropped after REQ_TIMEOUT, not before; ops/test runs this file alone.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { describeServer, parseResponses, rawExchange } from './support/server.mjs';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/** A form body of exactly n bytes: "v=xxxx..." */
const formOf = (n) => `v=${'x'.repeat(n - 2)}`;

/**
 * POST with a chunked body (no content-length) of `total` bytes in 1 KiB chunks on a raw socket.
 * The server may answer and close before the body is sent: write errors are ignored and the
 * answer read. Resolves { status, text }, status 0 when no answer came.
 */
function postChunked(port, path, total) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const [res] = parseResponses(got);
      resolve(res ? { status: res.status, text: res.body } : { status: 0, text: got });
    };
    const timer = setTimeout(finish, 10000);
    sock.setEncoding('latin1');
    sock.on('data', (d) => {
      got += d;
      const [res] = parseResponses(got);
      if (res && (res.headers['content-length'] === undefined || res.body.length >= Number(res.headers['content-length']))) finish();
    });
    sock.on('error', () => {}); // EPIPE/ECONNRESET once the server has answered and closed
    sock.on('close', finish);
    sock.on('connect', async () => {
      sock.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`);
      const body = formOf(total);
      for (let sent = 0; sent < total && !done && !sock.destroyed; sent += 1024) {
        const piece = body.slice(sent, sent + 1024);
        const ok = sock.write(`${piece.length.toString(16)}\r\n${piece}\r\n`);
        if (!ok) await new Promise((r) => sock.once('drain', r));
      }
      if (!done && !sock.destroyed) sock.write('0\r\n\r\n');
    });
  });
}

describeServer('limits', { MAX_BODY: '1024', MAX_FORM_FIELDS: '5', REQ_TIMEOUT: '1', WORKERS: '1' }, (h) => {
  it('a body of exactly MAX_BODY bytes is accepted', async () => {
    const res = await h.server.request('/echo-form', { method: 'POST', headers: FORM, body: formOf(1024) });
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.text).v.length, 1022);
  });

  it('a body over MAX_BODY is 413 (content-length)', async () => {
    const res = await h.server.request('/echo-form', { method: 'POST', headers: FORM, body: formOf(1025) });
    assert.equal(res.status, 413);
  });

  it('a body over MAX_BODY is 413 (chunked)', async () => {
    const res = await postChunked(h.server.port, '/echo-form', 64 * 1024);
    assert.equal(res.status, 413);
  });

  it('a chunked body within MAX_BODY is accepted', async () => {
    const res = await postChunked(h.server.port, '/echo-form', 1000);
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.text).v.length, 998);
  });

  it('a chunked body of exactly MAX_BODY bytes is accepted', async () => {
    const res = await postChunked(h.server.port, '/echo-form', 1024);
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.text).v.length, 1022);
  });

  it('a 413 is announced before a large body is read (Expect: 100-continue)', async () => {
    const head = 'POST /echo-form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n' +
      `Content-Length: ${10 * 1024 * 1024}\r\nExpect: 100-continue\r\n\r\n`;
    const r = await rawExchange(h.server.port, head, { until: (t) => /HTTP\/1\.1 (?!100)\d{3}/.test(t), timeoutMs: 5000 });
    assert.equal(r.timedOut, false, `no final answer without the body: ${JSON.stringify(r.text)}`);
    assert.match(r.text, /HTTP\/1\.1 413/);
  });

  it('MAX_FORM_FIELDS fields are accepted, one more is 400', async () => {
    const five = 'a=1&b=2&c=3&d=4&e=5';
    const ok = await h.server.request('/echo-form', { method: 'POST', headers: FORM, body: five });
    assert.equal(ok.status, 200);
    assert.equal(Object.keys(JSON.parse(ok.text)).length, 5);
    const six = await h.server.request('/echo-form', { method: 'POST', headers: FORM, body: `${five}&f=6` });
    assert.equal(six.status, 400);
    const query = await h.server.get(`/echo?${five}&f=6`);
    assert.equal(query.status, 400);
  });

  it('the server still answers after the limits were hit', async () => {
    const res = await h.server.get('/hello');
    assert.equal(res.status, 200);
  });

  // REQ_TIMEOUT=1: dropped after 1 s, not at once (the timer is in whole milliseconds of the loop's
  // clock: 100 ms of slack below), and closed without an answer or with a 408
  it('a client that does not finish its request headers is dropped after REQ_TIMEOUT', async () => {
    const t0 = Date.now();
    const r = await rawExchange(h.server.port, 'GET /hello HTTP/1.1\r\nHost: x\r\n', { timeoutMs: 8000 });
    const ms = Date.now() - t0;
    assert.equal(r.timedOut, false, 'connection still open after 8 s');
    assert.ok(ms >= 900, `closed too early (${ms} ms, REQ_TIMEOUT=1)`);
    if (r.text !== '') assert.match(r.text, /^HTTP\/1\.1 408 /);
  });

  it('a client that does not finish its request body is dropped after REQ_TIMEOUT', async () => {
    const head = 'POST /echo-form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nv=1';
    const t0 = Date.now();
    const r = await rawExchange(h.server.port, head, { timeoutMs: 8000 });
    const ms = Date.now() - t0;
    assert.equal(r.timedOut, false, 'connection still open after 8 s');
    assert.ok(ms >= 900, `closed too early (${ms} ms, REQ_TIMEOUT=1)`);
    if (r.text !== '') assert.match(r.text, /^HTTP\/1\.1 408 /);
  });
});
