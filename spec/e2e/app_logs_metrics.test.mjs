// h2lua.log and h2lua.metrics on a real server with two workers (spec/e2e/fixtures/applog): log
// lines with the request id and the caller's fields, LOG_LEVEL, truncation, odd fields and clear
// errors; metrics counted across workers, histogram buckets, sum and count, the cap on label sets,
// /metrics and the EMF lines, values kept across a reload (SIGHUP).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { FIXTURES, request, sanitizerReport, startServer } from './support/server.mjs';

const TOKEN = 'app-metrics-token-0123456789';
const APP = { SCRIPTS_DIR: path.join(FIXTURES, 'applog'), VIEWS_DIR: path.join(FIXTURES, 'views') };

/** The samples of /metrics: [{ name, labels, value }]. */
async function scrape(server) {
  const res = await request(server.port, '/metrics', { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 200, res.text.slice(0, 200));
  const out = [];
  for (const line of res.text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { samples: out, text: res.text };
}

const sum = (samples, name, pred = () => true) =>
  samples.filter((s) => s.name === name && pred(s.labels)).reduce((a, s) => a + s.value, 0);

/** GETs p on `n` new connections (the kernel spreads them over the workers). */
async function hit(server, p, n) {
  const out = [];
  for (let i = 0; i < n; i += 10) {
    const batch = Array.from({ length: Math.min(10, n - i) }, () => server.get(p));
    for (const r of await Promise.all(batch)) {
      assert.equal(r.status, 200, `${p}: ${r.text}`);
      out.push(r);
    }
  }
  return out;
}

describe('h2lua.log and h2lua.metrics (WORKERS=2)', () => {
  let server;
  before(async () => {
    server = await startServer({ env: { ...APP, WORKERS: '2', METRICS_TOKEN: TOKEN, EMF_INTERVAL: '1' } });
  });
  after(async () => {
    if (server) await server.stop({ signal: 'SIGKILL' });
  });

  it('while app.lua loads: one line per worker, with its worker and no request id', async () => {
    const lines = server.errorLog().filter((l) => l.msg === 'applog loading');
    assert.deepEqual(lines.map((l) => l.worker).sort(), [0, 1]);
    for (const l of lines) {
      assert.equal(l.level, 'info');
      assert.equal(l.phase, 'load');
      assert.equal(l.version, 0);
      assert.equal(l.request_id, undefined);
      assert.match(l.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
  });

  it('a line per call: level, time, worker, the request id, msg and the fields (typed, sorted, odd values named)', async () => {
    const res = await server.get('/log?user=bob');
    assert.equal(res.status, 200);
    const id = res.text;
    assert.equal(res.headers['x-request-id'], id);
    const line = await server.waitFor(() => server.errorLog().find((l) => l.request_id === id), 5000, 'the log line');
    assert.equal(line.level, 'info');
    assert.equal(line.msg, 'hello');
    assert.ok(line.worker === 0 || line.worker === 1);
    assert.equal(line.user, 'bob');
    assert.equal(line.n, 42);
    assert.equal(line.f, 1.5);
    assert.equal(line.yes, true);
    assert.equal(line.no, false);
    assert.equal(line.nested, '<table>');
    assert.equal(line.fn, '<function>');
    assert.equal(line.nan, 'nan');
    assert.equal(line['odd "key"\n'], 'v"al\nue');
    assert.equal(line.truncated, undefined);
    // the core's keys first, then the fields sorted by key
    const raw = server.stderr.split('\n').find((l) => l.includes(`"request_id":"${id}"`));
    const keys = Object.keys(JSON.parse(raw));
    assert.deepEqual(keys.slice(0, 5), ['time', 'level', 'worker', 'request_id', 'msg']);
    assert.deepEqual(keys.slice(5), [...keys.slice(5)].sort());
  });

  it('fields read raw: raising __index, __pairs and __tostring never run', async () => {
    const res = await server.get('/log/raw');
    assert.equal(res.status, 200, res.text);
    const line = await server.waitFor(() => server.errorLog().find((l) => l.request_id === res.text), 5000, 'the raw line');
    assert.equal(line.a, 'A');
    assert.equal(line.t, '<table>');
  });

  it('long messages and values are cut at a character boundary, fields past 64 left out: "truncated":true', async () => {
    const res = await server.get('/log/long');
    const line = await server.waitFor(() => server.errorLog().find((l) => l.request_id === res.text), 5000, 'the long line');
    assert.equal(line.level, 'warn');
    assert.equal(line.msg, 'm'.repeat(4096));
    assert.equal(line.big, 'é'.repeat(512)); // 1024 bytes
    assert.equal(line.truncated, true);
    const fields = Object.keys(line).filter((k) => /^k\d{3}$/.test(k));
    assert.equal(fields.length, 63); // 64 kept: "big" and k001..k063, the smallest keys
    assert.equal(line.k063, 63);
    assert.equal(line.k064, undefined);
  });

  it('LOG_LEVEL=info (the default): debug lines are not written; log.level and log.enabled say so', async () => {
    const dbg = await server.get('/log?level=debug&msg=dbg');
    const inf = await server.get('/log?level=info&msg=after-debug');
    await server.waitFor(() => server.errorLog().some((l) => l.request_id === inf.text), 5000, 'the info line');
    assert.equal(server.errorLog().filter((l) => l.request_id === dbg.text).length, 0);
    assert.equal((await server.get('/log/level')).text, 'info false true');
  });

  it('bad calls are clear errors', async () => {
    const cases = {
      msg_table: /h2lua\.log\.info: the message must be a string \(got a table\)/,
      msg_nil: /the message must be a string \(got a nil\)/,
      fields_string: /fields must be a table \(got a string\)/,
      key_number: /field keys must be strings \(got a number\)/,
      key_reserved: /the field 'msg' is the core's/,
      key_level: /the field 'level' is the core's/,
      key_long: /a field key must have 1 to 64 bytes/,
      enabled_bad: /the level must be debug, info, warn or error/,
      name_core: /'h2lua_requests_total' starts with h2lua_/,
      name_bad: /'my-metric' is not a metric name/,
      name_colon: /'a:b' is not a metric name/,
      label_bad: /the label 'bad label' of 'x_total' is not a label name/,
      label_le: /the label name 'le' of 'x_seconds' is reserved/,
      label_twice: /the label 'a' of 'x_total' is named twice/,
      buckets_down: /the buckets of 'x_seconds' must be in ascending order/,
      buckets_none: /the buckets must be an array of numbers/,
      buckets_inf: /must be finite numbers \(\+Inf is implied\)/,
      retype: /'applog_hits_total' is already a counter with labels \(kind, worker\)/,
      relabel: /'applog_hits_total' is already a counter with labels \(kind, worker\)/,
      help_bad: /the help of 'x_total' must be UTF-8/,
      counter_down: /a counter only goes up/,
      counter_nan: /must be a finite number/,
      counter_set: /metric:set: 'applog_hits_total' is a counter/,
      labels_missing: /the label 'worker' of 'applog_hits_total' must be a string \(got a nil\)/,
      labels_extra: /'applog_hits_total' has no label 'other'/,
      labels_none: /'applog_hits_total' needs its labels as a table/,
      labels_table_value: /the label 'kind' of 'applog_hits_total' must be a string \(got a table\)/,
      labels_unlabelled: /'applog_level' has no labels/,
      observe_string: /the value must be a number \(got a string\)/,
      self_missing: /h2lua\.metric expected/,
    };
    const failures = [];
    for (const [c, re] of Object.entries(cases)) {
      const res = await server.get(`/bad?case=${c}`);
      if (res.status !== 200 || !re.test(res.text)) failures.push(`${c}: ${res.status} ${res.text}`);
    }
    assert.deepEqual(failures, []);
    // none of them made a metric
    const { text } = await scrape(server);
    assert.doesNotMatch(text, /x_total|x_seconds|my-metric/);
  });

  it('counters are counted across workers, histograms have cumulative buckets, sum and count; a gauge holds its last value', async () => {
    const served = await hit(server, '/count?kind=x', 40);
    const byWorker = new Set(served.map((r) => r.text));
    assert.equal(byWorker.size, 2, 'both workers served some of the 40 connections');
    for (const v of [5, 50, 500, 5000]) assert.equal((await server.get(`/observe?v=${v}&kind=h`)).status, 200);
    assert.equal((await server.get('/observe?v=0.5&kind=h')).text, '5555.5 5'); // :value() on either worker
    assert.equal((await server.get('/gauge?v=2.5')).text, '2.5');
    const { samples, text } = await scrape(server);
    assert.equal(sum(samples, 'applog_hits_total', (l) => l.kind === 'x'), 40);
    for (const w of byWorker) {
      const n = served.filter((r) => r.text === w).length;
      assert.equal(sum(samples, 'applog_hits_total', (l) => l.kind === 'x' && l.worker === w), n);
    }
    assert.match(text, /# HELP applog_hits_total Hits by kind and worker\.\n# TYPE applog_hits_total counter\n/);
    assert.match(text, /# TYPE applog_size_bytes histogram\n/);
    const bucket = (le) => sum(samples, 'applog_size_bytes_bucket', (l) => l.kind === 'h' && l.le === le);
    assert.deepEqual(['10', '100', '1000', '+Inf'].map(bucket), [2, 3, 4, 5]);
    assert.equal(sum(samples, 'applog_size_bytes_sum', (l) => l.kind === 'h'), 5555.5);
    assert.equal(sum(samples, 'applog_size_bytes_count', (l) => l.kind === 'h'), 5);
    assert.equal(sum(samples, 'applog_level'), 2.5);
    assert.equal(sum(samples, 'applog_loads_total'), 2); // one per worker
  });

  it('the cap on label sets (1000 per metric): past it, observations are dropped, counted and logged once', async () => {
    for (let i = 0; i < 1003; i += 25) {
      const batch = [];
      for (let j = i; j < Math.min(i + 25, 1003); j++) batch.push(server.get(`/id?id=${j}`));
      for (const r of await Promise.all(batch)) assert.equal(r.status, 200, r.text);
    }
    assert.equal((await server.get('/id?id=5')).status, 200); // a known label set is still counted
    assert.equal((await server.get('/id?id=new')).status, 200); // a new one is not
    const { samples } = await scrape(server);
    assert.equal(samples.filter((s) => s.name === 'applog_ids_total').length, 1000);
    assert.equal(sum(samples, 'applog_ids_total'), 1001);
    assert.equal(sum(samples, 'h2lua_app_metrics_dropped_total', (l) => l.metric === 'applog_ids_total'), 4);
    const warned = server.errorLog().filter((l) => l.metric === 'applog_ids_total' && /too many label sets/.test(l.msg));
    assert.equal(warned.length, 1, 'one line, the first time');
    assert.equal(warned[0].level, 'warn');
  });

  it('the EMF lines carry the application metrics in the core form (counters as deltas, a gauge as its value)', async () => {
    const emf = () => server.accessLog().filter((l) => l._aws !== undefined);
    const hitsX = () =>
      emf()
        .filter((l) => l.kind === 'x' && l.applog_hits_total !== undefined)
        .reduce((a, l) => a + l.applog_hits_total, 0);
    await server.waitFor(() => hitsX() === 40, 10000, 'EMF deltas of applog_hits_total{kind=x} adding up to 40');
    const line = emf().find((l) => l.kind === 'x' && l.applog_hits_total !== undefined);
    assert.equal(line.Service, 'h2lua');
    const [directive] = line._aws.CloudWatchMetrics;
    assert.equal(directive.Namespace, 'h2lua');
    assert.deepEqual(directive.Dimensions, [['Service', 'kind', 'worker']]);
    assert.deepEqual(directive.Metrics, [{ Name: 'applog_hits_total', Unit: 'Count' }]);
    await server.waitFor(() => emf().some((l) => l.applog_level === 2.5), 10000, 'the gauge in an EMF line');
    await server.waitFor(
      () => emf().some((l) => l.kind === 'h' && l.applog_size_bytes_count === 5 && l.applog_size_bytes_sum === 5555.5),
      10000,
      'the histogram in an EMF line',
    );
    const complete = server.stdout.slice(0, server.stdout.lastIndexOf('\n'));
    for (const l of complete.split('\n')) assert.doesNotThrow(() => JSON.parse(l), `stdout line is JSON: ${l.slice(0, 200)}`);
  });

  it('a reload (SIGHUP) keeps every value: the new version declares the same metrics and counts on', async () => {
    const before = await scrape(server);
    assert.equal(sum(before.samples, 'applog_loads_total'), 2, before.text.slice(-3000));
    const reloaded = () => server.errorLog().filter((l) => l.msg === 'reloaded scripts and views').length;
    server.signal('SIGHUP');
    await server.waitFor(() => reloaded() === 2, 10000, 'both workers reloaded');
    assert.equal(server.errorLog().filter((l) => l.msg === 'applog loading').length, 4);
    await hit(server, '/count?kind=x', 10);
    const after = (await scrape(server)).samples;
    assert.equal(sum(after, 'applog_loads_total'), 4);
    assert.equal(sum(after, 'applog_hits_total', (l) => l.kind === 'x'), 50);
    assert.equal(sum(after, 'applog_size_bytes_count', (l) => l.kind === 'h'), 5);
    assert.equal(sum(after, 'applog_level'), 2.5);
    assert.equal(sum(after, 'h2lua_app_metrics_dropped_total'), 4);
    assert.equal((await server.get('/gauge?v=-1')).text, '-1');
  });

  it('exits 0 on SIGTERM without a sanitizer report', async () => {
    await server.stopClean();
    server = null;
  });
});

describe('LOG_LEVEL=warn, LOG_FORMAT=text', () => {
  let server;
  before(async () => {
    server = await startServer({ env: { ...APP, WORKERS: '1', LOG_LEVEL: 'warn', LOG_FORMAT: 'text' } });
  });
  after(async () => {
    if (server) await server.stop({ signal: 'SIGKILL' });
  });

  it("drops the application's and the core's lines below warn; writes the others as text with the request id", async () => {
    assert.doesNotMatch(server.stderr, /applog loading|listening on/);
    const info = await server.get('/log?level=info&msg=not-written');
    const warn = await server.get('/log?level=warn&msg=written&user=a%20b');
    await server.waitFor(() => server.stderr.includes(`request_id=${warn.text}`), 5000, 'the warn line');
    assert.ok(!server.stderr.includes(info.text), 'no info line');
    const line = server.stderr.split('\n').find((l) => l.includes(`request_id=${warn.text}`));
    assert.match(line, new RegExp(`^\\S+Z warn w0 request_id=${warn.text} written `));
    assert.match(line, / user="a b"/);
    assert.match(line, / n=42 /);
    assert.match(line, / "odd \\"key\\"\\n"="v\\"al\\nue"/);
    assert.equal((await server.get('/log/level')).text, 'warn false true');
    await server.stopClean();
    assert.equal(sanitizerReport(server.stderr), null);
    server = null;
  });
});
