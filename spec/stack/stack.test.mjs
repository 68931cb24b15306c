// The local three-tier stack (ops/stack): nginx over HTTPS -> two h2lua -> MariaDB primary + GTID
// replica. Every request goes through the front, as a browser's would. The stack runs in its own
// directory, on its own ports and namespace names (spec/stack/support.mjs), first on loopback,
// then with --isolated; `ops/stack down` must leave no process and no namespace behind.
//
// The application under test is scripts/ (STACK_SCRIPTS_DIR chooses another): GET / lists the
// entries through db.read and carries a csrf_token form field and a session cookie; POST /add
// (title, description, csrf_token) answers 303. The stack starts empty and the tests keep it under
// one page of entries (50), so that an entry just added shows on GET /.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import {
  Client, Stack, canConnect, curlIn, listenIn, load, namespaces, plainGet, running, sleep, waitFor,
} from './support.mjs';
import { testssl } from '../support/testssl.mjs';

const stack = await Stack.create();
const pidsSeen = new Set(); // every pid of the stack ever seen, all gone at the end
const unique = (what) => `${what}${Date.now().toString(36)}${Math.floor(Math.random() * 1e6)}`;

function notePids() {
  for (const part of ['nginx', 'primary', 'replica', 'app-1', 'app-2']) {
    try {
      const pid = stack.pid(part);
      pidsSeen.add(pid);
      // nginx's workers
      for (const c of fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean)) pidsSeen.add(Number(c));
    } catch {
      /* not running */
    }
  }
}

async function comSelect(role) {
  const rows = await stack.sql(role, "SHOW GLOBAL STATUS LIKE 'Com_select'");
  return Number(rows[0][1]);
}

// 1 when every worker of both app servers takes the replica as usable: each logs its changes
// ("replica usable" / "replica not usable"), and a worker that has not come back reads the primary
function replicaUsableEverywhere() {
  for (const i of [1, 2]) {
    const last = new Map();
    for (const line of fs.readFileSync(path.join(stack.dir, `app-${i}.err`), 'utf8').split('\n')) {
      if (!line.includes('"msg":"replica ')) continue;
      try {
        const e = JSON.parse(line);
        last.set(e.worker, e.msg.startsWith('replica usable'));
      } catch {
        /* a line cut by a write in progress */
      }
    }
    if (last.size < Number(stack.env.WORKERS) || [...last.values()].some((usable) => !usable)) return false;
  }
  return true;
}

// the last server nginx tried for a response (X-Upstream names it: app-1, app-2)
const upstreamOf = (res) => String(res.headers['x-upstream'] || '');

after(async () => {
  // whatever happened above: nothing of the stack may stay
  try {
    await stack.ops(['down']);
  } finally {
    fs.rmSync(stack.dir, { recursive: true, force: true });
  }
});

