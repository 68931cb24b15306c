// Timers (h2lua.timer, core/timer_api.h) on a real server and MariaDB, with the fixture app
// spec/e2e/fixtures/timers: timer.at with arguments, `every` running again after an error and never
// overlapping itself, cancel, a start-up job from app.lua that writes to the database, timers using
// the database and sleep, the TIMERS_MAX bound, counts on /metrics, a reload that stops the old
// version's timers and starts the new one's, SIGTERM dropping pending timers and draining running
// ones (and DRAIN_TIMEOUT cutting one short), a runaway timer caught by LUA_TIMEOUT, and the docs'
// "once across tasks" pattern with two servers on one database.
// timing: lower bounds only (a timer never runs before its delay), generous waits otherwise.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startMariaDB } from './support/mariadb.mjs';
import { FIXTURES, ROOT, sanitizerReport, sleep, startServer } from './support/server.mjs';

const TOKEN = 'timers-metrics-token-0123';
const APP = {
  SCRIPTS_DIR: path.join(FIXTURES, 'timers'),
  VIEWS_DIR: path.join(FIXTURES, 'views'),
  MIGRATIONS_DIR: path.join(ROOT, 'db/migrations'),
};
const TABLE = `CREATE TABLE IF NOT EXISTS timer_runs (
  id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(128) NOT NULL, worker INT NOT NULL,
  version VARCHAR(16) NOT NULL, at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))`;

let db;
before(async () => {
  db = await startMariaDB();
});
after(async () => {
  if (db) await db.destroy();
});

/** A fresh database with the timer_runs table; its DATABASE_URL. */
async function freshDb(name) {
  await db.freshDatabase(name);
  await db.root(`USE \`${name}\`; ${TABLE}`);
  return db.url(name);
}

/** The rows of timer_runs in `name`, in order. */
async function runs(name, what = null) {
  const rows = await db.root(`SELECT id, what, worker, version FROM \`${name}\`.timer_runs ORDER BY id`);
  return what === null ? rows : rows.filter((r) => (what instanceof RegExp ? what.test(r.what) : r.what === what));
}

