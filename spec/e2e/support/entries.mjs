// Writing entries the way a client does, against the entries app (scripts/) when it has its write
// routes, else against the fixture app spec/e2e/fixtures/dbapp (same `entry` table).
//
//   const target = entriesTarget();            // { kind: 'app' | 'fixture', env }
//   const c = await target.client(server, agent);
//   const r = await c.add(title, description, viaApi);   // { status, acked, id, text } or { status: 0, error }
//   (id: the new entry's id when the answer names it: the API's 201)
//
// The app: a form POST /add with the session cookie and csrf_token (acknowledged by 303), or
// POST /api/entries with JSON (acknowledged by 201). The fixture: the same two routes, 201 both.

import fs from 'node:fs';
import path from 'node:path';
import { ROOT, request } from './server.mjs';
import { DBAPP } from './faults.mjs';

/** True when scripts/app.lua has the entries app's write routes. */
export function hasEntriesApp() {
  try {
    const src = fs.readFileSync(path.join(ROOT, 'scripts/app.lua'), 'utf8');
    return /["']\/add["']/.test(src) && /["']\/api\/entries["']/.test(src);
  } catch {
    return false;
  }
}

export const APP_ENV = {
  SCRIPTS_DIR: path.join(ROOT, 'scripts'),
  VIEWS_DIR: path.join(ROOT, 'views'),
  MIGRATIONS_DIR: path.join(ROOT, 'db/migrations'),
  // the clients of these tests all write from 127.0.0.1, far past a person's pace (rate_limits.test.mjs tests the limit)
  WRITE_LIMIT: 'off',
};

const FORM = 'application/x-www-form-urlencoded';

async function attempt(port, p, opts) {
  try {
    const res = await request(port, p, opts);
    return { status: res.status, text: res.text, headers: res.headers };
  } catch (e) {
    return { status: 0, error: e.code || e.message };
  }
}

/** The session cookie pairs ("name=value") of a response's Set-Cookie headers. */
export function cookiePairs(res) {
  const sc = res.headers?.['set-cookie'] ?? [];
  return (Array.isArray(sc) ? sc : [sc]).map((c) => c.split(';')[0]);
}

/** The csrf_token value of the first form in an HTML page, or null. */
export function csrfToken(html) {
  const m = /name="csrf_token"[^>]*value="([^"]*)"|value="([^"]*)"[^>]*name="csrf_token"/.exec(html);
  return m ? m[1] ?? m[2] : null;
}

export function entriesTarget() {
  if (!hasEntriesApp()) {
    return {
      kind: 'fixture',
      env: DBAPP,
      async client(server, agent) {
        return {
          add(title, description, viaApi) {
            const opts = viaApi
              ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title, description }) }
              : { method: 'POST', headers: { 'content-type': FORM }, body: new URLSearchParams({ title, description }).toString() };
            return attempt(server.port, viaApi ? '/api/entries' : '/add', { ...opts, agent, timeoutMs: 15000 }).then(
              (r) => ({ ...r, acked: r.status === 201, id: r.status === 201 ? JSON.parse(r.text).id : undefined }),
            );
          },
        };
      },
    };
  }
  return {
    kind: 'app',
    env: APP_ENV,
    async client(server, agent) {
      // a session and its CSRF token, as a browser gets them from the page with the form
      let cookies = [];
      let token = null;
      for (let i = 0; i < 50 && token === null; i++) {
        const page = await attempt(server.port, '/', { agent, timeoutMs: 15000 });
        if (page.status === 200) {
          cookies = cookiePairs(page);
          token = csrfToken(page.text);
          if (token === null) throw new Error('GET / has no csrf_token field');
        } else {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      if (token === null) throw new Error('GET / did not answer 200');
      return {
        add(title, description, viaApi) {
          const opts = viaApi
            ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title, description }) }
            : {
                method: 'POST',
                headers: { 'content-type': FORM, cookie: cookies.join('; ') },
                body: new URLSearchParams({ title, description, csrf_token: token }).toString(),
              };
          return attempt(server.port, viaApi ? '/api/entries' : '/add', { ...opts, agent, timeoutMs: 15000 }).then((r) => ({
            ...r,
            acked: viaApi ? r.status === 201 : r.status === 303,
            id: viaApi && r.status === 201 ? JSON.parse(r.text).id : undefined,
          }));
        },
      };
    },
  };
}
