// Faults: the database SIGKILLed and restarted under concurrent writers, SIGTERM under load, a
// pool exhausted by slow queries, and a network to the database that goes silent. In each, the
// server keeps its PID, answers 503 while the database cannot serve, serves again soon after,
// and loses no acknowledged write.
//
// H2LUA_LONG=1 runs the long variants (more writers for longer, several kill and freeze cycles,
// more exhaustion rounds). Figures are printed as test diagnostics (`ℹ` lines of the spec reporter).
// timing: bounds on /healthz and refusal latencies (percentiles); ops/test runs this file alone.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import mysql from 'mysql2/promise';
import { DB_PASSWORD, DB_USER, startMariaDB } from './support/mariadb.mjs';
import { request, sanitizerReport, sleep, startServer } from './support/server.mjs';
import { DBAPP, FreezableProxy, IS_SANITIZED, rssKb, waitReady } from './support/faults.mjs';
import { entriesTarget } from './support/entries.mjs';
import { describeMs, percentile, timeSamples } from './support/timing.mjs';

const LONG = process.env.H2LUA_LONG === '1';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/** Prints a figure in the test output (TAP diagnostics survive the spec reporter). */
const note = (t, msg) => t.diagnostic(msg);

/** Outcome of one request that may fail at the connection level: { status } or { error }. */
async function attempt(port, p, opts) {
  const t0 = Date.now();
  try {
    const res = await request(port, p, opts);
    return { status: res.status, text: res.text, headers: res.headers, ms: Date.now() - t0 };
  } catch (e) {
    return { status: 0, error: e.code || e.message, ms: Date.now() - t0 };
  }
}

async function countTitles(db, name, prefix) {
  const rows = await db.root(`SELECT title FROM \`${name}\`.entry WHERE title LIKE ?`, [`${prefix}%`]);
  return new Set(rows.map((r) => r.title));
}

/** Map title -> id of the rows whose title starts with prefix. */
async function idsByTitle(db, name, prefix) {
  const rows = await db.root(`SELECT id, title FROM \`${name}\`.entry WHERE title LIKE ?`, [`${prefix}%`]);
  return new Map(rows.map((r) => [r.title, r.id]));
}

