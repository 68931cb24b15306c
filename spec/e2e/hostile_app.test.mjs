// A hostile application (spec/e2e/fixtures/hostile): handlers that misbehave in every way Lua
// allows against the core's contract (core/lua_host.h, docs/lua-api.md): every yielding function
// of the core called where the coroutine cannot yield (string.gsub and table.sort callbacks,
// metamethods, message handlers, require, coroutines the app made), error values of every type,
// responses with raising metamethods and odd types, stack overflows, a state that grows past
// LUA_MEMORY_MAX, dropped transactions, a request's coroutine resumed by another request. Each
// costs its own request at most a 500 and a log line naming the request; the same process then
// serves normal requests, and exits cleanly without a sanitizer report. A handler that never
// returns to the loop trips the watchdog (LUA_TIMEOUT): a log line and /healthz 503.
// h2lua.shared (which never yields) is called from every one of those contexts and while app.lua
// loads; so are req.client_addr and lib.limit, and h2lua.hmac_sha256 with a key (odd keys and data
// beside: a table is refused whatever its __tostring does).
// Runs on the release build (LuaJIT) and the ASan build (Lua 5.4); expectations that differ
// between the VMs say so.
// timing: the watchdog's LUA_TIMEOUT bound; ops/test runs this file alone.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import path from 'node:path';
import { startMariaDB } from './support/mariadb.mjs';
import { FIXTURES, ROOT, SECRET_KEY, request, sanitizerReport, sleep, startServer } from './support/server.mjs';
import { waitReady } from './support/faults.mjs';

const APP = {
  SCRIPTS_DIR: path.join(FIXTURES, 'hostile'),
  VIEWS_DIR: path.join(FIXTURES, 'views'),
  MIGRATIONS_DIR: path.join(ROOT, 'db/migrations'),
};
const NOT_HERE = /cannot be called here/;
const APP_CO = /coroutine the application made/;

// /call/<context>/<call>: the call's result when it may yield there, else 500 and the reason
const CALLS = { query: '1', read: '2', begin: 'tx', sleep: 'slept', txquery: '3', http: 'hello' };
// /timer/<context>/<call>: the same call in the same context, run by a timer (h2lua.timer): a timer's
// coroutine yields where a request's does and refuses where it does, with the same errors
const NO_YIELD = ['gsub', 'sort', 'sort_lt', 'format'];
const YIELDS = ['index', 'newindex', 'eq', 'lt', 'le', 'concat', 'call', 'gmatch_for', 'iterator'];
const APP_COROUTINES = ['app_wrap', 'app_resume'];

/** One expectation: status (or by VM), the body of a 200, the log error of a 500. */
const E500 = (log) => ({ status: 500, log });

