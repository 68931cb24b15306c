// Configuration from the environment: --help, invalid values (exit 2, one line naming the
// variable), defaults and values that change behaviour, an application that fails to load.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, freePort, runOnce, startServer } from './support/server.mjs';

const CERT = path.join(ROOT, 'spec/e2e/support/tls/cert.pem');
const KEY = path.join(ROOT, 'spec/e2e/support/tls/key.pem');

const VARIABLES = [
  'PORT', 'HOST', 'WORKERS', 'APP_ENV', 'SECRET_KEY', 'LOG_FORMAT', 'LOG_LEVEL', 'SCRIPTS_DIR', 'VIEWS_DIR',
  'STATIC_DIR', 'BOOTSTRAP_DIR', 'MAX_BODY', 'MAX_FORM_FIELDS', 'MAX_UPLOAD', 'REQ_TIMEOUT', 'DRAIN_TIMEOUT',
  'TLS_CERT', 'TLS_KEY', 'HSTS_MAX_AGE', 'DATABASE_URL', 'DATABASE_READ_URL', 'DATABASE_USERNAME', 'DATABASE_PASSWORD',
  'DATABASE_NAME', 'DATABASE_PORT', 'DB_POOL_SIZE', 'LUA_TIMEOUT', 'LUA_MEMORY_MAX', 'TIMERS_MAX', 'TRUSTED_PROXIES',
  'WRITE_LIMIT',
];

// [variable, value, other env] — each must exit 2 with one stderr line naming the variable
const INVALID = [
  ['PORT', 'abc'],
  ['PORT', '0'],
  ['PORT', '70000'],
  ['PORT', '80x'],
  ['WORKERS', '0'],
  ['WORKERS', 'many'],
  ['APP_ENV', 'staging'],
  ['LOG_FORMAT', 'xml'],
  ['LOG_LEVEL', 'verbose'],
  ['LOG_LEVEL', 'INFO'],
  ['MAX_BODY', '-1'],
  ['MAX_BODY', '1MB'],
  ['MAX_FORM_FIELDS', 'abc'],
  ['MAX_UPLOAD', '-1'],
  ['MAX_UPLOAD', '2147483648'],
  ['REQ_TIMEOUT', '0'],
  ['DRAIN_TIMEOUT', 'soon'],
  ['LUA_TIMEOUT', '0'],
  ['LUA_TIMEOUT', 'forever'],
  ['LUA_MEMORY_MAX', '8'],
  ['LUA_MEMORY_MAX', '1GB'],
  ['TIMERS_MAX', '0'],
  ['TIMERS_MAX', 'lots'],
  ['SCRIPTS_DIR', '/nonexistent/scripts'],
  ['VIEWS_DIR', '/nonexistent/views'],
  ['SECRET_KEY', 'short'],
  ['TLS_CERT', '/nonexistent/cert.pem', { TLS_KEY: KEY }],
  ['TLS_KEY', '/nonexistent/key.pem', { TLS_CERT: CERT }],
  ['HSTS_MAX_AGE', '-1'],
  ['HSTS_MAX_AGE', '1y'],
  ['DATABASE_URL', 'ftp://db.example'],
  ['DATABASE_URL', 'mysql://u:p@db:notaport/x'],
  ['DATABASE_PORT', 'x'],
  ['DB_POOL_SIZE', '0'],
  ['DB_STMT_CACHE', '-1'],
  ['DB_STMT_CACHE', 'many'],
  ['SHARED_STORES', 'cache'],
  ['SHARED_STORES', 'cache:'],
  ['SHARED_STORES', 'cache:10x'],
  ['SHARED_STORES', 'cache:10mb'],
  ['SHARED_STORES', 'cache:1k'],
  ['SHARED_STORES', 'cache:17g'],
  ['SHARED_STORES', 'cache:99999999999999999999999'],
  ['SHARED_STORES', 'cache:1m,cache:2m'],
  ['SHARED_STORES', '9lives:1m'],
  ['SHARED_STORES', 'a-b:1m'],
  ['SHARED_STORES', 'cache:1m,'],
  ['SHARED_STORES', ':1m'],
  ['TRUSTED_PROXIES', 'alb'],
  ['TRUSTED_PROXIES', '10.0.1.0/33'],
  ['TRUSTED_PROXIES', '10.0.1.1/24'],
  ['TRUSTED_PROXIES', '10.0.1.0/24,'],
  ['TRUSTED_PROXIES', 'fd00::/129'],
  ['WRITE_LIMIT', '120'],
  ['WRITE_LIMIT', '0/60'],
  ['WRITE_LIMIT', '120/0'],
  ['WRITE_LIMIT', 'none'],
];

