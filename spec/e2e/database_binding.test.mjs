// The binder reads SQL as MariaDB does (core/sql_bind.h): "--" is a comment only when a space or
// a control character follows it, so "1--'" is 1 minus minus a string and a ? inside that string is
// text. Read as a comment, a bound value ended up outside the string: the server ran SLEEP(1).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startMariaDB } from './support/mariadb.mjs';
import { startServer } from './support/server.mjs';
import { DBAPP, waitReady } from './support/faults.mjs';

describe('database binding', () => {
  let db;
  let server;
  let name;
  before(async () => {
    db = await startMariaDB();
    name = await db.freshDatabase('flaskcrud_binding');
    server = await startServer({ env: { ...DBAPP, DATABASE_URL: db.url(name), WORKERS: '1' } });
    await waitReady(server);
  });
  after(async () => {
    if (server) await server.stop({ signal: 'SIGKILL' });
    if (db) await db.destroy();
  });

  it('"--" followed by a quote is not a comment: the ? in the string is not bound, nothing sleeps', async () => {
    const t0 = Date.now();
    const res = await server.get('/db/comment?poc=1');
    const ms = Date.now() - t0;
    assert.equal(res.status, 500, res.text);
    assert.ok(ms < 900, `answered after ${ms} ms: SLEEP(1) ran`);
    await server.waitFor((s) => /more arguments than \? placeholders/.test(s.stderr), 5000, 'the binder\'s error in the log');
  });

  it('a value bound after "--\'...\'" is a string: it comes back as sent and nothing sleeps', async () => {
    const t0 = Date.now();
    const res = await server.get('/db/comment');
    const ms = Date.now() - t0;
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(JSON.parse(res.text), { x: 1, y: '+ SLEEP(1) +' });
    assert.ok(ms < 900, `answered after ${ms} ms: SLEEP(1) ran`);
  });

  it('with NO_BACKSLASH_ESCAPES set in a transaction, a bound value stays inside its quotes', async () => {
    // escaped as \' the quote would end the string there (the backslash is a character) and the
    // rest of the value would be SQL: here the description, 0x696e6a6563746564 = 'injected'
    const v = "x' , (SELECT 0x696e6a6563746564)) -- ";
    const res = await server.get(`/db/tx-nbe?v=${encodeURIComponent(v)}`);
    assert.equal(res.status, 201, res.text);
    const rows = await db.root(`SELECT title, description FROM \`${name}\`.entry WHERE id = ?`, [JSON.parse(res.text).id]);
    assert.deepEqual([rows[0].title, rows[0].description], [v, 'tx-nbe']);
  });

  it('exits 0 on SIGTERM without a sanitizer report', async () => {
    await server.stopClean();
  });
});
