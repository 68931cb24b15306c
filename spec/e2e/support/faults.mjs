// Tools for fault and hostile-input tests: a TCP proxy that can go silent, the server's memory,
// whether the binary is a sanitizer build, and the fixture application over the `entry` table.
//
//   const proxy = await FreezableProxy.start(db.port);  // DATABASE_URL to 127.0.0.1:proxy.port
//   proxy.freeze();   // nothing is forwarded either way, sockets stay open (a silent network)
//   proxy.unfreeze(); // forwarding resumes, held connections included
//   await proxy.close();
//
//   rssKb(pid)       VmRSS of a process in kB (from /proc/PID/status)
//   IS_SANITIZED     the server under test is the ASan+UBSan build
//   DBAPP            SCRIPTS_DIR/VIEWS_DIR of spec/e2e/fixtures/dbapp (slow queries, counts, inserts)
//   waitReady(server, ms)  polls /readyz until 200

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BIN, FIXTURES, ROOT, sleep } from './server.mjs';

export const DBAPP = {
  SCRIPTS_DIR: path.join(FIXTURES, 'dbapp'),
  VIEWS_DIR: path.join(FIXTURES, 'views'),
  MIGRATIONS_DIR: path.join(ROOT, 'db/migrations'),
};

/** True when BIN was linked with AddressSanitizer (its RSS then includes ASan's quarantine). */
export const IS_SANITIZED = (() => {
  try {
    return fs.readFileSync(BIN).includes('__asan_init');
  } catch {
    return false;
  }
})();

/** VmRSS of pid in kB, or null when the process is gone. */
export function rssKb(pid) {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Polls /readyz until it answers 200; throws after timeoutMs with the last answer. */
export async function waitReady(server, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await server.get('/readyz', { timeoutMs: 5000 }).catch((e) => ({ status: 0, text: e.message }));
    if (last.status === 200) return last;
    if (Date.now() > deadline) {
      throw new Error(`/readyz not 200 within ${timeoutMs} ms: ${last.status} ${last.text}\n${server.stderr.slice(-2000)}`);
    }
    await sleep(100);
  }
}

/**
 * A TCP proxy on 127.0.0.1 to 127.0.0.1:upstreamPort. While frozen it forwards nothing in either
 * direction and reads nothing (so the kernel buffers fill and the peers see a silent network), but
 * closes nothing; connections accepted while frozen are held without an upstream until unfrozen.
 */
export class FreezableProxy {
  constructor(upstreamPort) {
    this.upstreamPort = upstreamPort;
    this.frozen = false;
    this.pairs = new Set(); // { client, upstream|null }
    this.accepted = 0;
    this.server = net.createServer((client) => this.#onClient(client));
  }

  static async start(upstreamPort) {
    const p = new FreezableProxy(upstreamPort);
    await new Promise((resolve, reject) => {
      p.server.once('error', reject);
      p.server.listen(0, '127.0.0.1', resolve);
    });
    p.port = p.server.address().port;
    return p;
  }

  #onClient(client) {
    this.accepted++;
    const pair = { client, upstream: null };
    this.pairs.add(pair);
    client.on('error', () => {});
    client.on('close', () => {
      this.pairs.delete(pair);
      pair.upstream?.destroy();
    });
    if (this.frozen) client.pause();
    else this.#connect(pair);
  }

  #connect(pair) {
    const up = net.connect(this.upstreamPort, '127.0.0.1');
    pair.upstream = up;
    up.on('error', () => {});
    up.on('close', () => pair.client.destroy());
    pair.client.on('data', (d) => up.write(d));
    up.on('data', (d) => pair.client.write(d));
    if (this.frozen) up.pause();
  }

  freeze() {
    this.frozen = true;
    for (const p of this.pairs) {
      p.client.pause();
      p.upstream?.pause();
    }
  }

  unfreeze() {
    this.frozen = false;
    for (const p of this.pairs) {
      if (p.upstream === null) this.#connect(p);
      p.client.resume();
      p.upstream.resume();
    }
  }

  /** Connections currently open through the proxy. */
  get open() {
    return this.pairs.size;
  }

  async close() {
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream?.destroy();
    }
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/**
 * A TCP proxy on 127.0.0.1 whose upstream can be switched, as a failover moves the name of the
 * database to another server: switchTo(port) closes every connection to the old upstream at once
 * (the old primary is gone) and sends new connections to the new one.
 *
 *   const proxy = await SwitchProxy.start(a.port); ...; proxy.switchTo(b.port); await proxy.close();
 */
export class SwitchProxy {
  constructor(upstreamPort) {
    this.upstreamPort = upstreamPort;
    this.pairs = new Set();
    this.server = net.createServer((client) => this.#onClient(client));
  }

  static async start(upstreamPort) {
    const p = new SwitchProxy(upstreamPort);
    await new Promise((resolve, reject) => {
      p.server.once('error', reject);
      p.server.listen(0, '127.0.0.1', resolve);
    });
    p.port = p.server.address().port;
    return p;
  }

  #onClient(client) {
    const up = net.connect(this.upstreamPort, '127.0.0.1');
    const pair = { client, up };
    this.pairs.add(pair);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      up.destroy();
    };
    client.on('error', end);
    up.on('error', end);
    client.on('close', end);
    up.on('close', end);
    client.pipe(up);
    up.pipe(client);
  }

  switchTo(upstreamPort) {
    this.upstreamPort = upstreamPort;
    for (const p of [...this.pairs]) {
      p.client.destroy();
      p.up.destroy();
    }
    this.pairs.clear();
  }

  async close() {
    this.switchTo(this.upstreamPort);
    await new Promise((resolve) => this.server.close(resolve));
  }
}
