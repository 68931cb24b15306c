// SIGTERM in every database state: the process exits 0 within DRAIN_TIMEOUT + 1 s without a
// sanitizer report, whatever its connections are doing — the database a black hole, a query that
// outlives the drain, a transaction the application dropped without commit, acquirers queued for
// a connection, the replica check connecting to a replica that never answers, a stream that keeps
// querying. (The exit order is core/db_pool.h's shutdown contract; signals.test.mjs has the drain
// itself.)
// timing: each exit within DRAIN_TIMEOUT + 1 s; ops/test runs this file alone.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startMariaDB } from './support/mariadb.mjs';
import { request, sanitizerReport, sleep, startServer } from './support/server.mjs';
import { DBAPP, FreezableProxy, waitReady } from './support/faults.mjs';

/** A TCP listener that accepts connections and never answers (a database that is a black hole). */
async function blackHole() {
  const held = new Set();
  const server = net.createServer((s) => {
    held.add(s);
    s.on('error', () => {});
    s.on('close', () => held.delete(s));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    get accepted() {
      return held.size;
    },
    close: async () => {
      for (const s of held) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Starts a request that is expected never to be answered well; resolves its status or 0. */
function fire(server, p) {
  return request(server.port, p, { timeoutMs: 30000 })
    .then((r) => r.status)
    .catch(() => 0);
}

/**
 * SIGTERM, then: exit code 0 (no signal), within DRAIN_TIMEOUT + 1 s, no sanitizer report on
 * stderr. Returns the stop's figures.
 */
async function assertCleanStop(server, drainS, t) {
  const limit = (drainS + 1) * 1000;
  const r = await server.stop({ timeoutMs: limit + 5000 });
  const report = sanitizerReport(server.stderr);
  assert.equal(report, null, `sanitizer report on stderr:\n${report}`);
  assert.equal(r.killed, false, `still running ${limit + 5000} ms after SIGTERM; stderr:\n${server.stderr.slice(-2000)}`);
  assert.deepEqual([r.code, r.signal], [0, null], `exit after SIGTERM (want code 0); stderr:\n${server.stderr.slice(-3000)}`);
  assert.ok(r.ms < limit, `exit took ${r.ms} ms, DRAIN_TIMEOUT ${drainS} s + 1 s is ${limit} ms`);
  t.diagnostic(`exit ${r.ms} ms after SIGTERM (DRAIN_TIMEOUT ${drainS} s)`);
  return r;
}

describe('shutdown in every database state', () => {
  let db;
  before(async () => {
    db = await startMariaDB();
  });
  after(async () => {
    if (db) await db.destroy();
  });

  const envFor = (name, extra) => ({ ...DBAPP, DATABASE_URL: db.url(name), WORKERS: '1', ...extra });

  it('the database a black hole: queries sent, a connect in its handshake, acquirers waiting', async (t) => {
    const name = await db.freshDatabase('flaskcrud_stop_hole');
    const proxy = await FreezableProxy.start(db.port);
    const env = envFor(name, {
      DATABASE_URL: `mysql://h2lua:h2lua-test-pw@127.0.0.1:${proxy.port}/${name}`,
      DB_POOL_SIZE: '2',
      DB_TIMEOUT: '20',
      DB_CONNECT_TIMEOUT: '20',
      DRAIN_TIMEOUT: '1',
    });
    const server = await startServer({ env });
    try {
      await waitReady(server);
      assert.equal((await server.get('/count')).status, 200); // one idle connection
      proxy.freeze();
      const pending = [];
      for (let i = 0; i < 4; i++) pending.push(fire(server, '/count'));
      // the idle connection takes one query, a second connection is opened (held in its
      // handshake by the frozen proxy), two acquirers wait
      await sleep(400);
      await assertCleanStop(server, 1, t);
      await Promise.all(pending);
    } finally {
      await server.stop({ signal: 'SIGKILL' });
      await proxy.close();
    }
  });

  it('queries that outlive the drain, one of them in a transaction', async (t) => {
    const name = await db.freshDatabase('flaskcrud_stop_slow');
    const server = await startServer({ env: envFor(name, { DB_POOL_SIZE: '4', DRAIN_TIMEOUT: '1' }) });
    try {
      await waitReady(server);
      const pending = [fire(server, '/db/sleep?s=20'), fire(server, '/db/tx-sleep?s=20')];
      await sleep(400);
      await assertCleanStop(server, 1, t);
      await Promise.all(pending);
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('a transaction the application dropped without commit is rolled back at exit', async (t) => {
    const name = await db.freshDatabase('flaskcrud_stop_txdrop');
    const server = await startServer({ env: envFor(name, { DB_POOL_SIZE: '2', DRAIN_TIMEOUT: '2' }) });
    try {
      await waitReady(server);
      const res = await server.get('/db/tx-drop');
      assert.equal(res.status, 200, res.text);
      await assertCleanStop(server, 2, t);
      const rows = await db.root(`SELECT COUNT(*) AS c FROM \`${name}\`.entry WHERE title = 'tx-dropped'`);
      assert.equal(Number(rows[0].c), 0, 'the dropped transaction was not committed');
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('acquirers queued behind the only connection', async (t) => {
    const name = await db.freshDatabase('flaskcrud_stop_queue');
    const server = await startServer({ env: envFor(name, { DB_POOL_SIZE: '1', DB_TIMEOUT: '20', DRAIN_TIMEOUT: '1' }) });
    try {
      await waitReady(server);
      const pending = [];
      for (let i = 0; i < 5; i++) pending.push(fire(server, '/db/sleep?s=10'));
      await sleep(400);
      await assertCleanStop(server, 1, t);
      await Promise.all(pending);
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('the replica check connecting to a replica that never answers', async (t) => {
    const name = await db.freshDatabase('flaskcrud_stop_replica');
    const hole = await blackHole();
    const server = await startServer({
      env: envFor(name, {
        DATABASE_READ_URL: `mysql://h2lua:h2lua-test-pw@127.0.0.1:${hole.port}/${name}`,
        DB_CONNECT_TIMEOUT: '20',
        DB_TIMEOUT: '20',
        DRAIN_TIMEOUT: '2',
      }),
    });
    try {
      await waitReady(server);
      await server.waitFor(() => hole.accepted > 0, 5000, 'the replica check to connect');
      await assertCleanStop(server, 2, t);
    } finally {
      await server.stop({ signal: 'SIGKILL' });
      await hole.close();
    }
  });

  it('streams open: one that ends when the server drains, one that keeps querying past the drain', async (t) => {
    const name = await db.freshDatabase('flaskcrud_stop_stream');
    const server = await startServer({ env: envFor(name, { DB_POOL_SIZE: '2', DRAIN_TIMEOUT: '1' }) });
    try {
      await waitReady(server);
      const pending = [fire(server, '/db/stream?polite=1'), fire(server, '/db/stream')];
      await sleep(400);
      await assertCleanStop(server, 1, t);
      await Promise.all(pending);
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('a stream that ends when the server drains leaves a clean drain', async (t) => {
    const name = await db.freshDatabase('flaskcrud_stop_stream2');
    const server = await startServer({ env: envFor(name, { DB_POOL_SIZE: '2', DRAIN_TIMEOUT: '3' }) });
    try {
      await waitReady(server);
      const pending = fire(server, '/db/stream?polite=1');
      await sleep(400);
      const r = await assertCleanStop(server, 3, t);
      assert.equal(await pending, 200);
      assert.ok(r.ms < 2000, `a stream that ends on out:closed() let the drain end early (${r.ms} ms)`);
      assert.doesNotMatch(server.stderr, /drain timeout/, 'nothing was abandoned');
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });
});
