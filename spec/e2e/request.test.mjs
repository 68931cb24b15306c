// The request table: method and path are there when the handler starts; every other field of the
// contract is made on its first access and kept in the table — also when the client has gone
// while the handler waited (the core keeps a copy of the request until the handler ends). A table
// kept past its request reads nil for the fields it did not read in time (no crash).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { describeServer, sleep } from './support/server.mjs';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describeServer('the request table', { WORKERS: '1' }, (h) => {
  it('holds method and path (and what the router adds) at the start; the other fields on first access', async () => {
    const res = await h.server.request('/late-fields?ms=0&q=1', { method: 'POST', headers: { ...FORM, 'x-late': 'yes' }, body: 'a=1' });
    assert.equal(res.status, 200, res.text + h.server.stderr.slice(-1500));
    const f = JSON.parse(res.text);
    assert.equal(f.keys_before, 'method,params,path,render');
    assert.equal(f.raw_path, '/late-fields?ms=0&q=1');
    assert.equal(f.query_string, 'ms=0&q=1');
    assert.equal(f.header, 'yes');
    assert.match(f.host, /^127\.0\.0\.1:\d+$/);
    assert.equal(f.body, 'a=1');
    assert.equal(f.form_a, '1');
    assert.equal(f.remote_addr, '127.0.0.1');
    assert.equal(f.id, res.headers['x-request-id']);
    assert.equal(f.worker, 0);
    assert.equal(f.scheme, 'http');
    assert.equal(f.version, 'HTTP/1.1');
    for (const k of ['body', 'form', 'headers', 'id', 'query', 'query_string', 'raw_path', 'remote_addr', 'scheme', 'version', 'worker'])
      assert.ok(f.keys_after.split(',').includes(k), `${k} kept in the table: ${f.keys_after}`);
  });

  it('its fields read after the client went (while the handler slept) are the request\'s', async () => {
    const body = 'a=gone';
    const sock = net.connect(h.server.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write(`POST /late-fields?ms=300 HTTP/1.1\r\nHost: late.example\r\nX-Late: after\r\n` +
      `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await sleep(100);
    sock.destroy();
    const line = () => h.server.errorLog().find((l) => l.msg === 'late fields' && l.raw_path === '/late-fields?ms=300');
    await h.server.waitFor(line, 5000, 'the handler\'s line');
    const f = line();
    assert.equal(f.query_string, 'ms=300');
    assert.equal(f.header, 'after');
    assert.equal(f.host, 'late.example');
    assert.equal(f.body, body);
    assert.equal(f.form_a, 'gone');
    assert.equal(f.remote_addr, '127.0.0.1');
    assert.equal(f.id.length, 16);
    assert.equal(f.version, 'HTTP/1.1');
    assert.equal((await h.server.request('/hello')).text, 'hello');
  });

  it('its fields are made when first read from a gsub callback, a sort comparator, a coroutine the app made, __tostring, pcall', async () => {
    const res = await h.server.request('/fields-from-callbacks?cb=1', { headers: { 'x-cb': 'from a coroutine' } });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(JSON.parse(res.text), {
      gsub: '/fields-from-callbacks?cb=1', sort: 'cb=1', coroutine: 'from a coroutine',
      tostring: res.headers['x-request-id'], pcall: 'HTTP/1.1',
    });
  });

  it('a table kept past its request reads nil for what it had not read, and the server goes on', async () => {
    assert.equal((await h.server.request('/keep-req')).status, 200);
    const res = await h.server.request('/read-kept');
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.text), { method: 'GET', headers: 'nil', id: 'nil', body: 'nil', index_other: 'nil' });
    assert.equal((await h.server.request('/hello')).text, 'hello');
  });
});

