// h2lua.http (core/httpc.h, docs/lua-api.md "Calling other services"): a real h2lua running
// spec/e2e/fixtures/httpc calls Node servers this test starts on loopback — plain HTTP, HTTPS with
// a CA made at test time (openssl), a certificate for another name, a slow server, a huge body, a
// refused port, a server that closes mid-body, redirects — and the answers and errors the
// application sees are checked, with what the servers saw (connections, bytes).
// Runs on the release build (LuaJIT) and the ASan build (Lua 5.4).
// timing: the read and total timeouts (bounds with a wide margin for a loaded machine).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FIXTURES, sleep, startServer } from './support/server.mjs';

/** A CA and two leaves signed by it: one for localhost and 127.0.0.1, one for another name. */
function makeCerts(dir) {
  const ossl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ossl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=h2lua test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  for (const [name, san] of [['leaf', 'DNS:localhost,IP:127.0.0.1'], ['other', 'DNS:other.example']]) {
    ossl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name === 'leaf' ? 'localhost' : 'other.example'}`);
    fs.writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
    ossl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`,
      '-days', '2', '-extfile', `${name}.ext`);
  }
  const read = (f) => fs.readFileSync(path.join(dir, f));
  return { ca: path.join(dir, 'ca.pem'), leaf: { key: read('leaf.key'), cert: read('leaf.pem') }, other: { key: read('other.key'), cert: read('other.pem') } };
}

/** The target: routes for every case, counting connections and remembering held requests. */
function target(handler) {
  const st = { connections: 0, requests: [], held: [] };
  const app = (req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const u = new URL(req.url, 'http://x');
      st.requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      const p = u.pathname;
      if (p === '/echo') {
        res.setHeader('content-type', 'application/json');
        res.setHeader('x-twice', ['a', 'b']);
        res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body, port: req.socket.remotePort }));
      } else if (p === '/chunked') {
        res.write('part1,');
        setTimeout(() => res.end('part2'), 20);
      } else if (p === '/huge') {
        const chunk = Buffer.alloc(64 * 1024, 'x');
        let left = Number(u.searchParams.get('kb')) / 64;
        res.setHeader('content-length', String(left * chunk.length));
        const more = () => { while (left > 0) { left--; if (!res.write(chunk)) return res.once('drain', more); } res.end(); };
        more();
      } else if (p === '/huge-chunked') {
        const chunk = Buffer.alloc(64 * 1024, 'y');
        let left = Number(u.searchParams.get('kb')) / 64;
        const more = () => { while (left > 0) { left--; if (!res.write(chunk)) return res.once('drain', more); } res.end(); };
        more();
      } else if (p === '/close-mid') {
        res.setHeader('content-length', '100000');
        res.write('x'.repeat(1000));
        setTimeout(() => res.socket.destroy(), 50);
      } else if (p === '/close-mid-chunk') {
        // a chunk announced as 0x1000 bytes, cut after 10
        res.socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1000\r\n0123456789');
        setTimeout(() => res.socket.destroy(), 50);
      } else if (p === '/hang') {
        st.held.push(res); // never answered unless the test releases it
      } else if (p === '/drip') {
        res.setHeader('content-type', 'text/plain');
        const t = setInterval(() => res.write('.'), 100);
        res.on('close', () => clearInterval(t));
      } else if (p.startsWith('/redirect/')) {
        const n = Number(p.slice('/redirect/'.length));
        if (n === 0) return res.end(`arrived by ${req.method} with body "${body}"`);
        res.statusCode = Number(u.searchParams.get('status') ?? 302);
        res.setHeader('location', `/redirect/${n - 1}?status=${res.statusCode}`);
        res.end('moved');
      } else if (p === '/status/204') {
        res.statusCode = 204;
        res.end();
      } else {
        res.statusCode = 404;
        res.end('no such route');
      }
    });
  };
  const server = handler(app);
  server.on('connection', () => { st.connections++; });
  server.keepAliveTimeout = 30000;
  return { server, st };
}

const listen = (server) => new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));

