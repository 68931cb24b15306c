// The entries app (scripts/, views/, db/migrations) on a real h2lua and a real MariaDB: the pages
// and their form posts, CSRF, escaping, Unicode, pagination, concurrency, a database that stops
// and comes back, a database the Flask service made, and migrations from two processes at once.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startMariaDB } from './support/mariadb.mjs';
import { ROOT, SECRET_KEY, assertSecurityHeaders, sleep, startServer } from './support/server.mjs';
import { APP_DIRS, Client, countEntries, csrfToken, entries, setCookies, startApp, waitReady } from './support/client.mjs';

const DB = 'flaskcrud_entries';
const PAGES_DB = 'flaskcrud_pages';

let db;

before(async () => {
  db = await startMariaDB();
});

after(async () => {
  if (db) await db.destroy();
});

/** The ids of the entry rows a list page shows, in order. */
function rowIds(html) {
  return [...html.matchAll(/<tr id="entry-(\d+)">/g)].map((m) => Number(m[1]));
}

/** The text of the cell with class `cls` in the row of entry id (as HTML). */
function cell(html, id, cls) {
  const row = new RegExp(`<tr id="entry-${id}">([\\s\\S]*?)</tr>`).exec(html);
  if (!row) return null;
  const m = new RegExp(`<td class="${cls}[^"]*">([\\s\\S]*?)</td>`).exec(row[1]);
  return m ? m[1].trim() : null;
}

