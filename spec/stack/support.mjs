// Helpers of the stack tests: the stack under test (ops/stack with its own directory, ports and
// namespace names, so that it never meets a stack someone runs in .run/stack), HTTPS requests
// through its front with a cookie jar, SQL as root on its databases, probes inside namespaces.

import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** true when nothing listens on 127.0.0.1:port (nor could: it can be bound). */
function portFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.unref();
    s.on('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** The first of n consecutive free ports, searched from a random start in 20000-29999. */
export async function freePorts(n, avoid = new Set()) {
  for (let tries = 0; tries < 200; tries++) {
    const base = 20000 + Math.floor(Math.random() * 9900);
    let ok = true;
    for (let p = base; p < base + n && ok; p++) ok = !avoid.has(p) && (await portFree(p));
    if (ok) {
      for (let p = base; p < base + n; p++) avoid.add(p);
      return base;
    }
  }
  throw new Error(`no ${n} consecutive free ports`);
}

/**
 * The stack under test. create() picks a directory under /tmp, free ports and a namespace prefix;
 * ops(args) runs ops/stack with them.
 */
export class Stack {
  static async create() {
    const used = new Set();
    const s = new Stack();
    s.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-stack-'));
    s.httpsPort = await freePorts(1, used);
    s.httpPort = await freePorts(1, used);
    s.dbPort = await freePorts(2, used);
    s.appPort = await freePorts(4, used);
    s.nsPrefix = `h2t${process.pid % 100000}`;
    s.isolated = false;
    s.env = {
      ...process.env,
      STACK_DIR: s.dir,
      STACK_HTTPS_PORT: String(s.httpsPort),
      STACK_HTTP_PORT: String(s.httpPort),
      STACK_DB_PORT: String(s.dbPort),
      STACK_APP_PORT: String(s.appPort),
      STACK_NS_PREFIX: s.nsPrefix,
      WORKERS: '2',
      // the tests write from one client far past a person's pace (the limit has its own test)
      WRITE_LIMIT: 'off',
    };
    if (process.env.H2LUA_BIN && !process.env.STACK_BIN) s.env.STACK_BIN = path.resolve(ROOT, process.env.H2LUA_BIN);
    return s;
  }

  /** Runs ops/stack ARGS; resolves { stdout, stderr }, rejects with both in the message. */
  async ops(args, timeoutMs = 300000) {
    try {
      return await run(path.join(ROOT, 'ops/stack'), args, { env: this.env, timeout: timeoutMs, maxBuffer: 16 << 20 });
    } catch (e) {
      throw new Error(`ops/stack ${args.join(' ')} failed (${e.code}):\n${e.stdout || ''}${e.stderr || ''}`);
    }
  }

  ns(tier) {
    return `${this.nsPrefix}-${tier}`;
  }

  /** Where the front is, as seen by the client. */
  frontHost() {
    return this.isolated ? '10.200.2.10' : '127.0.0.1';
  }

  /** pid of a part, from its pid file: 'app-1', 'primary', 'replica', 'nginx'. */
  pid(part) {
    const file =
      part === 'nginx'
        ? path.join(this.dir, 'nginx/nginx.pid')
        : part.startsWith('app-')
          ? path.join(this.dir, `${part}.pid`)
          : path.join(this.dir, part, 'mysqld.pid');
    return Number(fs.readFileSync(file, 'utf8').trim());
  }

  /** SQL as root on 'primary' or 'replica' (unix socket); resolves rows as arrays of strings. */
  async sql(role, query) {
    const { stdout } = await run(
      'mariadb',
      ['--no-defaults', '--protocol=socket', `--socket=${path.join(this.dir, role, 'mysqld.sock')}`, '-uroot', '-N', '-B', '-e', query],
      { timeout: 30000 },
    );
    return stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.split('\t'));
  }

  async sqlValue(role, query) {
    const rows = await this.sql(role, query);
    return rows.length ? rows[0][0] : null;
  }

  async slaveStatus() {
    const { stdout } = await run(
      'mariadb',
      ['--no-defaults', '--protocol=socket', `--socket=${path.join(this.dir, 'replica', 'mysqld.sock')}`, '-uroot', '-e', 'SHOW SLAVE STATUS\\G'],
      { timeout: 30000 },
    );
    const out = {};
    for (const line of stdout.split('\n')) {
      const m = /^\s*(\w+): ?(.*)$/.exec(line);
      if (m) out[m[1]] = m[2];
    }
    return out;
  }

  /** A session held open on a database as root: send(sql) and wait for a marker line. */
  rootSession(role) {
    const child = spawn(
      'mariadb',
      ['--no-defaults', '--protocol=socket', `--socket=${path.join(this.dir, role, 'mysqld.sock')}`, '-uroot', '-N', '-B', '-n'],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    let n = 0;
    return {
      /** runs sql, resolves when it has finished */
      async run(sql, timeoutMs = 10000) {
        const marker = `done-${++n}-${process.pid}`;
        child.stdin.write(`${sql};\nSELECT '${marker}';\n`);
        const t0 = Date.now();
        while (!out.includes(marker)) {
          if (Date.now() - t0 > timeoutMs) throw new Error(`no answer to ${sql}: ${out}`);
          await sleep(20);
        }
      },
      async close() {
        child.stdin.end();
        await new Promise((r) => (child.exitCode !== null ? r() : child.on('exit', r)));
      },
    };
  }
}

/** A cookie jar for one client: set-cookie headers in, a Cookie header out. */
export class Jar {
  constructor() {
    this.cookies = new Map();
  }
  take(setCookie) {
    for (const c of [].concat(setCookie || [])) {
      const [pair, ...attrs] = c.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const maxAge = attrs.map((a) => /^\s*max-age=(-?\d+)/i.exec(a)).find(Boolean);
      if (maxAge && Number(maxAge[1]) <= 0) this.cookies.delete(name);
      else this.cookies.set(name, pair.slice(i + 1).trim());
    }
  }
  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

/**
 * A client of the front over HTTPS (HTTP/1.1, keep-alive, the self-signed certificate accepted)
 * with its own cookie jar.
 */
export class Client {
  constructor(host, port, { keepAlive = true, maxSockets = 32 } = {}) {
    this.host = host;
    this.port = port;
    this.jar = new Jar();
    this.agent = new https.Agent({ keepAlive, maxSockets, rejectUnauthorized: false });
  }

  /**
   * Resolves { status, headers, body } (never rejects on HTTP status; rejects on network errors).
   * A connection that the front closes before any answer (an nginx reload closes its idle
   * connections, and a connection it had just accepted counts as idle) is retried, as browsers
   * do: a request sent on a kept-alive connection, or a GET/HEAD. Nothing else is retried.
   */
  async request(method, p, opts = {}) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(method, p, opts);
      } catch (e) {
        const retry = e.code === 'ECONNRESET' && (e.reusedSocket || method === 'GET' || method === 'HEAD');
        // the next idle connection of the pool may be one the front is closing too
        if (!retry || attempt > this.agent.maxSockets) throw e;
      }
    }
  }

  once(method, p, { body = null, headers = {}, timeoutMs = 15000, jar = true } = {}) {
    return new Promise((resolve, reject) => {
      const h = { ...headers };
      if (jar && this.jar.cookies.size) h.cookie = this.jar.header();
      if (body !== null) h['content-length'] = Buffer.byteLength(body);
      const req = https.request(
        { host: this.host, port: this.port, path: p, method, headers: h, agent: this.agent, servername: 'localhost' },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            if (jar) this.jar.take(res.headers['set-cookie']);
            resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
          });
          res.on('error', reject);
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${method} ${p}`)));
      req.on('error', (e) => {
        e.reusedSocket = req.reusedSocket;
        reject(e);
      });
      if (body !== null) req.write(body);
      req.end();
    });
  }

  get(p, opts) {
    return this.request('GET', p, opts);
  }

  /** GET / and the page's csrf_token. */
  async formToken() {
    const res = await this.get('/');
    const m = /name="csrf_token"\s+value="([^"]+)"/.exec(res.body) || /value="([^"]+)"\s+name="csrf_token"/.exec(res.body);
    if (res.status !== 200 || !m) throw new Error(`GET / gave ${res.status} without a csrf_token:\n${res.body.slice(0, 500)}`);
    return m[1];
  }

  /** POST /add as the form does. */
  async add(title, description = 'added by the stack tests') {
    const token = await this.formToken();
    const body = new URLSearchParams({ title, description, csrf_token: token }).toString();
    return this.request('POST', '/add', { body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  }

  close() {
    this.agent.destroy();
  }
}

/** A plain HTTP request (for the redirect); resolves { status, headers }. */
export function plainGet(host, port, p) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path: p, method: 'GET', headers: { host: `localhost:${port}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Runs `concurrency` loops of fn() for ms milliseconds; resolves { ok, failures: [..] } where fn
 * resolves true for a success or a string describing the failure.
 */
export async function load(fn, { concurrency = 16, ms = 3000 } = {}) {
  const end = Date.now() + ms;
  let ok = 0;
  const failures = [];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        try {
          const r = await fn();
          if (r === true) ok++;
          else failures.push(String(r));
        } catch (e) {
          failures.push(e.message);
        }
      }
    }),
  );
  return { ok, failures };
}

