// A private MariaDB for end-to-end tests, run by spec/support/mariadb.sh in a temporary
// directory on a free port (user h2lua / h2lua-test-pw, databases flaskcrud and flaskcrud_*).
//
//   const db = await startMariaDB();   db.url('flaskcrud_x') -> DATABASE_URL for h2lua
//   await db.root('SELECT ...', [params])   query as root over the unix socket (mysql2)
//   await db.kill(); await db.start();      fault injection (SIGKILL, then start on the same data)
//   await db.destroy()                      stop and remove the directory
//   await startMariaDB({ tls: dir })        TLS with dir/ca.pem, server-cert.pem, server-key.pem and
//                                           require_secure_transport=ON (db.tls = other dir, then
//                                           stop() and start(), serves another certificate)

import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { ROOT, freePort } from './server.mjs';

const run = promisify(execFile);
const SCRIPT = path.join(ROOT, 'spec/support/mariadb.sh');
export const DB_USER = 'h2lua';
export const DB_PASSWORD = 'h2lua-test-pw';

// servers not destroyed when the test process exits are killed and their directories removed
const live = new Set();
process.on('exit', () => {
  for (const db of live) {
    try {
      execFileSync(SCRIPT, ['kill', db.dir], { stdio: 'ignore', timeout: 10000 });
    } catch {
      /* best effort */
    }
    fs.rmSync(db.dir, { recursive: true, force: true });
  }
});

export class MariaDB {
  constructor(dir, port, tls = null) {
    this.dir = dir;
    this.port = port;
    this.tls = tls;
    this.socket = path.join(dir, 'mysqld.sock');
    this.conn = null;
  }

  /** DATABASE_URL for h2lua on database `name`. */
  url(name = 'flaskcrud', host = '127.0.0.1') {
    return `mysql://${DB_USER}:${DB_PASSWORD}@${host}:${this.port}/${name}`;
  }

  async start() {
    try {
      const tls = this.tls ? ['--tls', this.tls] : [];
      await run(SCRIPT, ['start', this.dir, String(this.port), ...tls], { timeout: 60000 });
    } catch (e) {
      throw new Error(`mariadb.sh start failed: ${e.stderr || e.message}`);
    }
  }

  async stop() {
    await this.closeConn();
    await run(SCRIPT, ['stop', this.dir], { timeout: 60000 });
  }

  /** SIGKILL, for fault tests; start() again recovers the data. */
  async kill() {
    await this.closeConn();
    await run(SCRIPT, ['kill', this.dir], { timeout: 30000 });
  }

  async closeConn() {
    const c = this.conn;
    this.conn = null;
    if (c) await c.end().catch(() => c.destroy());
  }

  /** Runs sql as root (unix socket); resolves the rows (or the result header). */
  async root(sql, params = []) {
    if (this.conn === null) {
      this.conn = await mysql.createConnection({ socketPath: this.socket, user: 'root', multipleStatements: true });
    }
    const [rows] = await this.conn.query(sql, params);
    return rows;
  }

  /** Creates (or empties) database `name`, on which the h2lua user has all privileges. */
  async freshDatabase(name) {
    assertName(name);
    await this.root(`DROP DATABASE IF EXISTS \`${name}\`; CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
    return name;
  }

  async destroy() {
    live.delete(this);
    try {
      await this.stop();
    } finally {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

function assertName(name) {
  if (!/^flaskcrud_[a-z0-9_]+$/.test(name)) throw new Error(`database name ${name} must match flaskcrud_[a-z0-9_]+`);
}

export async function startMariaDB({ tls = null } = {}) {
  // the port was free a moment ago; another process on the machine may take it first: another port
  for (let attempt = 1; ; attempt++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h2lua-db-'));
    const db = new MariaDB(dir, await freePort(), tls);
    live.add(db);
    try {
      await db.start();
      return db;
    } catch (e) {
      live.delete(db);
      fs.rmSync(dir, { recursive: true, force: true });
      if (attempt >= 3 || !/Address already in use/.test(e.message)) throw e;
    }
  }
}
