// Webhooks of the entries app (WEBHOOK_URL, scripts/lib/webhook.lua): two app servers on one
// database post every acknowledged change to a local receiver that is down, then answers 500, then
// is slow, then is up. Every change arrives, signed, in order per entry, and is taken once; the
// pages answer while the receiver is down or slow; an event the receiver keeps refusing is given up
// after WEBHOOK_MAX_ATTEMPTS and the entry's next event goes; a receiver that fails pauses the
// dispatcher, so that a burst of changes does not bring one post (and one round) each.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { startMariaDB } from './support/mariadb.mjs';
import { Client, startApp } from './support/client.mjs';
import { freePort, sleep } from './support/server.mjs';

const SECRET = 'webhook-test-secret-0123456789';
const TOKEN = 'metrics-token-0123456789abcdef';

/** A receiver on a fixed port: mode 'down' (not listening), 'error' (500), 'slow' (200 after slowMs), 'up'. */
class Receiver {
  constructor(port) {
    this.port = port;
    this.mode = 'down';
    this.slowMs = 0;
    this.arrivals = []; // every post: { id, type, subject, answered, signed, attempt }
    this.refuse = () => false; // (event) => true: answer 500 whatever the mode
    this.server = null;
  }

  handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const ts = req.headers['x-webhook-timestamp'];
      const want = 'sha256=' + crypto.createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex');
      let ev = {};
      try {
        ev = JSON.parse(body);
      } catch {
        ev = { id: null };
      }
      const a = {
        id: ev.id, type: ev.type, subject: ev.subject, data: ev.data, time: ev.time,
        headerId: req.headers['x-webhook-id'], attempt: Number(req.headers['x-webhook-attempt']),
        signed: req.headers['x-webhook-signature'] === want, contentType: req.headers['content-type'],
        answered: 0,
      };
      this.arrivals.push(a);
      let status = this.mode === 'error' || this.refuse(ev) ? 500 : 200;
      if (status === 200 && this.mode === 'slow') await sleep(this.slowMs);
      a.answered = status;
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'no');
    });
  }

  async up(mode) {
    this.mode = mode;
    if (this.server) return;
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', resolve);
    });
  }

  async down() {
    this.mode = 'down';
    if (!this.server) return;
    const s = this.server;
    this.server = null;
    s.closeAllConnections?.();
    await new Promise((resolve) => s.close(resolve));
  }

  /** The posts answered 2xx, in the order they were answered. */
  get taken() {
    return this.arrivals.filter((a) => a.answered >= 200 && a.answered < 300);
  }
}

/** Waits until fn() is true, polling; fails with what(…) after timeoutMs. */
async function until(fn, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(what());
    await sleep(100);
  }
}