/**
 * Whether a TCP connection from namespace ns to host:port opens within timeoutS (bash /dev/tcp).
 * Resolves true or false.
 */
export async function canConnect(ns, host, port, timeoutS = 1.5) {
  try {
    await run('ip', ['netns', 'exec', ns, 'timeout', String(timeoutS), 'bash', '-c', `exec 3<>/dev/tcp/${host}/${port}`], {
      timeout: (timeoutS + 5) * 1000,
    });
    return true;
  } catch {
    return false;
  }
}

/** curl inside namespace ns; resolves stdout. */
export async function curlIn(ns, args) {
  const { stdout } = await run('ip', ['netns', 'exec', ns, 'curl', '-sk', '-m', '5', ...args], { timeout: 20000 });
  return stdout;
}

/** A TCP listener inside namespace ns on host:port (a child process); close() stops it. */
export async function listenIn(ns, host, port) {
  const code = `require('net').createServer((c) => c.end()).listen(${port}, '${host}', () => console.log('listening'))`;
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    out += d;
  });
  const t0 = Date.now();
  while (!out.includes('listening')) {
    if (child.exitCode !== null || Date.now() - t0 > 10000) throw new Error(`listener in ${ns} on ${host}:${port}: ${out}`);
    await sleep(20);
  }
  return {
    async close() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.on('exit', r));
      }
    },
  };
}

/** Names of the network namespaces that exist. */
export async function namespaces() {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter(Boolean);
}

/** true while process pid exists and is not a zombie. */
export function running(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export async function waitFor(what, fn, timeoutMs = 20000, stepMs = 200) {
  const t0 = Date.now();
  let last;
  while (Date.now() - t0 < timeoutMs) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e.message;
    }
    await sleep(stepMs);
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}
