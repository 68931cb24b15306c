// The JSON API of the entries app (/api/entries) on a real h2lua and a real MariaDB: statuses,
// shapes, paging with limit/after, validation, content types, malformed bodies, and that a
// cross-site HTML form cannot write through it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startMariaDB } from './support/mariadb.mjs';
import { Client, countEntries, entries, startApp } from './support/client.mjs';
import { metricSum } from './support/server.mjs';

const DB = 'flaskcrud_api';
const TOKEN = 'api-metrics-token-0123456789';

let db;
let server;
let c;

before(async () => {
  db = await startMariaDB();
  await db.freshDatabase(DB);
  server = await startApp(db, DB, { METRICS_TOKEN: TOKEN });
  c = new Client(server);
});

after(async () => {
  if (server) await server.stop({ signal: 'SIGKILL' });
  if (db) await db.destroy();
});

function json(res) {
  assert.match(String(res.headers['content-type']), /^application\/json/, `content-type of a ${res.status}`);
  return JSON.parse(res.text);
}

/** Asserts an error answer: status and {"error": "..."}; returns the message. */
function isError(res, status) {
  assert.equal(res.status, status, res.text);
  const body = json(res);
  assert.deepEqual(Object.keys(body), ['error']);
  assert.equal(typeof body.error, 'string');
  return body.error;
}

async function reset() {
  await db.root(`DELETE FROM \`${DB}\`.entry`);
  await db.root(`ALTER TABLE \`${DB}\`.entry AUTO_INCREMENT = 1`);
}

async function create(title, description, extra = {}) {
  const res = await c.json('POST', '/api/entries', { title, description, ...extra });
  assert.equal(res.status, 201, res.text);
  return json(res);
}