describe('the stack on loopback', () => {
  let client;
  before(async () => {
    await stack.ops(['up', '--apps', '2']);
    notePids();
    client = new Client('127.0.0.1', stack.httpsPort);
  });
  after(() => client?.close());

  it('redirects HTTP to HTTPS', async () => {
    const res = await plainGet('127.0.0.1', stack.httpPort, '/some/where?x=1');
    assert.equal(res.status, 301);
    assert.equal(res.headers.location, `https://localhost:${stack.httpsPort}/some/where?x=1`);
  });

  it('speaks HTTP/2 over TLS, with HSTS and the app servers security headers', async () => {
    const session = http2.connect(`https://127.0.0.1:${stack.httpsPort}`, { rejectUnauthorized: false, servername: 'localhost' });
    try {
      const headers = await new Promise((resolve, reject) => {
        const req = session.request({ ':path': '/healthz' });
        req.on('response', (h) => {
          req.resume();
          req.on('end', () => resolve(h));
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(headers[':status'], 200);
      // nginx's, and only nginx's: h2lua behind it speaks plain HTTP and sends none (one header, not two)
      assert.equal(headers['strict-transport-security'], 'max-age=31536000');
      assert.equal(headers['x-content-type-options'], 'nosniff'); // from h2lua, passed through
      assert.match(headers['x-request-id'], /^[0-9a-f]{16}$/);
      assert.match(headers['x-upstream'], /^app-\d+$/); // by name: no address of the private tier
    } finally {
      session.close();
    }
  });

  it('testssl.sh finds nothing of severity LOW or above at the front but the self-signed certificate', { timeout: 300000 }, async () => {
    const { findings, serverFindings, output } = await testssl(`127.0.0.1:${stack.httpsPort}`, { path: '/healthz' });
    assert.ok(findings.some((f) => f.id === 'cert_chain_of_trust'), `no certificate findings: the scan did not run?\n${output.slice(-3000)}`);
    assert.deepEqual(serverFindings, [], `the front's findings:\n${output}`);
  });

  it('adds an entry and lists it (GET / for the session and csrf_token, POST /add, GET /)', async () => {
    const title = unique('crud');
    const res = await client.add(title, 'the CRUD round trip');
    assert.equal(res.status, 303, res.body);
    assert.equal(res.headers.location, '/');
    const page = await client.get('/');
    assert.equal(page.status, 200);
    assert.ok(page.body.includes(title), 'the new entry is on the list');
    // and it reached the replica
    await waitFor('the entry on the replica', async () =>
      Number(await stack.sqlValue('replica', `SELECT COUNT(*) FROM flaskcrud.entry WHERE title = '${title}'`)) === 1,
    );
  });

  it('balances over both app servers, and a session made on one is good on the other', async () => {
    const seen = new Set();
    for (let i = 0; i < 10; i++) seen.add(upstreamOf(await client.get('/healthz')));
    assert.deepEqual([...seen].sort(), ['app-1', 'app-2']);
    // one session and csrf_token, made by one server; posts with them served by both servers
    const token = await client.formToken();
    const posters = new Set();
    for (let i = 0; i < 4; i++) {
      const body = new URLSearchParams({ title: unique('rr'), description: 'round robin', csrf_token: token }).toString();
      const res = await client.request('POST', '/add', { body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assert.equal(res.status, 303, res.body);
      posters.add(upstreamOf(res));
    }
    assert.equal(posters.size, 2, `POST /add served by ${[...posters]}`);
  });

  it('refuses a body over 1 MB at the front (413)', async () => {
    const res = await client.request('POST', '/add', {
      body: 'title=' + 'x'.repeat(1100 * 1024),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(res.status, 413);
  });

  it('reads from the replica while it is current', async () => {
    // a client that has not written (no read-your-writes cookie)
    const before = await comSelect('replica');
    for (let i = 0; i < 20; i++) assert.equal((await client.get('/', { jar: false })).status, 200);
    const after = await comSelect('replica');
    assert.ok(after - before >= 20, `replica Com_select grew by ${after - before}`);
    assert.equal(await stack.sqlValue('replica', 'SELECT @@read_only'), '1');
  });

  it('loses no GET when an app server is killed under load, and the add form keeps working', async () => {
    const victim = stack.pid('app-1');
    const loader = new Client('127.0.0.1', stack.httpsPort, { maxSockets: 16 });
    try {
      const running_ = load(
        async () => {
          const r = await loader.get('/', { jar: false });
          return r.status === 200 || `GET / ${r.status} via ${r.headers['x-upstream']}`;
        },
        { concurrency: 16, ms: 4000 },
      );
      await sleep(1000);
      process.kill(victim, 'SIGKILL');
      const { ok, failures } = await running_;
      assert.ok(!running(victim));
      assert.deepEqual(failures, [], `${failures.length} failed GETs of ${ok + failures.length}`);
      assert.ok(ok > 100, `only ${ok} GETs`);
    } finally {
      loader.close();
    }
    // the form: token from the surviving server, posts answered by it
    for (let i = 0; i < 4; i++) {
      const title = unique('afterkill');
      const res = await client.add(title);
      assert.equal(res.status, 303, res.body);
      assert.equal(upstreamOf(res), 'app-2');
      assert.ok((await client.get('/')).body.includes(title));
    }
    // `up` again brings the killed server back, and the front sends to it again
    await stack.ops(['up', '--apps', '2']);
    notePids();
    assert.notEqual(stack.pid('app-1'), victim);
    await waitFor('both app servers serving again', async () => {
      const seen = new Set();
      for (let i = 0; i < 6; i++) seen.add(upstreamOf(await client.get('/healthz')));
      return seen.size === 2;
    }, 20000, 500);
  });

  // The replica fails three ways under 16 clients reading GET /: killed (connections refused),
  // stopped (SIGSTOP: a hung host, connections open and silent) and its port black-holed (packets
  // dropped: connects hang too). Each time: no read fails (a read in flight on the replica is run
  // again on the primary), none waits DB_TIMEOUT (5 s) for a hung replica (the replica check
  // answers within 1 s or the replica's reads move at once), and once the replica is back and
  // caught up it takes the reads again.
  const REPLICA_FAILURES = {
    killed: {
      async start(pid) {
        process.kill(pid, 'SIGKILL');
      },
      async end() {
        await stack.ops(['up', '--apps', '2']); // starts the replica again
        notePids();
      },
    },
    stopped: {
      async start(pid) {
        process.kill(pid, 'SIGSTOP');
      },
      async end(pid) {
        process.kill(pid, 'SIGCONT');
      },
    },
    'black-holed': {
      table: `h2tbh${process.pid % 100000}`,
      async start() {
        const t = this.table;
        execFileSync('nft', ['-f', '-'], {
          input: `table inet ${t} {\n chain input { type filter hook input priority -10; tcp dport ${stack.dbPort + 1} drop; }\n}\n`,
        });
      },
      async end() {
        execFileSync('nft', ['delete', 'table', 'inet', this.table]);
      },
    },
  };

  for (const [how, failure] of Object.entries(REPLICA_FAILURES)) {
    it(`answers every read, from the primary, when the replica is ${how}`, async () => {
      const replica = stack.pid('replica');
      const loader = new Client('127.0.0.1', stack.httpsPort, { maxSockets: 16 });
      const primaryBefore = await comSelect('primary');
      let slowest = 0;
      let slowestWhat = '';
      let failedAt = 0;
      let active = false;
      try {
        const running_ = load(
          async () => {
            const t0 = Date.now();
            const r = await loader.get('/', { jar: false });
            if (Date.now() - t0 > slowest) {
              slowest = Date.now() - t0;
              slowestWhat = `sent ${failedAt ? t0 - failedAt : '-'} ms after the failure, answered by ${r.headers['x-upstream']}`;
            }
            return r.status === 200 || `GET / ${r.status} ${r.body.slice(0, 200)}`;
          },
          { concurrency: 16, ms: 5000 },
        );
        await sleep(1000);
        active = true;
        failedAt = Date.now();
        await failure.start(replica);
        const { ok, failures } = await running_;
        assert.deepEqual(failures.slice(0, 5), [], `${failures.length} failed GETs of ${ok + failures.length}`);
        const replicaLog = () =>
          [1, 2].flatMap((i) => fs.readFileSync(path.join(stack.dir, `app-${i}.err`), 'utf8').split('\n')
            .filter((l) => /replica/.test(l)).slice(-8).map((l) => `app-${i}: ${l}`)).join('\n');
        // DB_TIMEOUT is 5 s; the replica check finds a hung replica within 2 s (1 s between
        // checks, 1 s for one to answer), and the reads waiting there then move to the primary
        assert.ok(slowest < 5000, `a GET took ${slowest} ms (${slowestWhat}): it waited DB_TIMEOUT for the ${how} replica\n${replicaLog()}`);
        console.log(`# replica ${how}: ${ok} GETs, ${failures.length} failed, slowest ${slowest} ms (${slowestWhat})`);
        const primaryAfter = await comSelect('primary');
        assert.ok(primaryAfter - primaryBefore > 50, `primary Com_select grew by only ${primaryAfter - primaryBefore}`);
        // writes and reads go on with the replica gone
        const title = unique(`noreplica${how.replace(/\W/g, '')}`);
        assert.equal((await client.add(title)).status, 303);
        const other = new Client('127.0.0.1', stack.httpsPort);
        try {
          assert.ok((await other.get('/')).body.includes(title), 'a client that did not write sees it (primary)');
        } finally {
          other.close();
        }
        active = false;
        await failure.end(replica);
        await waitFor('the replica caught up', async () =>
          (await stack.sqlValue('replica', `SELECT COUNT(*) FROM flaskcrud.entry WHERE title = '${title}'`)) === '1',
        );
        await waitFor('reads back on the replica', async () => {
          const b = await comSelect('replica');
          for (let i = 0; i < 10; i++) await client.get('/', { jar: false });
          return (await comSelect('replica')) - b >= 10;
        }, 20000, 500);
      } finally {
        loader.close();
        // whatever failed above, the next tests get their replica back (the failure is reported)
        if (active) await failure.end(replica).catch(() => {});
      }
    });
  }

  it('shows a writer its write at once while the replica is behind (read-your-writes)', async () => {
    // Pause the replica's applier without stopping replication: a read lock on the table holds
    // the replicated insert. The replica still counts as current (lag under REPLICA_MAX_LAG) for
    // a few seconds, so clients without the cookie read the stale replica.
    // the replica takes the reads in every worker (after the failures above each checks it back in
    // on its own: a connect the black hole held may take DB_CONNECT_TIMEOUT to give up)
    await waitFor('every worker reading the replica', async () => replicaUsableEverywhere(), 20000, 200);
    await waitFor('reads on the replica', async () => {
      const b = await comSelect('replica');
      for (let i = 0; i < 10; i++) await client.get('/', { jar: false });
      return (await comSelect('replica')) - b >= 10;
    }, 20000, 500);
    const lock = stack.rootSession('replica');
    const writer = new Client('127.0.0.1', stack.httpsPort);
    const reader = new Client('127.0.0.1', stack.httpsPort);
    const title = unique('ryw');
    try {
      await lock.run('LOCK TABLES flaskcrud.entry READ');
      const res = await writer.add(title);
      assert.equal(res.status, 303);
      const ryw = [].concat(res.headers['set-cookie'] || []).find((c) => c.startsWith('h2lua_ryw='));
      assert.ok(ryw, 'the response to the write sets h2lua_ryw');
      assert.match(ryw, /Max-Age=\d+/);
      assert.match(ryw, /Secure/, 'X-Forwarded-Proto: https reached the app (the cookie is Secure)');
      assert.ok((await writer.get('/')).body.includes(title), 'the writer sees its entry at once');
      assert.ok(!(await reader.get('/')).body.includes(title), 'a reader without the cookie reads the (stale) replica');
    } finally {
      await lock.run('UNLOCK TABLES').catch(() => {});
      await lock.close();
    }
    await waitFor('the reader sees the entry once the replica applied it', async () =>
      (await reader.get('/')).body.includes(title),
    );

    // Replication stopped (STOP SLAVE): the writer sees its write at once; within a replica check
    // (1 s) everybody reads from the primary.
    await stack.sql('replica', 'STOP SLAVE');
    try {
      const title2 = unique('stopped');
      assert.equal((await writer.add(title2)).status, 303);
      assert.ok((await writer.get('/')).body.includes(title2), 'the writer sees its entry at once');
      await sleep(1500);
      assert.ok((await reader.get('/')).body.includes(title2), 'with replication stopped, reads go to the primary');
    } finally {
      writer.close();
      reader.close();
      await stack.sql('replica', 'START SLAVE');
    }
    const pos = await stack.sqlValue('primary', 'SELECT @@gtid_binlog_pos');
    assert.equal(await stack.sqlValue('replica', `SELECT MASTER_GTID_WAIT('${pos}', 30)`), '0', 'the replica caught up');
    const st = await stack.slaveStatus();
    assert.equal(st.Slave_IO_Running, 'Yes');
    assert.equal(st.Slave_SQL_Running, 'Yes');
  });

  it('restarts the app servers one at a time on a configuration change, losing no request', async () => {
    const old = [stack.pid('app-1'), stack.pid('app-2')];
    const poster = new Client('127.0.0.1', stack.httpsPort, { maxSockets: 8 });
    const getter = new Client('127.0.0.1', stack.httpsPort, { maxSockets: 8 });
    try {
      const token = await poster.formToken();
      const body = new URLSearchParams({ title: unique('rolling'), description: 'during a restart', csrf_token: token }).toString();
      const posts = load(async () => {
        const r = await poster.request('POST', '/add', { body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
        return r.status === 303 || `POST /add ${r.status} via ${r.headers['x-upstream']}`;
      }, { concurrency: 4, ms: 9000 });
      const gets = load(async () => {
        const r = await getter.get('/', { jar: false });
        return r.status === 200 || `GET / ${r.status} via ${r.headers['x-upstream']}`;
      }, { concurrency: 4, ms: 9000 });
      await sleep(500);
      stack.env.REPLICA_MAX_LAG = '6'; // a new environment for the app servers
      const { stderr } = await stack.ops(['up', '--apps', '2']);
      assert.match(stderr, /app-1: the configuration changed/);
      const [p, g] = await Promise.all([posts, gets]);
      assert.deepEqual(p.failures, [], `${p.failures.length} failed POSTs of ${p.ok + p.failures.length}`);
      assert.deepEqual(g.failures, [], `${g.failures.length} failed GETs of ${g.ok + g.failures.length}`);
      assert.ok(p.ok > 50 && g.ok > 50, `${p.ok} POSTs, ${g.ok} GETs`);
    } finally {
      poster.close();
      getter.close();
    }
    // the list shows 50 entries a page, oldest first: the thousands of posts above would push
    // the later tests' entries off page 1
    await stack.sql('primary', "DELETE FROM flaskcrud.entry WHERE title LIKE 'rolling%'");
    notePids();
    assert.ok(!running(old[0]) && !running(old[1]), 'both app servers were replaced');
    assert.match(fs.readFileSync(path.join(stack.dir, 'app-1.env'), 'utf8'), /^REPLICA_MAX_LAG=6$/m);
  });

  it('status reports every part running', async () => {
    const { stdout } = await stack.ops(['status']);
    for (const part of ['front', 'app-1', 'app-2', 'primary', 'replica']) assert.match(stdout, new RegExp(`^${part}\\s+running`, 'm'));
    assert.match(stdout, /IO Yes, SQL Yes/);
  });
});

describe('the stack in network namespaces (--isolated)', () => {
  const ns = (t) => stack.ns(t);
  const FRONT = '10.200.2.10';
  const APPS = ['10.200.3.11', '10.200.3.12'];
  const PRIMARY = '10.200.4.11';
  const REPLICA = '10.200.4.12';
  const listeners = [];

  before(async () => {
    await stack.ops(['up', '--apps', '2', '--isolated']);
    stack.isolated = true;
    notePids();
    // a listener on a port no rule admits, in each tier: a refused probe then shows the filter,
    // not a closed port
    listeners.push(await listenIn(ns('public'), FRONT, 9000));
    listeners.push(await listenIn(ns('app'), APPS[0], 9000));
    listeners.push(await listenIn(ns('db'), PRIMARY, 9000));
  });
  after(async () => {
    for (const l of listeners) await l.close();
  });

  it('creates the namespaces with routes only inside 10.200.0.0/16', async () => {
    const names = await namespaces();
    for (const t of ['client', 'public', 'app', 'db', 'vpc']) assert.ok(names.includes(ns(t)), `${ns(t)} exists`);
    for (const t of ['client', 'public', 'app', 'db', 'vpc']) {
      const routes = execFileSync('ip', ['-n', ns(t), '-4', 'route', 'show'], { encoding: 'utf8' });
      assert.doesNotMatch(routes, /^default/m, `${ns(t)} has no default route`);
      for (const line of routes.split('\n').filter(Boolean)) assert.match(line, /^10\.200\./, `${ns(t)}: ${line}`);
    }
  });

  it('lets the client reach the front on 80 and 443 and nothing else', async () => {
    const r = await Promise.all([
      canConnect(ns('client'), FRONT, 80),
      canConnect(ns('client'), FRONT, 443),
      canConnect(ns('client'), FRONT, 9000),
      canConnect(ns('client'), APPS[0], 8080),
      canConnect(ns('client'), APPS[1], 8080),
      canConnect(ns('client'), PRIMARY, 3306),
      canConnect(ns('client'), REPLICA, 3306),
      canConnect(ns('public'), FRONT, 9000), // control: the listener is there
    ]);
    assert.deepEqual(r, [true, true, false, false, false, false, false, true]);
  });

  it('lets the front reach the app port and not the database', async () => {
    const r = await Promise.all([
      canConnect(ns('public'), APPS[0], 8080),
      canConnect(ns('public'), APPS[1], 8080),
      canConnect(ns('public'), APPS[0], 9000),
      canConnect(ns('public'), PRIMARY, 3306),
      canConnect(ns('public'), REPLICA, 3306),
      canConnect(ns('app'), APPS[0], 9000), // control
    ]);
    assert.deepEqual(r, [true, true, false, false, false, true]);
  });

  it('lets the app servers reach 3306 and nothing else of the database tier', async () => {
    const r = await Promise.all([
      canConnect(ns('app'), PRIMARY, 3306),
      canConnect(ns('app'), REPLICA, 3306),
      canConnect(ns('app'), PRIMARY, 9000),
      canConnect(ns('db'), PRIMARY, 9000), // control
    ]);
    assert.deepEqual(r, [true, true, false, true]);
  });

  it('serves the app to the client: redirect, round trip, both app servers, replication', async () => {
    const head = await curlIn(ns('client'), ['-o', '/dev/null', '-D', '-', `http://${FRONT}/x`]);
    assert.match(head, /^HTTP\/1\.1 301/);
    assert.match(head, new RegExp(`^location: https://${FRONT.replace(/\./g, '\\.')}/x`, 'im'));

    const jar = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-stack-jar-')), 'jar');
    try {
      const page = await curlIn(ns('client'), ['-c', jar, `https://${FRONT}/`]);
      const token = /name="csrf_token"\s+value="([^"]+)"/.exec(page)?.[1];
      assert.ok(token, 'the page has a csrf_token');
      const title = unique('iso');
      const post = await curlIn(ns('client'), [
        '-b', jar, '-c', jar, '-o', '/dev/null', '-w', '%{http_code}', '--data-urlencode', `title=${title}`,
        '--data-urlencode', 'description=through the namespaces', '--data-urlencode', `csrf_token=${token}`,
        `https://${FRONT}/add`,
      ]);
      assert.equal(post, '303');
      assert.ok((await curlIn(ns('client'), ['-b', jar, `https://${FRONT}/`])).includes(title));
      await waitFor('the entry on the replica', async () =>
        Number(await stack.sqlValue('replica', `SELECT COUNT(*) FROM flaskcrud.entry WHERE title = '${title}'`)) === 1,
      );
    } finally {
      fs.rmSync(path.dirname(jar), { recursive: true, force: true });
    }

    const seen = new Set();
    for (let i = 0; i < 6; i++) {
      const h = await curlIn(ns('client'), ['-o', '/dev/null', '-D', '-', `https://${FRONT}/healthz`]);
      seen.add(/^x-upstream: (\S+)/im.exec(h)?.[1]);
    }
    assert.deepEqual([...seen].sort(), ['app-1', 'app-2']);
    const st = await stack.slaveStatus();
    assert.equal(st.Master_Host, PRIMARY);
    assert.equal(st.Slave_IO_Running, 'Yes');
    assert.equal(st.Slave_SQL_Running, 'Yes');
  });
});

describe('ops/stack down', () => {
  it('stops every process and removes the namespaces', async () => {
    await stack.ops(['down']);
    const left = [...pidsSeen].filter(running);
    assert.deepEqual(left, [], 'no process of the stack is left');
    const names = (await namespaces()).filter((n) => n.startsWith(`${stack.nsPrefix}-`));
    assert.deepEqual(names, [], 'no namespace is left');
    await assert.rejects(stack.ops(['status']), /exit|failed/);
    // a sanitizer build (H2LUA_BIN=build-asan/h2lua) reports into the app servers' error logs
    for (const f of fs.readdirSync(stack.dir).filter((n) => /^app-\d+\.err$/.test(n))) {
      const text = fs.readFileSync(path.join(stack.dir, f), 'utf8');
      const i = text.search(/ERROR: (Address|Leak|Thread)Sanitizer|runtime error:|SUMMARY: \w+Sanitizer/);
      assert.equal(i, -1, `${f}:\n${text.slice(Math.max(0, i - 200), i + 3000)}`);
    }
    // down again: nothing to do, no error
    await stack.ops(['down']);
  });
});
