// The database path on a real MariaDB: migrations at start (once, under the named lock, with
// edited migrations refused), h2lua.db queries from Lua (bound parameters, types, transactions),
// queries that do not block the worker, and a database that goes away and comes back.
//
// The app is written here, into a temporary SCRIPTS_DIR: a few routes over require "h2lua.db".
// timing: /hello beside slow queries (a percentile); ops/test runs this file alone.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startMariaDB } from './support/mariadb.mjs';
import { freePort, runOnce, sleep, startServer } from './support/server.mjs';
import { IS_SANITIZED } from './support/faults.mjs';
import { describeMs, percentile, timeSamples } from './support/timing.mjs';

const APP = String.raw`
local h2lua = require "h2lua"
local db = require "h2lua.db"
local cjson = require "cjson"

local function json(status, v)
    return { status = status, headers = { ["content-type"] = "application/json" }, body = cjson.encode(v) }
end

local routes = {}

routes["GET /hello"] = function() return { headers = { ["content-type"] = "text/plain" }, body = "hello" } end

routes["GET /db/types"] = function()
    local r = db.query("SELECT 42 AS i, 1.5 AS f, NULL AS n, 'x''y' AS s, CAST(12.25 AS DECIMAL(6,2)) AS d")[1]
    return json(200, { i = r.i, itype = math.type(r.i), f = r.f, n_is_null = r.n == db.null, s = r.s, d = r.d })
end

routes["GET /db/bigints"] = function()
    local r = db.query("SELECT 99999999999999 AS below, 100000000000000 AS at, CAST(9007199254740993 AS SIGNED) AS big, "
        .. "CAST(18446744073709551615 AS UNSIGNED) AS umax, -9223372036854775808 AS min")[1]
    return json(200, { text = table.concat({ tostring(r.below), tostring(r.at), tostring(r.big), tostring(r.umax), tostring(r.min) }, " "),
        below_minus_one = tostring(r.below - 1), below_type = math.type(r.below),
        bound = db.query("SELECT ? AS v", r.big)[1].v == r.big })
end

routes["GET /db/bind"] = function(req)
    local r = db.query("SELECT ? AS v, ? AS n, ? AS t, ? AS z", req.query.v, 7, true, nil)[1]
    return json(200, { v = r.v, n = r.n, t = r.t, z_is_null = r.z == db.null })
end

routes["POST /db/items"] = function(req)
    local res = db.query("INSERT INTO item (name) VALUES (?)", req.form.name)
    return json(201, { affected_rows = res.affected_rows, insert_id = res.insert_id })
end

routes["GET /db/items"] = function()
    local rows = db.query("SELECT id, name FROM item ORDER BY id")
    local out = {}
    for i, row in ipairs(rows) do out[i] = { id = row.id, name = row.name } end
    return json(200, { count = #rows, items = out })
end

routes["POST /db/rollback"] = function(req)
    local tx = db.begin()
    tx:query("INSERT INTO item (name) VALUES (?)", req.form.name)
    local inside = tx:query("SELECT COUNT(*) AS c FROM item WHERE name = ?", req.form.name)[1].c
    tx:rollback()
    local after = db.query("SELECT COUNT(*) AS c FROM item WHERE name = ?", req.form.name)[1].c
    return json(200, { inside = inside, after = after })
end

routes["POST /db/commit"] = function(req)
    local tx = db.begin()
    tx:query("INSERT INTO item (name) VALUES (?)", req.form.name)
    tx:commit()
    return json(200, { count = db.query("SELECT COUNT(*) AS c FROM item WHERE name = ?", req.form.name)[1].c })
end

routes["GET /db/sleep"] = function(req)
    db.query("SELECT SLEEP(?) AS s", tonumber(req.query.s))
    return json(200, { slept = tonumber(req.query.s) })
end

routes["GET /db/bad-sql"] = function()
    db.query("SELEC nonsense")
    return json(200, {})
end

return function(req)
    local handler = routes[req.method .. " " .. req.path]
    if not handler then return { status = 404, body = "not found" } end
    local ok, res = pcall(handler, req)
    if ok then return res end
    if h2lua.is_http_error(res) then return json(res.status, { error = tostring(res.message) }) end
    return json(500, { error = tostring(res) })
end
`;