describe('h2lua.http: the outbound HTTP client', () => {
  let tmp;
  let certs;
  let plain;
  let tls;
  let wrong;
  let ports;
  let server;
  let mute;
  const muted = [];

  /** POST /fetch on h2lua: the results of times calls of http.request(url, opts). */
  const fetch = async (url, opts = {}, times = 1) => {
    const res = await server.request('/fetch', { method: 'POST', body: JSON.stringify({ url, opts, times }), timeoutMs: 30000 });
    assert.equal(res.status, 200, `${res.text}\n${server.stderr.slice(-2000)}`);
    return JSON.parse(res.text).results;
  };
  const one = async (url, opts) => (await fetch(url, opts))[0];

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-httpc-'));
    certs = makeCerts(tmp);
    plain = target((app) => http.createServer(app));
    tls = target((app) => https.createServer({ ...certs.leaf }, app));
    wrong = target((app) => https.createServer({ ...certs.other }, app));
    mute = net.createServer((sock) => { muted.push(sock); });
    ports = {
      plain: await listen(plain.server), tls: await listen(tls.server), wrong: await listen(wrong.server),
      mute: await listen(mute),
    };
    server = await startServer({
      env: { SCRIPTS_DIR: path.join(FIXTURES, 'httpc'), VIEWS_DIR: path.join(FIXTURES, 'views'), WORKERS: '1', HTTP_CLIENT_MAX: '2' },
    });
  });

  after(async () => {
    if (server) await server.stop({ signal: 'SIGKILL' });
    for (const sock of muted) sock.destroy();
    if (mute) mute.close();
    for (const t of [plain, tls, wrong]) {
      if (!t) continue;
      for (const r of t.st.held) r.destroy();
      t.server.closeAllConnections();
      t.server.close();
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('GET and POST with headers and a body; response headers in lower case, repeated ones joined', async () => {
    const base = `http://127.0.0.1:${ports.plain}`;
    const r = await one(`${base}/echo?a=1&b=%20`, { method: 'POST', body: 'the body', headers: { 'X-Custom': 'v1', 'x-n': 42 } });
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body);
    assert.equal(seen.method, 'POST');
    assert.equal(seen.url, '/echo?a=1&b=%20');
    assert.equal(seen.body, 'the body');
    assert.equal(seen.headers['x-custom'], 'v1');
    assert.equal(seen.headers['x-n'], '42');
    assert.equal(seen.headers['content-length'], '8');
    assert.equal(seen.headers.host, `127.0.0.1:${ports.plain}`);
    assert.match(seen.headers['user-agent'], /^h2lua\//);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.headers['x-twice'], 'a, b');
    assert.equal(r.url, `${base}/echo?a=1&b=%20`);

    const g = JSON.parse((await server.request('/get', { method: 'POST', body: JSON.stringify({ url: `${base}/echo#frag` }) })).text);
    assert.equal(g.status, 200);
    assert.equal(JSON.parse(g.body).url, '/echo');
    const p = JSON.parse((await server.request('/post', { method: 'POST', body: JSON.stringify({ url: `${base}/echo`, body: 'posted' }) })).text);
    assert.equal(JSON.parse(p.body).body, 'posted');
    assert.equal(JSON.parse(p.body).method, 'POST');
  });

  it('resolves host names (localhost), reads chunked bodies, a 204 and a 404 as values', async () => {
    const r = await one(`http://localhost:${ports.plain}/chunked`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'part1,part2');
    assert.equal(r.headers['transfer-encoding'], 'chunked');
    const nc = await one(`http://localhost:${ports.plain}/status/204`);
    assert.equal(nc.status, 204);
    assert.equal(nc.body, '');
    const nf = await one(`http://127.0.0.1:${ports.plain}/nowhere`);
    assert.equal(nf.status, 404);
    assert.equal(nf.body, 'no such route');
  });

  it('keeps connections alive: five calls in a row use one connection (plain and TLS)', async () => {
    for (const [t, url, opts] of [
      [plain, `http://127.0.0.1:${ports.plain}/echo`, {}],
      [tls, `https://localhost:${ports.tls}/echo`, { ca_file: certs.ca }],
    ]) {
      const before = t.st.connections;
      const rs = await fetch(url, opts, 5);
      assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200, 200], JSON.stringify(rs));
      const clientPorts = new Set(rs.map((r) => JSON.parse(r.body).port));
      assert.equal(clientPorts.size, 1, `one client port: ${[...clientPorts]}`);
      // one connection at most: the one a call before this test left in the pool may serve all five
      assert.ok(t.st.connections - before <= 1, `the server saw ${t.st.connections - before} new connections`);
    }
  });

  it('HTTPS: verified against the CA file; refused without it, for another name, and passes with ssl_verify = false', async () => {
    const ok = await one(`https://localhost:${ports.tls}/echo`, { ca_file: certs.ca });
    assert.equal(ok.status, 200);
    const byIp = await one(`https://127.0.0.1:${ports.tls}/echo`, { ca_file: certs.ca });
    assert.equal(byIp.status, 200, JSON.stringify(byIp)); // the certificate names 127.0.0.1 as an IP address
    const noCa = await one(`https://localhost:${ports.tls}/echo`);
    assert.match(noCa.err, /^certificate verify failed: .*(local issuer|self.signed)/, noCa.err);
    const wrongName = await one(`https://127.0.0.1:${ports.wrong}/echo`, { ca_file: certs.ca });
    assert.match(wrongName.err, /^certificate verify failed: .*(IP address mismatch|hostname mismatch)/, wrongName.err);
    const wrongHost = await one(`https://localhost:${ports.wrong}/echo`, { ca_file: certs.ca });
    assert.match(wrongHost.err, /^certificate verify failed: hostname mismatch/, wrongHost.err);
    const unverified = await one(`https://localhost:${ports.wrong}/echo`, { ssl_verify: false });
    assert.equal(unverified.status, 200);
    const missing = await one(`https://localhost:${ports.tls}/echo`, { ca_file: path.join(tmp, 'none.pem') });
    assert.match(missing.err, /^cannot load the CA file/);
    // nothing reached the application of a server that did not verify
    assert.equal(wrong.st.requests.length, 1);
  });

  it('a refused connection, a bad URL and an unknown host are errors, not exceptions', async () => {
    // port 1: nothing listens there (a port freed by freePort() may be taken by another test meanwhile)
    assert.match((await one('http://127.0.0.1:1/')).err, /^connect failed/);
    for (const u of ['ftp://x/', 'http://', 'http://a b/', 'http://h/\r\nx: y', 'http://user:pw@127.0.0.1/', 'nonsense', 'http://h\0/']) {
      assert.match((await one(u)).err, /^invalid url/, u);
    }
    assert.match((await one('http://no-such-host.invalid/')).err, /^connect failed/);
  });

  it('CR, LF and NUL in a header name or value, or a bad method, are refused before anything is sent', async () => {
    const before = plain.st.connections;
    const url = `http://127.0.0.1:${ports.plain}/echo`;
    for (const headers of [{ 'x-a': 'v\r\nx-injected: 1' }, { 'x-a': 'v\nx' }, { 'x-a': 'v\rx' }, { 'x-a': 'v\0' },
      { 'x-a\r\nx-injected': 'v' }, { 'x a': 'v' }, { 'x:a': 'v' }, { '': 'v' }, { 'content-length': '5' },
      { 'transfer-encoding': 'chunked' }]) {
      assert.match((await one(url, { headers })).err, /^invalid header|^invalid value of header|is set by the client/, JSON.stringify(headers));
    }
    for (const method of ['GET /x HTTP/1.1\r\n', 'GE T', '', 'G\r\nET']) {
      assert.match((await one(url, { method })).err, /^invalid method/, JSON.stringify(method));
    }
    assert.equal(plain.st.connections, before, 'no connection was made');
  });

  it('a body past max_body fails with "response too large" (content-length and chunked); under it passes', async () => {
    const base = `http://127.0.0.1:${ports.plain}`;
    const big = await one(`${base}/huge?kb=2048`, { max_body: 1024 * 1024 });
    assert.match(big.err, /^response too large/);
    const bigChunked = await one(`${base}/huge-chunked?kb=2048`, { max_body: 1024 * 1024 });
    assert.match(bigChunked.err, /^response too large/);
    const fits = await one(`${base}/huge?kb=2048`, { max_body: 4 * 1024 * 1024 });
    assert.equal(fits.status, 200);
    assert.equal(fits.body_len, 2048 * 1024);
    const fitsChunked = await one(`${base}/huge-chunked?kb=1024`);
    assert.equal(fitsChunked.body_len, 1024 * 1024);
  });

  it('a server closing mid-body is an error (content-length and inside a chunk)', async () => {
    const base = `http://127.0.0.1:${ports.plain}`;
    assert.match((await one(`${base}/close-mid`)).err, /^receive failed/);
    assert.match((await one(`${base}/close-mid-chunk`)).err, /^receive failed/);
  });

  it('a silent server: read timeout; a dripping one: the total timeout; a mute TLS port: connect timeout, each within its bounds', async () => {
    const base = `http://127.0.0.1:${ports.plain}`;
    let t0 = Date.now();
    const r = await one(`${base}/hang`, { read_timeout: 0.5 });
    let ms = Date.now() - t0;
    assert.equal(r.err, 'read timeout');
    assert.ok(ms >= 450 && ms < 5000, `${ms} ms`);
    // a byte every 100 ms: each read moves the read deadline on, the total one ends the call
    t0 = Date.now();
    const d = await one(`${base}/drip`, { read_timeout: 0.5, timeout: 1.5 });
    ms = Date.now() - t0;
    assert.equal(d.err, 'timeout');
    assert.ok(ms >= 1450 && ms < 6000, `${ms} ms`);
    // a TCP server that never speaks TLS: the handshake is part of connecting
    t0 = Date.now();
    const c = await one(`https://127.0.0.1:${ports.mute}/`, { connect_timeout: 0.5 });
    ms = Date.now() - t0;
    assert.equal(c.err, 'connect timeout');
    assert.ok(ms >= 450 && ms < 5000, `${ms} ms`);
  });

  it('redirects are returned as they are by default, followed when asked, and bounded', async () => {
    const base = `http://127.0.0.1:${ports.plain}`;
    const r = await one(`${base}/redirect/3`);
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, '/redirect/2?status=302');
    const f = await one(`${base}/redirect/3`, { follow_redirects: true });
    assert.equal(f.status, 200);
    assert.equal(f.body, 'arrived by GET with body ""');
    assert.equal(f.url, `${base}/redirect/0?status=302`);
    assert.equal((await one(`${base}/redirect/3`, { follow_redirects: 2 })).err, 'too many redirects');
    assert.equal((await one(`${base}/redirect/20`, { follow_redirects: true })).err, 'too many redirects');
    // 303 after a POST: GET without the body; 307 keeps the method and the body
    const see = await one(`${base}/redirect/1?status=303`, { method: 'POST', body: 'b', follow_redirects: true });
    assert.equal(see.body, 'arrived by GET with body ""');
    const keep = await one(`${base}/redirect/2?status=307`, { method: 'POST', body: 'b', follow_redirects: true });
    assert.equal(keep.body, 'arrived by POST with body "b"');
  });

  it('mistakes in the call itself raise: 500 and a log line naming them', async () => {
    for (const [p, re] of [['/raise/url', /url must be a string/], ['/raise/opts', /opts must be a table/],
      ['/raise/timeout', /opts\.timeout must be from 0/], ['/raise/header', /opts\.headers\["a"\] must be a string/]]) {
      const res = await server.request(p, { method: 'POST' });
      assert.equal(res.status, 500, p);
      await server.waitFor(() => server.errorLog().some((l) => l.path === p && re.test(l.error ?? l.msg ?? '')), 5000, `${p} logged`);
    }
  });

  it('HTTP_CLIENT_MAX bounds the calls running on a worker: the one past it fails at once', async () => {
    const url = `http://127.0.0.1:${ports.plain}/hang`;
    const held0 = plain.st.held.length;
    const calls = [0, 1].map(() => one(url, { read_timeout: 60 }));
    await server.waitFor(() => plain.st.held.length === held0 + 2, 10000, 'two calls held by the server');
    const t0 = Date.now();
    const extra = await one(url);
    assert.match(extra.err, /^too many outbound requests \(HTTP_CLIENT_MAX=2/);
    assert.ok(Date.now() - t0 < 3000);
    assert.equal(plain.st.held.length, held0 + 2, 'the refused call sent nothing');
    for (const r of plain.st.held.splice(held0)) r.end('released');
    const done = await Promise.all(calls);
    assert.deepEqual(done.map((r) => r.body), ['released', 'released']);
    // the slots are free again
    assert.equal((await one(`http://127.0.0.1:${ports.plain}/echo`)).status, 200);
  });

  it('HTTP_CLIENT_MAX counts calls running, not calls made: a coroutine may make more calls in a row than the bound', async () => {
    // two coroutines, each making seven calls in a row, keep both slots busy: a call made as the
    // previous one ends must find that one's slot free
    const url = `http://127.0.0.1:${ports.plain}/echo`;
    const both = await Promise.all([fetch(url, {}, 7), fetch(url, {}, 7)]);
    for (const rs of both) assert.deepEqual(rs.map((r) => r.status ?? r.err), [200, 200, 200, 200, 200, 200, 200]);
  });

  it('a reload (SIGHUP) lets a call in flight finish on the version that made it', async () => {
    const url = `http://127.0.0.1:${ports.plain}/hang`;
    const held0 = plain.st.held.length;
    const call = one(url, { read_timeout: 60 });
    await server.waitFor(() => plain.st.held.length === held0 + 1, 10000, 'the call held by the server');
    const reloaded = () => (server.stderr.match(/"msg":"reloaded scripts and views"/g) || []).length;
    const before = reloaded();
    server.signal('SIGHUP');
    await server.waitFor(() => reloaded() > before, 10000, 'the reload');
    plain.st.held.splice(held0)[0].end('after the reload');
    assert.equal((await call).body, 'after the reload');
    assert.equal((await one(`http://127.0.0.1:${ports.plain}/echo`)).status, 200, 'the new version calls out too');
  });

  it('SIGTERM waits for a call in flight, which finishes; the process exits cleanly', async () => {
    const url = `http://127.0.0.1:${ports.plain}/hang`;
    const held0 = plain.st.held.length;
    const call = one(url, { read_timeout: 60 });
    await server.waitFor(() => plain.st.held.length === held0 + 1, 10000, 'the call held by the server');
    server.signal('SIGTERM');
    await sleep(300);
    assert.equal(server.exited, null, 'still draining');
    plain.st.held.splice(held0)[0].end('after the signal');
    assert.equal((await call).body, 'after the signal');
    await server.stopClean();
  });
});

