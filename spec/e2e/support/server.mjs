// A real h2lua process for end-to-end tests.
//
// startServer({ env }) starts `process.env.H2LUA_BIN || 'build/h2lua'` on a free loopback port with
// the fixture app (spec/e2e/fixtures) and a clean environment plus `env`, waits until /healthz
// answers 200 and returns a Server. Its stdout (the access log) and stderr are captured.
// server.stop() sends SIGTERM, then SIGKILL after a timeout, and returns how the process ended.
//
// describeServer(name, env, fn) is a describe() block with one server for all its tests; its last
// test stops the server and asserts a clean exit (code 0, no sanitizer report).

import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = path.resolve(ROOT, process.env.H2LUA_BIN || 'build/h2lua');
export const FIXTURES = path.join(ROOT, 'spec/e2e/fixtures');
export const SECRET_KEY = 'e2e-secret-key-0123456789abcdef';

/** Environment every test server starts with (before the test's own `env`). */
export function baseEnv() {
  const env = {
    PATH: process.env.PATH || '/usr/bin:/bin',
    HOME: process.env.HOME || '/root',
    LANG: 'C.UTF-8',
    HOST: '127.0.0.1',
    WORKERS: '2',
    APP_ENV: 'production',
    SECRET_KEY,
    LOG_FORMAT: 'json',
    SCRIPTS_DIR: path.join(FIXTURES, 'scripts'),
    VIEWS_DIR: path.join(FIXTURES, 'views'),
    DRAIN_TIMEOUT: '10',
  };
  // sanitizer settings of the caller (ops/test sets them for the ASan build) pass through, and
  // DB_STMT_CACHE (DB_STMT_CACHE=0 runs a suite on the text protocol; a test's own env still wins)
  for (const k of ['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS', 'DB_STMT_CACHE']) {
    if (process.env[k] !== undefined) env[k] = process.env[k];
  }
  return env;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

const SANITIZER_RE = /ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer)|runtime error:|SUMMARY: \w+Sanitizer/;

/** Lines of a sanitizer report in `text`, or null. */
export function sanitizerReport(text) {
  const i = text.search(SANITIZER_RE);
  if (i < 0) return null;
  const start = text.lastIndexOf('=================', i);
  return text.slice(start >= 0 && i - start < 300 ? start : i, i + 8000);
}

function parseJsonLines(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      out.push({ __unparsed: line });
    }
  }
  return out;
}