const CASES = {
  '/err/nil': E500(/nil/),
  '/err/number': E500(/42/),
  '/err/boolean': E500(/false/),
  '/err/table': E500(/table/),
  '/err/function': E500(/function/),
  '/err/null': E500(/./),
  '/err/coroutine': E500(/thread/),
  '/err/tostring-raises': E500(/table/),
  '/err/tostring-number': E500(/42|table/),
  '/err/tostring-table': E500(/table/),
  '/err/tostring-recurses': E500(/table/),
  '/err/yield': E500(/coroutine\.yield/),
  '/err/require': E500(NOT_HERE),
  '/err/require-http': E500(NOT_HERE),
  // h2lua.http called while app.lua loads raised, as db.query would
  '/load/http': { status: 200, body: 'h2lua.http.get can only be called while handling a request or running a timer' },
  '/res/none': E500(/returned nothing/),
  '/res/string': E500(/response table/),
  '/res/index-raises': E500(/reading the response raised: .*no field/),
  '/res/index-queries': E500(/reading the response raised: .*db\.query can only be called while handling a request/),
  '/res/status-abc': E500(/status/),
  '/res/status-99': E500(/status/),
  '/res/status-1000': E500(/status/),
  '/res/status-table': E500(/status/),
  '/res/status-nan': E500(/status/),
  '/res/status-huge': E500(/status/),
  '/res/headers-string': E500(/headers/),
  '/res/header-table-of-tables': E500(/header values/),
  '/res/header-function': E500(/header values/),
  '/res/header-key-number': E500(/keys/),
  '/res/body-function': E500(/body/),
  '/res/body-tostring-raises': E500(/body/),
  '/res/stream-not-function': E500(/stream/),
  '/overflow/lua': E500(/stack overflow/),
  '/overflow/gsub': E500(/stack overflow|C stack/),
  '/overflow/concat': E500(/stack overflow|C stack/),
  // 5.4's coroutine.wrap prefixes the error's position at every level: the text is cut before the reason
  '/overflow/coroutine': E500(/stack overflow|(?:app\.lua:\d+: \S*){20}/),
  '/overflow/resume': E500(/stack overflow/),
  '/memory': E500(/not enough memory.*LUA_MEMORY_MAX/),
  '/memory/rep': E500(/not enough memory.*LUA_MEMORY_MAX/),
  '/gc-raises': { status: 200, body: 'ok:collected' },
  '/gc-queries': { status: 200, body: 'ok:collected' },
  // LuaJIT would let a raising __gc escape from the core's own calls: newproxy is not offered
  '/gc-proxy': { status: 200, body: 'ok:no newproxy' },
  '/res/headers-index-raises': { status: 200, body: '' },
  '/res/index-spins': { status: 200, body: 'xxxxxxxxxx' },
};
for (const [name, value] of Object.entries(CALLS)) {
  for (const c of NO_YIELD) CASES[`/call/${c}/${name}`] = E500(NOT_HERE);
  for (const c of YIELDS) CASES[`/call/${c}/${name}`] = { status: 200, body: `ok:${value}` };
  for (const c of APP_COROUTINES) CASES[`/call/${c}/${name}`] = E500(APP_CO);
  // LuaJIT's tostring calls __tostring as Lua would (it may yield there); 5.4's from C
  CASES[`/call/tostring/${name}`] = { status: { 'lua5.4': 500, luajit: 200 }, body: `ok:${value}`, log: NOT_HERE };
  // the message handler cannot yield: the call raises there, and xpcall reports an error in error handling
  CASES[`/call/xpcall_handler/${name}`] = { status: 200, body: 'ok:nil' };
  // Lua 5.4 honours __len and __pairs (pairs calls it so that it may yield); LuaJIT ignores both
  CASES[`/call/len/${name}`] = { status: 200, body: { 'lua5.4': `ok:${value}`, luajit: 'ok:nil' } };
  CASES[`/call/pairs_mm/${name}`] = { status: 200, body: { 'lua5.4': `ok:${value}`, luajit: 'ok:no __pairs' } };
}
for (const p of Object.keys(CASES)) {
  if (p.startsWith('/call/')) CASES[p.replace('/call/', '/timer/')] = CASES[p];
}

// h2lua.static.url never yields: every context may call it; a table (its __tostring raising) is refused
for (const c of [...NO_YIELD, ...YIELDS, ...APP_COROUTINES, 'tostring']) {
  CASES[`/call/${c}/static`] = { status: 200, body: 'ok:/static/none.css' };
}
CASES['/bad-arg/static-url'] = E500(/string expected/);
// h2lua.shared never yields: every context may call every method, app.lua too while it loads; a
// value or key of another type is an error value (its __tostring is never called), a call
// without its store (a dot for a colon) raises
for (const c of [...NO_YIELD, ...YIELDS, ...APP_COROUTINES, 'tostring', 'xpcall_handler']) {
  CASES[`/call/${c}/shared`] = { status: 200, body: 'ok:v' };
}
CASES['/call/len/shared'] = { status: 200, body: { 'lua5.4': 'ok:v', luajit: 'ok:nil' } };
CASES['/call/pairs_mm/shared'] = { status: 200, body: { 'lua5.4': 'ok:v', luajit: 'ok:no __pairs' } };
CASES['/bad-arg/shared-self'] = E500(/h2lua\.shared\.store expected, got string/);
CASES['/bad-arg/shared-value'] = {
  status: 200,
  body: 'ok:false the value must be a string, a number or a boolean (nil deletes), got table; nil the key must be a string, got table',
};
CASES['/shared/loaded'] = { status: 200, body: 'ok:1' };
// req.client_addr and lib.limit (Lua on h2lua.shared and h2lua.now) likewise, a failing store's
// log line included; and while app.lua loads
for (const c of [...NO_YIELD, ...YIELDS, ...APP_COROUTINES, 'tostring', 'xpcall_handler']) {
  CASES[`/call/${c}/limit`] = { status: 200, body: 'ok:127.0.0.1' };
}
CASES['/call/len/limit'] = { status: 200, body: { 'lua5.4': 'ok:127.0.0.1', luajit: 'ok:nil' } };
CASES['/call/pairs_mm/limit'] = { status: 200, body: { 'lua5.4': 'ok:127.0.0.1', luajit: 'ok:no __pairs' } };
CASES['/limit/loaded'] = { status: 200, body: 'ok:true' };

