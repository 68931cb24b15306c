// Server-side prepared statements (core/db_pool.h db_conn_execute, DB_STMT_CACHE): MariaDB prepares
// each statement once per connection, rows come back exactly as the text protocol gives them, no
// bound value is ever spliced into SQL text, the cache stays bounded, and a connection killed or a
// table altered between two executes changes nothing for the application. The server's own
// counters (Com_stmt_prepare, Com_stmt_execute, Prepared_stmt_count) are the witnesses.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startMariaDB } from './support/mariadb.mjs';
import { startServer } from './support/server.mjs';
import { DBAPP, waitReady } from './support/faults.mjs';

const hex = (s) => Buffer.from(s, 'binary').toString('hex');
const S = (s) => ['s', hex(s)];
const I = (n) => ['i', String(n)];
const F = (n) => ['f', n];

async function run(server, steps, { tx = false } = {}) {
  const res = await server.request('/db/run', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ steps, tx }),
  });
  assert.equal(res.status, 200, server.errorLog().map((l) => l.msg).filter(Boolean).slice(-3).join('\n'));
  return JSON.parse(res.text);
}

async function status(db, name) {
  const rows = await db.root(`SHOW GLOBAL STATUS LIKE '${name}'`);
  return Number(rows[0].Value);
}

// Every column type the text path reads, with values at their edges.
const TYPES_TABLE = `CREATE TABLE types (
  id INT AUTO_INCREMENT PRIMARY KEY,
  ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT, i INT, iu INT UNSIGNED,
  bi BIGINT, bu BIGINT UNSIGNED, yr YEAR, bo BOOLEAN,
  de DECIMAL(20,6), dz DECIMAL(5,0), fl FLOAT, fd FLOAT(7,3), db DOUBLE,
  d DATE, dt DATETIME, dt3 DATETIME(3), dt6 DATETIME(6), ts TIMESTAMP(2) NULL, tm TIME, tm6 TIME(6),
  c CHAR(5), vc VARCHAR(100), tx TEXT, bl BLOB, vb VARBINARY(20), bt BIT(12), en ENUM('a','b c'),
  st SET('x','y','z'), js JSON
)`;

const ROWS = [
  [I(-128), I(255), I(-32768), I(-8388608), I(-2147483648), I(4294967295), '-9223372036854775808', '18446744073709551615',
    I(2155), ['b', true], '-12345678901234.123456', I(-99999), F(0.1), F(-1234.5678), F(0.30000000000000004),
    S('1000-01-01'), S('9999-12-31 23:59:59'), S('2024-02-29 12:34:56.789'), S('2024-02-29 12:34:56.000001'),
    S('2038-01-19 03:14:07.99'), S('-838:59:59'), S('12:00:00.5'), S('ab'), S("it's \\ \"q\" ? -- #"),
    S('x'.repeat(5000)), S('\0\x01\xff\x00bin'), S('\0'), S('\x0a\x5f'), S('b c'), S('x,z'), S('{"a": [1, 2.5, "?"]}')],
  [I(127), I(0), I(32767), I(8388607), I(2147483647), I(0), I(123456789012345), I(0), I(1901), ['b', false], '0.000001',
    I(0), F(-3.4e38), F(0.5), F(1e308), S('2000-01-01'), S('1970-01-01 00:00:01'), S('2000-01-01 00:00:00.100'),
    S('2000-01-01 00:00:00.000000'), S('1970-01-01 00:00:01'), S('00:00:00'), S('-00:00:00.000001'), S(''),
    S(''), S(''), S(''), S(''), S('\x00\x00'), S('a'), S(''), S('null')],
  Array(31).fill(['null']),
];

