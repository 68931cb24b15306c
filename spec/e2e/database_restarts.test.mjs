// Database restarts and failovers: once the database answers again, not one request fails.
//
// A real h2lua (the entries app, WORKERS=2) under 16 keep-alive clients that read (GET /,
// GET /api/entries) and write (POST /api/entries, the form POST /add). The database goes away and
// comes back: MariaDB restarted (a clean stop, then a SIGKILL), or a TCP proxy switched from one
// MariaDB to another, the shape of an RDS Multi-AZ failover (the name moves to the promoted server).
// From the first success after it is back, every answer must be 2xx/3xx; every acknowledged write
// is in the database exactly once; after a failover the writes land on the new primary.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import mysql from 'mysql2/promise';
import { DB_PASSWORD, DB_USER, startMariaDB } from './support/mariadb.mjs';
import { metricSum, request, runOnce, sleep, startServer } from './support/server.mjs';
import { SwitchProxy, waitReady } from './support/faults.mjs';
import { entriesTarget } from './support/entries.mjs';

const CLIENTS = 16;
const METRICS_TOKEN = 'restarts-metrics-token-0123456789';

/** The sum over databases of a counter of /metrics. */
const counter = (server, name) => metricSum(server, name, METRICS_TOKEN);
const ok = (s) => s >= 200 && s < 400;

/** Runs CLIENTS clients until stop(); every request is kept as { kind, start, end, status, title }. */
async function startClients(server, target, prefix) {
  const results = [];
  const agents = [];
  let stopped = false;
  const client = async (i) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    const writer = await target.client(server, agent);
    for (let n = 0; !stopped; n++) {
      const start = Date.now();
      let r;
      let kind;
      let title = null;
      switch ((i + n) % 4) {
        case 0:
          kind = 'GET /';
          r = await request(server.port, '/', { agent, timeoutMs: 15000 }).catch((e) => ({ status: 0, error: e.code || e.message }));
          break;
        case 1:
          kind = 'GET /api/entries';
          r = await request(server.port, '/api/entries', { agent, timeoutMs: 15000 }).catch((e) => ({ status: 0, error: e.code || e.message }));
          break;
        default:
          kind = (i + n) % 4 === 2 ? 'POST /api/entries' : 'POST /add';
          title = `${prefix}-${i}-${n}`;
          r = await writer.add(title, `client ${i}`, kind === 'POST /api/entries');
      }
      results.push({ kind, start, end: Date.now(), status: r.status, error: r.error, title, acked: r.acked ?? false });
      if (!ok(r.status)) await sleep(5); // a client backing off a little
    }
  };
  const running = Array.from({ length: CLIENTS }, (_, i) => client(i));
  return {
    results,
    async stop() {
      stopped = true;
      await Promise.all(running);
      for (const a of agents) a.destroy();
    },
  };
}

/** The first moment a new TCP client gets an answer from the database on port, polled every 10 ms. */
async function answersAgain(port, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const conn = await mysql
      .createConnection({ host: '127.0.0.1', port, user: DB_USER, password: DB_PASSWORD, connectTimeout: 500 })
      .catch(() => null);
    if (conn) {
      await conn.query('SELECT 1');
      const t = Date.now();
      await conn.end();
      return t;
    }
    await sleep(10);
  }
  throw new Error(`the database on port ${port} did not answer within ${timeoutMs} ms`);
}

/**
 * For the requests that started at or after `from`: the end of the first success, and the failures
 * that started at or after it and ended before `until` (when the next outage began: a request still
 * in flight then belongs to that outage).
 */
function afterRecovery(results, from, until = Infinity) {
  const since = results.filter((r) => r.start >= from && r.start < until);
  const firstOk = Math.min(...since.filter((r) => ok(r.status)).map((r) => r.end));
  const failed = since.filter((r) => r.start >= firstOk && r.end < until && !ok(r.status));
  return { firstOk, failed };
}

/** The server's log lines about the database and errors, the last 40 (for a failure's message). */
const dbLog = (server) => server.stderr.split('\n').filter((l) => /database|error|statement/i.test(l)).slice(-40).join('\n');