describe('POST /api/entries', () => {
  it('counts what it creates in entries_created_total{client="api"}, the add form in {client="page"}', async () => {
    const count = async (client) => {
      const res = await c.get('/metrics', { headers: { authorization: `Bearer ${TOKEN}` } });
      const line = res.text.split('\n').find((l) => l.startsWith(`entries_created_total{client="${client}"} `));
      return line === undefined ? 0 : Number(line.split(' ').pop());
    };
    const [api0, page0] = [await count('api'), await count('page')];
    await create('Counted', 'by the API');
    await create('Counted', 'again');
    assert.equal((await c.add('From the page', 'the add form')).status, 303);
    assert.equal(await count('api'), api0 + 2);
    assert.equal(await count('page'), page0 + 1);
    assert.ok((await metricSum(server, 'entries_created_total', TOKEN)) >= 3);
  });

  before(reset);

  it('creates: 201, Location and the entry', async () => {
    const res = await c.json('POST', '/api/entries', { title: 'From the API', description: 'JSON body' });
    assert.equal(res.status, 201);
    const body = json(res);
    assert.deepEqual(body, { id: body.id, title: 'From the API', description: 'JSON body', status: false });
    assert.equal(Number.isInteger(body.id), true);
    assert.equal(res.headers.location, `/api/entries/${body.id}`);
    const row = (await entries(db, DB)).find((r) => r.id === body.id);
    assert.deepEqual(row, { id: body.id, title: 'From the API', description: 'JSON body', status: 0 });
    const shown = await c.get(res.headers.location);
    assert.equal(shown.status, 200);
    assert.deepEqual(json(shown), body);
  });

  it('takes a status and trims the fields', async () => {
    const body = await create('  done  ', ' already ', { status: true, id: 999, extra: 'ignored' });
    assert.deepEqual({ ...body, id: 0 }, { id: 0, title: 'done', description: 'already', status: true });
    assert.notEqual(body.id, 999);
  });

  it('needs no CSRF token and no cookie (the JSON content type is the protection)', async () => {
    const res = await server.request('/api/entries', {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ title: 'no cookie', description: 'no token' }),
    });
    assert.equal(res.status, 201);
    assert.equal(res.headers['set-cookie'], undefined, 'the API sets no session cookie');
  });

  it('keeps Unicode and markup exactly', async () => {
    const title = '😀👩‍💻 中文 <script>alert(1)</script>';
    const description = "'); DROP TABLE entry; -- \u0000 \"q\" \\ é";
    const body = await create(title, description);
    assert.equal(body.title, title);
    assert.equal(body.description, description);
    assert.deepEqual(json(await c.get(`/api/entries/${body.id}`)), body);
    const row = (await entries(db, DB)).find((r) => r.id === body.id);
    assert.equal(row.title, title);
    assert.equal(row.description, description);
  });

  it('counts lengths in characters', async () => {
    const ok = await create('😀'.repeat(64), '中'.repeat(120));
    assert.equal([...ok.title].length, 64);
    const res = await c.json('POST', '/api/entries', { title: '😀'.repeat(65), description: '中'.repeat(121) });
    assert.equal(res.status, 422);
    assert.deepEqual(json(res), {
      errors: {
        title: 'Title must be at most 64 characters long (it has 65).',
        description: 'Description must be at most 120 characters long (it has 121).',
      },
    });
  });

  it('refuses invalid fields with 422 {"errors": {field: message}}', async () => {
    const before = await countEntries(db, DB);
    const cases = [
      [{}, ['description', 'title']],
      [{ title: '', description: 'd' }, ['title']],
      [{ title: '   ', description: 'd' }, ['title']],
      [{ title: 't' }, ['description']],
      [{ title: 5, description: 'd' }, ['title']],
      [{ title: null, description: 'd' }, ['title']],
      [{ title: ['a'], description: { x: 1 } }, ['description', 'title']],
      [{ title: 't', description: 'd', status: 'yes' }, ['status']],
      [{ title: 't', description: 'd', status: 1 }, ['status']],
    ];
    for (const [value, fields] of cases) {
      const res = await c.json('POST', '/api/entries', value);
      assert.equal(res.status, 422, JSON.stringify(value));
      const body = json(res);
      assert.deepEqual(Object.keys(body), ['errors']);
      assert.deepEqual(Object.keys(body.errors).sort(), fields, JSON.stringify(value));
      for (const m of Object.values(body.errors)) assert.equal(typeof m, 'string');
    }
    assert.equal(await countEntries(db, DB), before);
  });

  it('refuses a body that is not application/json with 415', async () => {
    const before = await countEntries(db, DB);
    const value = { title: 't', description: 'd' };
    for (const contentType of [null, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x',
      'application/json-patch+json', 'text/json', 'application/json; charset=iso-8859-1']) {
      isError(await c.json('POST', '/api/entries', value, { contentType }), 415);
    }
    assert.equal(await countEntries(db, DB), before);
  });

  it('takes application/json with a UTF-8 charset, in any case', async () => {
    for (const contentType of ['application/json; charset=utf-8', 'Application/JSON', 'application/json;charset="UTF-8"']) {
      assert.equal((await c.json('POST', '/api/entries', { title: 't', description: contentType }, { contentType })).status, 201, contentType);
    }
  });

  it('refuses malformed JSON, non-objects and invalid UTF-8 with 400', async () => {
    const before = await countEntries(db, DB);
    const bodies = [
      '', ' ', '{', '{"title": "t", "description": "d"', '{"title": "t",}', "{'title': 't'}", 'null', '[]',
      '[{"title": "t", "description": "d"}]', '"string"', '42', 'NaN', '{"title": NaN, "description": "d"}',
      '{"title": "t", "description": "d"} trailing',
      Buffer.from('{"title": "\xff\xfe", "description": "d"}', 'latin1'),
      Buffer.from('{"title": "\xed\xa0\x80", "description": "d"}', 'latin1'),
      Buffer.from('{"title": "\xc0\xaf", "description": "d"}', 'latin1'),
      '{"title": "\\ud800", "description": "d"}',
      '{"title": "\\udc00x", "description": "d"}',
    ];
    for (const body of bodies) {
      isError(await c.json('POST', '/api/entries', body), 400);
    }
    assert.equal(await countEntries(db, DB), before);
  });

  it('cannot be written by a cross-site HTML form', async () => {
    const before = await countEntries(db, DB);
    // what <form method="post" action="/api/entries"> can send: urlencoded, multipart or text/plain
    const res = await c.request('/api/entries', {
      method: 'POST',
      headers: { 'content-type': 'text/plain', origin: 'https://evil.example' },
      body: '{"title": "csrf", "description": "via text/plain"}',
    });
    isError(res, 415);
    assert.equal(res.headers['access-control-allow-origin'], undefined);
    assert.equal(await countEntries(db, DB), before);
  });
});

describe('GET /api/entries', () => {
  let ids;

  before(async () => {
    await reset();
    const values = Array.from({ length: 120 }, (_, i) => [`t${i + 1}`, `d${i + 1}`, i % 2 === 0 ? 1 : i % 3 === 0 ? null : 0]);
    await db.root(`INSERT INTO \`${DB}\`.entry (title, description, status) VALUES ?`, [values]);
    ids = (await entries(db, DB)).map((r) => r.id);
  });

  it('lists 50 by id with the next cursor', async () => {
    const res = await c.get('/api/entries');
    assert.equal(res.status, 200);
    const body = json(res);
    assert.deepEqual(Object.keys(body).sort(), ['entries', 'next']);
    assert.equal(body.entries.length, 50);
    assert.deepEqual(body.entries.map((e) => e.id), ids.slice(0, 50));
    assert.equal(body.next, ids[49]);
    assert.deepEqual(body.entries[0], { id: ids[0], title: 't1', description: 'd1', status: true });
    assert.deepEqual(body.entries[1], { id: ids[1], title: 't2', description: 'd2', status: false });
    assert.equal(body.entries[3].status, false, 'a NULL status is false');
    for (const e of body.entries) assert.equal(typeof e.status, 'boolean');
  });

  it('walks every entry with limit and after, ending with next: null', async () => {
    const seen = [];
    let after = 0;
    for (let i = 0; i < 10; i++) {
      const body = json(await c.get(`/api/entries?limit=33&after=${after}`));
      seen.push(...body.entries.map((e) => e.id));
      if (body.next === null) break;
      assert.equal(body.next, body.entries.at(-1).id);
      after = body.next;
    }
    assert.deepEqual(seen, ids);
  });

  it('limit up to 100; an exact last page has next: null', async () => {
    const body = json(await c.get('/api/entries?limit=100'));
    assert.equal(body.entries.length, 100);
    assert.equal(body.next, ids[99]);
    const last = json(await c.get(`/api/entries?limit=20&after=${ids[99]}`));
    assert.equal(last.entries.length, 20);
    assert.equal(last.next, null);
  });

  it('past the end: an empty array and next: null', async () => {
    const res = await c.get(`/api/entries?after=${ids.at(-1)}`);
    assert.equal(res.status, 200);
    assert.equal(res.text.replace(/\s/g, '').includes('"entries":[]'), true, res.text);
    assert.deepEqual(json(res), { entries: [], next: null });
  });

  it('refuses a bad limit or after with 400 JSON', async () => {
    for (const q of ['limit=0', 'limit=101', 'limit=-1', 'limit=abc', 'limit=1.5', 'limit=', 'after=-1', 'after=x', 'after=1e3',
      'limit=99999999999999999999']) {
      isError(await c.get(`/api/entries?${q}`), 400);
    }
  });
});

