// TLS to the database (DATABASE_TLS, DATABASE_CA) against a real MariaDB that requires it
// (require_secure_transport=ON) with a certificate of a CA this test makes with openssl: `required`,
// the default `preferred` and `verify-identity` with the right CA connect; a wrong CA or a host name
// the certificate does not hold stop the start with one line naming the variable and exit code 2;
// `off` is refused by the server (503 and a log line naming DATABASE_TLS); a certificate replaced at
// run time by one the CA does not sign gives 503 and a log line, and the same process serves again
// once the server has its certificate back. The password appears in no log line.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DB_PASSWORD, startMariaDB } from './support/mariadb.mjs';
import { runOnce, sleep, startServer } from './support/server.mjs';
import { APP_ENV } from './support/entries.mjs';

const DB = 'flaskcrud_tls';
let tmp;
let db;
let good; // certificates of CA "good": ca.pem, server-cert.pem (DNS:localhost only), server-key.pem
let rogue; // another CA and a server certificate it signs, also for DNS:localhost

function openssl(...args) {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA and a server certificate it signs for subjectAltName `san`, in a new directory `name`. */
function makeCerts(name, san) {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  const f = (n) => path.join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', f('ca-key.pem'), '-out', f('ca.pem'), '-days', '2', '-subj', `/CN=h2lua test CA ${name}`);
  openssl('req', ...ec, '-keyout', f('server-key.pem'), '-out', f('server.csr'), '-subj', '/CN=localhost');
  fs.writeFileSync(f('ext.cnf'), `subjectAltName=${san}\n`);
  openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca-key.pem'), '-CAcreateserial',
    '-out', f('server-cert.pem'), '-days', '2', '-extfile', f('ext.cnf'));
  return dir;
}

function appEnv(extra) {
  return { ...APP_ENV, WORKERS: '1', DB_CONNECT_TIMEOUT: '2', DATABASE_URL: db.url(DB, 'localhost'), ...extra };
}

/** Asserts that no output of a process holds the database password. */
function assertNoPassword(...texts) {
  for (const t of texts) assert.ok(!t.includes(DB_PASSWORD), `the password appears in:\n${t}`);
}