const describeFailure = (r) => `${r.kind} started ${r.start} -> ${r.status || r.error}`;

/** Titles of acknowledged writes, and the rows of `prefix` in each database (title -> count). */
async function writesCheck(results, prefix, dbs, name) {
  const acked = results.filter((r) => r.acked).map((r) => r.title);
  const counts = new Map();
  for (const db of dbs) {
    const rows = await db.root(`SELECT title, COUNT(*) AS n FROM \`${name}\`.entry WHERE title LIKE ? GROUP BY title`, [`${prefix}-%`]);
    for (const row of rows) counts.set(row.title, (counts.get(row.title) ?? 0) + Number(row.n));
  }
  const missing = acked.filter((t) => !counts.has(t));
  const twice = [...counts].filter(([, n]) => n > 1).map(([t]) => t);
  return { acked, missing, twice };
}

describe('database restarts and failovers', () => {
  let db;
  before(async () => {
    db = await startMariaDB();
  });
  after(async () => {
    if (db) await db.destroy();
  });

  it('MariaDB restarted three times under 16 clients: no failure from the first success on, back within 250 ms, every acknowledged write once', async (t) => {
    const name = await db.freshDatabase('flaskcrud_restarts');
    const target = entriesTarget();
    const server = await startServer({
      env: { ...target.env, DATABASE_URL: db.url(name), WORKERS: '2', DB_TIMEOUT: '2', DB_CONNECT_TIMEOUT: '1', METRICS_TOKEN },
    });
    let clients = null;
    try {
      await waitReady(server);
      const pid = server.pid;
      clients = await startClients(server, target, 'rs');
      const cycles = [];
      for (const how of ['stop', 'kill', 'stop']) {
        await sleep(700);
        const stopping = Date.now();
        if (how === 'kill') await db.kill();
        else await db.stop();
        const down = Date.now(); // the server is gone: nothing started after this can succeed before it is back
        await sleep(500);
        const restarting = Date.now();
        assert.equal((await request(server.port, '/healthz', { timeoutMs: 2000 })).status, 200, '/healthz while the database is down');
        const started = db.start();
        const back = await answersAgain(db.port);
        await started;
        await sleep(700);
        cycles.push({ how, stopping, down, restarting, back });
      }
      await clients.stop();
      const { results } = clients;

      const figures = [];
      for (const [i, c] of cycles.entries()) {
        const during = results.filter((r) => r.start >= c.down && r.end <= c.restarting);
        assert.ok(during.length > 0, `cycle ${i + 1}: requests ran during the outage`);
        assert.deepEqual(during.filter((r) => r.status !== 503).slice(0, 5).map(describeFailure), [], `cycle ${i + 1}: requests during the outage answer 503`);
        const { firstOk, failed } = afterRecovery(results, c.down, cycles[i + 1]?.stopping ?? Infinity);
        assert.ok(Number.isFinite(firstOk), `cycle ${i + 1}: a success after the database came back`);
        figures.push(`${c.how}: first success ${firstOk - c.back} ms after the database answered, ${failed.length} failures after it`);
        assert.deepEqual(failed.slice(0, 5).map(describeFailure), [],
          `cycle ${i + 1} (${c.how}): ${failed.length} requests failed after the first success ${firstOk}; the server said:\n${dbLog(server)}`);
        assert.ok(firstOk - c.back <= 250, `cycle ${i + 1} (${c.how}): first success ${firstOk - c.back} ms after the database answered (want <= 250)`);
      }
      const { acked, missing, twice } = await writesCheck(results, 'rs', [db], name);
      const statuses = {};
      for (const r of results) statuses[r.status || r.error] = (statuses[r.status || r.error] ?? 0) + 1;
      const stale = await counter(server, 'h2lua_db_stale_total');
      const retries = await counter(server, 'h2lua_db_retries_total');
      t.diagnostic(`${results.length} requests ${JSON.stringify(statuses)}; ${acked.length} acknowledged writes; ` +
        `${stale} pooled connections found dead before use, ${retries} statements run again; ${figures.join('; ')}`);
      assert.ok(stale + retries > 0, 'the restarts left dead pooled connections, found before they failed a request');
      assert.deepEqual(missing.slice(0, 5), [], `${missing.length} acknowledged writes are not in the database`);
      assert.deepEqual(twice.slice(0, 5), [], `${twice.length} writes are in the database twice`);
      assert.ok(acked.length > 0, 'writes were acknowledged');
      assert.equal(server.pid, pid);
      assert.equal(server.exited, null, 'h2lua kept running');
      clients = null;
      await server.stopClean();
    } finally {
      if (clients) await clients.stop();
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('a failover (the name moves to another server) under 16 clients: no failure from the first success on, writes go to the new primary', async (t) => {
    const name = 'flaskcrud_failover';
    const dbB = await startMariaDB();
    const proxy = await SwitchProxy.start(db.port);
    let server = null;
    let clients = null;
    try {
      await db.freshDatabase(name);
      await dbB.freshDatabase(name);
      // the promoted server has the schema, as a replica would
      const target = entriesTarget();
      const migrated = await runOnce({ args: ['migrate'], env: { ...target.env, DATABASE_URL: dbB.url(name) }, timeoutMs: 30000 });
      assert.equal(migrated.code, 0, `h2lua migrate on the second server: ${migrated.stderr}`);
      const url = `mysql://${DB_USER}:${DB_PASSWORD}@127.0.0.1:${proxy.port}/${name}`;
      server = await startServer({ env: { ...target.env, DATABASE_URL: url, WORKERS: '2', DB_TIMEOUT: '2', DB_CONNECT_TIMEOUT: '1' } });
      await waitReady(server);
      clients = await startClients(server, target, 'fo');
      await sleep(1200);
      const switched = Date.now();
      proxy.switchTo(dbB.port);
      await sleep(1200);
      await clients.stop();
      const { results } = clients;
      clients = null;

      const { firstOk, failed } = afterRecovery(results, switched);
      assert.ok(Number.isFinite(firstOk), 'a success after the switch');
      assert.deepEqual(failed.slice(0, 5).map(describeFailure), [],
        `${failed.length} requests failed after the first success on the new primary ${firstOk}; the server said:\n${dbLog(server)}`);
      const onA = (await db.root(`SELECT title FROM \`${name}\`.entry WHERE title LIKE 'fo-%'`)).map((r) => r.title);
      const onB = new Set((await dbB.root(`SELECT title FROM \`${name}\`.entry WHERE title LIKE 'fo-%'`)).map((r) => r.title));
      const ackedAfter = results.filter((r) => r.acked && r.start >= switched).map((r) => r.title);
      assert.ok(ackedAfter.length > 0, 'writes were acknowledged after the switch');
      assert.deepEqual(ackedAfter.filter((x) => !onB.has(x)).slice(0, 5), [], 'writes after the switch are on the new primary');
      assert.deepEqual(ackedAfter.filter((x) => onA.includes(x)).slice(0, 5), [], 'no write after the switch is on the old primary');
      const { acked, missing, twice } = await writesCheck(results, 'fo', [db, dbB], name);
      assert.deepEqual(missing.slice(0, 5), [], `${missing.length} acknowledged writes are in neither database`);
      assert.deepEqual(twice.slice(0, 5), [], `${twice.length} writes are stored twice`);
      const lost = results.filter((r) => r.start < switched && r.end >= switched && !ok(r.status)).length;
      t.diagnostic(`${results.length} requests, ${acked.length} acknowledged writes (${ackedAfter.length} after the switch); ` +
        `first success ${firstOk - switched} ms after the switch; ${lost} requests in flight at the switch failed; 0 after the first success`);
      await server.stopClean();
    } finally {
      if (clients) await clients.stop();
      if (server) await server.stop({ signal: 'SIGKILL' });
      await proxy.close();
      await dbB.destroy();
    }
  });
});