describe('faults', () => {
  let db;
  before(async () => {
    db = await startMariaDB();
  });
  after(async () => {
    if (db) await db.destroy();
  });

  it('MariaDB SIGKILLed and restarted under concurrent writers: same PID, 503s, recovery, no acknowledged write lost', async (t) => {
    const name = await db.freshDatabase('flaskcrud_fault_kill');
    const target = entriesTarget();
    const server = await startServer({
      env: { ...target.env, DATABASE_URL: db.url(name), WORKERS: '2', DB_TIMEOUT: '2', DB_CONNECT_TIMEOUT: '1' },
    });
    const WRITERS = LONG ? 32 : 16;
    const CYCLES = LONG ? 4 : 1;
    const agents = [];
    try {
      await waitReady(server);
      const pid = server.pid;
      const acks = new Map(); // title -> id when the answer named it, else null
      const statuses = new Map(); // status or error -> count
      const unexpected = [];
      let stop = false;
      let firstAckAfter = null; // set to a time once the database is back
      let back = null;

      const writer = async (i) => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        agents.push(agent);
        const client = await target.client(server, agent);
        for (let n = 0; !stop; n++) {
          const title = `kill-${i}-${n}`;
          const viaApi = (i + n) % 2 === 1;
          const r = await client.add(title, `writer ${i}`, viaApi);
          const key = r.status || r.error;
          statuses.set(key, (statuses.get(key) ?? 0) + 1);
          if (r.acked) {
            acks.set(title, r.id ?? null);
            if (back !== null && firstAckAfter === null) firstAckAfter = Date.now();
          } else if (r.status !== 503) {
            unexpected.push(`${title}: ${key} ${String(r.text ?? '').slice(0, 200)}`);
          }
          if (r.status === 503) await sleep(5); // a client backing off a little
        }
      };

      const writers = Array.from({ length: WRITERS }, (_, i) => writer(i));
      const recoveries = [];
      let outage503 = 0;
      for (let c = 0; c < CYCLES; c++) {
        await sleep(LONG ? 3000 : 1500);
        const before503 = statuses.get(503) ?? 0;
        await db.kill();
        const killedAt = Date.now();
        await sleep(LONG ? 3000 : 1500);
        assert.equal(server.exited, null, `h2lua exited while the database was down: ${server.stderr.slice(-2000)}`);
        const health = await request(server.port, '/healthz', { timeoutMs: 2000 });
        assert.equal(health.status, 200, '/healthz while the database is down');
        outage503 += (statuses.get(503) ?? 0) - before503;
        // start it again; `back` is the first moment a TCP client gets an answer from it
        firstAckAfter = null;
        back = null;
        const probe = (async () => {
          const deadline = Date.now() + 60000;
          while (back === null && Date.now() < deadline) {
            const conn = await mysql
              .createConnection({ host: '127.0.0.1', port: db.port, user: DB_USER, password: DB_PASSWORD, connectTimeout: 500 })
              .catch(() => null);
            if (conn) {
              await conn.query('SELECT 1');
              back = Date.now();
              await conn.end();
            } else await sleep(25);
          }
        })();
        await db.start();
        await probe;
        assert.ok(back !== null, 'the database did not come back');
        const deadline = Date.now() + 10000;
        while (firstAckAfter === null && Date.now() < deadline) await sleep(10);
        assert.ok(firstAckAfter !== null, 'no write acknowledged within 10 s of the database coming back');
        const recovery = Math.max(0, firstAckAfter - back);
        recoveries.push(recovery);
        note(t, `cycle ${c + 1}: database down ${back - killedAt} ms, first acknowledged write ${recovery} ms after it answered again`);
      }
      await sleep(1000);
      stop = true;
      await Promise.all(writers);

      assert.equal(server.exited, null, 'h2lua is still running');
      assert.equal(server.pid, pid);
      assert.ok(process.kill(pid, 0), 'same PID alive');
      assert.deepEqual(unexpected.slice(0, 10), [], `answers other than an acknowledgement or 503 (${unexpected.length})`);
      assert.ok(outage503 > 0, 'writes during the outage were answered 503');
      for (const r of recoveries) assert.ok(r < 2000, `served again ${r} ms after the database came back (want < 2000)`);

      const stored = await idsByTitle(db, name, 'kill-');
      const lost = [...acks.keys()].filter((title) => !stored.has(title));
      const wrongId = [...acks].filter(([title, id]) => id !== null && stored.has(title) && stored.get(title) !== id);
      note(t, `${target.kind === 'app' ? 'entries app' : 'fixture app'}, ${WRITERS} writers, ${CYCLES} kill(s): statuses ${JSON.stringify(Object.fromEntries(statuses))}; ` +
        `${acks.size} acknowledged, ${stored.size} rows; recoveries ${recoveries.join(', ')} ms`);
      assert.deepEqual(lost.slice(0, 10), [], `${lost.length} acknowledged writes are not in the database`);
      assert.deepEqual(wrongId.slice(0, 10), [], 'each acknowledged id holds its title');
      assert.ok(stored.size >= acks.size, `rows ${stored.size} >= acknowledgements ${acks.size}`);
      await server.stopClean();
    } finally {
      for (const a of agents) a.destroy();
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('SIGTERM under load: every request the server took is answered, exit 0 within DRAIN_TIMEOUT', async (t) => {
    const name = await db.freshDatabase('flaskcrud_fault_term');
    const DRAIN = 5;
    const server = await startServer({ env: { ...DBAPP, DATABASE_URL: db.url(name), WORKERS: '2', DRAIN_TIMEOUT: String(DRAIN) } });
    const agents = [];
    try {
      await waitReady(server);
      const CLIENTS = LONG ? 32 : 12;
      const results = []; // { path, method, status|error }
      let refusedClients = 0;
      const client = async (i) => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        agents.push(agent);
        for (let n = 0; ; n++) {
          const k = `c${i}-${n}`;
          let p;
          let opts;
          switch (n % 4) {
            case 0:
              p = `/add?k=${k}`;
              opts = { method: 'POST', headers: FORM, body: `title=term-${k}&description=d` };
              break;
            case 1:
              p = `/count?k=${k}`;
              break;
            case 2:
              p = `/sleep?ms=30&k=${k}`;
              break;
            default:
              p = `/hello?k=${k}`;
          }
          const r = await attempt(server.port, p, { ...opts, agent, timeoutMs: 15000 });
          results.push({ path: p, method: opts?.method ?? 'GET', title: opts ? `term-${k}` : null, ...r });
          if (r.status === 0) {
            refusedClients++;
            return; // the server is gone or going
          }
        }
      };
      const clients = Array.from({ length: CLIENTS }, (_, i) => client(i));
      await sleep(1500);
      // requests that are surely in flight when the signal comes
      const slow = [];
      for (let i = 0; i < 4; i++) slow.push(attempt(server.port, `/sleep?ms=1500&k=slow${i}`, { timeoutMs: 15000 }));
      for (let i = 0; i < 2; i++) slow.push(attempt(server.port, `/db/sleep?s=1&k=dbslow${i}`, { timeoutMs: 15000 }));
      await sleep(300);
      const t0 = Date.now();
      server.signal('SIGTERM');
      const exit = await Promise.race([server.exitPromise, sleep((DRAIN + 5) * 1000).then(() => null)]);
      const exitMs = Date.now() - t0;
      assert.notEqual(exit, null, `still running ${DRAIN + 5} s after SIGTERM`);
      await server.closed;
      const slowRes = await Promise.all(slow);
      await Promise.all(clients);

      assert.deepEqual(exit, { code: 0, signal: null }, `exit after SIGTERM; stderr:\n${server.stderr.slice(-2000)}`);
      assert.equal(sanitizerReport(server.stderr), null, 'no sanitizer report');
      assert.ok(exitMs < DRAIN * 1000, `exit took ${exitMs} ms (DRAIN_TIMEOUT=${DRAIN})`);
      for (const r of slowRes) assert.equal(r.status, 200, `a request in flight at SIGTERM: ${r.error ?? r.text}`);

      // every request in the access log was answered to its client with the logged status
      const logged = new Map();
      for (const l of server.accessLog()) if (typeof l.path === 'string' && l.path.includes('k=')) logged.set(l.path, l.status);
      const byPath = new Map(results.map((r) => [r.path, r]));
      for (const r of slowRes) assert.ok(r.status === 200);
      const failedTaken = [];
      for (const [p, status] of logged) {
        const r = byPath.get(p);
        if (r && r.status !== status) failedTaken.push(`${p}: logged ${status}, client got ${r.status || r.error}`);
      }
      assert.deepEqual(failedTaken, [], 'requests the server took but did not answer');
      // the requests that failed were refused at the connection level, never started
      const failed = results.filter((r) => r.status === 0);
      for (const r of failed) {
        assert.match(r.error, /ECONNREFUSED|ECONNRESET|EPIPE|socket hang up/, `${r.path}: ${r.error}`);
        assert.equal(logged.has(r.path), false, `${r.path} failed on the client but is in the access log`);
      }
      assert.ok(failed.length <= CLIENTS, `${failed.length} failures for ${CLIENTS} clients`);
      const other = results.filter((r) => r.status !== 0 && r.status !== 200 && r.status !== 201);
      assert.deepEqual(other.map((r) => `${r.path} ${r.status}`).slice(0, 10), [], 'every answered request succeeded');
      // acknowledged inserts are stored, refused ones are not
      const stored = await countTitles(db, name, 'term-');
      for (const r of results.filter((x) => x.method === 'POST')) {
        if (r.status === 201) assert.ok(stored.has(r.title), `acknowledged ${r.title} is stored`);
        else assert.equal(stored.has(r.title), false, `refused ${r.title} was written`);
      }
      note(t, `SIGTERM under ${CLIENTS} clients: ${results.length} requests, ${logged.size} logged, ${failed.length} refused ` +
        `(connection level, not logged), exit 0 after ${exitMs} ms`);
    } finally {
      for (const a of agents) a.destroy();
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('pool exhaustion: waiting queries are bounded, the rest get 503 at once, memory stays flat', async (t) => {
    const name = await db.freshDatabase('flaskcrud_fault_pool');
    const server = await startServer({
      env: {
        ...DBAPP, DATABASE_URL: db.url(name), WORKERS: '1', DB_POOL_SIZE: '2', DB_QUEUE_MAX: '4', DB_TIMEOUT: '5',
        METRICS_TOKEN: 'pool-metrics-token-0123',
      },
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    try {
      await waitReady(server);
      // open both connections of the pool first, so that 6 slow queries are 2 running + 4 waiting
      const warm = await Promise.all([0, 1].map(() => attempt(server.port, '/db/sleep?s=0.2', { timeoutMs: 5000 })));
      assert.deepEqual(warm.map((r) => r.status), [200, 200]);
      const ROUNDS = LONG ? 20 : 5;
      const EXCESS = LONG ? 400 : 150;
      const rss = [];
      const refusalMs = [];
      const healthzMs = [];
      for (let round = 0; round < ROUNDS; round++) {
        // no connection frees before 1.5 s after the held queries were sent: the excess queries are
        // sent until 1.2 s after (the rest is slack for a loaded machine), so none may be served
        const heldAt = Date.now();
        const held = [];
        for (let i = 0; i < 6; i++) held.push(attempt(server.port, '/db/sleep?s=1.5', { timeoutMs: 15000 }));
        // 2 queries running, 4 waiting
        const deadline = Date.now() + 3000;
        let gauges;
        do {
          await sleep(20);
          const m = await request(server.port, '/metrics', { headers: { authorization: 'Bearer pool-metrics-token-0123' } });
          gauges = {
            in_use: Number(/^h2lua_db_connections\{db="primary",state="in_use"\} (\d+)$/m.exec(m.text)?.[1]),
            waiting: Number(/^h2lua_db_waiting\{db="primary"\} (\d+)$/m.exec(m.text)?.[1]),
          };
        } while ((gauges.in_use !== 2 || gauges.waiting !== 4) && Date.now() < deadline);
        assert.deepEqual(gauges, { in_use: 2, waiting: 4 }, `round ${round}: pool gauges while held`);
        // every further query is refused at once
        const excess = [];
        for (let i = 0; i < EXCESS && Date.now() < heldAt + 1200; i += 8) {
          const batch = [];
          for (let j = 0; j < 8; j++) batch.push(attempt(server.port, '/count', { agent, timeoutMs: 5000 }));
          excess.push(...(await Promise.all(batch)));
        }
        for (const r of excess) {
          assert.equal(r.status, 503, `excess query: ${r.status || r.error}`);
          refusalMs.push(r.ms);
        }
        // /healthz does not wait for the pool: 4 samples a round, bounded below at their p95
        healthzMs.push(...(await timeSamples(4, async () => {
          const hz = await attempt(server.port, '/healthz', { agent });
          assert.equal(hz.status, 200, '/healthz while the pool is exhausted');
        })));
        const res = await Promise.all(held);
        assert.deepEqual(res.map((r) => r.status), [200, 200, 200, 200, 200, 200], 'the held and the queued queries finish');
        rss.push(rssKb(server.pid));
      }
      assert.ok(refusalMs.length >= 100, `only ${refusalMs.length} excess queries were sent while the pool was held`);
      // "at once": no refusal waits for a connection (a held query takes 1.5 s, DB_TIMEOUT is 5 s). The
      // machine is shared (2 cores, loaded), so the bound is on the 95th percentile, and the slowest
      // stays far from 5 s.
      const [p50, p95, worst] = [percentile(refusalMs, 50), percentile(refusalMs, 95), Math.max(...refusalMs)];
      const limit = IS_SANITIZED ? 600 : 250;
      assert.ok(p95 < limit, `95% of the refusals within ${p95} ms (want < ${limit}); ${describeMs(refusalMs)}`);
      assert.ok(worst < 2500, `slowest refusal ${worst} ms (want < 2500, half of DB_TIMEOUT=5 s)`);
      // a /healthz that waited for a held query would take up to 1.5 s (the queries sleep 1.5 s)
      const hzLimit = IS_SANITIZED ? 400 : 150;
      assert.ok(percentile(healthzMs, 95) < hzLimit, `/healthz while exhausted: ${describeMs(healthzMs)} (want p95 < ${hzLimit})`);
      // flat: after the first rounds (allocator and caches warm), no steady growth
      const settled = rss.slice(2);
      const growth = settled[settled.length - 1] - settled[0];
      note(t, `pool 2 + queue 4, up to ${EXCESS} refused per round, ${refusalMs.length} refusals in ${p50} ms (median), ` +
        `${p95} ms (95%), ${worst} ms (slowest); /healthz ${describeMs(healthzMs)}; VmRSS per round (kB): ${rss.join(' ')}`);
      if (IS_SANITIZED) {
        // ASan keeps freed memory in its quarantine (256 MB by default): RSS grows by design there;
        // leaks are LeakSanitizer's business at exit (stopClean fails on its report)
        note(t, `VmRSS not asserted under ASan (grew ${growth} kB with the quarantine filling)`);
      } else {
        assert.ok(growth <= 2048, `VmRSS grew ${growth} kB over rounds 3..${ROUNDS} (allowed 2048)`);
      }
      assert.equal((await request(server.port, '/count')).status, 200, 'the pool serves once the slow queries ended');
      await server.stopClean();
    } finally {
      agent.destroy();
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('a silent network to the database: 503 within DB_TIMEOUT, /healthz 200, served again after it heals', async (t) => {
    const name = await db.freshDatabase('flaskcrud_fault_net');
    const proxy = await FreezableProxy.start(db.port);
    const server = await startServer({
      env: {
        ...DBAPP, DATABASE_URL: `mysql://${DB_USER}:${DB_PASSWORD}@127.0.0.1:${proxy.port}/${name}`,
        WORKERS: '1', DB_TIMEOUT: '2', DB_CONNECT_TIMEOUT: '2',
      },
    });
    try {
      await waitReady(server);
      const CYCLES = LONG ? 3 : 1;
      for (let c = 0; c < CYCLES; c++) {
        assert.equal((await server.get('/count')).status, 200);
        proxy.freeze();
        const a = await attempt(server.port, '/count', { timeoutMs: 10000 });
        assert.equal(a.status, 503, `a query while the network is silent: ${a.status || a.error}`);
        assert.ok(a.ms >= 1500 && a.ms < 3500, `503 after ${a.ms} ms (DB_TIMEOUT=2)`);
        // /healthz does not touch the database: 20 samples, bounded at their p95
        const hz = await timeSamples(20, async () => {
          assert.equal((await attempt(server.port, '/healthz', { timeoutMs: 2000 })).status, 200);
        });
        const hzLimit = IS_SANITIZED ? 400 : 150;
        assert.ok(percentile(hz, 95) < hzLimit, `/healthz while silent: ${describeMs(hz)} (want p95 < ${hzLimit})`);
        // a second query meets a new connection that gets no greeting: also 503, also bounded
        const b = await attempt(server.port, '/count', { timeoutMs: 10000 });
        assert.equal(b.status, 503, `a second query while silent: ${b.status || b.error}`);
        assert.ok(b.ms < 3500, `second 503 after ${b.ms} ms`);
        assert.equal((await server.get('/hello')).status, 200, 'routes without the database answer');
        proxy.unfreeze();
        const t0 = Date.now();
        let r;
        do {
          r = await attempt(server.port, '/count', { timeoutMs: 10000 });
          if (r.status !== 200) await sleep(50);
        } while (r.status !== 200 && Date.now() - t0 < 10000);
        const healed = Date.now() - t0;
        assert.equal(r.status, 200, `not served within 10 s of the network healing: ${r.status || r.error}`);
        assert.ok(healed < 5000, `served again ${healed} ms after the network healed`);
        note(t, `cycle ${c + 1}: 503 after ${a.ms} ms and ${b.ms} ms while silent, served again ${healed} ms after healing`);
      }
      assert.equal(server.exited, null);
      await server.stopClean();
    } finally {
      await server.stop({ signal: 'SIGKILL' });
      await proxy.close();
    }
  });
});