// h2lua.hmac_sha256 never yields: every context may call it, with a key (RFC 4231, test case 2) and
// keyed with SECRET_KEY, in a request, in a timer and while app.lua loads; a table as its key raises
// there (its __tostring is never called)
const hmac = (key, data) => createHmac('sha256', key).update(data).digest('hex');
const HMAC_DATA = 'what do ya want for nothing?';
const HMAC_JEFE = '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843';
assert.equal(hmac('Jefe', HMAC_DATA), HMAC_JEFE);
const HMAC_BOTH = `${HMAC_JEFE}:${hmac(SECRET_KEY, HMAC_DATA)}`;
const HMAC_BAD = /#2 .*string expected, got table/;
for (const kind of ['call', 'timer']) {
  for (const c of [...NO_YIELD, ...YIELDS, ...APP_COROUTINES, 'tostring', 'xpcall_handler']) {
    CASES[`/${kind}/${c}/hmac`] = { status: 200, body: `ok:${HMAC_BOTH}` };
    // the message handler's error is replaced by xpcall's own: r stays nil
    CASES[`/${kind}/${c}/hmac_bad`] = c === 'xpcall_handler' ? { status: 200, body: 'ok:nil' } : E500(HMAC_BAD);
  }
  // LuaJIT runs neither __len nor __pairs
  CASES[`/${kind}/len/hmac`] = { status: 200, body: { 'lua5.4': `ok:${HMAC_BOTH}`, luajit: 'ok:nil' } };
  CASES[`/${kind}/pairs_mm/hmac`] = { status: 200, body: { 'lua5.4': `ok:${HMAC_BOTH}`, luajit: 'ok:no __pairs' } };
  CASES[`/${kind}/len/hmac_bad`] = { status: { 'lua5.4': 500, luajit: 200 }, body: 'ok:nil', log: HMAC_BAD };
  CASES[`/${kind}/pairs_mm/hmac_bad`] = { status: { 'lua5.4': 500, luajit: 200 }, body: 'ok:no __pairs', log: HMAC_BAD };
}
const LOAD_CONTEXTS = ['gsub', 'sort', 'sort_lt', 'tostring', 'format', 'xpcall_handler', 'index', 'newindex', 'eq', 'lt', 'le'];
LOAD_CONTEXTS.push('concat', 'call', 'len', 'gmatch_for', 'iterator', 'pairs_mm', 'app_wrap', 'app_resume');
CASES['/hmac/load'] = {
  status: 200,
  body: Object.fromEntries(
    ['lua5.4', 'luajit'].map((vm) => [
      vm,
      LOAD_CONTEXTS.map((c) => `${c}=${vm === 'luajit' && c === 'len' ? 'nil' : vm === 'luajit' && c === 'pairs_mm' ? 'no __pairs' : HMAC_BOTH}`).join(';'),
    ]),
  ),
};
// odd keys and data: a table is refused whatever its __tostring does; a number is its text; nil or
// no key is SECRET_KEY; an empty key or one with a NUL is refused; long ones and NULs in the data
// are MACed whole
const MB8 = 8 * 1024 * 1024;
const BAD_HMAC = {
  'key-tostring-raises': E500(HMAC_BAD),
  'key-tostring-number': E500(HMAC_BAD),
  'key-tostring-table': E500(HMAC_BAD),
  'key-tostring-string': E500(HMAC_BAD),
  'key-boolean': E500(/#2 .*string expected, got boolean/),
  'key-function': E500(/#2 .*string expected, got function/),
  'key-number': { status: 200, body: `ok:${hmac('42', HMAC_DATA)}` },
  'key-nil': { status: 200, body: `ok:${hmac(SECRET_KEY, HMAC_DATA)}` },
  'key-none': { status: 200, body: `ok:${hmac(SECRET_KEY, HMAC_DATA)}` },
  'key-empty': E500(/#2 .*a key of 1 to 2\^31-1 bytes, none of them NUL/),
  'key-nul': E500(/#2 .*a key of 1 to 2\^31-1 bytes, none of them NUL/),
  'key-nul-last': E500(/#2 .*a key of 1 to 2\^31-1 bytes, none of them NUL/),
  'key-huge': { status: 200, body: `ok:${hmac('k'.repeat(MB8), HMAC_DATA)}` },
  'data-tostring-raises': E500(/#1 .*string expected, got table/),
  'data-tostring-number': E500(/#1 .*string expected, got table/),
  'data-tostring-table': E500(/#1 .*string expected, got table/),
  'data-number': { status: 200, body: `ok:${hmac('Jefe', '42')}` },
  'data-nil': E500(/#1 .*string expected, got nil/),
  'data-none': E500(/#1 .*string expected, got no value/),
  'data-huge': { status: 200, body: `ok:${hmac('Jefe', 'd'.repeat(MB8))}` },
  'data-nul': { status: 200, body: `ok:${hmac('Jefe', 'a\0b\0')}` },
};
for (const [c, want] of Object.entries(BAD_HMAC)) CASES[`/bad-arg/hmac-${c}`] = want;

// h2lua.log and h2lua.metrics never yield: every context may call them (a message handler too)
const LOG_METRIC_CONTEXTS = [...NO_YIELD, ...YIELDS, ...APP_COROUTINES, 'tostring', 'xpcall_handler'];
for (const c of LOG_METRIC_CONTEXTS) {
  CASES[`/call/${c}/log`] = { status: 200, body: 'ok:logged' };
  CASES[`/call/${c}/metric`] = { status: 200, body: 'ok:counted' };
  CASES[`/call/${c}/declare`] = { status: 200, body: 'ok:declared' };
}
// metamethods of the application's never run: fields and labels are read raw, values never tostring'd
CASES['/bad-arg/log-msg-tostring'] = E500(/the message must be a string \(got a table\)/);
CASES['/bad-arg/log-fields-raising'] = { status: 200, body: 'ok:logged' };
CASES['/bad-arg/log-fields-key-raising'] = E500(/field keys must be strings \(got a table\)/);
CASES['/bad-arg/metric-labels-raising'] = { status: 200, body: 'ok:1' };
CASES['/bad-arg/metric-labels-index-only'] = E500(/the label 'ctx' of 'hostile_calls_total' must be a string \(got a nil\)/);
CASES['/bad-arg/metric-label-tostring'] = E500(/must be a string \(got a table\)/);
CASES['/bad-arg/metric-self'] = E500(/h2lua\.metric expected/);
CASES['/bad-arg/metric-name-tostring'] = E500(/string expected/);

// h2lua.timer never yields: timer.at and handle:cancel from every context, in a request and in a
// timer (a timer made by a timer); bad arguments raise, saying what is expected
for (const c of [...NO_YIELD, ...YIELDS, ...APP_COROUTINES, 'tostring', 'xpcall_handler']) {
  CASES[`/call/${c}/timer`] = { status: 200, body: 'ok:timer' };
  CASES[`/timer/${c}/timer`] = { status: 200, body: 'ok:timer' };
}
for (const c of ['len', 'pairs_mm']) {
  CASES[`/call/${c}/timer`] = { status: 200, body: { 'lua5.4': 'ok:timer', luajit: c === 'len' ? 'ok:nil' : 'ok:no __pairs' } };
}
const BAD_TIMER = {
  'delay-string': /number expected, got string/,
  'delay-table': /number expected, got table/,
  'delay-negative': /the delay is a number of seconds from 0 to 1e9/,
  'delay-nan': /the delay is a number of seconds from 0 to 1e9/,
  'delay-huge': /the delay is a number of seconds from 0 to 1e9/,
  'every-zero': /the interval is a number of seconds above 0/,
  'every-negative': /the interval is a number of seconds above 0/,
  'no-function': /function expected, got string/,
  'callable-table': /function expected, got table/,
  'too-many-args': /at most 200 arguments/,
  'cancel-not-a-handle': /h2lua\.timer\.handle expected, got table/,
};
for (const [c, log] of Object.entries(BAD_TIMER)) CASES[`/bad-arg/timer-${c}`] = E500(log);

const pick = (v, vm) => (v !== null && typeof v === 'object' && !(v instanceof RegExp) ? v[vm] : v);

/** The stderr lines the server logged for request path p. */
const linesFor = (server, p) => server.errorLog().filter((l) => l.path === p);

describe('hostile application', () => {
  let db;
  let server;
  let vm;
  before(async () => {
    db = await startMariaDB();
    const name = await db.freshDatabase('flaskcrud_hostile_app');
    server = await startServer({
      env: { ...APP, DATABASE_URL: db.url(name), WORKERS: '1', DB_POOL_SIZE: '1', DB_TIMEOUT: '5', LUA_MEMORY_MAX: '64', SHARED_STORES: 'hostile:64k' },
    });
    await waitReady(server);
    vm = (await server.get('/vm')).text;
    assert.ok(vm === 'luajit' || vm === 'lua5.4', vm);
  });
  after(async () => {
    if (server) await server.stop();
    if (db) await db.destroy();
  });

  it(`${Object.keys(CASES).length} misbehaving handlers: each its own 500 (or documented answer) and a log line naming it`, async () => {
    const failures = [];
    for (const [p, want] of Object.entries(CASES)) {
      const res = await server.get(p, { timeoutMs: 20000 });
      const status = pick(want.status, vm);
      if (res.status !== status) {
        failures.push(`${p}: ${res.status} ${res.text.slice(0, 200)} (want ${status})`);
        continue;
      }
      if (status === 200 && want.body !== undefined && res.text !== pick(want.body, vm)) {
        failures.push(`${p}: body ${JSON.stringify(res.text.slice(0, 200))} (want ${JSON.stringify(pick(want.body, vm))})`);
      }
      if (status === 500) {
        assert.equal(res.text, 'Internal Server Error\n', p);
        const find = () => linesFor(server, p).find((l) => l.level === 'error' && l.method === 'GET' && want.log.test(l.error));
        await server.waitFor(find, 5000, `the error line of ${p}`).catch(() => null);
        if (!find()) {
          failures.push(`${p}: no error line matching ${want.log} (lines: ${JSON.stringify(linesFor(server, p)).slice(0, 400)})`);
        }
      }
    }
    assert.deepEqual(failures, [], failures.join('\n'));
  });

  it('h2lua.log and h2lua.metrics from every context: the lines carry the request id, every call is counted', async () => {
    // the loop above called log from each context (a comparator more than once), each in a request of its own
    const logged = server.errorLog().filter((l) => l.msg === 'hostile log');
    assert.ok(logged.length >= LOG_METRIC_CONTEXTS.length);
    for (const l of logged) {
      assert.match(l.request_id, /^[0-9a-f]{16}$/);
      assert.equal(l.n, 1);
      assert.equal(l.t, '<table>');
    }
    assert.equal(new Set(logged.map((l) => l.request_id)).size, LOG_METRIC_CONTEXTS.length);
    assert.equal((await server.get('/metric/calls')).text, `ok:${logged.length}`); // the same contexts, the same calls
    // while app.lua loaded: from the chunk, a gsub callback, a sort comparator, a coroutine it made
    const loading = server.errorLog().filter((l) => l.msg === 'hostile app loading');
    assert.deepEqual(loading.map((l) => l.phase).sort(), ['coroutine', 'gsub', 'load']);
    for (const l of loading) assert.equal(l.request_id, undefined);
    assert.equal((await server.get('/metric/loads')).text, 'ok:3');
    const fields = server.errorLog().find((l) => l.msg === 'hostile fields');
    assert.equal(fields.level, 'error');
    assert.equal(fields.a, 'A');
    assert.equal(fields.v, '<table>');
  });

  it('req.files and req.form decoded from a multipart body in every context; a malformed one raises there', async () => {
    const B = 'hostileB';
    const body = (close) =>
      `--${B}\r\nContent-Disposition: form-data; name="title"\r\n\r\nHi\r\n` +
      `--${B}\r\nContent-Disposition: form-data; name="doc"; filename="../.a\x01.txt"\r\nContent-Type: text/plain\r\n\r\nhello\r\n` +
      (close ? `--${B}--\r\n` : '');
    const headers = { 'content-type': `multipart/form-data; boundary=${B}` };
    const failures = [];
    const contexts = [...NO_YIELD, ...YIELDS, ...APP_COROUTINES, 'tostring', 'xpcall_handler', 'len', 'pairs_mm'];
    for (const c of contexts) {
      const p = `/call/${c}/upload`;
      const good = await server.request(p, { method: 'POST', body: body(true), headers, timeoutMs: 10000 });
      // LuaJIT runs neither __len nor __pairs
      const want = vm === 'luajit' && c === 'len' ? 'ok:nil' : vm === 'luajit' && c === 'pairs_mm' ? 'ok:no __pairs' : 'ok:Hi:a.txt:5:1';
      if (good.status !== 200 || good.text !== want) failures.push(`${p}: ${good.status} ${good.text.slice(0, 200)} (want ${want})`);
      const bad = await server.request(p, { method: 'POST', body: body(false), headers, timeoutMs: 10000 });
      if (want !== 'ok:Hi:a.txt:5:1' || c === 'xpcall_handler') {
        // not run, or raised inside the message handler (xpcall then gives its own error: r stays nil)
        const badWant = c === 'xpcall_handler' ? 'ok:nil' : want;
        if (bad.status !== 200 || bad.text !== badWant) failures.push(`${p} (malformed): ${bad.status} ${bad.text.slice(0, 200)}`);
        continue;
      }
      if (bad.status !== 500) {
        failures.push(`${p} (malformed): ${bad.status} ${bad.text.slice(0, 200)} (want 500)`);
        continue;
      }
      const find = () => linesFor(server, p).find((l) => l.level === 'error' && l.method === 'POST' && /no closing delimiter/.test(l.error));
      await server.waitFor(find, 5000, `the error line of ${p}`).catch(() => null);
      if (!find()) failures.push(`${p} (malformed): no error line naming the malformed form`);
    }
    assert.deepEqual(failures, [], failures.join('\n'));
  });

  it('a dropped transaction gives its connection back (DB_POOL_SIZE=1): the next queries are served', async () => {
    for (const p of ['/tx/dropped', '/tx/dropped-error', '/tx/dropped', '/tx/dropped-error']) {
      const res = await server.get(p, { timeoutMs: 10000 });
      assert.equal(res.status, p.endsWith('error') ? 500 : 200, `${p}: ${res.text}`);
      const q = await server.get('/q', { timeoutMs: 10000 });
      assert.equal(q.status, 200, `/q after ${p}: ${q.status} ${q.text}`);
      assert.equal(q.text, 'ok:1');
    }
  });

  it("a request's coroutine resumed or closed by another request: that one fails, the parked one finishes", async () => {
    for (const hijack of ['/co/resume-parked', '/co/close-parked']) {
      const parked = server.get('/co/park', { timeoutMs: 10000 });
      await sleep(100);
      const res = await server.get(hijack, { timeoutMs: 10000 });
      if (hijack === '/co/close-parked' && vm === 'luajit') {
        assert.equal(res.status, 409, `${hijack}: ${res.text}`); // LuaJIT has no coroutine.close
      } else {
        assert.equal(res.status, 500, `${hijack}: ${res.status} ${res.text}`);
        await server.waitFor(
          () => linesFor(server, hijack).some((l) => /only the core resumes or closes/.test(l.error)),
          5000,
          `${hijack}: the log line saying why`,
        );
      }
      const p = await parked;
      assert.equal(p.status, 200, `/co/park: ${p.text}`);
      assert.equal(p.text, 'ok:parked');
    }
  });

  it('streams that flush or sleep where they cannot yield are cut and logged', async () => {
    for (const p of ['/stream/gsub-flush', '/stream/sort-sleep']) {
      await server.get(p, { timeoutMs: 10000 }).catch(() => null); // a cut response: either way
      await server.waitFor(
        () => linesFor(server, p).some((l) => l.msg === 'stream error' && NOT_HERE.test(l.error)),
        5000,
        `the stream error of ${p}`,
      );
    }
    const res = await server.get('/stream/index-flush', { timeoutMs: 10000 });
    assert.equal(res.status, 200);
    assert.equal(res.text, 'start\nend\n');
  });

  it('timers made while app.lua loaded, from every context, were made; the start-up job used the database', async () => {
    const load = (await server.get('/timer/load')).text.split(';');
    assert.equal(load.length, 19, load.join(';'));
    for (const entry of load) {
      const [c, v] = entry.split('=');
      const want = vm === 'luajit' && c === 'len' ? 'nil' : vm === 'luajit' && c === 'pairs_mm' ? 'no __pairs' : 'timer';
      assert.equal(v, want, entry);
    }
    const startup = await server.get('/timer/startup');
    assert.equal(startup.text, 'ok:1');
  });

  it('a timer that raises where it cannot yield is logged as a timer error, with its function and traceback', async () => {
    const lines = server.errorLog().filter((l) => l.msg === 'timer error' && NOT_HERE.test(l.error));
    assert.ok(lines.length >= 1, 'timer error lines');
    for (const l of lines) {
      assert.equal(l.worker, 0);
      assert.match(l.function, /hostile\/app\.lua:\d+$/);
      assert.match(l.traceback, /stack traceback/);
      assert.equal(l.path, undefined, 'no request in a timer error');
    }
  });

  it('timers whose functions misbehave: one timer error line each, the process unharmed', async () => {
    const TIMER_ERRORS = {
      yield: /coroutine\.yield/,
      nil: /nil/,
      'tostring-raises': /table/,
      memory: /not enough memory.*LUA_MEMORY_MAX/,
      overflow: /stack overflow/,
      'resume-request': /only the core resumes or closes/,
      'timer-in-timer': /the inner timer ran/,
    };
    for (const [c, re] of Object.entries(TIMER_ERRORS)) {
      const before = server.errorLog().filter((l) => l.msg === 'timer error' && re.test(l.error)).length;
      const res = await server.get(`/timer-err/${c}`, { timeoutMs: 20000 });
      assert.equal(res.status, 200, `${c}: ${res.text}`);
      await server.waitFor(
        () => server.errorLog().filter((l) => l.msg === 'timer error' && re.test(l.error)).length > before,
        10000,
        `the timer error line of ${c}`,
      );
    }
    assert.equal((await server.get('/q')).text, 'ok:1');
  });

  it('the same process then serves normal requests, and exits cleanly', async () => {
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => server.get(i % 2 ? '/q' : '/hello')));
    for (const [i, r] of results.entries()) {
      assert.equal(r.status, 200);
      assert.equal(r.text, i % 2 ? 'ok:1' : 'hello');
    }
    assert.equal((await server.get('/healthz')).status, 200);
    assert.equal(sanitizerReport(server.stderr), null);
    assert.ok(!/PANIC/.test(server.stderr), 'no Lua panic');
    await server.stopClean();
  });
});

describe('hostile application: a handler that never returns (LUA_TIMEOUT)', () => {
  let server;
  let vm;
  before(async () => {
    server = await startServer({ env: { ...APP, WORKERS: '2', LUA_TIMEOUT: '1' } });
    vm = (await server.get('/vm')).text;
  });
  after(async () => {
    if (server) await server.stop({ timeoutMs: 20000 });
  });

  it('is logged with its worker and path, /healthz answers 503, and SIGTERM still ends the process', async () => {
    const spin = request(server.port, '/spin', { timeoutMs: 30000 }).catch((e) => ({ status: 0, text: e.message }));
    await server.waitFor(
      () => server.errorLog().some((l) => l.path === '/spin' && /stuck in Lua/.test(l.msg) && l.worker !== undefined),
      15000,
      'the watchdog line',
    );
    // a wedged worker holds the connections the kernel gives it: ask on new connections until a
    // healthy worker answers
    let health = null;
    for (let i = 0; i < 20 && health === null; i++) {
      const r = await request(server.port, '/healthz', { timeoutMs: 1500 }).catch(() => null);
      if (r !== null) health = r;
    }
    assert.ok(health !== null, '/healthz answered on some worker');
    assert.equal(health.status, 503, health.text);
    if (vm === 'lua5.4') {
      // 5.4 checks hooks in every loop: the handler is interrupted, its request answered 500
      const r = await spin;
      assert.equal(r.status, 500, r.text);
      await server.waitFor(
        () => server.errorLog().some((l) => l.path === '/spin' && /interrupted/.test(l.error)),
        5000,
        'the interrupted handler line',
      );
      assert.equal((await server.get('/hello', { timeoutMs: 5000 })).status, 200);
    }
    const stopped = await server.stop({ timeoutMs: 20000 });
    assert.equal(stopped.killed, false, `exited on SIGTERM; stderr:\n${server.stderr.slice(-2000)}`);
    assert.equal(sanitizerReport(server.stderr), null);
    if (vm === 'lua5.4') assert.equal(stopped.code, 0, server.stderr.slice(-2000));
    else assert.ok(stopped.code === 0 || /exiting without it/.test(server.stderr), `code ${stopped.code}`);
    await spin;
  });
});
