// Security probes against the entries app (scripts/, views/) on a real MariaDB: CSRF, stored XSS
// (fields, the edit form, flash messages), SQL injection through every parameter, open redirects,
// cookie flags, and the security headers on every kind of response.
//
// The server runs with the harness's SECRET_KEY, so the test can sign what an attacker cannot:
// an expired but otherwise valid CSRF token, and a session cookie holding a hostile flash message
// (to show the views escape what the session holds).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startMariaDB } from './support/mariadb.mjs';
import { SECRET_KEY, assertSecurityHeaders, freePort, parseResponses, rawExchange, startServer } from './support/server.mjs';
import { waitReady } from './support/faults.mjs';
import { APP_ENV, cookiePairs, csrfToken, hasEntriesApp } from './support/entries.mjs';

const FORM = 'application/x-www-form-urlencoded';
const hmac = (data) => crypto.createHmac('sha256', SECRET_KEY).update(data).digest('hex');
const b64url = (s) => Buffer.from(s).toString('base64url');

/** A session cookie value signed as lib/session.lua does (payload JSON: id, exp, flash, data). */
function signSession(payload) {
  const p = b64url(JSON.stringify(payload));
  return `${p}.${hmac(`session\0${p}`)}`;
}

/** The payload of a session cookie value. */
function readSession(value) {
  return JSON.parse(Buffer.from(value.split('.')[0], 'base64url').toString('utf8'));
}

/** A CSRF token for session id `id` expiring at `expiry` (seconds), signed as lib/csrf.lua does. */
const signCsrf = (id, expiry) => `${expiry}.${hmac(`csrf\0${id}\0${expiry}`)}`;

/** A browser: its session cookie and the CSRF token of its last page. */
class Browser {
  constructor(server) {
    this.server = server;
    this.cookies = new Map();
    this.token = null;
  }

  get cookie() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  keep(res) {
    for (const pair of cookiePairs(res)) {
      const i = pair.indexOf('=');
      this.cookies.set(pair.slice(0, i), pair.slice(i + 1));
    }
    return res;
  }

  async get(p, headers = {}) {
    const res = this.keep(await this.server.get(p, { headers: { cookie: this.cookie, ...headers } }));
    const t = csrfToken(res.text);
    if (t) this.token = t;
    return res;
  }

  async post(p, fields, headers = {}) {
    const body = new URLSearchParams(fields).toString();
    return this.keep(await this.server.request(p, { method: 'POST', body, headers: { 'content-type': FORM, cookie: this.cookie, ...headers } }));
  }

  get sessionId() {
    return readSession(this.cookies.get('session')).id;
  }
}

