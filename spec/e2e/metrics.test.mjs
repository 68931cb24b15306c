// Metrics: /metrics (Prometheus text) exists only with METRICS_TOKEN and answers only its bearer
// token; requests by route and status, a consistent latency histogram, the database pool gauges,
// reloads, build info. With EMF_INTERVAL=1 a CloudWatch Embedded Metric Format line every second
// on stdout, with request counts as deltas.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startMariaDB } from './support/mariadb.mjs';
import { ROOT, describeServer, runOnce, sleep, startServer } from './support/server.mjs';
import { DBAPP, waitReady } from './support/faults.mjs';

const TOKEN = 'metrics-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };

/**
 * Parses Prometheus text exposition: { samples: [{ name, labels, value }], help: Set, type: Map }.
 * Throws on a line that is neither a comment nor a sample.
 */
function parseProm(text) {
  const samples = [];
  const help = new Set();
  const type = new Map();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m;
    if ((m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$/.exec(line))) {
      help.add(m[1]);
    } else if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      type.set(m[1], m[2]);
    } else if ((m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+]+|\+Inf|NaN)$/.exec(line))) {
      const labels = {};
      if (m[2]) {
        const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;
        let l;
        let consumed = 0;
        while ((l = re.exec(m[2])) !== null) {
          labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\(.)/g, '$1');
          consumed += l[0].length;
        }
        if (consumed !== m[2].length) throw new Error(`bad labels in: ${line}`);
      }
      samples.push({ name: m[1], labels, value: Number(m[3]) });
    } else {
      throw new Error(`not Prometheus text: ${JSON.stringify(line)}`);
    }
  }
  return { samples, help, type };
}

/** The value of the sample `name` whose labels include `labels`, or undefined. */
function value(prom, name, labels = {}) {
  const s = prom.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value;
}

async function scrape(server) {
  const res = await server.get('/metrics', { headers: AUTH });
  assert.equal(res.status, 200, res.text);
  return parseProm(res.text);
}

describeServer('metrics without METRICS_TOKEN', { METRICS_TOKEN: undefined }, (h) => {
  it('/metrics does not exist (404), with or without a token', async () => {
    assert.equal((await h.server.get('/metrics')).status, 404);
    assert.equal((await h.server.get('/metrics', { headers: AUTH })).status, 404);
  });
});