/** Polls until fn() resolves truthy; fails after timeoutMs with `what`. */
async function until(fn, what, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const notes = async (server) => (await server.get('/notes')).text.split('\n').filter((l) => l !== '');
const metric = (text, name) => {
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  assert.ok(m, `${name} on /metrics`);
  return Number(m[1]);
};

describe('timers on one worker', () => {
  const NAME = 'flaskcrud_timers';
  let server;
  before(async () => {
    server = await startServer({
      env: { ...APP, DATABASE_URL: await freshDb(NAME), WORKERS: '1', TIMERS_MAX: '40', METRICS_TOKEN: TOKEN },
    });
  });
  after(async () => {
    if (server) await server.stop({ signal: 'SIGKILL' });
  });

  it('the start-up job app.lua made runs once the load is done and writes to the database', async () => {
    const rows = await until(async () => (await runs(NAME, 'startup')).length > 0 && runs(NAME, 'startup'), 'the start-up row');
    assert.equal(rows.length, 1);
    assert.equal(rows[0].worker, 0);
    assert.equal(rows[0].version, 'v1');
    assert.ok((await notes(server)).includes('startup'));
    const line = await server.waitFor(() => server.errorLog().find((l) => l.msg === 'start-up job done'), 5000, 'its log line');
    assert.equal(line.level, 'info');
    assert.equal(line.worker, 0);
    assert.equal(line.tag, 'startup');
    assert.equal(line.request_id, undefined, 'a timer has no request');
  });

  it('timer.at runs its function once, no sooner than its delay, with its arguments', async () => {
    const t0 = Date.now();
    assert.equal((await server.get('/at?delay=1&tag=a')).text, 'made');
    const seen = await until(async () => (await notes(server)).find((l) => l.startsWith('at:a:')), 'the timer');
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 950, `ran after ${elapsed} ms, before its delay of 1 s`);
    // tag, 42, true, nil (a hole in the arguments), a table (the same one, changed after the call)
    assert.equal(seen, 'at:a:42:true:nil:table:true');
    await sleep(300);
    assert.equal((await notes(server)).filter((l) => l.startsWith('at:a:')).length, 1, 'once');
    assert.equal((await server.get('/cancel?tag=a')).text, 'false', 'cancel after it ran');
  });

  it('a cancelled timer.at never runs', async () => {
    assert.equal((await server.get('/at?delay=0.5&tag=c')).text, 'made');
    assert.equal((await server.get('/cancel?tag=c')).text, 'true');
    assert.equal((await server.get('/cancel?tag=c')).text, 'false', 'the second cancel');
    await sleep(1000);
    assert.ok(!(await notes(server)).some((l) => l.startsWith('at:c:')), 'the cancelled timer ran');
  });

  it('every runs again and again, an error in one run is logged with its traceback and does not stop it', async () => {
    assert.equal((await server.get('/every?interval=0.05&tag=e&fail=2')).text, 'made');
    await until(async () => (await notes(server)).includes('every:e:6'), 'six runs');
    const lines = server.errorLog().filter((l) => l.msg === 'timer error' && /run 2 of e fails/.test(l.error));
    assert.equal(lines.length, 1, JSON.stringify(server.errorLog().slice(-5)));
    const [line] = lines;
    assert.equal(line.level, 'error');
    assert.equal(line.worker, 0);
    assert.match(line.function, /timers\/app\.lua:\d+$/);
    assert.match(line.traceback, /stack traceback:[\s\S]*timers\/app\.lua:\d+/);
    assert.equal((await server.get('/cancel?tag=e')).text, 'true');
    await sleep(200); // a run under way when cancelled ends
    const count = (await notes(server)).filter((l) => l.startsWith('every:e:')).length;
    await sleep(500);
    assert.equal((await notes(server)).filter((l) => l.startsWith('every:e:')).length, count, 'runs after cancel');
    assert.equal((await server.get('/cancel?tag=e')).text, 'false');
  });

  it('every never overlaps itself: the next run is due an interval after the previous one ended', async () => {
    const t0 = Date.now();
    assert.equal((await server.get('/every-sleeps?tag=s')).text, 'made');
    const last = await until(async () => (await notes(server)).find((l) => l.startsWith('sleeps:5:')), 'five runs');
    const elapsed = Date.now() - t0;
    assert.equal((await server.get('/cancel?tag=s')).text, 'true');
    assert.equal(last, 'sleeps:5:1', 'at most one run at a time');
    assert.ok(elapsed >= 5 * 100, `five runs of 100 ms each took ${elapsed} ms`);
  });

  it('a timer uses the database (a query, a transaction) and sleep', async () => {
    assert.equal((await server.get('/db-sleep?tag=d')).text, 'made');
    await until(async () => (await notes(server)).includes('db-sleep:d:1'), 'the timer with the database');
    assert.equal((await runs(NAME, 'd')).length, 1);
  });

  it('TIMERS_MAX bounds the timers of a worker: one more is nil, "too many pending timers"; counts on /metrics', async () => {
    await until(async () => (await server.get('/counts')).text === '0 0', 'no timer left');
    const filled = (await server.get('/fill?n=100')).text;
    assert.equal(filled, '40 too many pending timers');
    assert.equal((await server.get('/counts')).text, '40 0');
    const made = await server.get('/at?delay=0&tag=over');
    assert.equal(made.text, 'nil:too many pending timers');
    const m = (await server.get('/metrics', { headers: { authorization: `Bearer ${TOKEN}` } })).text;
    assert.equal(metric(m, 'h2lua_timers_pending'), 40);
    assert.equal(metric(m, 'h2lua_timers_running'), 0);
    // start-up 1, at 1, every e >= 6 (1 error), every s >= 5, db-sleep 1
    assert.ok(metric(m, 'h2lua_timer_runs_total') >= 14, m);
    assert.equal(metric(m, 'h2lua_timer_errors_total'), 1);
    assert.equal((await server.get('/unfill')).text, '40');
    assert.equal((await server.get('/counts')).text, '0 0');
    assert.equal((await server.get('/at?delay=0&tag=after')).text, 'made', 'room again');
    await until(async () => (await notes(server)).some((l) => l.startsWith('at:after:')), 'the timer made after');
  });

  it('exits cleanly with timers pending', async () => {
    assert.equal((await server.get('/at?delay=3600&tag=late')).text, 'made');
    await server.stopClean();
    assert.equal(sanitizerReport(server.stderr), null);
  });
});

