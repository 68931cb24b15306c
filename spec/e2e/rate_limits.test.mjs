// The entries app's write limit (WRITE_LIMIT, lib.limit on the shared store `limits`) and the
// client address it is keyed by (req.client_addr, TRUSTED_PROXIES) on a real h2lua and a real
// MariaDB, with clients on several loopback addresses (127.0.0.2, .3, ... are other peers):
// writes past the limit are a 429 with Retry-After (an HTML page, JSON under /api/) and change
// nothing; reads are never limited; a forged X-Forwarded-For from a peer that is not a trusted
// proxy is ignored (rotating it does not dodge the limit); behind a trusted proxy the rightmost
// untrusted address of X-Forwarded-For is the client (two clients behind one proxy are limited
// apart, a forged left part is ignored); the 429s are counted in /metrics; and after the window a
// client may write again.
// timing: the limits of these servers are per 60 s (nothing here takes that long, however loaded
// the machine), except the last server's, whose test waits for the Retry-After it is given.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startMariaDB } from './support/mariadb.mjs';
import { countEntries, csrfToken, setCookies, startApp } from './support/client.mjs';
import { sleep } from './support/server.mjs';

const DB = 'flaskcrud_limits';
const TOKEN = 'metrics-token-0123456789';
const LIMIT = 5;

let db;
before(async () => {
  db = await startMariaDB();
  await db.freshDatabase(DB);
});
after(async () => {
  if (db) await db.destroy();
});