describe('metrics', () => {
  let db;
  let server;
  let tmp;
  let scripts;
  before(async () => {
    db = await startMariaDB();
    const name = await db.freshDatabase('flaskcrud_metrics');
    // a copy of the fixture app, so that a reload can be refused by breaking it
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-metrics-'));
    scripts = path.join(tmp, 'scripts');
    fs.mkdirSync(scripts);
    fs.copyFileSync(path.join(DBAPP.SCRIPTS_DIR, 'app.lua'), path.join(scripts, 'app.lua'));
    fs.symlinkSync(path.join(ROOT, 'scripts/lib'), path.join(scripts, 'lib'));
    server = await startServer({
      env: { ...DBAPP, SCRIPTS_DIR: scripts, DATABASE_URL: db.url(name), WORKERS: '2', METRICS_TOKEN: TOKEN },
    });
    await waitReady(server);
  });
  after(async () => {
    if (server) await server.stop({ signal: 'SIGKILL' });
    if (db) await db.destroy();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const WRONG = [
    {},
    { authorization: 'Bearer wrong-token-0123456789' },
    { authorization: `Bearer ${TOKEN}x` },
    { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
    { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` },
    { authorization: `bearer  ${TOKEN}` },
    { authorization: TOKEN },
  ];

  it('401 for a missing, wrong, or wrongly framed token, without any figure', async () => {
    for (const headers of WRONG) {
      const res = await server.get('/metrics', { headers });
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.doesNotMatch(res.text, /h2lua_/, 'no figures without the token');
    }
  });

  // core/server.c on_metrics adds WWW-Authenticate, then h2o_send_error_generic() clears the
  // response headers: the 401 goes out without its challenge (RFC 9110 requires one).
  it('the 401 carries a WWW-Authenticate: Bearer challenge', async () => {
    for (const headers of WRONG) {
      const res = await server.get('/metrics', { headers });
      assert.match(String(res.headers['www-authenticate']), /^Bearer/, JSON.stringify(headers));
    }
  });

  it('Prometheus text with the right token: every family has HELP and TYPE, build info names the version', async () => {
    const res = await server.get('/metrics', { headers: AUTH });
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
    assert.equal(res.headers['cache-control'], 'no-store');
    const prom = parseProm(res.text);
    const families = new Set(prom.samples.map((s) => s.name.replace(/_(bucket|sum|count)$/, '')));
    for (const f of families) {
      assert.ok(prom.help.has(f), `HELP for ${f}`);
      assert.ok(prom.type.has(f), `TYPE for ${f}`);
    }
    for (const f of ['h2lua_build_info', 'h2lua_requests_total', 'h2lua_request_duration_seconds', 'h2lua_db_connections',
      'h2lua_db_waiting', 'h2lua_db_errors_total', 'h2lua_db_queries_total', 'h2lua_db_retries_total', 'h2lua_db_stale_total', 'h2lua_reloads_total', 'h2lua_inflight_requests',
      'h2lua_connections_flooded_total']) {
      assert.ok(families.has(f), `family ${f}`);
    }
    const version = (await runOnce({ args: ['--version'] })).stdout.trim().split(/\s+/).pop();
    assert.equal(value(prom, 'h2lua_build_info', { version, workers: '2' }), 1);
  });

  it('counts requests by route pattern and status (deltas match the requests made)', async () => {
    const before = await scrape(server);
    const made = [
      ['/hello', 200, '/hello', 3],
      ['/entries/1', 404, '/entries/:id', 2],
      ['/entries/2', 404, '/entries/:id', 1],
      ['/no/such/page', 404, '404', 2],
      ['/boom', 500, '/boom', 1],
      ['/healthz', 200, '/healthz', 2],
      ['/static/hello.txt', 200, '/static', 1],
    ];
    for (const [p, status, , n] of made) {
      for (let i = 0; i < n; i++) assert.equal((await server.get(p)).status, status, p);
    }
    const post = await server.request('/hello', { method: 'POST' });
    assert.equal(post.status, 405);
    await sleep(50);
    const after = await scrape(server);
    const delta = (route, status) =>
      (value(after, 'h2lua_requests_total', { route, status: String(status) }) ?? 0) -
      (value(before, 'h2lua_requests_total', { route, status: String(status) }) ?? 0);
    const expected = new Map();
    for (const [, status, route, n] of made) expected.set(`${route} ${status}`, (expected.get(`${route} ${status}`) ?? 0) + n);
    expected.set('405 405', 1);
    for (const [key, n] of expected) {
      const [route, status] = key.split(' ');
      assert.equal(delta(route, status), n, `h2lua_requests_total{route="${route}",status="${status}"} grew by ${n}`);
    }
    // raw paths never become routes: the two /entries/N are one series
    assert.equal(after.samples.filter((s) => s.name === 'h2lua_requests_total' && /^\/entries\/\d/.test(s.labels.route)).length, 0);
  });

  it('the duration histogram is consistent: cumulative buckets, +Inf == count == requests counted', async () => {
    for (let i = 0; i < 20; i++) await server.get(i % 2 ? '/hello' : '/count');
    await server.get('/sleep?ms=120');
    const prom = await scrape(server);
    const buckets = prom.samples.filter((s) => s.name === 'h2lua_request_duration_seconds_bucket');
    assert.ok(buckets.length >= 2);
    assert.equal(prom.type.get('h2lua_request_duration_seconds'), 'histogram');
    let prevLe = -Infinity;
    let prev = 0;
    for (const b of buckets) {
      const le = b.labels.le === '+Inf' ? Infinity : Number(b.labels.le);
      assert.ok(le > prevLe, `bucket bounds increase (${b.labels.le})`);
      assert.ok(b.value >= prev, `cumulative counts (${b.labels.le}: ${b.value} >= ${prev})`);
      prevLe = le;
      prev = b.value;
    }
    assert.equal(buckets[buckets.length - 1].labels.le, '+Inf');
    const count = value(prom, 'h2lua_request_duration_seconds_count');
    const sum = value(prom, 'h2lua_request_duration_seconds_sum');
    assert.equal(buckets[buckets.length - 1].value, count, '+Inf bucket == count');
    const total = prom.samples.filter((s) => s.name === 'h2lua_requests_total').reduce((a, s) => a + s.value, 0);
    assert.equal(total, count, 'sum of h2lua_requests_total == histogram count');
    assert.ok(sum >= 0.12, `sum ${sum} s includes the 120 ms sleep`);
    const le250 = value(prom, 'h2lua_request_duration_seconds_bucket', { le: '0.25' });
    const le100 = value(prom, 'h2lua_request_duration_seconds_bucket', { le: '0.1' });
    assert.ok(le250 - le100 >= 1, 'the 120 ms request is in the (0.1, 0.25] bucket');
  });

  it('database pool gauges: open connections, none in use or waiting at rest, queries counted', async () => {
    const before = await scrape(server);
    for (let i = 0; i < 10; i++) assert.equal((await server.get('/count')).status, 200);
    await sleep(250); // gauges are published by each worker every 100 ms
    const after = await scrape(server);
    const q = (p) => value(p, 'h2lua_db_queries_total', { db: 'primary' });
    assert.ok(q(after) - q(before) >= 10, `queries_total grew by ${q(after) - q(before)}`);
    assert.ok(value(after, 'h2lua_db_connections', { db: 'primary', state: 'open' }) >= 1);
    assert.equal(value(after, 'h2lua_db_connections', { db: 'primary', state: 'in_use' }), 0);
    assert.equal(value(after, 'h2lua_db_waiting', { db: 'primary' }), 0);
    assert.equal(value(after, 'h2lua_db_connections', { db: 'replica', state: 'open' }), 0);
    assert.equal(value(after, 'h2lua_db_errors_total', { db: 'primary' }), 0);
    // a failing statement counts as an error (a query bound to a missing row is not one)
    assert.equal(value(after, 'h2lua_inflight_requests'), 0);
  });

  it('h2lua_reloads_total counts a SIGHUP reload in every worker, and a refused one', async () => {
    const get = async (outcome) => value(await scrape(server), 'h2lua_reloads_total', { outcome });
    const ok0 = await get('ok');
    const refused0 = await get('refused');
    server.signal('SIGHUP');
    const deadline = Date.now() + 5000;
    while ((await get('ok')) < ok0 + 2 && Date.now() < deadline) await sleep(50);
    await sleep(250);
    assert.equal(await get('ok'), ok0 + 2, 'one reload per worker (WORKERS=2)');
    // a broken version is refused and counted
    const app = path.join(scripts, 'app.lua');
    const good = fs.readFileSync(app, 'utf8');
    fs.writeFileSync(app, 'this is not lua (\n');
    try {
      server.signal('SIGHUP');
      const d2 = Date.now() + 5000;
      while ((await get('refused')) < refused0 + 2 && Date.now() < d2) await sleep(50);
      await sleep(250);
      assert.equal(await get('refused'), refused0 + 2);
      assert.equal(await get('ok'), ok0 + 2);
      assert.equal((await server.get('/hello')).status, 200, 'the running version stays');
    } finally {
      fs.writeFileSync(app, good);
    }
  });

  it('exits 0 on SIGTERM without a sanitizer report', async () => {
    await server.stopClean();
  });
});

/** EMF lines (objects with _aws) in a server's stdout. */
function emfLines(server) {
  return server.accessLog().filter((l) => l._aws !== undefined);
}

describe('CloudWatch EMF', () => {
  it('EMF_INTERVAL=1: one valid EMF line a second, request counts as deltas', async (t) => {
    const server = await startServer({ env: { EMF_INTERVAL: '1', WORKERS: '2' } });
    try {
      for (const l of server.accessLog()) assert.equal(l.__unparsed, undefined, `stdout line is JSON: ${l.__unparsed}`);
      // wait for a line, then make requests, then read the lines after it
      await server.waitFor(() => emfLines(server).length >= 1, 3000, 'a first EMF line');
      const startLines = emfLines(server).length;
      const OK = 37;
      const NOT_FOUND = 9;
      for (let i = 0; i < OK; i++) assert.equal((await server.get('/hello')).status, 200);
      for (let i = 0; i < NOT_FOUND; i++) assert.equal((await server.get('/no/such')).status, 404);
      assert.equal((await server.get('/boom')).status, 500);
      // two more lines: every request above has been counted in one of them
      await server.waitFor(() => emfLines(server).length >= startLines + 2, 4000, 'two more EMF lines');
      const all = emfLines(server);
      const lines = all.slice(startLines, startLines + 2);
      for (const line of all) {
        const cw = line._aws.CloudWatchMetrics;
        assert.ok(Array.isArray(cw) && cw.length === 1, '_aws.CloudWatchMetrics');
        assert.equal(cw[0].Namespace, 'h2lua');
        assert.ok(Number.isInteger(line._aws.Timestamp) && Math.abs(line._aws.Timestamp - Date.now()) < 60000, 'Timestamp in ms');
        for (const dims of cw[0].Dimensions) for (const d of dims) assert.equal(typeof line[d], 'string', `dimension ${d}`);
        for (const m of cw[0].Metrics) {
          assert.equal(typeof m.Name, 'string');
          assert.equal(typeof line[m.Name], 'number', `a value for ${m.Name}`);
        }
        const names = cw[0].Metrics.map((m) => m.Name);
        for (const n of ['Requests', 'Errors4xx', 'Errors5xx', 'DbErrors', 'MeanLatencyMs']) assert.ok(names.includes(n), n);
      }
      const sum = (k) => lines.reduce((a, l) => a + l[k], 0);
      t.diagnostic(`EMF deltas over the two lines: Requests ${sum('Requests')}, Errors4xx ${sum('Errors4xx')}, Errors5xx ${sum('Errors5xx')}`);
      assert.equal(sum('Requests'), OK + NOT_FOUND + 1, 'Requests: the requests made, counted once');
      assert.equal(sum('Errors4xx'), NOT_FOUND);
      assert.equal(sum('Errors5xx'), 1);
      // the lines keep coming about once a second, and idle ones count nothing
      const n0 = emfLines(server).length;
      await sleep(2600);
      const idle = emfLines(server).slice(n0);
      assert.ok(idle.length >= 2 && idle.length <= 3, `${idle.length} lines in 2.6 s`);
      for (const l of idle) assert.equal(l.Requests, 0);
      await server.stopClean();
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('EMF_INTERVAL=0: no EMF line', async () => {
    const server = await startServer({ env: { EMF_INTERVAL: '0' } });
    try {
      for (let i = 0; i < 5; i++) await server.get('/hello');
      await sleep(1500);
      assert.equal(emfLines(server).length, 0);
      await server.stopClean();
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });
});