async function metric(server, name) {
  const res = await server.request('/metrics', { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 200);
  return res.text.split('\n').filter((l) => l.startsWith(name));
}

describe('webhooks: every acknowledged change of two app servers reaches a receiver that was down, failing and slow', () => {
  let db;
  let receiver;
  const servers = [];
  const NAME = 'flaskcrud_webhooks';
  const expected = new Map(); // subject -> [type, ...] in the order the changes were acknowledged
  const latencies = [];

  before(async () => {
    db = await startMariaDB();
    receiver = new Receiver(await freePort());
    const env = {
      WEBHOOK_URL: `http://127.0.0.1:${receiver.port}/hook`,
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_BACKOFF: '1',
      WEBHOOK_BACKOFF_MAX: '2',
      METRICS_TOKEN: TOKEN,
    };
    await db.freshDatabase(NAME);
    servers.push(await startApp(db, NAME, env));
    servers.push(await startApp(db, NAME, env));
  });

  after(async () => {
    for (const s of servers) await s.stop();
    await receiver?.down();
    await db?.destroy();
  });

  const note = (id, type) => {
    const subject = `entry:${id}`;
    if (!expected.has(subject)) expected.set(subject, []);
    expected.get(subject).push(type);
  };

  /** Runs one change and keeps how long it took; the change must be acknowledged. */
  async function timed(fn) {
    const t0 = Date.now();
    const res = await fn();
    latencies.push(Date.now() - t0);
    return res;
  }

  // Changes of every kind, alternating the two app servers, pages and API.
  async function changes(round) {
    const [a, b] = servers.map((s) => new Client(s));
    const ids = [];
    for (let i = 0; i < 4; i++) {
      const res = await timed(() => a.json('POST', '/api/entries', { title: `r${round} e${i}`, description: 'webhook' }));
      assert.equal(res.status, 201, res.text);
      const id = JSON.parse(res.text).id;
      note(id, 'entry.created');
      ids.push(id);
    }
    const page = await timed(async () => a.add(`r${round} page`, 'from the form'));
    assert.equal(page.status, 303, page.text);
    const last = await (await b.json('GET', '/api/entries?limit=100&after=' + (ids.at(-1)))).text;
    const pageId = JSON.parse(last).entries.at(-1).id;
    note(pageId, 'entry.created');
    ids.push(pageId);
    for (const id of ids) {
      const res = await timed(() => b.json('PATCH', `/api/entries/${id}`, { title: `r${round} changed ${id}` }));
      assert.equal(res.status, 200, res.text);
      note(id, 'entry.updated');
    }
    for (const id of ids.slice(0, 3)) {
      const res = await timed(async () => a.post(`/turn/${id}`, { csrf_token: await a.token() }));
      assert.equal(res.status, 303, res.text);
      note(id, 'entry.toggled');
    }
    for (const id of ids.slice(1, 3)) {
      const res = await timed(() => (id % 2 ? a : b).json('DELETE', `/api/entries/${id}`));
      assert.equal(res.status, 204, res.text);
      note(id, 'entry.deleted');
    }
  }

  it('changes made while the receiver is down are acknowledged at once', async () => {
    await changes(1);
    await sleep(1500);
    assert.equal(receiver.arrivals.length, 0);
    const [row] = await db.root(`SELECT COUNT(*) AS n FROM \`${NAME}\`.webhook_outbox WHERE state = 'pending'`);
    const total = [...expected.values()].reduce((n, l) => n + l.length, 0);
    assert.equal(Number(row.n), total, 'every change has its event in the outbox');
  });

  it('a receiver answering 500 gets the events again, with backoff', async () => {
    await receiver.up('error');
    await until(() => receiver.arrivals.length >= 4, 30000, () => `posts while failing: ${receiver.arrivals.length}`);
    await sleep(2000);
    assert.equal(receiver.taken.length, 0);
    const retried = receiver.arrivals.filter((a) => a.attempt > 1);
    assert.ok(retried.length > 0, 'an event was tried again');
    for (const a of receiver.arrivals) assert.equal(a.id, a.headerId);
  });

  it('changes made while the receiver is slow do not wait for it', async () => {
    receiver.slowMs = 6000;
    receiver.mode = 'slow';
    const before = latencies.length;
    await changes(2);
    const slowest = Math.max(...latencies.slice(before));
    console.log(`# slowest change while the receiver took ${receiver.slowMs} ms a post: ${slowest} ms`);
    assert.ok(slowest < receiver.slowMs, `a change took ${slowest} ms, as long as the receiver`);
  });

  it('once up, every acknowledged change is taken exactly once, signed, in order per entry', async () => {
    receiver.mode = 'up';
    const total = [...expected.values()].reduce((n, l) => n + l.length, 0);
    await until(() => new Set(receiver.taken.map((a) => a.id)).size >= total, 90000,
      () => `taken ${new Set(receiver.taken.map((a) => a.id)).size} of ${total}`);
    await sleep(1500); // anything more would be a duplicate
    const taken = receiver.taken;
    assert.equal(taken.length, total, 'no event taken twice');
    assert.equal(new Set(taken.map((a) => a.id)).size, total);
    for (const a of receiver.arrivals) {
      assert.ok(a.signed, `event ${a.id} is signed with WEBHOOK_SECRET`);
      assert.equal(a.contentType, 'application/json');
      assert.match(a.id, /^[0-9a-f]{32}$/);
      assert.match(a.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
    const got = new Map();
    for (const a of taken) {
      if (!got.has(a.subject)) got.set(a.subject, []);
      got.get(a.subject).push(a.type);
    }
    assert.deepEqual(Object.fromEntries(got), Object.fromEntries(expected), 'in order per entry');
    const updated = taken.find((a) => a.type === 'entry.updated');
    assert.match(updated.data.title, /changed/);
    const rows = await db.root(`SELECT state, COUNT(*) AS n FROM \`${NAME}\`.webhook_outbox GROUP BY state`);
    assert.deepEqual(rows.map((r) => [r.state, Number(r.n)]), [['delivered', total]]);
  });

  it('each outcome is logged and counted in /metrics', async () => {
    let delivered = 0;
    let retries = 0;
    for (const s of servers) {
      for (const l of await metric(s, 'webhook_deliveries_total')) {
        if (l.includes('outcome="delivered"')) delivered += Number(l.split(' ').pop());
        if (l.includes('outcome="retry"')) retries += Number(l.split(' ').pop());
      }
    }
    assert.equal(delivered, receiver.taken.length);
    // a retry is a post the receiver refused (500) or one it never got (down: connection refused)
    const refused = receiver.arrivals.length - receiver.taken.length;
    assert.ok(retries > refused, `retries ${retries}, posts answered 500 ${refused}, and the refused connections`);
    const logs = servers.map((s) => s.stdout + s.stderr).join('\n');
    assert.match(logs, /webhook failed, will retry/);
    assert.match(logs, /webhook delivered/);
  });
});

describe('webhooks: an event the receiver keeps refusing is given up after WEBHOOK_MAX_ATTEMPTS', () => {
  let db;
  let receiver;
  let server;
  const NAME = 'flaskcrud_webhooks_giveup';

  before(async () => {
    db = await startMariaDB();
    receiver = new Receiver(await freePort());
    await receiver.up('up');
    await db.freshDatabase(NAME);
    server = await startApp(db, NAME, {
      WEBHOOK_URL: `http://127.0.0.1:${receiver.port}/hook`,
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_BACKOFF: '1',
      WEBHOOK_BACKOFF_MAX: '1',
      WEBHOOK_MAX_ATTEMPTS: '3',
      METRICS_TOKEN: TOKEN,
    });
  });

  after(async () => {
    await server?.stop();
    await receiver?.down();
    await db?.destroy();
  });

  it('the refused event is tried 3 times, logged and counted as failed; the entry\'s next event goes', async () => {
    receiver.refuse = (ev) => ev.type === 'entry.created' && ev.data?.title === 'refused';
    const c = new Client(server);
    const res = await c.json('POST', '/api/entries', { title: 'refused', description: 'x' });
    assert.equal(res.status, 201);
    const id = JSON.parse(res.text).id;
    assert.equal((await c.json('PATCH', `/api/entries/${id}`, { title: 'accepted' })).status, 200);
    await until(() => receiver.taken.some((a) => a.type === 'entry.updated'), 30000,
      () => `arrivals: ${JSON.stringify(receiver.arrivals.map((a) => [a.type, a.answered]))}`);
    const refused = receiver.arrivals.filter((a) => a.type === 'entry.created');
    assert.deepEqual(refused.map((a) => [a.attempt, a.answered]), [[1, 500], [2, 500], [3, 500]]);
    const updated = receiver.arrivals.filter((a) => a.type === 'entry.updated');
    assert.ok(updated.every((a) => a.answered === 200) && updated.length === 1);
    // the update was posted only once the creation was given up
    assert.ok(receiver.arrivals.indexOf(updated[0]) > receiver.arrivals.indexOf(refused[2]));
    const [row] = await db.root(`SELECT state, attempts, last_error FROM \`${NAME}\`.webhook_outbox WHERE type = 'entry.created'`);
    assert.deepEqual([row.state, Number(row.attempts), row.last_error], ['failed', 3, 'HTTP 500']);
    const failed = (await metric(server, 'webhook_deliveries_total')).find((l) => l.includes('outcome="failed"'));
    assert.ok(failed && Number(failed.split(' ').pop()) === 1, `failed counted: ${failed}`);
    assert.match(server.stdout + server.stderr, /webhook given up/);
  });
});

describe('webhooks: a receiver that fails pauses the dispatcher, so a burst of changes does not bring a post each', () => {
  let db;
  let receiver;
  let server;
  const NAME = 'flaskcrud_webhooks_pause';
  const WORKERS = 2;
  const MIN_PAUSE_S = 0.5; // the first pause: the upper half of WEBHOOK_BACKOFF (1 s)

  before(async () => {
    db = await startMariaDB();
    receiver = new Receiver(await freePort());
    await receiver.up('error');
    await db.freshDatabase(NAME);
    server = await startApp(db, NAME, {
      WORKERS: String(WORKERS),
      WRITE_LIMIT: 'off', // the burst comes from one client, faster than a person
      WEBHOOK_URL: `http://127.0.0.1:${receiver.port}/hook`,
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_BACKOFF: '1',
      WEBHOOK_BACKOFF_MAX: '2',
    });
  });

  after(async () => {
    await server?.stop();
    await receiver?.down();
    await db?.destroy();
  });

  it('150 changes while the receiver answers 500: at most one post per worker and pause; then all are delivered', async () => {
    const c = new Client(server);
    const N = 150;
    const t0 = Date.now();
    for (let i = 0; i < N; i++) {
      const res = await c.json('POST', '/api/entries', { title: `burst ${i}`, description: 'x' });
      assert.equal(res.status, 201, res.text);
    }
    const seconds = (Date.now() - t0) / 1000;
    const posts = receiver.arrivals.length;
    // every post that fails pauses its worker at least MIN_PAUSE_S; one more post each may start
    // as the burst ends
    const bound = WORKERS * (2 + Math.ceil(seconds / MIN_PAUSE_S));
    console.log(`# ${N} changes in ${seconds.toFixed(2)} s with the receiver failing: ${posts} posts (bound ${bound})`);
    assert.ok(posts >= 1, 'the receiver was tried');
    assert.ok(posts <= bound, `${posts} posts in ${seconds} s: more than one per worker and pause (${bound})`);
    receiver.mode = 'up';
    await until(() => new Set(receiver.taken.map((a) => a.id)).size >= N, 60000,
      () => `taken ${new Set(receiver.taken.map((a) => a.id)).size} of ${N}`);
    const rows = await db.root(`SELECT state, COUNT(*) AS n FROM \`${NAME}\`.webhook_outbox GROUP BY state`);
    assert.deepEqual(rows.map((r) => [r.state, Number(r.n)]), [['delivered', N]]);
  });
});