const MIGRATIONS = {
  '0001_item.sql': 'CREATE TABLE item (\n  id INT AUTO_INCREMENT PRIMARY KEY,\n  name VARCHAR(200) NOT NULL\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n',
  '0002_seed.sql': "INSERT INTO item (name) VALUES ('seed');\n",
};

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

function writeFiles(dir, files) {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

async function waitReady(server, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await server.get('/readyz').catch((e) => ({ status: 0, text: e.message }));
    if (last.status === 200) return last;
    if (Date.now() > deadline) {
      throw new Error(`/readyz not 200 within ${timeoutMs} ms: ${last.status} ${last.text}\n${server.stderr.slice(-2000)}`);
    }
    await sleep(100);
  }
}

describe('database', () => {
  let db;
  let tmp;
  let scripts;
  let migrations;

  before(async () => {
    db = await startMariaDB();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-dbapp-'));
    scripts = writeFiles(path.join(tmp, 'scripts'), { 'app.lua': APP });
    fs.mkdirSync(path.join(tmp, 'views'));
    migrations = writeFiles(path.join(tmp, 'migrations'), MIGRATIONS);
  });

  after(async () => {
    if (db) await db.destroy();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const envFor = (name, extra = {}) => ({
    DATABASE_URL: db.url(name),
    SCRIPTS_DIR: scripts,
    VIEWS_DIR: path.join(tmp, 'views'),
    MIGRATIONS_DIR: migrations,
    ...extra,
  });

  it('two servers starting at once on an empty database apply each migration once', async () => {
    const name = await db.freshDatabase('flaskcrud_e2e_mig');
    const [a, b] = await Promise.all([startServer({ env: envFor(name) }), startServer({ env: envFor(name) })]);
    try {
      await Promise.all([waitReady(a), waitReady(b)]);
      const applied = await db.root(`SELECT version FROM \`${name}\`.schema_migrations ORDER BY version`);
      assert.deepEqual(applied.map((r) => String(r.version).replace(/\.sql$/, '')), ['0001_item', '0002_seed']);
      const seeds = await db.root(`SELECT COUNT(*) AS c FROM \`${name}\`.item WHERE name = 'seed'`);
      assert.equal(Number(seeds[0].c), 1, 'the seed migration ran once');
      await a.stopClean();
      await b.stopClean();
    } finally {
      await a.stop({ signal: 'SIGKILL' });
      await b.stop({ signal: 'SIGKILL' });
    }
  });

  it('`h2lua migrate` has nothing to do the second time, and refuses an edited migration', async () => {
    const name = await db.freshDatabase('flaskcrud_e2e_cli');
    const env = envFor(name);
    const first = await runOnce({ args: ['migrate'], env, timeoutMs: 30000 });
    assert.equal(first.code, 0, first.stderr);
    const second = await runOnce({ args: ['migrate'], env, timeoutMs: 30000 });
    assert.equal(second.code, 0, second.stderr);
    const seeds = await db.root(`SELECT COUNT(*) AS c FROM \`${name}\`.item`);
    assert.equal(Number(seeds[0].c), 1);

    const edited = writeFiles(path.join(tmp, 'migrations-edited'), {
      ...MIGRATIONS,
      '0002_seed.sql': "INSERT INTO item (name) VALUES ('seed'), ('more');\n",
    });
    const refused = await runOnce({ args: ['migrate'], env: { ...env, MIGRATIONS_DIR: edited }, timeoutMs: 30000 });
    assert.notEqual(refused.code, 0, 'an edited migration must be refused');
    assert.match(refused.stderr, /0002_seed/);
    assert.doesNotMatch(refused.stderr + refused.stdout, /h2lua-test-pw/, 'no password in the output');
  });

  it('SIGTERM while the migrations wait for the named lock ends the wait: exit 0 at once, the lock untouched', async () => {
    const name = await db.freshDatabase('flaskcrud_e2e_lockwait');
    await db.root("SELECT GET_LOCK('h2lua.migrations', 0)"); // held by the test's root session
    const server = await startServer({ env: envFor(name, { WORKERS: '1' }) });
    try {
      for (let waiting = 0, t0 = Date.now(); waiting === 0; await sleep(50)) {
        const rows = await db.root("SELECT COUNT(*) AS c FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT GET_LOCK%' AND USER = 'h2lua'");
        waiting = Number(rows[0].c);
        assert.ok(Date.now() - t0 < 15000, `the migration never waited for the lock:\n${server.stderr.slice(-2000)}`);
      }
      const r = await server.stopClean({ timeoutMs: 5000 }); // GET_LOCK waits 60 s
      assert.ok(r.ms < 4000, `exit took ${r.ms} ms`);
      assert.match(server.stderr, /migrations: stopped/);
      const holder = await db.root("SELECT IS_USED_LOCK('h2lua.migrations') = CONNECTION_ID() AS mine");
      assert.equal(Number(holder[0].mine), 1, 'the test still holds the lock');
    } finally {
      await db.root("SELECT RELEASE_LOCK('h2lua.migrations')");
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('SIGTERM while the migrations connect to a database that never answers: exit 0 at once', async () => {
    const silent = net.createServer((c) => c.on('error', () => {})); // accepts, never greets
    await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const server = await startServer({
      env: { ...envFor('flaskcrud'), DATABASE_URL: `127.0.0.1:${silent.address().port}`, DB_CONNECT_TIMEOUT: '60', WORKERS: '1' },
    });
    try {
      await sleep(300); // the migration thread is in its connect
      const r = await server.stopClean({ timeoutMs: 5000 });
      assert.ok(r.ms < 4000, `exit took ${r.ms} ms`);
      assert.match(server.stderr, /migrations: stopped/);
    } finally {
      await server.stop({ signal: 'SIGKILL' });
      silent.close();
    }
  });

  describe('queries from Lua', () => {
    let server;
    before(async () => {
      const name = await db.freshDatabase('flaskcrud_e2e_q');
      server = await startServer({ env: envFor(name, { WORKERS: '1', DB_POOL_SIZE: '8' }) });
      await waitReady(server);
    });
    after(async () => {
      if (server) await server.stop({ signal: 'SIGKILL' });
    });

    it('column types come back as Lua types', async () => {
      const res = await server.get('/db/types');
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(JSON.parse(res.text), { i: 42, itype: 'integer', f: 1.5, n_is_null: true, s: "x'y", d: 12.25 });
    });

    it('integer columns stay exact on both VMs (LuaJIT: digits as a string from 10^14 on)', async () => {
      const res = await server.get('/db/bigints');
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(JSON.parse(res.text), {
        text: '99999999999999 100000000000000 9007199254740993 18446744073709551615 -9223372036854775808',
        below_minus_one: '99999999999998',
        below_type: 'integer',
        bound: true,
      });
    });

    it('parameters are bound by the core, never concatenated', async () => {
      const nasty = "Robert'); DROP TABLE item; -- \\ ? \u00e9";
      const res = await server.get(`/db/bind?v=${encodeURIComponent(nasty)}`);
      assert.equal(res.status, 200, res.text);
      const r = JSON.parse(res.text);
      assert.equal(r.v, nasty);
      assert.equal(Number(r.n), 7);
      assert.equal(Number(r.t), 1);
      assert.equal(r.z_is_null, true);

      const ins = await server.request('/db/items', { method: 'POST', headers: FORM, body: `name=${encodeURIComponent(nasty)}` });
      assert.equal(ins.status, 201, ins.text);
      const { affected_rows: affected, insert_id: id } = JSON.parse(ins.text);
      assert.equal(affected, 1);
      assert.ok(Number.isInteger(id) && id > 1, `insert_id ${id}`);
      const list = JSON.parse((await server.get('/db/items')).text);
      assert.deepEqual(list.items.map((x) => x.name), ['seed', nasty]);
    });

    it('a transaction rolled back leaves nothing, a committed one stays', async () => {
      const rb = await server.request('/db/rollback', { method: 'POST', headers: FORM, body: 'name=tx-rb' });
      assert.equal(rb.status, 200, rb.text);
      assert.deepEqual(JSON.parse(rb.text), { inside: 1, after: 0 });
      const cm = await server.request('/db/commit', { method: 'POST', headers: FORM, body: 'name=tx-ok' });
      assert.equal(cm.status, 200, cm.text);
      assert.deepEqual(JSON.parse(cm.text), { count: 1 });
    });

    it('a statement the server refuses is an error the app sees (500 here)', async () => {
      const res = await server.get('/db/bad-sql');
      assert.equal(res.status, 500);
      assert.match(JSON.parse(res.text).error, /db:|syntax/i);
      assert.equal((await server.get('/db/types')).status, 200, 'the pool goes on');
    });

    it('slow queries do not block the worker: 8 x SLEEP(1.5) overlap and /hello answers meanwhile', async () => {
      const t0 = Date.now();
      let running = 8;
      const sleeps = [];
      for (let i = 0; i < 8; i++) {
        sleeps.push(server.get('/db/sleep?s=1.5').finally(() => {
          running--;
        }));
      }
      await sleep(100);
      // 20 samples while the queries run; one that waited for a query would take about 1.5 s
      let during = 0;
      const helloMs = await timeSamples(20, async () => {
        if (running === 8) during++;
        assert.equal((await server.get('/hello')).status, 200);
      });
      const res = await Promise.all(sleeps);
      const ms = Date.now() - t0;
      for (const r of res) assert.equal(r.status, 200, r.text);
      const limit = IS_SANITIZED ? 500 : 300;
      assert.ok(percentile(helloMs, 95) < limit, `/hello while queries ran: ${describeMs(helloMs)} (want p95 < ${limit})`);
      assert.ok(during >= 5, `only ${during} of the 20 samples started while the queries ran`);
      assert.ok(ms < 4000, `8 queries of 1.5 s on one worker took ${ms} ms (one after the other: 12 s)`);
    });

    it('SIGTERM lets the queries in flight finish, then exits 0', async () => {
      const q = [server.get('/db/sleep?s=0.7'), server.get('/db/sleep?s=0.7')];
      await sleep(200);
      server.signal('SIGTERM');
      for (const r of await Promise.all(q)) assert.equal(r.status, 200, r.text);
      await server.stopClean();
    });
  });

  it('a database that goes away gives 503s and /readyz 503; when it is back, queries work again', async () => {
    const name = await db.freshDatabase('flaskcrud_e2e_fault');
    const server = await startServer({ env: envFor(name, { WORKERS: '1', DB_TIMEOUT: '2', DB_CONNECT_TIMEOUT: '1' }) });
    try {
      await waitReady(server);
      assert.equal((await server.get('/db/types')).status, 200);
      await db.kill();
      const down = await server.get('/db/types', { timeoutMs: 10000 });
      assert.equal(down.status, 503, down.text);
      assert.equal((await server.get('/readyz')).status, 503);
      assert.equal((await server.get('/healthz')).status, 200, '/healthz does not depend on the database');
      assert.equal((await server.get('/hello')).status, 200, 'routes without the database still answer');
      await db.start();
      const deadline = Date.now() + 15000;
      let res;
      do {
        await sleep(200);
        res = await server.get('/db/types', { timeoutMs: 10000 });
      } while (res.status !== 200 && Date.now() < deadline);
      assert.equal(res.status, 200, `no recovery within 15 s: ${res.text}`);
      await waitReady(server, 5000);
      await server.stopClean();
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('a database unreachable at start: the server starts and /readyz is 503', async () => {
    const deadPort = await freePort();
    const server = await startServer({
      env: {
        ...envFor('flaskcrud'),
        DATABASE_URL: `mysql://h2lua:h2lua-test-pw@127.0.0.1:${deadPort}/flaskcrud`,
        DB_CONNECT_TIMEOUT: '1',
      },
    });
    try {
      const r = await server.get('/readyz');
      assert.equal(r.status, 503);
      assert.match(r.text, /not ready/);
      assert.doesNotMatch(server.stderr, /h2lua-test-pw/, 'no password in the log');
      await server.stopClean();
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });
});
