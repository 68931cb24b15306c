// The pool's rules that a request can see (core/db_pool.h): a slot a dead connection frees goes to
// the waiter queued for it at once, and a session a handler changed never reaches the next request.
// One worker, one connection (DB_POOL_SIZE=1), so that every request meets the same pool slot.
// timing: the waiter served well under a second after the kill; ops/test runs this file alone.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startMariaDB } from './support/mariadb.mjs';
import { request, sleep, startServer } from './support/server.mjs';
import { DBAPP, waitReady } from './support/faults.mjs';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describe('database pool', () => {
  let db;
  let server;
  let name;
  before(async () => {
    db = await startMariaDB();
    name = await db.freshDatabase('flaskcrud_pool');
    server = await startServer({
      env: { ...DBAPP, DATABASE_URL: db.url(name), WORKERS: '1', DB_POOL_SIZE: '1', DB_TIMEOUT: '5' },
    });
    await waitReady(server);
  });
  after(async () => {
    if (server) await server.stop({ signal: 'SIGKILL' });
    if (db) await db.destroy();
  });

  const session = async () => {
    const res = await server.get('/db/session');
    assert.equal(res.status, 200, res.text);
    return JSON.parse(res.text);
  };

  it('a waiter queued behind a connection killed mid-statement is served at once', async (t) => {
    const a = request(server.port, '/db/do-sleep?s=20', { timeoutMs: 30000 });
    let rows = [];
    for (let i = 0; i < 100 && rows.length === 0; i++) {
      await sleep(50);
      rows = await db.root("SELECT ID AS id FROM information_schema.PROCESSLIST WHERE INFO LIKE 'DO SLEEP%'");
    }
    assert.equal(rows.length, 1, "A's statement is running");
    const b = request(server.port, '/count', { timeoutMs: 30000 });
    await sleep(300); // B queues behind A's connection, the only one
    const killedAt = Date.now();
    await db.root(`KILL CONNECTION ${Number(rows[0].id)}`);
    const [ra, rb] = await Promise.all([a, b]);
    const waited = Date.now() - killedAt;
    assert.equal(ra.status, 503, `A, whose connection was killed: ${ra.text}`);
    assert.equal(rb.status, 200, `B, queued behind it: ${rb.text}`);
    assert.ok(waited < 1000, `B was served ${waited} ms after the kill (DB_TIMEOUT is 5 s)`);
    t.diagnostic(`B served ${waited} ms after the kill`);
  });

  it('a clean session is reused: the next request gets the same connection', async () => {
    const id = async () => JSON.parse((await server.get('/db/conn-id')).text).id;
    const first = await id();
    assert.equal(await id(), first);
  });

  for (const what of ['sql_mode', 'user_var', 'user_var_select', 'temp_table', 'time_zone', 'begin', 'lock']) {
    it(`a session changed by ${what} does not reach the next request`, async () => {
      const res = await server.get(`/db/session/change/${what}`);
      assert.equal(res.status, 200, res.text);
      const changed = JSON.parse(res.text).id;
      const s = await session();
      assert.notEqual(s.id, changed, 'the changed connection was not reused');
      assert.doesNotMatch(s.sql_mode, /NO_BACKSLASH_ESCAPES/);
      assert.match(s.sql_mode, /STRICT_ALL_TABLES/, 'the session settings are applied');
      assert.equal(s.probe, null, 'no user variable');
      assert.equal(s.time_zone, '+00:00');
      assert.equal(Number(s.in_tx), 0, 'no transaction open');
      assert.equal(s.temp_table, false, 'no temporary table');
      assert.equal(s.locked, false, 'no LOCK TABLES');
    });
  }

  it('after NO_BACKSLASH_ESCAPES in a request, a bound quote and backslash are stored intact', async () => {
    const res = await server.get('/db/session/change/sql_mode');
    assert.equal(res.status, 200, res.text);
    const title = "it's a \\' back\\slash \\";
    const add = await server.request('/add', {
      method: 'POST',
      headers: FORM,
      body: new URLSearchParams({ title, description: "x' OR '1'='1" }).toString(),
    });
    assert.equal(add.status, 201, add.text);
    const id = JSON.parse(add.text).id;
    const rows = await db.root(`SELECT title, description FROM \`${name}\`.entry WHERE id = ?`, [id]);
    assert.deepEqual([rows[0].title, rows[0].description], [title, "x' OR '1'='1"]);
  });

  it('exits 0 on SIGTERM without a sanitizer report', async () => {
    await server.stopClean();
  });
});