describe('prepared statements', () => {
  let db;
  let name;
  let text; // DB_STMT_CACHE=0: today's text protocol
  let prep; // the default cache
  const servers = [];
  const start = async (env) => {
    const s = await startServer({ env: { ...DBAPP, DATABASE_URL: db.url(name), WORKERS: '1', DB_STMT_CACHE: '64', ...env } });
    servers.push(s);
    await waitReady(s);
    return s;
  };

  before(async () => {
    db = await startMariaDB();
    name = await db.freshDatabase('flaskcrud_prepared');
    text = await start({ DB_STMT_CACHE: '0', DB_POOL_SIZE: '2' });
    prep = await start({ DB_POOL_SIZE: '2' });
    await db.root(`USE \`${name}\`; ${TYPES_TABLE}`);
  });
  after(async () => {
    for (const s of servers) await s.stop({ signal: 'SIGKILL' });
    if (db) await db.destroy();
  });

  it('inserts and reads every column type with the same values as the text protocol', async () => {
    const cols = 'ti, tu, si, mi, i, iu, bi, bu, yr, bo, de, dz, fl, fd, db, d, dt, dt3, dt6, ts, tm, tm6, c, vc, tx, bl, vb, bt, en, st, js';
    const marks = cols.split(', ').map(() => '?').join(', ');
    const insert = (row) => ({
      sql: `INSERT INTO types (${cols}) VALUES (${marks})`,
      args: row.map((v) => (typeof v === 'string' ? ['s', hex(v)] : v)),
    });
    for (const server of [text, prep]) {
      const out = await run(server, ROWS.map(insert));
      for (const r of out) assert.equal(r.affected_rows, 1);
    }
    const select = [
      { sql: 'SELECT * FROM types WHERE id % 3 = ? ORDER BY id', args: [I(1)] },
      { sql: 'SELECT * FROM types ORDER BY id' },
      { sql: 'SELECT * FROM types WHERE id > ? ORDER BY id', args: [I(0)], read: true },
      // expressions: computed types, as the text protocol shows them
      { sql: "SELECT 0.1 + 0.2 AS a, 0.1e0 + 0.2e0 AS b, 1/3 AS c, ? + 1 AS d, ? * 2 AS e, ? AS f, ? AS g, ? AS h, ? AS k, "
          + "CAST(1.5 AS FLOAT) AS l, NOW() > '2000-01-01' AS m, TIMESTAMP'2024-01-02 03:04:05.5' AS n, "
          + "CURDATE() - CURDATE() AS o, b'101' AS p, 18446744073709551615 AS q, -9223372036854775808 AS r, "
          + "99999999999999999999 AS s, 1e300 * 10 IS NULL AS t, SEC_TO_TIME(3661.25) AS u, JSON_EXTRACT(?, '$[0]') AS v",
        args: [I(41), F(1.25), ['null'], ['nil'], ['b', true], S('?'), S('[1]')] },
    ];
    const a = await run(text, select);
    const b = await run(prep, select);
    assert.equal(a[1].n, 6);
    assert.deepEqual(b, a);
    // spot checks against what the server stored
    const rows = a[1].rows;
    assert.deepEqual(rows[0].vc, ['string', hex("it's \\ \"q\" ? -- #")]);
    assert.deepEqual(rows[0].bl, ['string', hex('\0\x01\xff\x00bin')]);
    assert.deepEqual(rows[0].dt6, ['string', hex('2024-02-29 12:34:56.000001')]);
    assert.deepEqual(rows[0].ts, ['string', hex('2038-01-19 03:14:07.99')]);
    assert.deepEqual(rows[2].i, ['null']);
    // a BIGINT never rounded: its digits (LuaJIT) or an integer (Lua 5.4)
    assert.ok(rows[0].bi[1] === hex('-9223372036854775808') || rows[0].bi[1] === '-9223372036854775808', rows[0].bi);
  });

  it('a string with quotes, backslashes, NULs and ? is stored and read back exactly, never spliced', async () => {
    const v = "a'b\"c\\d\0e?f`g -- h # i /* j */ \x1a k\n\r ' OR 1=1 -- ";
    const before = await status(db, 'Com_stmt_execute');
    const out = await run(prep, [
      { sql: 'INSERT INTO entry (title, description) VALUES (?, ?)', args: [S('prepared'), S(v)] },
      { sql: 'SELECT description, ? AS echo FROM entry WHERE description = ?', args: [S(v), S(v)] },
    ]);
    assert.ok(out[0].insert_id > 0);
    assert.equal(out[1].n, 1);
    assert.deepEqual(out[1].rows[0].description, ['string', hex(v)]);
    assert.deepEqual(out[1].rows[0].echo, ['string', hex(v)]);
    assert.ok((await status(db, 'Com_stmt_execute')) - before >= 2, 'both ran as prepared statements');
    const stored = await db.root(`SELECT description FROM \`${name}\`.entry WHERE id = ?`, [out[0].insert_id]);
    assert.equal(stored[0].description, v);
  });

  it('prepares each statement once per connection across many requests', async () => {
    const s = await start({ DB_POOL_SIZE: '2' });
    const stmts = [
      { sql: 'SELECT COUNT(*) AS c FROM entry WHERE id > ?', args: [I(0)] },
      { sql: 'SELECT title FROM entry WHERE id = ?', args: [I(1)] },
      { sql: 'UPDATE entry SET title = title WHERE id = ?', args: [I(1)] },
    ];
    const p0 = await status(db, 'Com_stmt_prepare');
    const e0 = await status(db, 'Com_stmt_execute');
    for (let round = 0; round < 20; ++round) {
      // two at once: both connections of the pool take part
      await Promise.all([run(s, stmts), run(s, stmts)]);
    }
    const prepared = (await status(db, 'Com_stmt_prepare')) - p0;
    const executed = (await status(db, 'Com_stmt_execute')) - e0;
    assert.ok(executed >= 120, `executed ${executed}`);
    assert.ok(prepared >= 3 && prepared <= 6, `prepared ${prepared} times for 3 statements on 2 connections`);
    assert.ok((await status(db, 'Prepared_stmt_count')) >= 3);
    await s.stop({ signal: 'SIGKILL' });
    servers.splice(servers.indexOf(s), 1);
  });

  it('DB_STMT_CACHE=0 prepares nothing', async () => {
    const p0 = await status(db, 'Com_stmt_prepare');
    for (let i = 0; i < 5; ++i) await run(text, [{ sql: 'SELECT ? AS x', args: [I(i)] }]);
    assert.equal((await status(db, 'Com_stmt_prepare')) - p0, 0);
  });

  it('with DB_STMT_CACHE=2, five statements keep at most two prepared on the connection', async () => {
    const s = await start({ DB_STMT_CACHE: '2', DB_POOL_SIZE: '1' });
    const c0 = await status(db, 'Com_stmt_close');
    const base = await status(db, 'Prepared_stmt_count');
    for (let round = 0; round < 4; ++round) {
      for (let k = 0; k < 5; ++k) {
        const out = await run(s, [{ sql: `SELECT ? + ${k} AS x`, args: [I(round)] }]);
        assert.deepEqual(out[0].rows[0].x[1], String(round + k));
        const count = (await status(db, 'Prepared_stmt_count')) - base;
        assert.ok(count >= 1 && count <= 2, `${count} statements prepared on the connection`);
      }
    }
    assert.ok((await status(db, 'Com_stmt_close')) - c0 >= 15, 'evicted statements are closed');
    await s.stop({ signal: 'SIGKILL' });
    servers.splice(servers.indexOf(s), 1);
  });

  it('a connection killed between two executes: the next request succeeds on a new one, prepared again', async () => {
    const s = await start({ DB_POOL_SIZE: '1' });
    const q = [{ sql: 'SELECT CONNECTION_ID() AS id, ? AS x', args: [I(7)] }];
    const first = await run(s, q);
    const id = first[0].rows[0].id[1];
    await db.root(`KILL ${Number(id)}`);
    const p0 = await status(db, 'Com_stmt_prepare');
    const second = await run(s, q);
    assert.notEqual(second[0].rows[0].id[1], id);
    assert.deepEqual(second[0].rows[0].x, ['number', '7', first[0].rows[0].x[2]]);
    assert.equal((await status(db, 'Com_stmt_prepare')) - p0, 1);
    await s.stop({ signal: 'SIGKILL' });
    servers.splice(servers.indexOf(s), 1);
  });

  it('a table altered between two executes: the rows have the new column', async () => {
    await db.root(`CREATE TABLE \`${name}\`.altered (id INT PRIMARY KEY, a VARCHAR(10)); INSERT INTO \`${name}\`.altered VALUES (1, 'one')`);
    const q = [{ sql: 'SELECT * FROM altered WHERE id = ?', args: [I(1)] }];
    const one = await run(prep, q);
    assert.deepEqual(Object.keys(one[0].rows[0]).sort(), ['a', 'id']);
    await db.root(`ALTER TABLE \`${name}\`.altered ADD COLUMN b INT DEFAULT 7`);
    for (let i = 0; i < 4; ++i) {
      const two = await run(prep, q);
      assert.deepEqual(two[0].rows[0].b, ['number', '7', one[0].rows[0].id[2]]);
      assert.deepEqual(two[0].rows[0].a, ['string', hex('one')]);
    }
    await db.root(`ALTER TABLE \`${name}\`.altered DROP COLUMN a`);
    const three = await run(prep, q);
    assert.deepEqual(Object.keys(three[0].rows[0]).sort(), ['b', 'id']);
    await db.root(`ALTER TABLE \`${name}\`.altered CHANGE COLUMN b c VARCHAR(5)`);
    const four = await run(prep, q);
    assert.deepEqual(four[0].rows[0].c, ['string', hex('7')]);
    assert.deepEqual(Object.keys(four[0].rows[0]).sort(), ['c', 'id']);
    // in a transaction too, and without a reconnect: the same connection all along
    await db.root(`ALTER TABLE \`${name}\`.altered ADD COLUMN d INT DEFAULT 8`);
    const steps = [{ sql: 'SELECT CONNECTION_ID() AS conn' }, ...q, { sql: 'SELECT CONNECTION_ID() AS conn' }];
    const five = await run(prep, steps, { tx: true });
    assert.deepEqual(five[1].rows[0].d, ['number', '8', one[0].rows[0].id[2]]);
    assert.deepEqual(five[2].rows[0].conn, five[0].rows[0].conn);
  });

  it('a statement the server does not prepare runs as text, and the same errors as text', async () => {
    // a ? inside a string is not a placeholder, for the server as for the binder
    for (const server of [text, prep]) {
      const out = await run(server, [
        { sql: 'SELECT ? AS x FROM DUAL WHERE ? = ?', args: [S('-- ?'), I(1), I(1)] },
      ]);
      assert.deepEqual(out[0].rows[0].x, ['string', hex('-- ?')]);
    }
    const bad = async (server, steps) => {
      const res = await server.request('/db/run', {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ steps }),
      });
      return res.status;
    };
    for (const server of [text, prep]) {
      assert.equal(await bad(server, [{ sql: 'SELECT ?, ?', args: [I(1)] }]), 500);
      assert.equal(await bad(server, [{ sql: 'SELECT ?', args: [I(1), I(2)] }]), 500);
      assert.equal(await bad(server, [{ sql: 'SELEKT ?', args: [I(1)] }]), 500);
      assert.equal(await bad(server, [{ sql: 'SELECT ? AS x', args: [F('inf')] }]), 500);
    }
    // not preparable (ER_UNSUPPORTED_PS): run as text, the same answer; tried once per connection
    for (const server of [text, prep]) {
      const out = await run(server, [{ sql: "PREPARE h2lua_t FROM 'SELECT ?'" }]);
      assert.deepEqual(out, [{ affected_rows: 0, insert_id: 0 }]);
    }
    await run(prep, [{ sql: 'SELECT 1 AS one' }]); // a connection that has answered (the PREPARE closed its own)
    const p0 = await status(db, 'Com_stmt_prepare');
    for (let i = 0; i < 3; ++i) {
      assert.equal(await bad(text, [{ sql: 'DEALLOCATE PREPARE h2lua_none' }]), 500);
      assert.equal(await bad(prep, [{ sql: 'DEALLOCATE PREPARE h2lua_none' }]), 500);
    }
    assert.equal((await status(db, 'Com_stmt_prepare')) - p0, 1, 'remembered on the connection');
    const errs = (server) => server.errorLog().map((l) => l.msg).filter((m) => /more \? placeholders|more arguments|not finite|SELEKT|h2lua_none/.test(m ?? ''));
    await text.waitFor(() => errs(text).some((m) => /h2lua_none/.test(m)), 5000, 'text errors');
    await prep.waitFor(() => errs(prep).some((m) => /h2lua_none/.test(m)), 5000, 'prepared errors');
    assert.equal(new Set(errs(text)).size, 5, JSON.stringify([...new Set(errs(text))]));
    assert.deepEqual([...new Set(errs(prep))].sort(), [...new Set(errs(text))].sort());
    // and the server is fine after them
    const ok = await run(prep, [{ sql: 'SELECT ? AS x', args: [I(3)] }]);
    assert.equal(ok[0].rows[0].x[1], '3');
  });

  it('transactions run prepared statements and commit', async () => {
    const out = await run(prep, [
      { sql: 'INSERT INTO entry (title, description) VALUES (?, ?)', args: [S('tx'), S('prepared in tx')] },
      { sql: 'SELECT title FROM entry WHERE description = ?', args: [S('prepared in tx')] },
    ], { tx: true });
    assert.deepEqual(out[1].rows[0].title, ['string', hex('tx')]);
    const rows = await db.root(`SELECT COUNT(*) AS n FROM \`${name}\`.entry WHERE description = 'prepared in tx'`);
    assert.equal(Number(rows[0].n), 1);
  });

  it('db.read on a replica runs prepared statements there, with the same rows', async () => {
    const s = await start({ DATABASE_READ_URL: db.url(name) });
    const q = [{ sql: 'SELECT id, title FROM entry WHERE id > ? ORDER BY id LIMIT ?', args: [I(0), I(3)], read: true }];
    const e0 = await status(db, 'Com_stmt_execute');
    const a = await run(s, q);
    const b = await run(s, q);
    assert.ok((await status(db, 'Com_stmt_execute')) - e0 >= 2);
    assert.deepEqual(b, a);
    assert.deepEqual(await run(text, q), a);
    await s.stop({ signal: 'SIGKILL' });
    servers.splice(servers.indexOf(s), 1);
  });

  it('exits 0 on SIGTERM without a sanitizer report', async () => {
    await prep.stopClean();
    servers.splice(servers.indexOf(prep), 1);
  });
});