describe('h2lua.http: a call in flight when the drain times out', () => {
  it('is dropped with the request at DRAIN_TIMEOUT; the process exits without a crash or a sanitizer report', async () => {
    const held = [];
    const srv = http.createServer((req, res) => { held.push(res); });
    const port = await listen(srv);
    const server = await startServer({
      env: { SCRIPTS_DIR: path.join(FIXTURES, 'httpc'), VIEWS_DIR: path.join(FIXTURES, 'views'), WORKERS: '1', DRAIN_TIMEOUT: '1' },
    });
    try {
      const call = server.request('/fetch', { method: 'POST', body: JSON.stringify({ url: `http://127.0.0.1:${port}/`, opts: { read_timeout: 60 } }), timeoutMs: 20000 }).catch((e) => e);
      await server.waitFor(() => held.length === 1, 10000, 'the call held');
      const r = await server.stop({ timeoutMs: 15000 });
      assert.equal(r.killed, false);
      assert.equal(r.code, 0, server.stderr.slice(-2000));
      assert.ok(server.errorLog().some((l) => /drain timeout/.test(l.msg ?? '')), 'the drain timeout is logged');
      await call;
      const report = /ERROR: (Address|Leak)Sanitizer|runtime error:/.exec(server.stderr);
      assert.equal(report, null, server.stderr.slice(-3000));
    } finally {
      for (const r of held) r.destroy();
      srv.close();
    }
  });
});

