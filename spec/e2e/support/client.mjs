// A client of the entries app (scripts/, views/) that acts as a browser does: it keeps the cookies
// the server sets, reads the CSRF token from the page's forms and posts forms with it.
//
//   const server = await startApp(db, 'flaskcrud_x');   // h2lua on the real app, migrations applied
//   const c = new Client(server);
//   const token = await c.token();                      // GET / -> the csrf_token of its forms
//   await c.post('/add', { title, description, csrf_token: token });
//   await c.json('POST', '/api/entries', { title, description });
//   const rows = await entries(db, 'flaskcrud_x');      // the `entry` table, as root sees it

import path from 'node:path';
import { ROOT, sleep, startServer } from './server.mjs';

/** SCRIPTS_DIR / VIEWS_DIR / MIGRATIONS_DIR of the entries app in this repository. */
export const APP_DIRS = {
  SCRIPTS_DIR: path.join(ROOT, 'scripts'),
  VIEWS_DIR: path.join(ROOT, 'views'),
  MIGRATIONS_DIR: path.join(ROOT, 'db/migrations'),
};

/** The csrf_token value of the first form in an HTML page, or null. */
export function csrfToken(html) {
  const m = /<input type="hidden" name="csrf_token" value="([^"]*)">/.exec(html);
  return m ? m[1] : null;
}

/** The Set-Cookie header lines of a response, as an array. */
export function setCookies(res) {
  const sc = res.headers['set-cookie'];
  if (sc === undefined) return [];
  return Array.isArray(sc) ? sc : [sc];
}

/** Polls /readyz until 200 (migrations applied, database answering). */
export async function waitReady(server, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await server.get('/readyz', { timeoutMs: 5000 }).catch((e) => ({ status: 0, text: e.message }));
    if (last.status === 200) return;
    if (Date.now() > deadline) {
      throw new Error(`/readyz not 200 within ${timeoutMs} ms: ${last.status} ${last.text}\n${server.stderr.slice(-2000)}`);
    }
    await sleep(50);
  }
}

/** Starts h2lua with the entries app on database `name` of db and waits until it is ready. */
export async function startApp(db, name, env = {}) {
  const server = await startServer({ env: { ...APP_DIRS, DATABASE_URL: db.url(name), ...env } });
  try {
    await waitReady(server);
  } catch (e) {
    await server.stop({ signal: 'SIGKILL' });
    throw e;
  }
  return server;
}

/** The rows of `name`.entry ordered by id, as root reads them (status as a number or null). */
export async function entries(db, name) {
  const rows = await db.root(`SELECT id, title, description, status FROM \`${name}\`.entry ORDER BY id`);
  return rows.map((r) => ({ id: r.id, title: r.title, description: r.description, status: r.status }));
}

export async function countEntries(db, name) {
  const [row] = await db.root(`SELECT COUNT(*) AS n FROM \`${name}\`.entry`);
  return Number(row.n);
}

export class Client {
  constructor(server) {
    this.server = server;
    this.cookies = new Map();
  }

  /** The Cookie header this client sends ('' when it has no cookie). */
  get cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** server.request() with this client's cookies; keeps the cookies the response sets. */
  async request(p, opts = {}) {
    const headers = { ...(opts.headers ?? {}) };
    if (this.cookies.size > 0 && headers.cookie === undefined) headers.cookie = this.cookieHeader;
    const res = await this.server.request(p, { ...opts, headers });
    for (const line of setCookies(res)) {
      const m = /^([^=;\s]+)=([^;]*)/.exec(line);
      if (!m) continue;
      if (/;\s*Max-Age=0/i.test(line)) this.cookies.delete(m[1]);
      else this.cookies.set(m[1], m[2]);
    }
    return res;
  }

  get(p, opts = {}) {
    return this.request(p, { ...opts, method: 'GET' });
  }

  /** POSTs fields as application/x-www-form-urlencoded. */
  post(p, fields, opts = {}) {
    return this.request(p, {
      ...opts,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(opts.headers ?? {}) },
      body: new URLSearchParams(fields).toString(),
    });
  }

  /** A JSON request: value is encoded unless it is a string or Buffer (sent as is). */
  json(method, p, value, { contentType = 'application/json', headers = {} } = {}) {
    const body = value === undefined ? undefined : typeof value === 'string' || Buffer.isBuffer(value) ? value : JSON.stringify(value);
    const h = { ...headers };
    if (contentType !== null) h['content-type'] = contentType;
    return this.request(p, { method, headers: h, body });
  }

  /** GETs p (default /) and returns the csrf_token of its forms; fails when there is none. */
  async token(p = '/') {
    const res = await this.get(p);
    if (res.status !== 200) throw new Error(`GET ${p}: ${res.status}\n${res.text.slice(0, 500)}`);
    const t = csrfToken(res.text);
    if (t === null) throw new Error(`GET ${p} has no csrf_token field`);
    return t;
  }

  /** Adds an entry through the form on / (a new token each time); resolves the response. */
  async add(title, description) {
    return this.post('/add', { title, description, csrf_token: await this.token() });
  }
}
