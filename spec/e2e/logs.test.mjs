// The access log: one line per request on stdout (JSON by default, text with LOG_FORMAT=text),
// flushed within a moment; secrets never logged.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { SECRET_KEY, describeServer, rawExchange } from './support/server.mjs';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describeServer('access log (json)', { WORKERS: '2' }, (h) => {
  it('one JSON line per request with time, id, method, path, status, bytes, duration, worker, remote', async () => {
    const before = h.server.accessLog().length;
    const t0 = Date.now();
    const made = [];
    const add = async (p, opts = {}) => made.push({ p, opts, res: await h.server.request(p, opts) });
    await add('/hello');
    await add('/no/such/page');
    await add('/echo-form', { method: 'POST', headers: FORM, body: 'a=1' });
    await add('/boom');
    await add('/hello', { method: 'HEAD' });
    await add('/static/app.css');
    await add('/redirect');
    const ids = new Set(made.map((m) => m.res.headers['x-request-id']));
    const ours = (s) => s.accessLog().slice(before).filter((l) => ids.has(l.request_id));
    await h.server.waitFor((s) => ours(s).length >= made.length, 3000, `${made.length} access lines`);
    await new Promise((r) => setTimeout(r, 300));
    const lines = ours(h.server);
    assert.equal(lines.length, made.length, 'exactly one line per request');
    for (const { p, opts, res } of made) {
      const id = res.headers['x-request-id'];
      const line = lines.find((l) => l.request_id === id);
      assert.ok(line, `no access line with request_id ${id} for ${p}`);
      assert.equal(line.method, opts.method ?? 'GET');
      assert.equal(line.path, p);
      assert.equal(line.status, res.status);
      assert.ok(Number.isInteger(line.bytes) && line.bytes >= 0, `bytes ${line.bytes}`);
      if ((opts.method ?? 'GET') !== 'HEAD') {
        assert.ok(line.bytes >= res.body.length, `bytes ${line.bytes} < body ${res.body.length} for ${p}`);
      }
      assert.equal(typeof line.duration_ms, 'number');
      assert.ok(line.duration_ms >= 0 && line.duration_ms < 5000, `duration_ms ${line.duration_ms}`);
      assert.ok(Number.isInteger(line.worker) && line.worker >= 0 && line.worker < 2, `worker ${line.worker}`);
      assert.equal(line.remote_addr, '127.0.0.1');
      const t = Date.parse(line.time);
      assert.ok(!Number.isNaN(t), `time ${line.time} is not a date`);
      assert.ok(Math.abs(t - t0) < 60000, `time ${line.time} is not now`);
    }
  });

  it('a slow request has its duration logged', async () => {
    const res = await h.server.get('/sleep?ms=300');
    const id = res.headers['x-request-id'];
    const line = await h.server.waitFor((s) => s.accessLog().find((l) => l.request_id === id), 3000, 'the access line');
    assert.ok(line.duration_ms >= 290 && line.duration_ms < 3000, `duration_ms ${line.duration_ms}`);
  });

  it('a request with a query string logs its path', async () => {
    const res = await h.server.get('/echo?a=1');
    const id = res.headers['x-request-id'];
    const line = await h.server.waitFor((s) => s.accessLog().find((l) => l.request_id === id), 3000, 'the access line');
    assert.match(line.path, /^\/echo(\?a=1)?$/);
  });

  it('a 400 the core answers itself is logged too', async () => {
    const before = h.server.accessLog().length;
    await rawExchange(h.server.port, 'GET /hello%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const line = await h.server.waitFor((s) => s.accessLog().slice(before).find((l) => l.status === 400), 3000, 'the 400 line');
    assert.match(line.request_id, /^[0-9a-f]{16}$/);
  });

  it('stdout holds only JSON access lines', async () => {
    for (const l of h.server.accessLog()) assert.equal(l.__unparsed, undefined, `not JSON: ${l.__unparsed}`);
  });

  it('the SECRET_KEY appears in no log', async () => {
    assert.equal(h.server.stdout.includes(SECRET_KEY), false);
    assert.equal(h.server.stderr.includes(SECRET_KEY), false);
  });
});

describeServer('access log (text)', { WORKERS: '1', LOG_FORMAT: 'text' }, (h) => {
  it('one text line per request with method, path, status and request id', async () => {
    const res = await h.server.get('/users/5');
    const id = res.headers['x-request-id'];
    const line = await h.server.waitFor((s) => s.stdout.split('\n').find((l) => l.includes(id)), 3000, 'the access line');
    assert.throws(() => JSON.parse(line));
    assert.match(line, /\bGET\b/);
    assert.match(line, /\/users\/5\b/);
    assert.match(line, /\b200\b/);
  });
});

describeServer('error log (text)', { WORKERS: '1', LOG_FORMAT: 'text' }, (h) => {
  it("h2lua.log_error's keys and values cannot end the line nor make a field of their own", async () => {
    const k = 'evil key=x\n2030-01-01T00:00:00.000Z error forged';
    const v = 'a "b" c=d\r\nuser=admin\\';
    const res = await h.server.get(`/log-error?k=${encodeURIComponent(k)}&v=${encodeURIComponent(v)}`);
    assert.equal(res.status, 200);
    const lines = await h.server.waitFor((s) => {
      const found = s.stderr.split('\n').filter((l) => l.includes('logged by the app'));
      return found.length > 0 && found;
    }, 3000, 'the error line');
    assert.equal(lines.length, 1);
    assert.equal(h.server.stderr.includes('forged'), true);
    assert.equal(h.server.stderr.split('\n').filter((l) => l.includes('forged')).length, 1, 'forged stays inside the one line');
    // TIME error w0 "logged by the app" "<key>"="<value>", both as JSON strings
    assert.match(lines[0], /^\S+ error w0 "logged by the app" (".*")=(".*")$/);
    const [, key, value] = /^\S+ error w0 "logged by the app" ("(?:[^"\\]|\\.)*")=("(?:[^"\\]|\\.)*")$/.exec(lines[0]);
    assert.equal(JSON.parse(key), k);
    assert.equal(JSON.parse(value), v);
  });

  it('a plain word stays as it is', async () => {
    await h.server.get('/log-error?k=user_id&v=42');
    const line = await h.server.waitFor((s) => s.stderr.split('\n').find((l) => l.endsWith(' user_id=42')), 3000, 'the error line');
    assert.match(line, / error w0 "logged by the app" user_id=42$/);
  });
});

describeServer('logs keep secrets', { WORKERS: '1', DATABASE_PASSWORD: 'db-pass-e2e-XYZ', LOG_FORMAT: 'json' }, (h) => {
  it('the database password appears in no log', async () => {
    await h.server.get('/hello');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(h.server.stdout.includes('db-pass-e2e-XYZ'), false);
    assert.equal(h.server.stderr.includes('db-pass-e2e-XYZ'), false);
  });
});