describe('config', () => {
  it('--help lists every variable and exits 0', async () => {
    const r = await runOnce({ args: ['--help'] });
    assert.equal(r.code, 0, r.stderr);
    for (const v of VARIABLES) assert.match(r.stdout, new RegExp(`^${v}\\b`, 'm'), `--help lists ${v}`);
  });

  it("docs/configuration.md's table of variables is --help's: the same names, in the same order, with the same defaults", async () => {
    const r = await runOnce({ args: ['--help'] });
    assert.equal(r.code, 0, r.stderr);
    // --help: "NAME<spaces>DEFAULT<spaces>meaning", the default in columns 22-55
    const lines = r.stdout.split('\n');
    const start = lines.findIndex((l) => /^variable\s+default\s+meaning$/.test(l));
    assert.ok(start >= 0, '--help has the table header');
    const help = lines.slice(start + 1).filter((l) => l !== '')
      .map((l) => [l.slice(0, 20).trim(), l.slice(21, 55).trim()]);
    // docs/configuration.md: "| `NAME`[, `NAME2`] | default | meaning |" under "| variable | default | meaning |"
    const HEADER = '| variable | default | meaning |';
    const doc = fs.readFileSync(path.join(ROOT, 'docs/configuration.md'), 'utf8').split('\n');
    const at = doc.indexOf(HEADER);
    assert.ok(at >= 0, 'docs/configuration.md has the table of variables');
    assert.equal(doc.indexOf(HEADER, at + 1), -1, 'docs/configuration.md has one table of variables');
    assert.equal(doc[at + 1], '|---|---|---|', 'the table header is followed by its separator');
    const rows = [];
    for (const line of doc.slice(at + 2)) {
      if (!line.startsWith('|')) break;
      const cells = line.split('|');
      assert.equal(cells.length, 5, `a row of three cells: ${line}`);
      const [names, def] = cells.slice(1, 3).map((c) => c.trim());
      for (const n of names.split(',')) rows.push([n.trim().replace(/`/g, ''), def.replace(/`/g, '')]);
    }
    assert.ok(help.length >= VARIABLES.length, `--help lists ${help.length} variables`);
    assert.deepEqual(rows, help);
    // the one table: no copy elsewhere in the manual to drift from it
    const others = ['README.md', ...fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]
      .filter((f) => f !== 'docs/configuration.md' && fs.readFileSync(path.join(ROOT, f), 'utf8').includes(HEADER));
    assert.deepEqual(others, [], 'the table of variables is in docs/configuration.md only');
  });

  it('--version prints a version and exits 0', async () => {
    const r = await runOnce({ args: ['--version'] });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\d+\.\d+/);
  });

  for (const [name, value, other = {}] of INVALID) {
    it(`${name}=${value} exits 2 naming ${name}`, async () => {
      const port = name === 'PORT' ? value : String(await freePort());
      const r = await runOnce({ env: { ...other, PORT: port, [name]: value } });
      assert.equal(r.timedOut, false, 'should exit at once');
      assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one stderr line, got:\n${r.stderr}`);
      assert.match(lines[0], new RegExp(`\\b${name}\\b`));
      assert.equal(lines[0].includes('p@'), false, 'no password in the message');
    });
  }

  it('SECRET_KEY is required in production', async () => {
    const r = await runOnce({ env: { SECRET_KEY: undefined, APP_ENV: 'production', PORT: String(await freePort()) } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr.trim(), /SECRET_KEY/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  it('TLS_CERT without TLS_KEY exits 2', async () => {
    const r = await runOnce({ env: { TLS_CERT: CERT, PORT: String(await freePort()) } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /TLS_KEY/);
  });

  it('development without SECRET_KEY starts (with a warning)', async () => {
    const server = await startServer({ env: { APP_ENV: 'development', SECRET_KEY: undefined } });
    try {
      assert.equal((await server.get('/hello')).status, 200);
      assert.match(server.stderr, /SECRET_KEY/);
      await server.stopClean();
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('PORT and HOST choose where it listens; WORKERS sets the worker count', async () => {
    const server = await startServer({ env: { WORKERS: '3', HOST: '127.0.0.1' } });
    try {
      const workers = new Set();
      for (let i = 0; i < 60; i++) workers.add(JSON.parse((await server.get('/echo')).text).worker);
      for (const w of workers) assert.ok(Number.isInteger(w) && w >= 0 && w < 3, `worker ${w}`);
      assert.ok(workers.size >= 2, `60 connections all went to worker(s) ${[...workers]}`);
      await server.stopClean();
    } finally {
      await server.stop({ signal: 'SIGKILL' });
    }
  });

  it('STATIC_DIR chooses the directory served at /static/', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-static-'));
    try {
      fs.writeFileSync(path.join(dir, 'only-here.txt'), 'static dir works\n');
      const server = await startServer({ env: { STATIC_DIR: dir } });
      try {
        const res = await server.get('/static/only-here.txt');
        assert.equal(res.status, 200);
        assert.equal(res.text, 'static dir works\n');
        await server.stopClean();
      } finally {
        await server.stop({ signal: 'SIGKILL' });
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an app.lua that fails to load stops the start with the file and line', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-broken-'));
    try {
      fs.writeFileSync(path.join(dir, 'app.lua'), 'local x = \nreturn function(req) return {} end end\n');
      const r = await runOnce({ env: { SCRIPTS_DIR: dir, PORT: String(await freePort()) }, timeoutMs: 10000 });
      assert.equal(r.timedOut, false, 'should not serve a broken app');
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /app\.lua:\d+/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an app.lua that does not return a function stops the start', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-broken-'));
    try {
      fs.writeFileSync(path.join(dir, 'app.lua'), 'return 42\n');
      const r = await runOnce({ env: { SCRIPTS_DIR: dir, PORT: String(await freePort()) }, timeoutMs: 10000 });
      assert.equal(r.timedOut, false, 'should not serve a broken app');
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /app\.lua|function/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