describe('/api/entries/:id', () => {
  let entry;

  before(async () => {
    await reset();
    entry = await create('one', 'first');
  });

  it('GET: 200 and the entry', async () => {
    const res = await c.get(`/api/entries/${entry.id}`);
    assert.equal(res.status, 200);
    assert.deepEqual(json(res), entry);
  });

  it('PATCH: changes the fields given and answers the entry as saved', async () => {
    let res = await c.json('PATCH', `/api/entries/${entry.id}`, { status: true });
    assert.equal(res.status, 200);
    assert.deepEqual(json(res), { ...entry, status: true });
    res = await c.json('PATCH', `/api/entries/${entry.id}`, { title: ' renamed 😀 ', description: '説明' });
    assert.deepEqual(json(res), { id: entry.id, title: 'renamed 😀', description: '説明', status: true });
    res = await c.json('PATCH', `/api/entries/${entry.id}`, {});
    assert.equal(res.status, 200);
    assert.deepEqual(json(res), { id: entry.id, title: 'renamed 😀', description: '説明', status: true });
    const row = (await entries(db, DB)).find((r) => r.id === entry.id);
    assert.deepEqual(row, { id: entry.id, title: 'renamed 😀', description: '説明', status: 1 });
  });

  it('PATCH: 422, 415 and 400 as POST, changing nothing', async () => {
    const before = await entries(db, DB);
    let res = await c.json('PATCH', `/api/entries/${entry.id}`, { title: '', status: 'no' });
    assert.equal(res.status, 422);
    assert.deepEqual(Object.keys(json(res).errors).sort(), ['status', 'title']);
    isError(await c.json('PATCH', `/api/entries/${entry.id}`, { title: 'x' }, { contentType: 'text/plain' }), 415);
    isError(await c.json('PATCH', `/api/entries/${entry.id}`, '{"title":'), 400);
    res = await c.json('PATCH', `/api/entries/${entry.id}`, { description: 'x'.repeat(121) });
    assert.equal(res.status, 422);
    assert.deepEqual(await entries(db, DB), before);
  });

  it('DELETE: 204 without a body, then 404', async () => {
    const doomed = await create('doomed', 'row');
    const res = await c.request(`/api/entries/${doomed.id}`, { method: 'DELETE' });
    assert.equal(res.status, 204);
    assert.equal(res.text, '');
    assert.equal((await entries(db, DB)).find((r) => r.id === doomed.id), undefined);
    isError(await c.request(`/api/entries/${doomed.id}`, { method: 'DELETE' }), 404);
  });

  it('a missing entry is 404 JSON for GET, PATCH and DELETE', async () => {
    for (const id of [999999, 2147483647, 9007199254740991]) {
      isError(await c.get(`/api/entries/${id}`), 404);
      isError(await c.json('PATCH', `/api/entries/${id}`, { title: 'x' }), 404);
      isError(await c.request(`/api/entries/${id}`, { method: 'DELETE' }), 404);
    }
  });

  it('an id that is not one is 404 JSON; an unknown method is 405 JSON with Allow', async () => {
    for (const p of ['/api/entries/0', '/api/entries/abc', '/api/entries/01', '/api/entries/1/extra', '/api/nothing', '/api']) {
      isError(await c.get(p), 404);
    }
    const res = await c.request(`/api/entries/${entry.id}`, { method: 'PUT', body: '{}', headers: { 'content-type': 'application/json' } });
    isError(res, 405);
    assert.equal(res.headers.allow, 'DELETE, GET, HEAD, PATCH');
    const list = await c.request('/api/entries', { method: 'DELETE' });
    isError(list, 405);
    assert.equal(list.headers.allow, 'GET, HEAD, POST');
  });
});

describe('the server', () => {
  it('exits 0 on SIGTERM without a sanitizer report', async () => {
    await server.stopClean();
  });
});