describe('security', { skip: hasEntriesApp() ? false : 'the entries app has no write routes yet' }, () => {
  let db;
  let name;
  let server;
  let alice;
  let bob;

  const count = async () => Number((await db.root(`SELECT COUNT(*) AS n FROM \`${name}\`.entry`))[0].n);
  const row = async (id) => (await db.root(`SELECT id, title, description, status FROM \`${name}\`.entry WHERE id = ?`, [id]))[0];
  const createApi = async (title, description) => {
    const res = await server.request('/api/entries', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title, description }),
    });
    assert.equal(res.status, 201, res.text);
    return JSON.parse(res.text).id;
  };

  before(async () => {
    db = await startMariaDB();
    name = await db.freshDatabase('flaskcrud_security');
    server = await startServer({ env: { ...APP_ENV, DATABASE_URL: db.url(name), WORKERS: '2', MAX_BODY: '8192' } });
    await waitReady(server);
    alice = new Browser(server);
    bob = new Browser(server);
    assert.equal((await alice.get('/')).status, 200);
    assert.equal((await bob.get('/')).status, 200);
    assert.ok(alice.token && bob.token, 'both have a token');
    assert.notEqual(alice.sessionId, bob.sessionId);
  });

  after(async () => {
    if (server) await server.stop({ signal: 'SIGKILL' });
    if (db) await db.destroy();
  });

  describe('CSRF', () => {
    let id;
    before(async () => {
      id = await createApi('csrf target', 'unchanged');
    });

    it('a valid token is accepted (the control case): 303', async () => {
      const n = await count();
      const res = await alice.post('/add', { title: 'csrf ok', description: 'with the token', csrf_token: alice.token });
      assert.equal(res.status, 303, res.text);
      assert.equal(await count(), n + 1);
    });

    it('a token made here with the key is accepted too (the forging below is faithful)', async () => {
      const token = signCsrf(alice.sessionId, Math.floor(Date.now() / 1000) + 600);
      const n = await count();
      const res = await alice.post('/add', { title: 'csrf forged ok', description: 'x', csrf_token: token });
      assert.equal(res.status, 303, res.text);
      assert.equal(await count(), n + 1);
    });

    const refused = async (what, fn) => {
      const n = await count();
      const before = await row(id);
      const res = await fn();
      assert.equal(res.status, 403, `${what}: ${res.status}`);
      assert.equal(await count(), n, `${what}: nothing added`);
      assert.deepEqual(await row(id), before, `${what}: the entry is unchanged`);
      return res;
    };

    const routes = () => [
      ['/add', { title: 'evil', description: 'evil' }],
      [`/update/${id}`, { title: 'evil', description: 'evil' }],
      [`/turn/${id}`, {}],
      [`/delete/${id}`, {}],
    ];

    it('a missing token: 403 on every form route, nothing written', async () => {
      for (const [p, fields] of routes()) await refused(`${p} without a token`, () => alice.post(p, fields));
    });

    it('no session cookie at all: 403', async () => {
      for (const [p, fields] of routes()) {
        await refused(`${p} without a session`, () =>
          server.request(p, { method: 'POST', headers: { 'content-type': FORM }, body: new URLSearchParams({ ...fields, csrf_token: alice.token }).toString() }));
      }
    });

    it('a wrong token (right shape, random MAC): 403', async () => {
      const token = `${Math.floor(Date.now() / 1000) + 3600}.${crypto.randomBytes(32).toString('hex')}`;
      for (const [p, fields] of routes()) await refused(`${p} with a wrong token`, () => alice.post(p, { ...fields, csrf_token: token }));
    });

    it('malformed tokens: 403', async () => {
      const t = alice.token;
      for (const token of ['', 'x', t.toUpperCase(), `${t}0`, t.slice(0, -1), t.replace('.', ''), `0.${t.split('.')[1]}`, `-1.${t.split('.')[1]}`]) {
        await refused(`token ${JSON.stringify(token.slice(0, 30))}`, () => alice.post('/add', { title: 'evil', description: 'evil', csrf_token: token }));
      }
    });

    it('an expired token (correctly signed, expiry in the past): 403', async () => {
      const token = signCsrf(alice.sessionId, Math.floor(Date.now() / 1000) - 1);
      for (const [p, fields] of routes()) await refused(`${p} with an expired token`, () => alice.post(p, { ...fields, csrf_token: token }));
    });

    it('a token whose expiry was pushed later (MAC no longer matches): 403', async () => {
      const [, mac] = alice.token.split('.');
      const token = `${Math.floor(Date.now() / 1000) + 10 * 365 * 86400}.${mac}`;
      await refused('extended token', () => alice.post('/add', { title: 'evil', description: 'evil', csrf_token: token }));
    });

    it("another session's token: 403", async () => {
      for (const [p, fields] of routes()) await refused(`${p} with bob's token`, () => alice.post(p, { ...fields, csrf_token: bob.token }));
    });

    it('the token in the query string instead of the form: 403', async () => {
      await refused('token in the query', () => alice.post(`/add?csrf_token=${encodeURIComponent(alice.token)}`, { title: 'evil', description: 'evil' }));
    });

    it('the JSON API refuses what a cross-site form can send (no CORS preflight): 415, nothing written', async () => {
      const n = await count();
      for (const ct of [FORM, 'text/plain', 'multipart/form-data; boundary=x']) {
        const res = await server.request('/api/entries', { method: 'POST', headers: { 'content-type': ct, cookie: alice.cookie }, body: '{"title":"evil","description":"evil"}' });
        assert.equal(res.status, 415, ct);
      }
      const del = await server.request(`/api/entries/${id}`, { method: 'POST', headers: { 'content-type': FORM }, body: '_method=DELETE' });
      assert.equal(del.status, 405);
      assert.equal(await count(), n);
      assert.ok(await row(id), 'still there');
    });
  });

  describe('stored XSS', () => {
    const PAYLOADS = [
      '<script>alert(1)</script>',
      '"><img src=x onerror=alert(1)>',
      "' autofocus onfocus='alert(1)",
      '" autofocus onfocus="alert(1)',
      '</textarea><svg onload=alert(1)>',
      '<a href="javascript:alert(1)">x</a>',
      '&lt;script&gt;', // already-escaped text stays text (escaped again)
    ];
    const escaped = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
    const ids = [];

    before(async () => {
      for (const p of PAYLOADS) ids.push(await createApi(p.slice(0, 64), `d:${p}`.slice(0, 120)));
      // and through the form
      await alice.get('/');
      const res = await alice.post('/add', { title: PAYLOADS[0], description: PAYLOADS[1], csrf_token: alice.token });
      assert.equal(res.status, 303);
    });

    it('titles and descriptions are escaped in the list', async () => {
      const page = await alice.get('/');
      assert.equal(page.status, 200);
      for (const p of PAYLOADS) {
        if (/[<>"']/.test(p)) assert.ok(!page.text.includes(p), `raw payload in the list: ${p}`);
        assert.ok(page.text.includes(escaped(p.slice(0, 64))), `escaped payload in the list: ${escaped(p)}`);
      }
      assert.doesNotMatch(page.text, /<script>alert|<img src=x|<svg onload| onfocus="alert| onfocus='alert/);
    });

    it('values are escaped inside the edit form attributes', async () => {
      for (let i = 0; i < PAYLOADS.length; i++) {
        const page = await alice.get(`/update/${ids[i]}`);
        assert.equal(page.status, 200);
        const p = PAYLOADS[i].slice(0, 64);
        assert.ok(page.text.includes(`value="${escaped(p)}"`), `escaped in value="": ${p}`);
        assert.doesNotMatch(page.text, /<script>alert|<img src=x|<svg onload| onfocus="alert| onfocus='alert/);
      }
    });

    it('values typed into a form that does not validate are shown back escaped (422)', async () => {
      await alice.get('/');
      const res = await alice.post('/add', { title: PAYLOADS[3], description: 'x'.repeat(121), csrf_token: alice.token });
      assert.equal(res.status, 422);
      assert.ok(res.text.includes(`value="${escaped(PAYLOADS[3])}"`));
      assert.doesNotMatch(res.text, / onfocus="alert/);
    });

    it('flash messages (and their category) from the session are escaped', async () => {
      const now = Math.floor(Date.now() / 1000);
      const hostile = signSession({
        id: crypto.randomBytes(16).toString('hex'),
        exp: now + 3600,
        flash: [['<script>alert("flash")</script>', 'success" onmouseover="alert(1)'], ["'><img src=x onerror=alert(2)>", 'info']],
      });
      const page = await server.get('/', { headers: { cookie: `session=${hostile}` } });
      assert.equal(page.status, 200);
      assert.ok(page.text.includes('&lt;script&gt;alert(&quot;flash&quot;)&lt;/script&gt;'), 'flash escaped');
      assert.ok(page.text.includes('alert-success&quot; onmouseover=&quot;alert(1)'), 'category escaped in the class attribute');
      assert.doesNotMatch(page.text, /<script>alert|<img src=x| onmouseover="alert/);
    });

    it('the flash after an add is the fixed message, whatever the title', async () => {
      await alice.get('/');
      const res = await alice.post('/add', { title: '<b>bold</b>', description: 'x', csrf_token: alice.token });
      assert.equal(res.status, 303);
      const page = await alice.get('/');
      assert.match(page.text, /class="alert alert-success flash"[^>]*>Entry added\.</);
      assert.doesNotMatch(page.text, /<b>bold<\/b>/);
    });

    it('a path is never reflected raw in an error page', async () => {
      for (const p of ['/%3Cscript%3Ealert(1)%3C/script%3E', '/update/%3Cscript%3E', '/api/%3Cscript%3E']) {
        const res = await server.get(p);
        assert.equal(res.status, 404, p);
        assert.doesNotMatch(res.text, /<script>/, p);
      }
    });

    it('the API sends entries as JSON with nosniff, never as HTML', async () => {
      const res = await server.get(`/api/entries/${ids[0]}`);
      assert.match(res.headers['content-type'], /^application\/json/);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal(JSON.parse(res.text).title, PAYLOADS[0]);
    });
  });

  describe('SQL injection', () => {
    const PAYLOADS = [
      "'; DROP TABLE entry; --",
      "' OR '1'='1",
      '" OR ""="',
      "\\'; DELETE FROM entry; #",
      '1; UPDATE entry SET title=0x70776e6564',
      '\\',
      "x' UNION SELECT 1,2,3,4 -- x",
      '? ?? ?',
      '%_\\%\\_',
      '/* */ -- # ;',
      "é'🎉\u001a\u0000end",
    ];

    it('form fields and JSON fields are stored literally (read back by root)', async () => {
      for (const p of PAYLOADS) {
        await alice.get('/');
        const form = await alice.post('/add', { title: p, description: `form ${p}`, csrf_token: alice.token });
        // the core's form decoder refuses NUL (%00) with a 400, as it does in paths
        assert.equal(form.status, p.includes('\u0000') ? 400 : 303, `form: ${JSON.stringify(p)}: ${form.text.slice(0, 200)}`);
        const id = await createApi(p, `json ${p}`);
        const r = await row(id);
        assert.equal(r.title, p, 'JSON title stored as sent');
        assert.equal(r.description, `json ${p}`);
        const viaForm = await db.root(`SELECT COUNT(*) AS n FROM \`${name}\`.entry WHERE title = ? AND description = ?`, [p, `form ${p}`]);
        assert.equal(Number(viaForm[0].n), form.status === 303 ? 1 : 0, `form fields stored as sent: ${JSON.stringify(p)}`);
        const api = JSON.parse((await server.get(`/api/entries/${id}`)).text);
        assert.equal(api.title, p, 'read back through the API');
      }
    });

    it('PATCH fields are stored literally; a status that is not a boolean is refused (422)', async () => {
      const id = await createApi('patch me', 'x');
      for (const p of PAYLOADS) {
        const res = await server.request(`/api/entries/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: p }) });
        assert.equal(res.status, 200);
        assert.equal((await row(id)).title, p);
      }
      const bad = await server.request(`/api/entries/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{"status":"1 OR 1=1"}' });
      assert.equal(bad.status, 422);
    });

    it(':id, ?after= / ?before= of the list, ?limit= and ?after= with SQL in them are refused, nothing deleted', async () => {
      const n = await count();
      const ids = ['1 OR 1=1', "1'", '1;DROP TABLE entry', '1)--', '(SELECT 1)', '1 UNION SELECT 1'];
      for (const id of ids) {
        const e = encodeURIComponent(id);
        assert.equal((await server.get(`/update/${e}`)).status, 404, `/update/${id}`);
        assert.equal((await server.get(`/api/entries/${e}`)).status, 404, `/api/entries/${id}`);
        assert.equal((await server.request(`/api/entries/${e}`, { method: 'DELETE' })).status, 404, `DELETE ${id}`);
        assert.equal((await alice.post(`/delete/${e}`, { csrf_token: alice.token })).status, 404, `POST /delete/${id}`);
        assert.equal((await alice.post(`/turn/${e}`, { csrf_token: alice.token })).status, 404, `POST /turn/${id}`);
      }
      for (const q of ['1 OR 1=1', "1'", '1;DROP TABLE entry']) {
        const e = encodeURIComponent(q);
        assert.equal((await server.get(`/?after=${e}`)).status, 404, `after=${q}`);
        assert.equal((await server.get(`/?before=${e}`)).status, 404, `before=${q}`);
        assert.equal((await server.get(`/api/entries?limit=${e}`)).status, 400, `limit=${q}`);
        assert.equal((await server.get(`/api/entries?after=${e}`)).status, 400, `after=${q}`);
      }
      assert.equal(await count(), n, 'no row deleted');
    });

    it('the tables are intact', async () => {
      const tables = (await db.root(`SHOW TABLES FROM \`${name}\``)).map((r) => Object.values(r)[0]).sort();
      assert.deepEqual(tables, ['entry', 'schema_migrations', 'webhook_outbox']);
      const cols = (await db.root(`SHOW COLUMNS FROM \`${name}\`.entry`)).map((r) => r.Field);
      assert.deepEqual(cols, ['id', 'title', 'description', 'status']);
      assert.ok((await count()) > 20);
      assert.equal((await server.get('/api/entries?limit=100')).status, 200);
    });
  });

  describe('redirects', () => {
    const sameOrigin = (loc) => typeof loc === 'string' && /^\/(?![/\\])/.test(loc) && !/[\r\n]/.test(loc);

    it('every redirect of the form routes is a same-origin path, whatever the request says', async () => {
      const hostile = {
        referer: 'https://evil.example/',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-proto': 'https',
        origin: 'https://evil.example',
      };
      const seen = [];
      for (const q of ['', '?next=https://evil.example/', '?after=//evil.example', '?after=https:%2f%2fevil.example', '?after=2%2f%2fevil.example',
        '?return_to=//evil.example&redirect=https://evil.example', '?before=%5c%5cevil.example', '?after=1']) {
        await alice.get('/');
        const id = await createApi('redirect', 'r');
        const posts = [
          [`/add${q}`, { title: 'r', description: 'r' }],
          [`/update/${id}${q}`, { title: 'r2', description: 'r2' }],
          [`/turn/${id}${q}`, {}],
          [`/delete/${id}${q}`, {}],
        ];
        for (const [p, fields] of posts) {
          const res = await alice.post(p, { ...fields, csrf_token: alice.token }, hostile);
          if (res.status === 404) continue; // an ?after= past the list
          assert.equal(res.status, 303, `${p}: ${res.status}`);
          seen.push(res.headers.location);
          assert.ok(sameOrigin(res.headers.location), `${p}: Location ${res.headers.location}`);
        }
      }
      assert.ok(seen.length >= 20, `${seen.length} redirects checked`);
    });

    it('a Host of another site does not leak into any Location (app, static directories)', async () => {
      for (const p of ['/static/bootstrap', '/static/bootstrap/css', '//evil.example/', '/\\evil.example']) {
        const r = await rawExchange(server.port, `GET ${p} HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n`);
        const [res] = parseResponses(r.text);
        assert.ok(res, p);
        if (res.headers.location !== undefined) assert.ok(sameOrigin(res.headers.location), `${p}: Location ${res.headers.location}`);
      }
    });

    it('the API answers a create with a relative Location', async () => {
      const res = await server.request('/api/entries', { method: 'POST', headers: { 'content-type': 'application/json', host: 'evil.example' }, body: '{"title":"l","description":"l"}' });
      assert.equal(res.status, 201);
      assert.match(res.headers.location, /^\/api\/entries\/\d+$/);
    });
  });

  describe('cookies', () => {
    const flags = (sc) => sc.split(';').slice(1).map((s) => s.trim().toLowerCase());

    it('the session cookie: HttpOnly, SameSite=Lax, Path=/, Max-Age, not Secure over plain HTTP', async () => {
      const res = await server.get('/');
      const sc = [res.headers['set-cookie']].flat().find((c) => c.startsWith('session='));
      assert.ok(sc, 'a session cookie');
      const f = flags(sc);
      assert.ok(f.includes('httponly'), sc);
      assert.ok(f.includes('samesite=lax'), sc);
      assert.ok(f.includes('path=/'), sc);
      assert.ok(f.some((x) => /^max-age=\d+$/.test(x)), sc);
      assert.ok(!f.includes('secure'), sc);
      assert.ok(!f.some((x) => x.startsWith('domain=')), 'host-only');
    });

    it('Secure when the load balancer says the request came over HTTPS (X-Forwarded-Proto: https)', async () => {
      const res = await server.get('/', { headers: { 'x-forwarded-proto': 'https' } });
      const sc = [res.headers['set-cookie']].flat().find((c) => c.startsWith('session='));
      assert.ok(flags(sc).includes('secure'), sc);
      assert.ok(flags(sc).includes('httponly'));
    });

    it('the session is signed: a tampered cookie gives a new session, not the old one', async () => {
      const value = alice.cookies.get('session');
      const payload = readSession(value);
      const forged = `${b64url(JSON.stringify({ ...payload, data: { admin: true } }))}.${value.split('.')[1]}`;
      const res = await server.get('/', { headers: { cookie: `session=${forged}` } });
      const sc = [res.headers['set-cookie']].flat().find((c) => c?.startsWith('session='));
      assert.ok(sc, 'a new session cookie');
      assert.notEqual(readSession(sc.split(';')[0].slice('session='.length)).id, payload.id);
    });

    it("the core's read-your-writes cookie (with a replica): HttpOnly, SameSite=Lax, Secure behind HTTPS", async () => {
      const other = await startServer({
        env: { ...APP_ENV, DATABASE_URL: db.url(name), DATABASE_READ_URL: db.url(name), WORKERS: '1', READ_YOUR_WRITES_S: '5' },
      });
      try {
        await waitReady(other);
        const post = (headers) => other.request('/api/entries', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"title":"ryw","description":"ryw"}' });
        let res = await post({});
        assert.equal(res.status, 201);
        let sc = [res.headers['set-cookie']].flat().find((c) => c?.startsWith('h2lua_ryw='));
        assert.ok(sc, `a read-your-writes cookie: ${JSON.stringify(res.headers['set-cookie'])}`);
        assert.ok(flags(sc).includes('httponly') && flags(sc).includes('samesite=lax') && !flags(sc).includes('secure'), sc);
        res = await post({ 'x-forwarded-proto': 'https' });
        sc = [res.headers['set-cookie']].flat().find((c) => c?.startsWith('h2lua_ryw='));
        assert.ok(flags(sc).includes('secure'), sc);
        await other.stopClean();
      } finally {
        await other.stop({ signal: 'SIGKILL' });
      }
    });
  });

  describe('security headers on every kind of response', () => {
    it('pages, redirects, API answers, errors (400 403 404 405 413 415 422 431), static files, health', async () => {
      await alice.get('/');
      const id = await createApi('headers', 'h');
      const cases = [
        ['GET', '/', {}, undefined, 200],
        ['HEAD', '/', {}, undefined, 200],
        ['GET', `/update/${id}`, {}, undefined, 200],
        ['POST', '/add', { 'content-type': FORM, cookie: alice.cookie }, `title=h&description=h&csrf_token=${encodeURIComponent(alice.token)}`, 303],
        ['POST', '/add', { 'content-type': FORM, cookie: alice.cookie }, 'title=h&description=h', 403],
        ['POST', '/add', { 'content-type': FORM, cookie: alice.cookie }, `title=&description=h&csrf_token=${encodeURIComponent(alice.token)}`, 422],
        ['GET', '/api/entries', {}, undefined, 200],
        ['POST', '/api/entries', { 'content-type': 'application/json' }, '{"title":"h","description":"h"}', 201],
        ['DELETE', `/api/entries/${id}`, {}, undefined, 204],
        ['POST', '/api/entries', { 'content-type': 'text/plain' }, '{}', 415],
        ['POST', '/api/entries', { 'content-type': 'application/json' }, '{', 400],
        ['GET', '/%ff', {}, undefined, 400],
        ['GET', '/no/such/page', {}, undefined, 404],
        ['GET', '/api/entries/999999', {}, undefined, 404],
        ['PUT', '/', {}, undefined, 405],
        ['POST', '/api/entries', { 'content-type': 'application/json' }, `{"title":"${'x'.repeat(9000)}"}`, 413],
        ['GET', '/', { 'x-big': 'x'.repeat(9000) }, undefined, 431],
        ['GET', '/static/app.css', {}, undefined, 200],
        ['GET', '/static/bootstrap/css/bootstrap.min.css', {}, undefined, 200],
        ['GET', '/static/bootstrap', {}, undefined, 301],
        ['GET', '/static/app.css', { 'if-modified-since': 'Fri, 01 Jan 2100 00:00:00 GMT' }, undefined, 304],
        ['GET', '/static/nope.css', {}, undefined, 404],
        ['GET', '/healthz', {}, undefined, 200],
        ['GET', '/readyz', {}, undefined, 200],
      ];
      for (const [method, p, headers, body, status] of cases) {
        const res = await server.request(p, { method, headers, body });
        assert.equal(res.status, status, `${method} ${p}`);
        assertSecurityHeaders(res, `${method} ${p} ${status}`);
      }
    });

    it('503 pages and API errors while the database is unreachable carry them too', async () => {
      const dead = await freePort();
      const down = await startServer({
        env: { ...APP_ENV, DATABASE_URL: `mysql://h2lua:x@127.0.0.1:${dead}/flaskcrud`, WORKERS: '1', DB_CONNECT_TIMEOUT: '1' },
      });
      try {
        for (const p of ['/', '/api/entries', '/readyz']) {
          const res = await down.get(p, { timeoutMs: 10000 });
          assert.equal(res.status, 503, p);
          assertSecurityHeaders(res, `${p} 503`);
        }
        const api = await down.get('/api/entries');
        assert.deepEqual(Object.keys(JSON.parse(api.text)), ['error']);
        await down.stopClean();
      } finally {
        await down.stop({ signal: 'SIGKILL' });
      }
    });
  });

  it('exits 0 on SIGTERM without a sanitizer report', async () => {
    await server.stopClean();
  });
});