/** Waits until the async fn resolves truthy; fails after ms with `what` and the server's stderr. */
async function until(server, fn, ms, what) {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; stderr:\n${server.stderr.slice(-3000)}`);
    await sleep(50);
  }
}

/** The stderr lines that name DATABASE_TLS. */
function tlsLines(stderr) {
  return stderr.split('\n').filter((l) => l.includes('DATABASE_TLS'));
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-dbtls-'));
  good = makeCerts('good', 'DNS:localhost');
  rogue = makeCerts('rogue', 'DNS:localhost');
  db = await startMariaDB({ tls: good });
  await db.freshDatabase(DB);
});

after(async () => {
  try {
    if (db) await db.destroy();
  } finally {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
});

describe('DATABASE_TLS against a server with require_secure_transport=ON', () => {
  // 127.0.0.1 is not a name the certificate holds: only verify-identity checks it
  for (const [what, env] of [
    ['required, without a CA', () => ({ DATABASE_TLS: 'required', DATABASE_URL: db.url(DB) })],
    ['preferred (the default): TLS since the server offers it', () => ({ DATABASE_URL: db.url(DB) })],
    ['verify-identity with the right CA and the host name of the certificate',
      () => ({ DATABASE_TLS: 'verify-identity', DATABASE_CA: path.join(good, 'ca.pem') })],
  ]) {
    it(`connects with ${what}`, async () => {
      const server = await startServer({ env: appEnv(env()) });
      try {
        await until(server, async () => (await server.get('/readyz')).status === 200, 20000, '/readyz 200');
        const res = await server.get('/');
        assert.equal(res.status, 200, res.text.slice(0, 300));
      } finally {
        await server.stopClean();
      }
      assertNoPassword(server.stdout, server.stderr);
    });
  }

  for (const [what, env, reason] of [
    ['a CA that did not sign the certificate', { DATABASE_CA: 'rogue' }, /DATABASE_CA=.*rogue\/ca\.pem: .*certificate/],
    ['a host name the certificate does not hold', { DATABASE_URL: 'ip' }, /does not name the host '127\.0\.0\.1'/],
  ]) {
    it(`refuses to start with verify-identity and ${what}: one line, exit 2`, async () => {
      const e = { DATABASE_TLS: 'verify-identity', DATABASE_CA: path.join(good, 'ca.pem') };
      if (env.DATABASE_CA === 'rogue') e.DATABASE_CA = path.join(rogue, 'ca.pem');
      if (env.DATABASE_URL === 'ip') e.DATABASE_URL = db.url(DB);
      const r = await runOnce({ env: appEnv(e), timeoutMs: 20000 });
      assert.equal(r.timedOut, false, `still running after 20 s; stderr:\n${r.stderr.slice(-2000)}`);
      assert.equal(r.code, 2, `exit code ${r.code}; stderr:\n${r.stderr.slice(-2000)}`);
      const lines = tlsLines(r.stderr);
      assert.equal(lines.length, 1, `want one line naming DATABASE_TLS, got:\n${r.stderr}`);
      assert.match(lines[0], /invalid configuration: /);
      assert.match(lines[0], reason);
      assertNoPassword(r.stdout, r.stderr);

      const m = await runOnce({ args: ['migrate'], env: appEnv(e), timeoutMs: 20000 });
      assert.equal(m.code, 2, `h2lua migrate: exit code ${m.code}; stderr:\n${m.stderr.slice(-2000)}`);
      assert.match(tlsLines(m.stderr).join('\n'), reason);
      assertNoPassword(m.stdout, m.stderr);
    });
  }

  it('refuses to start with required when the server offers no TLS: one line, exit 2', async () => {
    const plain = await startMariaDB();
    try {
      await plain.freshDatabase(DB);
      const r = await runOnce({ env: appEnv({ DATABASE_TLS: 'required', DATABASE_URL: plain.url(DB) }), timeoutMs: 20000 });
      assert.equal(r.code, 2, `exit code ${r.code}; stderr:\n${r.stderr.slice(-2000)}`);
      const lines = tlsLines(r.stderr);
      assert.equal(lines.length, 1, `want one line naming DATABASE_TLS, got:\n${r.stderr}`);
      assert.match(lines[0], /invalid configuration: DATABASE_TLS=required: the server does not offer TLS/);
      assertNoPassword(r.stdout, r.stderr);
      // preferred, the default, goes on in plain text with such a server
      const server = await startServer({ env: appEnv({ DATABASE_URL: plain.url(DB) }) });
      try {
        await until(server, async () => (await server.get('/')).status === 200, 20000, 'GET / 200 in plain text');
      } finally {
        await server.stopClean();
      }
    } finally {
      await plain.destroy();
    }
  });

  it('with off, is refused by the server: 503 and a log line naming DATABASE_TLS, the process keeps running', async () => {
    const server = await startServer({ env: appEnv({ DATABASE_TLS: 'off', DATABASE_URL: db.url(DB) }) });
    try {
      const res = await server.get('/');
      assert.equal(res.status, 503, res.text.slice(0, 300));
      await server.waitFor(() => tlsLines(server.stderr).some((l) => /DATABASE_TLS=off/.test(l)), 10000,
        'a log line naming DATABASE_TLS=off');
      assert.equal((await server.get('/healthz')).status, 200);
    } finally {
      await server.stopClean();
    }
    assertNoPassword(server.stdout, server.stderr);
  });

  it('at run time, a certificate the CA did not sign gives 503 and a log line; its own certificate back, 200 again', async () => {
    const server = await startServer({
      env: appEnv({ DATABASE_TLS: 'verify-identity', DATABASE_CA: path.join(good, 'ca.pem') }),
    });
    try {
      await until(server, async () => (await server.get('/readyz')).status === 200, 20000, '/readyz 200');
      assert.equal((await server.get('/')).status, 200);

      db.tls = rogue;
      await db.stop();
      await db.start();
      const rogueLine = () => tlsLines(server.stderr).some((l) => /DATABASE_CA=.*good\/ca\.pem: .*certificate/.test(l));
      await until(server, async () => {
        const last = (await server.get('/')).status;
        return last === 503 && rogueLine();
      }, 15000, 'GET / 503 and a log line naming DATABASE_TLS and DATABASE_CA');
      assert.equal((await server.get('/healthz')).status, 200);
      assert.equal(server.exited, null, 'the process is still running');

      db.tls = good;
      await db.stop();
      await db.start();
      await until(server, async () => (await server.get('/')).status === 200, 15000, 'GET / 200 again');
    } finally {
      db.tls = good;
      await server.stopClean();
    }
    assertNoPassword(server.stdout, server.stderr);
  });

  it('at run time, with required, a server that no longer offers TLS gives 503 and a log line', async () => {
    const server = await startServer({ env: appEnv({ DATABASE_TLS: 'required', DATABASE_URL: db.url(DB) }) });
    try {
      await until(server, async () => (await server.get('/readyz')).status === 200, 20000, '/readyz 200');
      assert.equal((await server.get('/')).status, 200);
      db.tls = null;
      await db.stop();
      await db.start();
      const plainLine = () => tlsLines(server.stderr).some((l) => /DATABASE_TLS=required: the server does not offer TLS/.test(l));
      await until(server, async () => (await server.get('/')).status === 503 && plainLine(), 15000,
        'GET / 503 and a log line naming DATABASE_TLS=required');
    } finally {
      db.tls = good;
      await db.stop();
      await db.start();
      await server.stopClean();
    }
    assertNoPassword(server.stdout, server.stderr);
  });
});