function escapeHtml(s) {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

function sessionCookie(res) {
  return setCookies(res).find((c) => c.startsWith('session='));
}

describe('the entries pages', () => {
  let server;

  before(async () => {
    await db.freshDatabase(DB);
    // 200 concurrent adds from one address below (the write limit: rate_limits.test.mjs)
    server = await startApp(db, DB, { WRITE_LIMIT: 'off' });
  });

  after(async () => {
    if (server) await server.stop({ signal: 'SIGKILL' });
  });

  describe('GET /', () => {
    it('is a Bootstrap page with the table beside the add form, and a session cookie', async () => {
      const c = new Client(server);
      const res = await c.get('/');
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
      assertSecurityHeaders(res, 'GET /');
      // the stylesheet by its fingerprinted URL (cached for a year; static.test.mjs)
      const link = /<link rel="stylesheet" href="(\/static\/bootstrap\/css\/bootstrap\.min\.css\?v=[0-9a-f]{16})">/.exec(res.text);
      assert.ok(link, 'the page links Bootstrap by its fingerprinted URL');
      assert.match(res.text, /<div class="col-md-8">[\s\S]*<div class="col-md-4">[\s\S]*<form method="post" action="\/add"/);
      assert.match(res.text, /No entries yet/);
      assert.match(csrfToken(res.text), /^\d+\.[0-9a-f]{64}$/);
      assert.doesNotMatch(res.text, /<script|style="/, 'no inline script or style (the CSP forbids them)');
      const cookie = sessionCookie(res);
      assert.match(cookie, /^session=[\w-]+\.[0-9a-f]{64}; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/);
      const css = await server.get(link[1]);
      assert.equal(css.status, 200);
      assert.equal(css.headers['cache-control'], 'public, max-age=31536000, immutable');
    });

    it("shows the title ops/aws/deploy's smoke test looks for", async () => {
      const deploy = fs.readFileSync(path.join(ROOT, 'ops/aws/deploy'), 'utf8');
      const title = /^SMOKE_TITLE=\$\{H2LUA_SMOKE_TITLE:-([^}]*)\}$/m.exec(deploy)?.[1];
      assert.ok(title, 'ops/aws/deploy sets a default SMOKE_TITLE');
      const res = await server.get('/');
      assert.equal(res.status, 200);
      // deploy's check: grep "<title>[^<]*$SMOKE_TITLE"
      assert.ok(new RegExp(`<title>[^<]*${title}`).test(res.text), `GET / has no <title> with '${title}'`);
    });

    it('signs the session cookie with HMAC-SHA256 of SECRET_KEY', async () => {
      const res = await server.get('/');
      const [, payload, mac] = /^session=([\w-]+)\.([0-9a-f]{64});/.exec(sessionCookie(res));
      const want = crypto.createHmac('sha256', SECRET_KEY).update(`session\0${payload}`).digest('hex');
      assert.equal(mac, want);
      const data = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      assert.match(data.id, /^[0-9a-f]{32}$/);
      assert.ok(data.exp > Date.now() / 1000);
    });

    it('keeps the session: no new cookie while it is valid', async () => {
      const c = new Client(server);
      await c.get('/');
      const again = await c.get('/');
      assert.equal(sessionCookie(again), undefined);
    });

    it('marks the cookie Secure behind an HTTPS load balancer', async () => {
      const res = await server.get('/', { headers: { 'x-forwarded-proto': 'https' } });
      assert.match(sessionCookie(res), /; Secure$/);
    });

    it('is also at /index, and answers HEAD', async () => {
      const res = await server.get('/index');
      assert.equal(res.status, 200);
      assert.match(res.text, /<form method="post" action="\/add"/);
      const head = await server.request('/', { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.text, '');
    });
  });

  describe('adding', () => {
    it('inserts, redirects with 303 to / and shows a flash message once', async () => {
      const c = new Client(server);
      const before = await countEntries(db, DB);
      const res = await c.add('Buy milk', 'Two litres');
      assert.equal(res.status, 303);
      assert.equal(res.headers.location, '/');
      const rows = await entries(db, DB);
      assert.equal(rows.length, before + 1);
      const row = rows.at(-1);
      assert.deepEqual({ ...row, id: 0 }, { id: 0, title: 'Buy milk', description: 'Two litres', status: 0 });
      const page = await c.get('/');
      assert.match(page.text, /<div class="alert alert-success flash" role="status">Entry added\.<\/div>/);
      assert.equal(cell(page.text, row.id, 'entry-title'), 'Buy milk');
      assert.match(cell(page.text, row.id, 'entry-status'), /badge[^>]*>Pending</);
      const again = await c.get('/');
      assert.doesNotMatch(again.text, /Entry added\./);
    });

    it('trims the fields', async () => {
      const c = new Client(server);
      assert.equal((await c.add('   spaced   ', '\t tabbed \n')).status, 303);
      const row = (await entries(db, DB)).at(-1);
      assert.equal(row.title, 'spaced');
      assert.equal(row.description, 'tabbed');
    });

    it('shows the page again with messages and the typed values, 422, writing nothing', async () => {
      const c = new Client(server);
      const before = await countEntries(db, DB);
      const cases = [
        [{ title: '', description: 'd' }, /Title is required\./],
        [{ title: '   ', description: 'd' }, /Title is required\./],
        [{ title: 't', description: '' }, /Description is required\./],
        [{ description: 'no title field' }, /Title is required\./],
        [{ title: 'x'.repeat(65), description: 'd' }, /Title must be at most 64 characters long \(it has 65\)\./],
        [{ title: 't', description: 'y'.repeat(121) }, /Description must be at most 120 characters long \(it has 121\)\./],
        [{ title: '😀'.repeat(65), description: 'd' }, /it has 65/],
      ];
      for (const [fields, message] of cases) {
        const res = await c.post('/add', { ...fields, csrf_token: await c.token() });
        assert.equal(res.status, 422, JSON.stringify(fields));
        assert.match(res.text, message);
        assert.match(res.text, /is-invalid/);
        if (fields.title) assert.ok(res.text.includes(`value="${escapeHtml(fields.title)}"`), 'typed title shown again');
        if (fields.description) assert.ok(res.text.includes(`value="${escapeHtml(fields.description)}"`), 'typed description shown again');
      }
      assert.equal(await countEntries(db, DB), before);
    });

    it('counts lengths in characters: 64 emoji and 120 CJK characters are accepted', async () => {
      const c = new Client(server);
      const title = '😀'.repeat(64);
      const description = '中'.repeat(120);
      assert.equal((await c.add(title, description)).status, 303);
      const row = (await entries(db, DB)).at(-1);
      assert.equal(row.title, title);
      assert.equal(row.description, description);
    });
  });

  describe('what is stored and shown', () => {
    it('stores and shows any Unicode exactly (emoji, CJK, combining marks, RTL)', async () => {
      const c = new Client(server);
      const title = 'Emoji 😀👩‍💻🇫🇷 中文 日本語 한국어';
      const description = 'é (e\u0301) Ω ≠ עברית عربى 𝄞 \u00a0nbsp';
      assert.equal((await c.add(title, description)).status, 303);
      const row = (await entries(db, DB)).at(-1);
      assert.equal(row.title, title);
      assert.equal(row.description, description);
      const hex = await db.root(`SELECT HEX(title) AS h FROM \`${DB}\`.entry WHERE id = ?`, [row.id]);
      assert.equal(hex[0].h, Buffer.from(title, 'utf8').toString('hex').toUpperCase(), 'the exact UTF-8 bytes');
      const page = await c.get('/');
      assert.equal(cell(page.text, row.id, 'entry-title'), title);
      assert.equal(cell(page.text, row.id, 'entry-description'), description);
      const form = await c.get(`/update/${row.id}`);
      assert.ok(form.text.includes(`value="${title}"`));
    });

    it('escapes HTML in a title: <script>alert(1)</script> is shown as text', async () => {
      const c = new Client(server);
      const title = '<script>alert(1)</script>';
      const description = `"quotes" & 'apostrophes' <b>bold</b>`;
      assert.equal((await c.add(title, description)).status, 303);
      const row = (await entries(db, DB)).at(-1);
      assert.equal(row.title, title, 'stored as typed');
      const page = await c.get('/');
      assert.equal(cell(page.text, row.id, 'entry-title'), '&lt;script&gt;alert(1)&lt;/script&gt;');
      assert.equal(cell(page.text, row.id, 'entry-description'), '&quot;quotes&quot; &amp; &#39;apostrophes&#39; &lt;b&gt;bold&lt;/b&gt;');
      assert.ok(!page.text.includes('<script>alert(1)'));
      assert.ok(!page.text.includes('<b>bold</b>'));
      const form = await c.get(`/update/${row.id}`);
      assert.ok(form.text.includes('value="&lt;script&gt;alert(1)&lt;/script&gt;"'));
    });

    it("stores '); DROP TABLE entry; -- literally", async () => {
      const c = new Client(server);
      const title = "'); DROP TABLE entry; --";
      const description = `" OR 1=1; -- \\' \\\\ %_`;
      assert.equal((await c.add(title, description)).status, 303);
      const row = (await entries(db, DB)).at(-1);
      assert.equal(row.title, title);
      assert.equal(row.description, description);
      const tables = await db.root(`SHOW TABLES FROM \`${DB}\` LIKE 'entry'`);
      assert.equal(tables.length, 1, 'the table is still there');
      const page = await c.get('/');
      assert.equal(cell(page.text, row.id, 'entry-title'), escapeHtml(title));
    });
  });

  describe('editing, toggling, deleting', () => {
    let id;
    const c = () => new Client(server);

    before(async () => {
      const client = c();
      assert.equal((await client.add('to edit', 'original')).status, 303);
      id = (await entries(db, DB)).at(-1).id;
    });

    it('GET /update/:id shows the form filled in', async () => {
      const res = await c().get(`/update/${id}`);
      assert.equal(res.status, 200);
      assert.match(res.text, new RegExp(`<form method="post" action="/update/${id}"`));
      assert.match(res.text, /name="title" type="text" value="to edit"/);
      assert.match(res.text, /name="description" type="text" value="original"/);
      assert.match(csrfToken(res.text), /^\d+\./);
    });

    it('POST /update/:id refuses invalid input with 422 and the typed values', async () => {
      const client = c();
      const token = await client.token(`/update/${id}`);
      const res = await client.post(`/update/${id}`, { title: '', description: 'changed', csrf_token: token });
      assert.equal(res.status, 422);
      assert.match(res.text, /Title is required\./);
      assert.match(res.text, /value="changed"/);
      const long = await client.post(`/update/${id}`, { title: 'a'.repeat(65), description: 'x', csrf_token: token });
      assert.equal(long.status, 422);
      const row = (await entries(db, DB)).find((r) => r.id === id);
      assert.equal(row.title, 'to edit');
      assert.equal(row.description, 'original');
    });

    it('POST /update/:id saves and redirects with 303 to /', async () => {
      const client = c();
      const token = await client.token(`/update/${id}`);
      const res = await client.post(`/update/${id}`, { title: ' edited 😀 ', description: '改めた', csrf_token: token });
      assert.equal(res.status, 303);
      assert.equal(res.headers.location, '/');
      const row = (await entries(db, DB)).find((r) => r.id === id);
      assert.deepEqual(row, { id, title: 'edited 😀', description: '改めた', status: 0 });
      const page = await client.get('/');
      assert.match(page.text, /Entry saved\./);
      assert.equal(cell(page.text, id, 'entry-title'), 'edited 😀');
    });

    it('POST /turn/:id toggles the status both ways', async () => {
      const client = c();
      const token = await client.token();
      const res = await client.post(`/turn/${id}`, { csrf_token: token });
      assert.equal(res.status, 303);
      assert.equal(res.headers.location, '/');
      assert.equal((await entries(db, DB)).find((r) => r.id === id).status, 1);
      let page = await client.get('/');
      assert.match(cell(page.text, id, 'entry-status'), /<span class="badge text-bg-success">Done<\/span>/);
      assert.equal((await client.post(`/turn/${id}`, { csrf_token: token })).status, 303);
      assert.equal((await entries(db, DB)).find((r) => r.id === id).status, 0);
      page = await client.get('/');
      assert.match(cell(page.text, id, 'entry-status'), /<span class="badge text-bg-secondary">Pending<\/span>/);
    });

    it('POST /delete/:id deletes', async () => {
      const client = c();
      const res = await client.post(`/delete/${id}`, { csrf_token: await client.token() });
      assert.equal(res.status, 303);
      assert.equal(res.headers.location, '/');
      assert.equal((await entries(db, DB)).find((r) => r.id === id), undefined);
      const page = await client.get('/');
      assert.match(page.text, /Entry deleted\./);
      assert.equal(rowIds(page.text).includes(id), false);
    });

    it('a missing id is a 404 page on every route', async () => {
      const client = c();
      const token = await client.token();
      const before = await entries(db, DB);
      for (const [method, p, fields] of [
        ['GET', '/update/999999'],
        ['POST', '/update/999999', { title: 'a', description: 'b' }],
        ['POST', '/update/999999', { title: '', description: 'b' }],
        ['POST', '/turn/999999', {}],
        ['POST', '/delete/999999', {}],
        ['GET', '/update/0'],
        ['GET', '/update/abc'],
        ['POST', '/turn/-1', {}],
      ]) {
        const res = method === 'GET' ? await client.get(p) : await client.post(p, { ...fields, csrf_token: token });
        assert.equal(res.status, 404, `${method} ${p}`);
        assert.match(res.text, /<title>404 Not Found<\/title>/);
      }
      assert.deepEqual(await entries(db, DB), before);
    });

    it('GET on a mutating path is 405 (Allow: POST) and changes nothing', async () => {
      const client = c();
      await client.add('still here', 'd');
      const row = (await entries(db, DB)).at(-1);
      const before = await entries(db, DB);
      for (const p of ['/add', `/turn/${row.id}`, `/delete/${row.id}`]) {
        const res = await client.get(`${p}?title=x&description=y&csrf_token=${await client.token()}`);
        assert.equal(res.status, 405, p);
        assert.equal(res.headers.allow, 'POST');
      }
      for (const p of ['/', '/index', `/update/${row.id}`, '/?after=0']) {
        assert.equal((await client.get(p)).status, 200);
      }
      assert.deepEqual(await entries(db, DB), before);
    });
  });

  describe('CSRF', () => {
    let id;

    before(async () => {
      const c = new Client(server);
      assert.equal((await c.add('protected', 'row')).status, 303);
      id = (await entries(db, DB)).at(-1).id;
    });

    async function refused(client, fields) {
      const before = await entries(db, DB);
      const posts = [
        ['/add', { title: 'forged', description: 'forged' }],
        [`/update/${id}`, { title: 'forged', description: 'forged' }],
        [`/turn/${id}`, {}],
        [`/delete/${id}`, {}],
      ];
      for (const [p, f] of posts) {
        const res = await client.post(p, { ...f, ...fields });
        assert.equal(res.status, 403, `${p} ${JSON.stringify(fields)}`);
        assert.match(res.text, /<title>403 Forbidden<\/title>/);
        assert.match(res.text, /did not come from this site/);
      }
      assert.deepEqual(await entries(db, DB), before, 'nothing written');
    }

    it('refuses a form without a token', async () => {
      const c = new Client(server);
      await c.get('/');
      await refused(c, {});
    });

    it('refuses a wrong token', async () => {
      const c = new Client(server);
      const token = await c.token();
      const [expiry, mac] = token.split('.');
      await refused(c, { csrf_token: 'x' });
      await refused(c, { csrf_token: `${expiry}.${'0'.repeat(64)}` });
      await refused(c, { csrf_token: `${Number(expiry) + 1000}.${mac}` });
      await refused(c, { csrf_token: `${Math.floor(Date.now() / 1000) - 10}.${mac}` });
    });

    it('refuses an expired token (signed with the key, expiry in the past)', async () => {
      const c = new Client(server);
      await c.get('/');
      const id = JSON.parse(Buffer.from(c.cookies.get('session').split('.')[0], 'base64url').toString('utf8')).id;
      const sign = (expiry) => `${expiry}.${crypto.createHmac('sha256', SECRET_KEY).update(`csrf\0${id}\0${expiry}`).digest('hex')}`;
      const now = Math.floor(Date.now() / 1000);
      await refused(c, { csrf_token: sign(now - 5) });
      const res = await c.post('/add', { title: 'signed by the test', description: 'd', csrf_token: sign(now + 600) });
      assert.equal(res.status, 303, 'the same scheme with a future expiry is accepted');
    });

    it("refuses another session's token", async () => {
      const mallory = new Client(server);
      const token = await mallory.token();
      const victim = new Client(server);
      await victim.get('/');
      await refused(victim, { csrf_token: token });
    });

    it('refuses a token sent without its session cookie', async () => {
      const c = new Client(server);
      const token = await c.token();
      await refused(new Client(server), { csrf_token: token });
    });

    it('refuses a valid token with a tampered session cookie', async () => {
      const c = new Client(server);
      const token = await c.token();
      const [payload, mac] = c.cookies.get('session').split('.');
      const data = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      data.id = 'f'.repeat(32);
      const forged = new Client(server);
      forged.cookies.set('session', `${Buffer.from(JSON.stringify(data)).toString('base64url')}.${mac}`);
      await refused(forged, { csrf_token: token });
    });

    it('reads the token of a form sent as multipart/form-data: with it the entry is added, without it 403', async () => {
      const c = new Client(server);
      const token = await c.token();
      const before = await countEntries(db, DB);
      const boundary = 'xBOUNDARYx';
      const part = (name, value) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
      const send = (body) => c.request('/add', { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body });
      const without = await send(`${part('title', 't')}${part('description', 'd')}--${boundary}--\r\n`);
      assert.equal(without.status, 403);
      assert.equal(await countEntries(db, DB), before);
      const res = await send(`${part('title', 'sent as multipart ✓')}${part('description', 'd')}${part('csrf_token', token)}--${boundary}--\r\n`);
      assert.equal(res.status, 303, res.text);
      assert.equal(await countEntries(db, DB), before + 1);
      const [row] = await db.root(`SELECT title FROM \`${DB}\`.entry ORDER BY id DESC LIMIT 1`);
      assert.equal(row.title, 'sent as multipart ✓');
    });

    it('accepts the same token for several forms of the session', async () => {
      const c = new Client(server);
      const token = await c.token();
      assert.equal((await c.post('/add', { title: 'one', description: 'd', csrf_token: token })).status, 303);
      assert.equal((await c.post('/add', { title: 'two', description: 'd', csrf_token: token })).status, 303);
    });
  });

  it('200 concurrent adds make exactly 200 new rows', async () => {
    const c = new Client(server);
    const token = await c.token();
    const before = await countEntries(db, DB);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        c.post('/add', { title: `concurrent ${i}`, description: `row ${i} 😀`, csrf_token: token }, { timeoutMs: 60000 }),
      ),
    );
    const statuses = results.map((r) => r.status);
    assert.deepEqual([...new Set(statuses)], [303], `statuses: ${statuses.join(' ')}`);
    assert.equal(await countEntries(db, DB), before + 200);
    const titles = await db.root(`SELECT title FROM \`${DB}\`.entry WHERE title LIKE 'concurrent %'`);
    assert.equal(new Set(titles.map((r) => r.title)).size, 200, 'each add once');
  });

  it('exits 0 on SIGTERM without a sanitizer report', async () => {
    await server.stopClean();
  });
});

