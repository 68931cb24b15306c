// Errors: a failing handler gives a 500 page and an error log line, and the worker goes on;
// HTTP errors raised by the app; requests the core refuses before Lua runs (400).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { describeServer, parseResponses, rawExchange } from './support/server.mjs';

/** error lines on stderr (JSON with level "error") */
const errorLines = (server) => server.errorLog().filter((l) => l.level === 'error');

/** The raw response to one request line sent as is (paths node's http client would refuse). */
async function raw(port, target, method = 'GET') {
  const r = await rawExchange(port, `${method} ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  const [res] = parseResponses(r.text, { headOnly: method === 'HEAD' });
  assert.ok(res, `no response to ${method} ${target}: ${JSON.stringify(r.text)}`);
  return res;
}

describeServer('errors in production', { WORKERS: '1' }, (h) => {
  it('a handler error is a 500 page without details, then the same worker serves the next request', async () => {
    const res = await h.server.get('/boom');
    assert.equal(res.status, 500);
    assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
    assert.match(res.text, /500/);
    assert.doesNotMatch(res.text, /traceback|boom|\.lua/i);
    const next = await h.server.get('/hello');
    assert.equal(next.status, 200);
    assert.equal(next.text, 'hello');
  });

  it('the error is logged on stderr as one JSON line with the traceback and request id', async () => {
    const res = await h.server.get('/boom');
    const id = res.headers['x-request-id'];
    const line = await h.server.waitFor(() => errorLines(h.server).find((l) => l.request_id === id), 5000, 'the error line');
    assert.match(JSON.stringify(line), /stack traceback/);
    assert.match(line.msg, /boom/);
    assert.ok(line.time, 'time');
    assert.equal(line.worker, 0);
    assert.equal(h.server.stdout.includes('stack traceback'), false, 'no traceback in the access log');
  });

  it('many errors in a row leave the worker healthy', async () => {
    for (let i = 0; i < 30; i++) assert.equal((await h.server.get('/boom')).status, 500);
    const res = await h.server.get('/echo');
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.text).method, 'GET');
  });

  it('an HTTP error raised by the handler keeps its status', async () => {
    const res = await h.server.get('/http-error');
    assert.equal(res.status, 418);
    assert.match(res.text, /teapot/);
  });

  it('every stderr line is JSON', async () => {
    for (const l of h.server.errorLog()) assert.equal(l.__unparsed, undefined, `not JSON: ${l.__unparsed}`);
  });

  it('invalid percent-encoding in the path is a 400', async () => {
    for (const target of ['/hello%zz', '/hello%', '/hello%4', '/users/%G1']) {
      const res = await raw(h.server.port, target);
      assert.equal(res.status, 400, target);
    }
  });

  it('a path that decodes to invalid UTF-8 is a 400', async () => {
    for (const target of ['/users/%ff', '/users/%C3%28', '/%ED%A0%80']) {
      const res = await raw(h.server.port, target);
      assert.equal(res.status, 400, target);
    }
  });

  it('a HEAD with a bad path is a 400 without a body', async () => {
    const res = await raw(h.server.port, '/hello%zz', 'HEAD');
    assert.equal(res.status, 400);
  });

  it('a malformed request line is refused with a 400 and closed, and the server goes on', async () => {
    const r = await rawExchange(h.server.port, 'NOT-HTTP\r\n\r\n', { timeoutMs: 3000 });
    assert.equal(r.timedOut, false, 'the connection should be answered and closed');
    assert.equal(r.closed, true);
    // answered at once: a close without an answer (a timeout, a crash of the connection) fails here
    assert.match(r.text, /^HTTP\/1\.1 400 /);
    assert.equal((await h.server.get('/hello')).status, 200);
  });
});

describeServer('errors in development', { WORKERS: '1', APP_ENV: 'development', SECRET_KEY: undefined }, (h) => {
  it('a handler error shows the message and traceback on the 500 page', async () => {
    const res = await h.server.get('/boom');
    assert.equal(res.status, 500);
    assert.match(res.text, /boom/);
    assert.match(res.text, /stack traceback/);
    const next = await h.server.get('/hello');
    assert.equal(next.status, 200);
  });
});