/** One request to server from the local address `from` (a peer of its own). */
function send(server, from, p, { method = 'GET', headers = {}, body } = {}) {
  const h = { ...headers };
  if (body !== undefined) h['content-length'] = String(Buffer.byteLength(body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: server.port, path: p, method, headers: h, localAddress: from, agent: false },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.setTimeout(15000, () => req.destroy(new Error(`${method} ${p}: no answer within 15 s`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** POST /api/entries from `from`, with extra headers. */
function apiAdd(server, from, title, headers = {}) {
  return send(server, from, '/api/entries', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ title, description: 'rate limits' }),
  });
}

/** A browser on `from`: GET / for the session cookie and the form's CSRF token. */
async function browser(server, from) {
  const page = await send(server, from, '/');
  assert.equal(page.status, 200);
  const cookie = setCookies(page).map((c) => c.split(';')[0]).join('; ');
  const token = csrfToken(page.text);
  assert.ok(token, 'the page has a csrf_token');
  return {
    add: (title) =>
      send(server, from, '/add', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
        body: new URLSearchParams({ title, description: 'rate limits', csrf_token: token }).toString(),
      }),
  };
}

/** Asserts a 429 with a Retry-After of whole seconds in [1, max]; returns it. */
function isLimited(res, max = 60 + 12) {
  assert.equal(res.status, 429, res.text.slice(0, 300));
  const retry = res.headers['retry-after'];
  assert.match(String(retry), /^[1-9][0-9]*$/, `Retry-After: ${retry}`);
  assert.ok(Number(retry) <= max, `Retry-After ${retry} <= ${max}`);
  return Number(retry);
}

function isJsonError(res) {
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const body = JSON.parse(res.text);
  assert.deepEqual(Object.keys(body), ['error']);
  assert.match(body.error, /^Too many changes from your address: try again in \d+ seconds?\.$/);
}

/** The samples of h2lua_requests_total with status 429, by route. */
async function limitedByRoute(server) {
  const res = await send(server, '127.0.0.1', '/metrics', { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 200);
  const out = {};
  for (const m of res.text.matchAll(/^h2lua_requests_total\{route="([^"]*)",status="429"\} (\d+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}

describe('writes from peers that are not trusted proxies', () => {
  let server;
  let limited = 0; // the 429s this server sent
  before(async () => {
    server = await startApp(db, DB, { WRITE_LIMIT: `${LIMIT}/60`, METRICS_TOKEN: TOKEN, WORKERS: '2' });
  });
  after(async () => {
    if (server) await server.stop({ signal: 'SIGKILL' });
  });

  it('form posts past the limit get the 429 page with Retry-After, and change nothing', async () => {
    const b = await browser(server, '127.0.0.2');
    for (let i = 0; i < LIMIT; i++) assert.equal((await b.add(`page ${i}`)).status, 303, `write ${i + 1}`);
    const rows = await countEntries(db, DB);
    const res = await b.add('one too many');
    isLimited(res);
    limited++;
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.match(res.text, /<h1[^>]*>429 Too Many Requests<\/h1>/);
    assert.match(res.text, /Too many changes from your address: try again in \d+ seconds?\./);
    assert.equal(await countEntries(db, DB), rows, 'the refused write added nothing');
  });

  it('the API shares the budget and answers JSON with Retry-After, for POST, PATCH and DELETE', async () => {
    const [{ id }] = await db.root(`SELECT MIN(id) AS id FROM \`${DB}\`.entry`);
    const post = await apiAdd(server, '127.0.0.2', 'api');
    isLimited(post);
    isJsonError(post);
    const patch = await send(server, '127.0.0.2', `/api/entries/${id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'renamed' }),
    });
    isLimited(patch);
    isJsonError(patch);
    const del = await send(server, '127.0.0.2', `/api/entries/${id}`, { method: 'DELETE' });
    isLimited(del);
    isJsonError(del);
    limited += 3;
    const [row] = await db.root(`SELECT title FROM \`${DB}\`.entry WHERE id = ?`, [id]);
    assert.equal(row.title, 'page 0', 'neither renamed nor deleted');
  });

  it('reads are not limited', async () => {
    for (let i = 0; i < 3 * LIMIT; i++) {
      assert.equal((await send(server, '127.0.0.2', '/')).status, 200);
      assert.equal((await send(server, '127.0.0.2', '/api/entries?limit=5')).status, 200);
    }
  });

  it('another peer has its own budget', async () => {
    for (let i = 0; i < LIMIT; i++) assert.equal((await apiAdd(server, '127.0.0.4', `other ${i}`)).status, 201);
    isLimited(await apiAdd(server, '127.0.0.4', 'other, one too many'));
    limited++;
  });

  it('a forged X-Forwarded-For is ignored: rotating it does not dodge the limit', async () => {
    for (let i = 0; i < LIMIT; i++) {
      const res = await apiAdd(server, '127.0.0.3', `forged ${i}`, { 'x-forwarded-for': `198.51.100.${i + 1}` });
      assert.equal(res.status, 201, `write ${i + 1}`);
    }
    for (let i = 0; i < 3; i++) {
      const res = await apiAdd(server, '127.0.0.3', 'forged, one too many', {
        'x-forwarded-for': `203.0.113.${i + 1}, 198.51.100.${i + 50}`,
        'x-real-ip': `192.0.2.${i + 1}`,
        forwarded: `for=192.0.2.${i + 1}`,
      });
      isLimited(res);
      isJsonError(res);
      limited++;
    }
  });

  it('counts every 429 in /metrics by route', async () => {
    const byRoute = await limitedByRoute(server);
    assert.equal(byRoute['/add'], 1);
    assert.equal(byRoute['/api/entries/:id'], 2);
    assert.equal(byRoute['/api/entries'], limited - 3);
    assert.equal(Object.values(byRoute).reduce((a, b) => a + b, 0), limited);
  });

  it('exits 0 on SIGTERM without a sanitizer report', async () => {
    await server.stopClean();
    server = null;
  });
});

describe('writes through a trusted proxy (TRUSTED_PROXIES=127.0.0.1/32)', () => {
  let server;
  before(async () => {
    server = await startApp(db, DB, { WRITE_LIMIT: `${LIMIT}/60`, TRUSTED_PROXIES: '127.0.0.1/32', WORKERS: '2' });
  });
  after(async () => {
    if (server) await server.stop({ signal: 'SIGKILL' });
  });

  it('two clients behind the proxy are limited apart, by the address the proxy appended', async () => {
    for (let i = 0; i < LIMIT; i++) {
      assert.equal((await apiAdd(server, '127.0.0.1', `a ${i}`, { 'x-forwarded-for': '203.0.113.1' })).status, 201);
    }
    isLimited(await apiAdd(server, '127.0.0.1', 'a, one too many', { 'x-forwarded-for': '203.0.113.1' }));
    for (let i = 0; i < LIMIT; i++) {
      assert.equal((await apiAdd(server, '127.0.0.1', `b ${i}`, { 'x-forwarded-for': '203.0.113.2' })).status, 201);
    }
    isLimited(await apiAdd(server, '127.0.0.1', 'b, one too many', { 'x-forwarded-for': '203.0.113.2' }));
  });

  it("a client's forged left part is never read: only the rightmost untrusted address counts", async () => {
    for (let i = 0; i < 3; i++) {
      const res = await apiAdd(server, '127.0.0.1', 'forged', { 'x-forwarded-for': `198.51.100.${i + 1}, 203.0.113.1` });
      isLimited(res);
    }
    // the proxy itself (trusted) on the right is skipped; several headers are one list
    isLimited(await apiAdd(server, '127.0.0.1', 'hops', { 'x-forwarded-for': '198.51.100.7, 203.0.113.1, 127.0.0.1' }));
    isLimited(await apiAdd(server, '127.0.0.1', 'headers', { 'x-forwarded-for': ['198.51.100.8', '203.0.113.2'] }));
    // garbage on the right stops the walk at the proxy: the proxy's own budget, not a client's
    assert.equal((await apiAdd(server, '127.0.0.1', 'garbage', { 'x-forwarded-for': '203.0.113.1, unknown' })).status, 201);
  });

  it('the access log has the client next to the peer', async () => {
    const res = await send(server, '127.0.0.1', '/', { headers: { 'x-forwarded-for': '198.51.100.9, 2001:DB8::0:7' } });
    assert.equal(res.status, 200);
    const id = res.headers['x-request-id'];
    const line = await server.waitFor((s) => s.accessLog().find((l) => l.request_id === id), 3000, 'the access line');
    assert.equal(line.remote_addr, '127.0.0.1');
    assert.equal(line.client_addr, '2001:db8::7');
  });

  it('a peer that is not the proxy is the client, whatever its X-Forwarded-For says', async () => {
    for (let i = 0; i < LIMIT; i++) {
      assert.equal((await apiAdd(server, '127.0.0.5', `peer ${i}`, { 'x-forwarded-for': `203.0.113.${i + 10}` })).status, 201);
    }
    isLimited(await apiAdd(server, '127.0.0.5', 'peer, one too many', { 'x-forwarded-for': '203.0.113.99' }));
    // and the address it named is untouched: a client behind the proxy with it still writes
    assert.equal((await apiAdd(server, '127.0.0.1', 'named', { 'x-forwarded-for': '203.0.113.10' })).status, 201);
  });

  it('exits 0 on SIGTERM without a sanitizer report', async () => {
    await server.stopClean();
    server = null;
  });
});

describe('after the window', () => {
  let server;
  before(async () => {
    server = await startApp(db, DB, { WRITE_LIMIT: '3/2', WORKERS: '2' });
  });
  after(async () => {
    if (server) await server.stop({ signal: 'SIGKILL' });
  });

  it('a client may write again once its Retry-After has passed', async () => {
    let res;
    let n = 0;
    // at most 3 writes per 2 s: a 429 comes within a few more, however slow each write is
    do {
      res = await apiAdd(server, '127.0.0.6', `window ${n}`);
      n++;
      assert.ok(res.status === 201 || res.status === 429, res.text);
    } while (res.status === 201 && n < 50);
    const retry = isLimited(res, 2 + 2);
    await sleep(retry * 1000 + 100);
    assert.equal((await apiAdd(server, '127.0.0.6', 'again')).status, 201);
  });
});

describe('SHARED_STORES without the store `limits`', () => {
  let server;
  before(async () => {
    server = await startApp(db, DB, { WRITE_LIMIT: '1/60', SHARED_STORES: 'cache:1m', WORKERS: '2' });
  });
  after(async () => {
    if (server) await server.stop({ signal: 'SIGKILL' });
  });

  it('the app says so once at load and does not limit', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await apiAdd(server, '127.0.0.7', `unlimited ${i}`)).status, 201);
    const lines = server.stderr.split('\n').filter((l) => l.includes("SHARED_STORES declares no store 'limits'"));
    assert.equal(lines.length, 1, server.stderr.slice(-2000));
    assert.match(lines[0], /WRITE_LIMIT is set but SHARED_STORES declares no store 'limits': writes are not limited/);
  });
});