export class Server {
  constructor(child, port, env) {
    this.child = child;
    this.pid = child.pid;
    this.port = port;
    this.env = env;
    this.stdout = '';
    this.stderr = '';
    this.exited = null; // { code, signal } once the process is gone
    this.exitPromise = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        running.delete(child);
        this.exited = { code, signal };
        resolve(this.exited);
      });
    });
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      this.stdout += d;
    });
    child.stderr.on('data', (d) => {
      this.stderr += d;
    });
    this.closed = new Promise((resolve) => child.on('close', resolve));
  }

  get origin() {
    return `http://127.0.0.1:${this.port}`;
  }

  url(p) {
    return this.origin + p;
  }

  /**
   * One HTTP/1.1 request on a new connection (Connection: close); see request(). When it fails
   * because the server died, the error carries the server's exit and its stderr.
   */
  async request(p, opts = {}) {
    try {
      return await request(this.port, p, { ...opts, tls: opts.tls ?? this.env.TLS_CERT !== undefined });
    } catch (e) {
      await Promise.race([this.exitPromise, sleep(200)]);
      if (this.exited === null) throw e;
      await this.closed;
      const why = sanitizerReport(this.stderr) ?? this.stderr.slice(-4000);
      throw new Error(`${opts.method ?? 'GET'} ${p}: ${e.message}; h2lua exited (code ${this.exited.code}, signal ${this.exited.signal}); stderr:\n${why}`);
    }
  }

  get(p, opts = {}) {
    return this.request(p, { ...opts, method: 'GET' });
  }

  /** Access-log lines so far, parsed (lines that are not JSON come as { __unparsed }). */
  accessLog() {
    return parseJsonLines(this.stdout);
  }

  /** stderr lines so far, parsed like accessLog(). */
  errorLog() {
    return parseJsonLines(this.stderr);
  }

  /** Waits until fn(this) is truthy; fails after timeoutMs with what was captured. */
  async waitFor(fn, timeoutMs = 5000, what = 'condition') {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = fn(this);
      if (v) return v;
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}\n--- stdout:\n${this.stdout.slice(-2000)}\n--- stderr:\n${this.stderr.slice(-2000)}`);
      }
      await sleep(20);
    }
  }

  /** Sends a signal; returns nothing. */
  signal(sig) {
    if (this.exited === null) this.child.kill(sig);
  }

  /**
   * Sends `signal` (SIGTERM), waits up to timeoutMs for the exit, then SIGKILLs.
   * Resolves { code, signal, killed, ms } where killed tells whether SIGKILL was needed.
   */
  async stop({ signal = 'SIGTERM', timeoutMs = 15000 } = {}) {
    const t0 = Date.now();
    if (this.exited !== null) {
      await this.closed;
      return { ...this.exited, killed: false, ms: 0 };
    }
    this.child.kill(signal);
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs);
    });
    let res = await Promise.race([this.exitPromise, timeout]);
    clearTimeout(timer);
    let killed = false;
    if (res === null) {
      killed = true;
      this.child.kill('SIGKILL');
      res = await this.exitPromise;
    }
    await this.closed;
    return { ...res, killed, ms: Date.now() - t0 };
  }

  /** Stops the server and asserts it exited 0 on SIGTERM in time, without a sanitizer report. */
  async stopClean(opts = {}) {
    const r = await this.stop(opts);
    const report = sanitizerReport(this.stderr);
    if (report !== null) assert.fail(`sanitizer report on stderr:\n${report}`);
    if (r.killed) assert.fail(`did not exit within ${opts.timeoutMs ?? 15000} ms of SIGTERM; stderr:\n${this.stderr.slice(-2000)}`);
    if (r.code !== 0 || r.signal !== null) {
      assert.fail(`exit after SIGTERM: code ${r.code}, signal ${r.signal} (want code 0); stderr:\n${this.stderr.slice(-2000)}`);
    }
    return r;
  }
}

/**
 * Starts h2lua with baseEnv() + env (a value of undefined removes a variable) on a free port and
 * waits for GET /healthz -> 200. Retries on another port when the port was taken meanwhile.
 */
export async function startServer({ env = {}, args = [], timeoutMs = 20000, cwd = ROOT } = {}) {
  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = env.PORT !== undefined ? Number(env.PORT) : await freePort();
    const full = { ...baseEnv(), PORT: String(port), ...env };
    for (const k of Object.keys(full)) if (full[k] === undefined) delete full[k];
    const child = spawn(BIN, args, { env: full, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    const server = new Server(child, port, full);
    const spawnError = new Promise((resolve) => child.on('error', resolve));
    try {
      await waitHealthy(server, timeoutMs, spawnError);
      return server;
    } catch (e) {
      lastError = e;
      await server.stop({ signal: 'SIGKILL', timeoutMs: 1000 });
      if (!/address already in use|EADDRINUSE/i.test(server.stderr) || env.PORT !== undefined) break;
    }
  }
  throw lastError;
}

async function waitHealthy(server, timeoutMs, spawnError) {
  const deadline = Date.now() + timeoutMs;
  let err = null;
  spawnError.then((e) => {
    err = e;
  });
  for (;;) {
    if (err) throw new Error(`cannot start ${BIN}: ${err.message}`);
    if (server.exited !== null) {
      await server.closed;
      throw new Error(`h2lua exited during start-up (${JSON.stringify(server.exited)}); stderr:\n${server.stderr.slice(-3000)}`);
    }
    try {
      const tls = server.env.TLS_CERT !== undefined;
      const res = await request(server.port, '/healthz', { timeoutMs: 1000, tls });
      if (res.status === 200) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      throw new Error(`h2lua did not answer /healthz within ${timeoutMs} ms; stderr:\n${server.stderr.slice(-3000)}`);
    }
    await sleep(30);
  }
}

/**
 * Runs h2lua to completion (for --help and configuration errors): resolves
 * { code, signal, stdout, stderr }. Kills it after timeoutMs (and then reports timedOut).
 * Rejects when its stderr holds a sanitizer report, whatever the exit.
 */
export function runOnce({ args = [], env = {}, timeoutMs = 10000 } = {}) {
  const full = { ...baseEnv(), ...env };
  for (const k of Object.keys(full)) if (full[k] === undefined) delete full[k];
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { env: full, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      running.delete(child);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      const report = sanitizerReport(stderr);
      if (report !== null) reject(new Error(`h2lua ${args.join(' ')}: sanitizer report on stderr:\n${report}`));
      else resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/**
 * The sum of the samples of metric `name` (all its labels) in the server's /metrics, read with the
 * bearer token; fails unless /metrics answers 200 and has the metric.
 */
export async function metricSum(server, name, token) {
  const res = await request(server.port, '/metrics', { headers: { authorization: `Bearer ${token}` }, timeoutMs: 5000 });
  assert.equal(res.status, 200, `/metrics: ${res.text.slice(0, 200)}`);
  const samples = res.text.split('\n').filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  assert.ok(samples.length > 0, `${name} is in /metrics`);
  return samples.reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

/**
 * One HTTP/1.1 request to 127.0.0.1:port. opts: method, headers, body (string|Buffer, sent with
 * content-length unless a transfer-encoding header is given), agent
 * (default: none, so Connection: close), timeoutMs, tls (HTTPS, any certificate). Resolves
 * { status, headers, rawHeaders, body (Buffer), text, socket } — headers lower-cased, repeated
 * set-cookie as an array.
 */
export function request(port, p, opts = {}) {
  const { method = 'GET', body, agent = false, timeoutMs = 10000, tls = false } = opts;
  const headers = { ...(opts.headers ?? {}) };
  const named = (n) => Object.keys(headers).some((k) => k.toLowerCase() === n);
  if (body !== undefined && !named('content-length') && !named('transfer-encoding')) {
    headers['content-length'] = String(Buffer.byteLength(body));
  }
  const mod = tls ? https : http;
  const extra = tls ? { rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] } : {};
  return new Promise((resolve, reject) => {
    const req = mod.request({ host: '127.0.0.1', port, path: p, method, headers, agent, ...extra }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        resolve({
          status: res.statusCode,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: buf,
          text: buf.toString('utf8'),
          socket: req.socket,
        });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${p}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/**
 * Sends `data` on a new raw TCP connection and collects what comes back until the server closes
 * the connection, `until(text)` is true, or timeoutMs passes. Resolves { text, closed, timedOut }.
 */
export function rawExchange(port, data, { until = null, timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let text = '';
    let done = false;
    const finish = (closed, timedOut) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ text, closed, timedOut });
    };
    const timer = setTimeout(() => finish(false, true), timeoutMs);
    sock.setEncoding('latin1');
    sock.on('connect', () => sock.write(data));
    sock.on('data', (d) => {
      text += d;
      if (until && until(text)) finish(false, false);
    });
    sock.on('end', () => finish(true, false));
    sock.on('close', () => finish(true, false));
    sock.on('error', (e) => {
      if (text !== '') finish(true, false);
      else if (!done) {
        done = true;
        clearTimeout(timer);
        reject(e);
      }
    });
  });
}

/**
 * Splits raw HTTP/1.x responses (content-length or chunked bodies, or no body for HEAD when
 * headOnly) into [{ status, headers, body }].
 */
export function parseResponses(text, { headOnly = false } = {}) {
  const out = [];
  let rest = text;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const lines = rest.slice(0, end).split('\r\n');
    const m = /^HTTP\/\d\.\d (\d{3})/.exec(lines[0]);
    if (!m) break;
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      const k = l.slice(0, i).trim().toLowerCase();
      const v = l.slice(i + 1).trim();
      headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
    }
    rest = rest.slice(end + 4);
    let body = '';
    const status = Number(m[1]);
    if (headOnly || status === 204 || status === 304 || (status >= 100 && status < 200)) {
      body = '';
    } else if (/chunked/i.test(headers['transfer-encoding'] || '')) {
      for (;;) {
        const le = rest.indexOf('\r\n');
        if (le < 0) break;
        const size = parseInt(rest.slice(0, le), 16);
        rest = rest.slice(le + 2);
        if (size === 0) {
          const te = rest.indexOf('\r\n');
          rest = rest.slice(te + 2);
          break;
        }
        body += rest.slice(0, size);
        rest = rest.slice(size + 2);
      }
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      body = rest.slice(0, n);
      rest = rest.slice(n);
    } else {
      body = rest;
      rest = '';
    }
    out.push({ status, headers, body });
  }
  return out;
}

/**
 * describe(name) with one server (baseEnv() + env) started before its tests; fn(h) registers the
 * tests, where h.server is the running Server. A last test stops it and asserts a clean exit.
 */
export function describeServer(name, env, fn) {
  describe(name, () => {
    const h = { server: null };
    before(async () => {
      h.server = await startServer({ env });
    });
    after(async () => {
      if (h.server && h.server.exited === null) await h.server.stop({ signal: 'SIGKILL' });
    });
    fn(h);
    it('exits 0 on SIGTERM without a sanitizer report', async () => {
      assert.ok(h.server, 'the server did not start');
      await h.server.stopClean();
    });
  });
}

/** The security headers every response must carry; throws an AssertionError naming the gap. */
export function assertSecurityHeaders(res, what = '') {
  const h = res.headers;
  const where = what ? ` (${what})` : '';
  assert.equal(h['x-content-type-options'], 'nosniff', `x-content-type-options${where}`);
  assert.equal(String(h['x-frame-options']).toUpperCase(), 'DENY', `x-frame-options${where}`);
  assert.match(
    String(h['referrer-policy'] ?? ''),
    /^(no-referrer|no-referrer-when-downgrade|origin|origin-when-cross-origin|same-origin|strict-origin|strict-origin-when-cross-origin)$/,
    `referrer-policy${where}`,
  );
  assert.match(String(h['content-security-policy'] ?? ''), /'self'/, `content-security-policy with 'self'${where}`);
  if (h.server !== undefined) assert.doesNotMatch(String(h.server), /\/|\d+\.\d+/, `server header without a version${where}`);
  assert.match(String(h['x-request-id'] ?? ''), /^[0-9a-f]{16}$/, `x-request-id: 16 hex digits${where}`);
}