/** A private copy of the fixture app that a test may edit. */
function copyApp() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-timers-'));
  fs.cpSync(path.join(FIXTURES, 'timers'), path.join(dir, 'scripts'), { recursive: true });
  const app = path.join(dir, 'scripts/app.lua');
  return {
    dir,
    scripts: path.join(dir, 'scripts'),
    setVersion(v) {
      const text = fs.readFileSync(app, 'utf8').replace(/^local VERSION = "[^"]*"/m, `local VERSION = "${v}"`);
      fs.writeFileSync(`${app}.tmp`, text);
      fs.renameSync(`${app}.tmp`, app);
    },
    remove() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('timers across a reload (SIGHUP)', () => {
  const NAME = 'flaskcrud_timers_reload';
  let server;
  let app;
  before(async () => {
    app = copyApp();
    server = await startServer({
      env: { ...APP, SCRIPTS_DIR: app.scripts, DATABASE_URL: await freshDb(NAME), WORKERS: '1', TIMERS_TICK: '0.05' },
    });
  });
  after(async () => {
    if (server) await server.stop({ signal: 'SIGKILL' });
    if (app) app.remove();
  });

  it("the old version's pending timers stop, its running one finishes, the new version's start", async () => {
    await until(async () => (await runs(NAME, 'tick')).length >= 3, 'three ticks of v1');
    assert.equal((await server.get('/long?secs=1.5&pending=30')).text, 'made');
    await until(async () => (await runs(NAME, 'long-start')).length === 1, 'the long timer started');
    app.setVersion('v2');
    server.signal('SIGHUP');
    await until(async () => (await server.get('/version')).text === 'v2', 'v2 serving');
    // the new version's start-up job and periodic job run
    await until(async () => (await runs(NAME, 'startup')).some((r) => r.version === 'v2'), 'the start-up job of v2');
    await until(async () => (await runs(NAME, 'tick')).filter((r) => r.version === 'v2').length >= 3, 'ticks of v2');
    // the old version's periodic job stopped
    const v1 = (await runs(NAME, 'tick')).filter((r) => r.version === 'v1').length;
    await sleep(500);
    assert.equal((await runs(NAME, 'tick')).filter((r) => r.version === 'v1').length, v1, 'v1 ticks after the reload');
    // its running timer finished, on v1, and could not make another one there
    const done = await until(async () => (await runs(NAME, /^long-done/)).at(0), 'the long timer finished');
    assert.equal(done.version, 'v1');
    assert.equal(done.what, 'long-done:timers are stopped: a reload replaced this version of the application');
    // what is left on the worker is v2's tick alone once the long timer returned: v1's 30 s timer
    // was dropped (the long timer's row is written a moment before its function returns)
    const alive = async () => (await server.get('/counts')).text.split(' ').map(Number).reduce((a, b) => a + b);
    await until(async () => (await alive()) === 1, "v2's tick alone");
    await sleep(300);
    assert.equal(await alive(), 1);
    assert.deepEqual(await runs(NAME, 'made-while-stopping'), []);
    await server.stopClean();
    assert.deepEqual(await runs(NAME, 'pending-ran'), []);
  });
});

describe('timers at SIGTERM', () => {
  it('pending timers are dropped, a running one gets the drain and finishes, the exit is 0', async () => {
    const NAME = 'flaskcrud_timers_term';
    const server = await startServer({ env: { ...APP, DATABASE_URL: await freshDb(NAME), WORKERS: '1', DRAIN_TIMEOUT: '10' } });
    try {
      await until(async () => (await runs(NAME, 'startup')).length === 1, 'the start-up job');
      // a timer running 1.5 s, and one due in 1 s (during the drain, if it were not dropped)
      assert.equal((await server.get('/long?secs=1.5&pending=1')).text, 'made');
      await until(async () => (await runs(NAME, 'long-start')).length === 1, 'the long timer started');
      const t0 = Date.now();
      const r = await server.stopClean({ timeoutMs: 10000 });
      assert.ok(Date.now() - t0 >= 1000, `exited ${Date.now() - t0} ms after SIGTERM, the timer still running`);
      assert.equal(r.code, 0);
      assert.deepEqual((await runs(NAME, /^long-done/)).map((x) => x.what), ['long-done:timers are stopped: the server is shutting down']);
      assert.deepEqual(await runs(NAME, 'pending-ran'), [], 'the pending timer ran during the drain');
      assert.deepEqual(await runs(NAME, 'made-while-stopping'), []);
      assert.doesNotMatch(server.stderr, /drain timeout/);
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('a timer still running at DRAIN_TIMEOUT does not keep the process alive, and is named in the log', async () => {
    const NAME = 'flaskcrud_timers_cut';
    const server = await startServer({ env: { ...APP, DATABASE_URL: await freshDb(NAME), WORKERS: '1', DRAIN_TIMEOUT: '1' } });
    try {
      assert.equal((await server.get('/long?secs=30')).text, 'made');
      await until(async () => (await runs(NAME, 'long-start')).length === 1, 'the long timer started');
      const r = await server.stop({ timeoutMs: 8000 });
      assert.equal(r.killed, false, 'still running 8 s after SIGTERM with DRAIN_TIMEOUT=1');
      assert.ok(r.ms >= 800, `exited after ${r.ms} ms, before DRAIN_TIMEOUT`);
      assert.equal(r.code, 0, server.stderr.slice(-2000));
      assert.match(server.stderr, /drain timeout: 0 requests and 1 timers still running were dropped/);
      assert.equal(sanitizerReport(server.stderr), null);
      assert.deepEqual(await runs(NAME, /^long-done/), []);
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });
});

describe('a timer that never returns to the loop (LUA_TIMEOUT)', () => {
  it('is reported by the watchdog like a handler, interrupted, logged, and its `every` runs again', async () => {
    const server = await startServer({ env: { ...APP, WORKERS: '1', LUA_TIMEOUT: '1' } });
    try {
      assert.equal((await server.get('/spin-every')).text, 'made');
      await server.waitFor(
        () => server.errorLog().some((l) => /stuck in Lua/.test(l.msg) && l.method === 'timer' && /timers\/app\.lua:\d+$/.test(l.path)),
        15000,
        'the watchdog line naming the timer',
      );
      await server.waitFor(
        () => server.errorLog().some((l) => l.msg === 'timer error' && /interrupted/.test(l.error) && /timers\/app\.lua:\d+$/.test(l.function)),
        15000,
        'the interrupted timer line',
      );
      await until(async () => (await notes(server)).includes('spin:3'), 'the every running again');
      assert.equal((await server.get('/healthz')).status, 503, 'the watchdog tripped /healthz as for a handler');
      await server.stopClean({ timeoutMs: 10000 });
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });
});

describe("the docs' once-across-tasks pattern (GET_LOCK on a transaction's connection)", () => {
  it('two servers of two workers each, one database: the job is done once', async () => {
    const NAME = 'flaskcrud_timers_once';
    const url = await freshDb(NAME);
    const env = { ...APP, DATABASE_URL: url, WORKERS: '2', TIMERS_ONCE: '1' };
    const servers = await Promise.all([startServer({ env }), startServer({ env })]);
    try {
      await until(async () => (await runs(NAME, 'once-tried')).length === 4, 'four attempts', 20000);
      assert.equal((await runs(NAME, 'once')).length, 1);
      // the lock went with the transaction's connection: it is free again
      assert.deepEqual(await db.root("SELECT IS_FREE_LOCK('timers.once') AS free"), [{ free: 1 }]);
      for (const s of servers) await s.stopClean();
    } finally {
      for (const s of servers) await s.stop({ signal: 'SIGKILL' });
    }
  });
});