describe('over HTTPS', () => {
  it('the session cookie is Secure, and a form post works', async () => {
    const NAME = await db.freshDatabase('flaskcrud_https');
    const server = await startApp(db, NAME, {
      TLS_CERT: path.join(ROOT, 'spec/e2e/support/tls/cert.pem'),
      TLS_KEY: path.join(ROOT, 'spec/e2e/support/tls/key.pem'),
    });
    try {
      const c = new Client(server);
      const page = await c.get('/');
      assert.equal(page.status, 200);
      assert.match(sessionCookie(page), /; HttpOnly; SameSite=Lax; Secure$/);
      assert.equal((await c.post('/add', { title: 'over TLS', description: 'd', csrf_token: csrfToken(page.text) })).status, 303);
      assert.deepEqual((await entries(db, NAME)).map((r) => r.title), ['over TLS']);
      await server.stopClean();
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });
});

describe('pagination', () => {
  let server;

  before(async () => {
    await db.freshDatabase(PAGES_DB);
    server = await startApp(db, PAGES_DB);
  });

  after(async () => {
    if (server) await server.stop({ signal: 'SIGKILL' });
  });

  async function fill(n) {
    await db.root(`DELETE FROM \`${PAGES_DB}\`.entry`);
    await db.root(`ALTER TABLE \`${PAGES_DB}\`.entry AUTO_INCREMENT = 1`);
    if (n === 0) return;
    const values = Array.from({ length: n }, (_, i) => [`title ${i + 1}`, `description ${i + 1}`, (i + 1) % 3 === 0]);
    await db.root(`INSERT INTO \`${PAGES_DB}\`.entry (title, description, status) VALUES ?`, [values]);
  }

  it('no entries: page 1 shows the empty state, no page after it', async () => {
    await fill(0);
    const res = await server.get('/');
    assert.equal(res.status, 200);
    assert.match(res.text, /No entries yet/);
    assert.doesNotMatch(res.text, /class="pagination"/);
    assert.equal((await server.get('/?after=0')).status, 404);
    assert.equal((await server.get('/?before=2147483648')).status, 404);
  });

  it('exactly 50 entries: one page with their count, no page links, nothing after it', async () => {
    await fill(50);
    const res = await server.get('/');
    assert.deepEqual(rowIds(res.text), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.doesNotMatch(res.text, /class="pagination"/);
    assert.match(res.text, /id="entry-count">50 entries</);
    assert.equal((await server.get('/?after=50')).status, 404);
  });

  it('51 entries: 50 on page 1 ordered by id, the 51st after them, links between them', async () => {
    await fill(51);
    const first = await server.get('/');
    assert.deepEqual(rowIds(first.text), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.match(first.text, /<a class="page-link" href="\/\?after=50" rel="next">Next<\/a>/);
    assert.match(first.text, /<a class="page-link" href="\/\?before=2147483648">Last<\/a>/);
    assert.match(first.text, /<li class="page-item disabled"><span class="page-link">Previous<\/span><\/li>/);
    assert.match(first.text, /id="entry-count">50 on this page</, 'no count of all entries without counting them');
    const second = await server.get('/?after=50');
    assert.equal(second.status, 200);
    assert.deepEqual(rowIds(second.text), [51]);
    assert.match(second.text, /<a class="page-link" href="\/\?before=51" rel="prev">Previous<\/a>/);
    assert.match(second.text, /<a class="page-link" href="\/">First<\/a>/);
    assert.match(second.text, /<li class="page-item disabled"><span class="page-link">Next<\/span><\/li>/);
    assert.equal(cell(second.text, 51, 'entry-title'), 'title 51');
    const back = await server.get('/?before=51');
    assert.deepEqual(rowIds(back.text), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.deepEqual(rowIds((await server.get('/?before=2147483648')).text), Array.from({ length: 50 }, (_, i) => i + 2));
  });

  it('a page beyond the end is a 404 page', async () => {
    await fill(51);
    for (const q of ['after=51', 'after=1000', 'after=9999999999', 'before=1', 'before=-5']) {
      const res = await server.get(`/?${q}`);
      assert.equal(res.status, 404, q);
      assert.match(res.text, /<title>404 Not Found<\/title>/);
    }
  });

  it('an after or before that is not an id is a 404 page', async () => {
    await fill(3);
    for (const p of ['-', '-0', 'abc', '1.5', '01', '', '1e3', '99999999999', '99999999999999999999']) {
      assert.equal((await server.get(`/?after=${encodeURIComponent(p)}`)).status, 404, JSON.stringify(p));
      assert.equal((await server.get(`/?before=${encodeURIComponent(p)}`)).status, 404, JSON.stringify(p));
    }
    assert.equal((await server.get('/?after=1&before=3')).status, 404, 'both');
    assert.deepEqual(rowIds((await server.get('/?after=0')).text), [1, 2, 3]);
  });

  it('many pages: Next and Previous walk the list by id both ways, each page one statement', async () => {
    await fill(50 * 12 + 1);
    const seen = [];
    let href = '/';
    for (;;) {
      const res = await server.get(href);
      assert.equal(res.status, 200, href);
      seen.push(...rowIds(res.text));
      const next = res.text.match(/<a class="page-link" href="([^"]+)" rel="next">/);
      if (!next) break;
      href = next[1].replace(/&amp;/g, '&');
    }
    assert.deepEqual(seen, Array.from({ length: 601 }, (_, i) => i + 1));
    const back = [];
    href = '/?before=2147483648';
    for (;;) {
      const res = await server.get(href);
      back.unshift(...rowIds(res.text));
      const prev = res.text.match(/<a class="page-link" href="([^"]+)" rel="prev">/);
      if (!prev) break;
      href = prev[1];
    }
    assert.deepEqual(back, Array.from({ length: 601 }, (_, i) => i + 1));
    const mid = await server.get('/?after=300');
    assert.deepEqual(rowIds(mid.text), Array.from({ length: 50 }, (_, i) => 301 + i));
  });

  it('a row action on a later page returns to it, or to the page before once it is empty', async () => {
    await fill(51);
    const c = new Client(server);
    const page = await c.get('/?after=50');
    const token = csrfToken(page.text);
    assert.match(page.text, /action="\/turn\/51\?after=50"/);
    const turn = await c.post('/turn/51?after=50', { csrf_token: token });
    assert.equal(turn.status, 303);
    assert.equal(turn.headers.location, '/?after=50');
    const del = await c.post('/delete/51?after=50', { csrf_token: token });
    assert.equal(del.status, 303);
    assert.equal(del.headers.location, '/?before=51');
    assert.deepEqual(rowIds((await c.get(del.headers.location)).text), Array.from({ length: 50 }, (_, i) => i + 1));
  });

  it('exits 0 on SIGTERM without a sanitizer report', async () => {
    await server.stopClean();
  });
});

describe('the database stops and comes back', () => {
  const NAME = 'flaskcrud_outage';
  let server;

  before(async () => {
    await db.freshDatabase(NAME);
    server = await startApp(db, NAME, { DB_CONNECT_TIMEOUT: '2', DB_TIMEOUT: '3' });
  });

  after(async () => {
    if (server) await server.stop({ signal: 'SIGKILL' });
    await db.start().catch(() => {});
  });

  it('503 pages while it is down, then the same process serves again', async () => {
    const c = new Client(server);
    assert.equal((await c.add('before the outage', 'd')).status, 303);
    const token = await c.token();
    const pid = server.pid;

    await db.stop();
    try {
      const page = await c.get('/');
      assert.equal(page.status, 503);
      assert.match(page.text, /<title>503 Service Unavailable<\/title>/);
      assert.match(page.text, /The database is unavailable, try again shortly/);
      const add = await c.post('/add', { title: 'during', description: 'the outage', csrf_token: token });
      assert.equal(add.status, 503);
      assert.match(add.text, /The database is unavailable, try again shortly/);
      assert.equal((await c.get('/update/1')).status, 503);
      const api = await c.get('/api/entries');
      assert.equal(api.status, 503);
      assert.deepEqual(JSON.parse(api.text), { error: 'The database is unavailable, try again shortly.' });
      assert.equal((await server.get('/readyz')).status, 503);
      assert.equal((await server.get('/healthz')).status, 200);
      assert.equal(server.exited, null, 'h2lua keeps running');
    } finally {
      await db.start();
    }

    const deadline = Date.now() + 20000;
    let res;
    for (;;) {
      res = await c.get('/');
      if (res.status === 200 || Date.now() > deadline) break;
      await sleep(100);
    }
    assert.equal(res.status, 200, `GET / after the restart: ${res.status}`);
    await waitReady(server);
    assert.equal(server.pid, pid);
    assert.equal(server.exited, null);
    assert.equal((await c.add('after the outage', 'd')).status, 303);
    const titles = (await entries(db, NAME)).map((r) => r.title);
    assert.deepEqual(titles, ['before the outage', 'after the outage']);
    await server.stopClean();
  });
});

describe('a database the Flask service made', () => {
  const NAME = 'flaskcrud_flask';

  it('is adopted with its rows, its alembic_version and its ids', async () => {
    await db.freshDatabase(NAME);
    // The schema Flask-SQLAlchemy + Flask-Migrate create for the service's model, in utf8mb3.
    await db.root(`
      CREATE TABLE \`${NAME}\`.alembic_version (
        version_num VARCHAR(32) NOT NULL,
        CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
      ) DEFAULT CHARSET=utf8mb3;
      INSERT INTO \`${NAME}\`.alembic_version (version_num) VALUES ('4f2e8a9c1b7d');
      CREATE TABLE \`${NAME}\`.entry (
        id INTEGER NOT NULL AUTO_INCREMENT,
        title VARCHAR(64) NOT NULL,
        description VARCHAR(120) NOT NULL,
        status BOOL,
        PRIMARY KEY (id)
      ) DEFAULT CHARSET=utf8mb3;
      CREATE INDEX ix_entry_title ON \`${NAME}\`.entry (title);
      CREATE INDEX ix_entry_description ON \`${NAME}\`.entry (description);
      INSERT INTO \`${NAME}\`.entry (id, title, description, status) VALUES
        (1, 'From Flask', 'made by the old service', 0),
        (2, 'Done in Flask', 'status true', 1),
        (5, 'Ça marche', 'accents in utf8mb3: é à ü', NULL);
    `);
    const flaskRows = await entries(db, NAME);

    const server = await startApp(db, NAME);
    try {
      assert.deepEqual(await entries(db, NAME), flaskRows, 'rows intact after the migrations');
      const alembic = await db.root(`SELECT version_num FROM \`${NAME}\`.alembic_version`);
      assert.deepEqual(alembic.map((r) => r.version_num), ['4f2e8a9c1b7d']);
      const files = fs.readdirSync(path.join(ROOT, 'db/migrations')).filter((f) => /^\d+_.*\.sql$/.test(f));
      const applied = await db.root(`SELECT COUNT(*) AS n FROM \`${NAME}\`.schema_migrations`);
      assert.equal(Number(applied[0].n), files.length);

      const c = new Client(server);
      const page = await c.get('/');
      assert.deepEqual(rowIds(page.text), [1, 2, 5]);
      assert.equal(cell(page.text, 5, 'entry-title'), 'Ça marche');
      assert.match(cell(page.text, 2, 'entry-status'), />Done</);
      assert.match(cell(page.text, 5, 'entry-status'), />Pending</, 'NULL status reads as pending');

      // the converted table now takes 4-byte characters, and ids continue after Flask's
      assert.equal((await c.add('Now with emoji 😀', '中文')).status, 303);
      const rows = await entries(db, NAME);
      assert.deepEqual(rows.slice(0, 3), flaskRows);
      assert.equal(rows[3].id, 6);
      assert.equal(rows[3].title, 'Now with emoji 😀');
      const turn = await c.post('/turn/5', { csrf_token: await c.token() });
      assert.equal(turn.status, 303);
      assert.equal((await entries(db, NAME))[2].status, 1, 'NULL toggles to done');
      await server.stopClean();
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });
});

describe('two h2lua processes starting at once on an empty database', () => {
  it('apply each migration once', async () => {
    const NAME = await db.freshDatabase('flaskcrud_twice');
    const env = { ...APP_DIRS, DATABASE_URL: db.url(NAME) };
    const [a, b] = await Promise.all([startServer({ env }), startServer({ env })]);
    try {
      await Promise.all([waitReady(a), waitReady(b)]);
      const files = fs.readdirSync(path.join(ROOT, 'db/migrations')).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();
      const applied = await db.root(`SELECT version FROM \`${NAME}\`.schema_migrations ORDER BY version`);
      assert.equal(applied.length, files.length, 'one row per migration file');
      assert.deepEqual(applied.map((r) => String(r.version).replace(/\.sql$/, '')), files.map((f) => f.replace(/\.sql$/, '')));
      // both serve the app on the same table
      const ca = new Client(a);
      const cb = new Client(b);
      assert.equal((await ca.add('from a', 'd')).status, 303);
      assert.equal((await cb.add('from b', 'd')).status, 303);
      assert.deepEqual((await entries(db, NAME)).map((r) => r.title), ['from a', 'from b']);
      await a.stopClean();
      await b.stopClean();
    } finally {
      await a.stop({ signal: 'SIGKILL' });
      await b.stop({ signal: 'SIGKILL' });
    }
  });
});
