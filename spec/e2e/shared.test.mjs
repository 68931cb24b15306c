// The shared store (require "h2lua.shared", core/shared_api.h) on a real server with several
// workers (spec/e2e/fixtures/shared): a value one request sets is what requests served by every
// other worker get; incr from concurrent requests on every worker adds up exactly; the stores are
// kept across a SIGHUP reload; TTLs expire; a full store evicts the least recently used entries,
// says so (forcible) and counts them in /metrics; every misuse is a clear error value.
// concurrency: the incr totals under concurrent requests (run 30 times in a loop for the report).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { FIXTURES, metricSum, request, runOnce, sleep, startServer } from './support/server.mjs';

const TOKEN = 'metrics-token-0123456789';
const WORKERS = 4;

describe('h2lua.shared', () => {
  let server;
  const get = async (p) => {
    const res = await server.get(p, { timeoutMs: 20000 });
    assert.equal(res.status, 200, `${p}: ${res.text}`);
    return JSON.parse(res.text);
  };

  before(async () => {
    server = await startServer({
      env: {
        SCRIPTS_DIR: path.join(FIXTURES, 'shared'),
        WORKERS: String(WORKERS),
        SHARED_STORES: 'cache:1m,small:16k',
        METRICS_TOKEN: TOKEN,
      },
    });
  });
  after(async () => {
    if (server) await server.stop();
  });

  it('a value set by one request is what every worker gets', async () => {
    const set = await get('/set?k=greeting&v=hello');
    assert.deepEqual([set.ok, set.err, set.forcible], [true, null, false]);
    const seen = new Map();
    // every request is a new connection: the kernel spreads them over the workers
    for (let i = 0; i < 400 && seen.size < WORKERS; i++) {
      const r = await get('/get?k=greeting');
      seen.set(r.worker, r);
    }
    assert.equal(seen.size, WORKERS, `requests reached workers ${[...seen.keys()]}`);
    for (const r of seen.values()) assert.deepEqual([r.value, r.type], ['hello', 'string'], JSON.stringify(r));
    // the other types come back as they went in, on whichever worker
    await get('/set?k=n&v=2.5&type=number');
    await get('/set?k=i&v=42&type=number');
    await get('/set?k=b&v=false&type=boolean');
    assert.deepEqual([(await get('/get?k=n')).value, (await get('/get?k=i')).value, (await get('/get?k=b')).value], [2.5, 42, false]);
    assert.match((await get('/get?k=i')).type, /^(integer|number)$/);
    await get('/set?k=greeting&type=nil'); // nil deletes
    assert.equal((await get('/get?k=greeting')).value, null);
  });

  it('add, replace, delete, ttl and expire as ngx.shared.DICT does them', async () => {
    const added = await get('/add?k=once&v=1');
    assert.deepEqual([added.ok, added.err, added.forcible], [true, null, false]);
    assert.equal((await get('/get?k=once')).value, '1');
    const again = await get('/add?k=once&v=2');
    assert.deepEqual([again.ok, again.err], [false, 'exists']);
    assert.equal((await get('/get?k=once')).value, '1');
    const rep = await get('/replace?k=absent&v=2');
    assert.deepEqual([rep.ok, rep.err], [false, 'not found']);
    assert.equal((await get('/get?k=absent')).value, null);
    assert.equal((await get('/replace?k=once&v=3')).ok, true);
    assert.equal((await get('/get?k=once')).value, '3');
    assert.deepEqual([(await get('/ttl?k=once')).value, (await get('/ttl?k=absent')).err], [0, 'not found']);
    assert.equal((await get('/delete?k=once')).value, true);
    assert.equal((await get('/get?k=once')).value, null);
    // a TTL: seen until it runs out (expire shortens it), then gone on every worker
    await get('/set?k=brief&v=x&ttl=5');
    const ttl = (await get('/ttl?k=brief')).value;
    assert.ok(ttl > 0 && ttl <= 5, `ttl ${ttl}`);
    assert.equal((await get('/get?k=brief')).value, 'x');
    assert.equal((await get('/expire?k=brief&ttl=0.3')).value, true);
    await sleep(500);
    for (let i = 0; i < 8; i++) assert.equal((await get('/get?k=brief')).value, null);
    await get('/set?k=later&v=x');
    assert.equal((await get('/expire?k=later&ttl=0.2')).value, true);
    await get('/set?k=gone1&v=x&ttl=0.1');
    await get('/set?k=gone2&v=x&ttl=0.1');
    await sleep(400);
    assert.ok((await get('/flush_expired')).value >= 3);
    assert.equal((await get('/flush_expired')).value, 0);
    assert.equal((await get('/get?k=later')).value, null);
  });

  it('incr from concurrent requests on every worker adds up exactly', async () => {
    // 200 requests at once, each one incr: every value from 1 to 200 is handed out exactly once
    const one = await Promise.all(Array.from({ length: 200 }, () => get('/incr?k=tickets&n=1&init=0')));
    const values = one.map((r) => r.value).sort((a, b) => a - b);
    assert.deepEqual(values, Array.from({ length: 200 }, (_, i) => i + 1));
    assert.equal(new Set(one.map((r) => r.worker)).size, WORKERS, 'every worker took part');
    // 64 requests, each 2500 incr in a loop, on all workers at once
    const loops = await Promise.all(Array.from({ length: 64 }, () => get('/bench?op=incr&n=2500&k=total')));
    assert.equal(new Set(loops.map((r) => r.worker)).size, WORKERS, 'every worker took part');
    assert.equal((await get('/get?k=total')).value, 64 * 2500);
    // without init an absent key is not found; init_ttl applies to the entry incr creates
    const absent = await get('/incr?k=nope&n=1');
    assert.deepEqual([absent.value, absent.err], [null, 'not found']);
    assert.equal((await get('/incr?k=fresh&n=2&init=40&ttl=60')).value, 42);
    const t = (await get('/ttl?k=fresh')).value;
    assert.ok(t > 30 && t <= 60, `ttl ${t}`);
    assert.equal((await get('/incr?k=fresh&n=0.5')).value, 42.5);
  });

  it('every misuse is a clear error value, never a raised error', async () => {
    const l = await get('/limits');
    const pair = (r) => [r['1'] ?? null, r['2'] ?? null];
    assert.deepEqual(pair(l.key_table), [null, 'the key must be a string, got table']);
    assert.deepEqual(pair(l.key_number), [false, 'the key must be a string, got number']);
    assert.deepEqual(pair(l.key_nil), [null, 'the key must be a string, got nil']);
    assert.deepEqual(pair(l.key_empty), [false, 'the key must be 1 to 250 bytes, got 0']);
    assert.deepEqual(pair(l.key_long), [false, 'the key must be 1 to 250 bytes, got 251']);
    assert.deepEqual(pair(l.key_250), [true, null]);
    assert.deepEqual(pair(l.value_table), [false, 'the value must be a string, a number or a boolean (nil deletes), got table']);
    assert.deepEqual(pair(l.value_function), [false, 'the value must be a string, a number or a boolean (nil deletes), got function']);
    assert.deepEqual(pair(l.add_nil), [false, 'the value must be a string, a number or a boolean, got nil']);
    assert.deepEqual(pair(l.ttl_string), [false, 'the ttl must be a number of seconds, got string']);
    assert.deepEqual(pair(l.ttl_negative), [false, 'the ttl must be a number of seconds from 0 to 10 years']);
    assert.deepEqual(pair(l.incr_string), [null, 'the increment must be a number, got string']);
    assert.deepEqual(pair(l.incr_not_number), [null, 'not a number']);
    assert.deepEqual(pair(l.incr_absent), [null, 'not found']);
    assert.deepEqual(pair(l.too_big), [false, "too large for the store 'cache' (1048576 bytes)"]);
    assert.equal(l.missing_store, true);
    assert.equal(l.tostring, "h2lua.shared store 'cache'");
    // a method called without its store (a dot for a colon) raises, as ngx's do
    assert.equal(l.bad_self[0], false);
    assert.match(l.bad_self[1], /h2lua\.shared\.store expected, got string/);
  });

  it('a full store evicts the least recently used entries, says so, and counts them in /metrics', async () => {
    const space = await get('/space?store=small');
    assert.equal(space.capacity, 16384);
    assert.ok(space.free > 15000 && space.free < 16384, `free ${space.free}`);
    const before = await metricSum(server, 'h2lua_shared_evictions_total', TOKEN);
    assert.equal(before, 0);
    // 40 values of 1000 bytes fit 16k about 14 times: the first ones go
    await get('/set?store=small&k=keep&v=x');
    const fill = await get('/fill?store=small&prefix=f&n=40&size=1000');
    assert.equal(fill.err, null);
    assert.ok(fill.forcible >= 20, `forcible ${fill.forcible}`);
    assert.equal((await get('/get?store=small&k=f1')).value, null);
    assert.equal((await get('/get?store=small&k=keep')).value, null, 'the least recent went first');
    assert.equal((await get('/get?store=small&k=f40')).value.length, 1000);
    const res = await request(server.port, '/metrics', { headers: { authorization: `Bearer ${TOKEN}` } });
    const metric = (name, store) => Number(new RegExp(`^${name}\\{store="${store}"\\} (\\d+)$`, 'm').exec(res.text)?.[1]);
    const evicted = metric('h2lua_shared_evictions_total', 'small');
    assert.ok(evicted >= fill.forcible + 1 && evicted <= 41, `evictions ${evicted}, forcible ${fill.forcible}`);
    assert.equal(metric('h2lua_shared_evictions_total', 'cache'), 0);
    assert.equal(metric('h2lua_shared_capacity_bytes', 'small'), 16384);
    const used = metric('h2lua_shared_used_bytes', 'small');
    assert.ok(used <= 16384 && used > 12000, `used ${used}`);
    assert.ok(metric('h2lua_shared_entries', 'small') >= 10);
    // a value larger than the store is refused and evicts nothing
    const big = await get('/fill?store=small&prefix=big&n=1&size=20000');
    assert.equal(big.err, "too large for the store 'small' (16384 bytes)");
    assert.equal((await get('/get?store=small&k=f40')).value.length, 1000);
    // an unknown store is nil in Lua
    assert.equal((await server.get('/get?store=nope&k=x')).status, 404);
  });

  it('the stores are kept across a reload: what was set, and app.lua ran again on each worker', async () => {
    await get('/set?k=survivor&v=still%20here');
    const loads = (await get('/loads')).loads;
    assert.equal(loads, WORKERS, 'each worker loaded app.lua once, and incr ran while it loaded');
    const outcomes = () => (server.stderr.match(/"msg":"reloaded scripts and views"/g) || []).length;
    server.signal('SIGHUP');
    await server.waitFor(() => outcomes() >= WORKERS, 15000, `the reload of ${WORKERS} workers`);
    const seen = new Set();
    for (let i = 0; i < 400 && seen.size < WORKERS; i++) {
      const r = await get('/loads');
      assert.equal(r.version, 1, 'the new version serves');
      assert.equal(r.loads, 2 * WORKERS);
      seen.add(r.worker);
    }
    assert.equal(seen.size, WORKERS);
    assert.equal((await get('/get?k=survivor')).value, 'still here');
    assert.equal((await get('/get?k=total')).value, 64 * 2500);
  });

  it('exits cleanly (no sanitizer report)', async () => {
    await server.stopClean();
  });
});

describe('SHARED_STORES', () => {
  it('a bad value exits 2 with one line naming it', async () => {
    const r = await runOnce({ env: { SHARED_STORES: 'cache:10m,cache:1m' } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr.trim(), /^h2lua: invalid configuration: SHARED_STORES: the store 'cache' is declared twice$/);
  });
});
