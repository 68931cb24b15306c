// Hostile HTTP against the entries app (the fixture app over the same table when the entries app
// has no write routes yet): oversize bodies and heads, thousands of headers, slowloris, malformed
// paths, forms and JSON, absurd ids, CR/LF meant for response headers, ambiguous framing. Each
// gets a clear 4xx or a closed connection; a normal client beside them is served 200 throughout;
// nothing reaches the database.
// timing: slow clients dropped after REQ_TIMEOUT, the normal client's latency (percentiles); ops/test
// runs this file alone.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { startMariaDB } from './support/mariadb.mjs';
import { metricSum, parseResponses, rawExchange, request, sleep, startServer } from './support/server.mjs';
import { IS_SANITIZED, waitReady } from './support/faults.mjs';
import { cookiePairs, csrfToken, entriesTarget } from './support/entries.mjs';
import { describeMs, percentile } from './support/timing.mjs';

const MAX_BODY = 4096;
const REQ_TIMEOUT = 2;
const TOKEN = 'hostile-metrics-token-0123456789';
const target = entriesTarget();
const APP = target.kind === 'app';

/** A raw HTTP/1.1 exchange; data is latin1 text (bytes as they are) or a Buffer. */
async function raw(port, data, timeoutMs = 5000) {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data, 'latin1');
  const r = await rawExchange(port, buf, { timeoutMs });
  const res = parseResponses(r.text);
  return { ...r, responses: res, status: res[0]?.status ?? 0 };
}

/** Asserts a clear refusal: a 4xx answer (of `statuses` when given), or a closed connection. */
function assertRefused(r, what, statuses = null) {
  assert.equal(r.timedOut, false, `${what}: neither answered nor closed`);
  if (r.status === 0) {
    assert.equal(r.closed, true, `${what}: closed without an answer`);
    return;
  }
  assert.ok(r.status >= 400 && r.status < 500, `${what}: ${r.status} is not a 4xx`);
  if (statuses) assert.ok(statuses.includes(r.status), `${what}: ${r.status}, want one of ${statuses.join(', ')}`);
}

const head = (method, p, headers = {}, body = '') => {
  const lines = [`${method} ${p} HTTP/1.1`, 'Host: 127.0.0.1'];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  if (body !== '' && headers['Content-Length'] === undefined && headers['Transfer-Encoding'] === undefined) {
    lines.push(`Content-Length: ${Buffer.byteLength(body, 'latin1')}`);
  }
  lines.push('Connection: close');
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
};
const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };
const JSONCT = { 'Content-Type': 'application/json' };

describe(`hostile input (${APP ? 'entries app' : 'fixture app'})`, () => {
  let db;
  let name;
  let server;
  let rowsBefore;
  let cookie = '';
  let token = '';
  let seedId;
  const normal = { stop: false, statuses: new Map(), ms: [], loop: null, agent: null };

  const count = async () => Number((await db.root(`SELECT COUNT(*) AS n FROM \`${name}\`.entry`))[0].n);

  before(async () => {
    db = await startMariaDB();
    name = await db.freshDatabase('flaskcrud_hostile');
    server = await startServer({
      env: { ...target.env, DATABASE_URL: db.url(name), WORKERS: '2', MAX_BODY: String(MAX_BODY), REQ_TIMEOUT: String(REQ_TIMEOUT), HTTP2: 'on', METRICS_TOKEN: TOKEN },
    });
    await waitReady(server);
    const seeded = await server.request('/api/entries', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'seed', description: 'seed row' }),
    });
    assert.equal(seeded.status, 201, seeded.text);
    seedId = JSON.parse(seeded.text).id;
    rowsBefore = await count();
    if (APP) {
      const page = await server.get('/');
      assert.equal(page.status, 200);
      cookie = cookiePairs(page).join('; ');
      token = csrfToken(page.text);
      assert.ok(token, 'a CSRF token on the page');
    }
    // the normal client: a page read from the database, then the health check, all along
    normal.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const p = APP ? '/api/entries?limit=5' : `/entries/${seedId}`;
    normal.loop = (async () => {
      while (!normal.stop) {
        for (const path of [p, '/healthz']) {
          const t0 = Date.now();
          const r = await request(server.port, path, { agent: normal.agent, timeoutMs: 10000 }).catch((e) => ({ status: e.code || e.message }));
          normal.ms.push(Date.now() - t0);
          normal.statuses.set(r.status, (normal.statuses.get(r.status) ?? 0) + 1);
        }
        await sleep(10);
      }
    })();
  });

  after(async () => {
    normal.stop = true;
    await normal.loop;
    normal.agent?.destroy();
    if (server) await server.stop({ signal: 'SIGKILL' });
    if (db) await db.destroy();
  });

  /** Form body with the session's token (when the app has one). */
  const withToken = (body) => (APP ? `${body}&csrf_token=${encodeURIComponent(token)}` : body);
  const formHeaders = () => (APP ? { ...FORM, Cookie: cookie } : FORM);

  describe('sizes', () => {
    it('a form body over MAX_BODY: 413', async () => {
      const body = withToken(`title=t&description=${'x'.repeat(MAX_BODY)}`);
      assertRefused(await raw(server.port, head('POST', '/add', formHeaders(), body)), 'form > MAX_BODY', [413]);
    });

    it('a JSON body over MAX_BODY: 413', async () => {
      const body = JSON.stringify({ title: 't', description: 'x'.repeat(MAX_BODY) });
      assertRefused(await raw(server.port, head('POST', '/api/entries', JSONCT, body)), 'JSON > MAX_BODY', [413]);
    });

    it('a chunked body over MAX_BODY: 413', async () => {
      let chunks = '';
      for (let i = 0; i < 6; i++) chunks += `400\r\n${'x'.repeat(1024)}\r\n`;
      const r = await raw(server.port, head('POST', '/api/entries', { ...JSONCT, 'Transfer-Encoding': 'chunked' }) + chunks + '0\r\n\r\n');
      assertRefused(r, 'chunked > MAX_BODY', [413]);
    });

    it('a body of 64 x MAX_BODY: refused (413 or closed) before it is all read', async () => {
      const r = await raw(server.port, head('POST', '/api/entries', JSONCT, 'x'.repeat(64 * MAX_BODY)));
      assertRefused(r, '64 x MAX_BODY', [413]);
    });

    it('10 MB announced with Expect: 100-continue: 413 without reading it', async () => {
      const data = head('POST', '/api/entries', { ...JSONCT, 'Content-Length': String(10 * 1024 * 1024), Expect: '100-continue' });
      const r = await rawExchange(server.port, data, { until: (t) => /HTTP\/1\.1 (?!100)\d{3}/.test(t), timeoutMs: 5000 });
      assert.equal(r.timedOut, false, 'a final answer without the body');
      assert.match(r.text, /HTTP\/1\.1 413/);
    });

    it('a header of 9 kB: 431', async () => {
      assertRefused(await raw(server.port, head('GET', '/', { 'X-Big': 'h'.repeat(9 * 1024) })), '9 kB header', [431]);
    });

    it('a Host of 10 kB: 431', async () => {
      const data = `GET / HTTP/1.1\r\nHost: ${'h'.repeat(10 * 1024)}\r\nConnection: close\r\n\r\n`;
      assertRefused(await raw(server.port, data), '10 kB Host', [431]);
    });

    it('a cookie of 64 kB: 431', async () => {
      assertRefused(await raw(server.port, head('GET', '/', { Cookie: `session=${'a'.repeat(64 * 1024)}` })), '64 kB cookie', [431]);
    });

    it('a request line of 100 kB: 431, 414 or closed', async () => {
      assertRefused(await raw(server.port, head('GET', `/${'a'.repeat(100 * 1024)}`)), '100 kB path', [431, 414, 400]);
    });

    it('101 headers: 400', async () => {
      const h = {};
      for (let i = 0; i < 101; i++) h[`X-H${i}`] = '1';
      assertRefused(await raw(server.port, head('GET', '/', h)), '101 headers', [400, 431]);
    });

    it('5000 headers: 400, 431 or closed', async () => {
      const h = {};
      for (let i = 0; i < 5000; i++) h[`X-H${i}`] = '1';
      assertRefused(await raw(server.port, head('GET', '/', h)), '5000 headers', [400, 431]);
    });

    it('too many form fields: 400', async () => {
      const body = withToken(Array.from({ length: 300 }, (_, i) => `f${i}=1`).join('&') + '&title=t&description=d');
      assertRefused(await raw(server.port, head('POST', '/add', formHeaders(), body)), '300 form fields', [400]);
    });

    it('too many query fields: 400', async () => {
      const q = Array.from({ length: 300 }, (_, i) => `f${i}=1`).join('&');
      assertRefused(await raw(server.port, head('GET', `/?${q}`)), '300 query fields', [400]);
    });
  });

  describe('framing and syntax', () => {
    const cases = [
      ['NUL in a header value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\nConnection: close\r\n\r\n'],
      ['a control character in the method', 'G\x01T / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
      ['a space in a header name', 'GET / HTTP/1.1\r\nHost: x\r\nX A: a\r\nConnection: close\r\n\r\n'],
      ['HTTP/9.9', 'GET / HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n'],
      ['a TLS ClientHello on the plain port', '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03' + '\x00'.repeat(64)],
      ['binary garbage', Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 73 + 11) % 256))],
      ['an unknown Transfer-Encoding', head('POST', '/api/entries', { ...JSONCT, 'Transfer-Encoding': 'gzip' }) + 'abc'],
      ['a negative Content-Length', head('POST', '/api/entries', { ...JSONCT, 'Content-Length': '-1' })],
      ['Content-Length: 3, 3', head('POST', '/api/entries', { ...JSONCT, 'Content-Length': '3, 3' }) + '{}x'],
      ['Content-Length: +3', head('POST', '/api/entries', { ...JSONCT, 'Content-Length': '+3' }) + '{}x'],
      ['a bad chunk size', head('POST', '/api/entries', { ...JSONCT, 'Transfer-Encoding': 'chunked' }) + 'zz\r\n{}\r\n0\r\n\r\n'],
    ];
    for (const [what, data] of cases) {
      it(`${what}: 400 or closed`, async () => {
        assertRefused(await raw(server.port, data), what);
      });
    }

    // Request smuggling (RFC 9112 sections 6.3 and 3.2): framing a front and h2lua could read two
    // ways is refused by h2lua itself, before any handler: 400, the connection closed, nothing
    // after the head read, and counted in /metrics.
    const refusedFraming = () => metricSum(server, 'h2lua_requests_refused_framing_total', TOKEN);
    // each worker publishes its figures every 100 ms: wait for the count to reach `want`, and
    // give it back whatever it is then (a count past `want` is as wrong as one below it)
    const refusedReaching = async (want) => {
      let n;
      for (let i = 0; i < 100 && (n = await refusedFraming()) < want; i++) await sleep(50);
      return n;
    };
    const SMUGGLE = 'POST /api/entries HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}';
    const smuggling = [
      ['two different Content-Length headers',
        'POST /api/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n' +
        'Content-Length: 40\r\n\r\n{}GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['two equal Content-Length headers',
        'POST /api/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n' +
        'Content-Length: 2\r\n\r\n{}GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['Content-Length with Transfer-Encoding',
        'POST /api/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\n' +
        'Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['Transfer-Encoding before Content-Length',
        'POST /api/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\ntransfer-encoding: chunked\r\n' +
        'content-length: 4\r\n\r\n2\r\n{}\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['two Host headers', 'GET /healthz HTTP/1.1\r\nHost: a\r\nHOST: b\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'],
    ];
    for (const [what, data] of smuggling) {
      it(`${what}: 400, closed, nothing after it read, counted`, async () => {
        const before_ = await refusedFraming();
        const rows = await count();
        const r = await raw(server.port, data);
        assert.equal(r.responses.length, 1, `${r.responses.length} responses: a request after the refused head ran`);
        assert.equal(r.status, 400, `${what}: ${r.text.slice(0, 200)}`);
        assert.equal(r.closed, true, `${what}: the connection stayed open`);
        assert.equal(await refusedReaching(before_ + 1), before_ + 1, 'h2lua_requests_refused_framing_total counted it');
        assert.equal(await count(), rows, 'no handler ran');
      });
    }

    it('one Content-Length and one Host: served (the check refuses only what is ambiguous)', async () => {
      const before_ = await refusedFraming();
      const r = await raw(server.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      assert.equal(r.status, 200, r.text.slice(0, 200));
      // one refused head after it: the count grows by that one only
      assert.equal((await raw(server.port, SMUGGLE)).status, 400);
      assert.equal(await refusedReaching(before_ + 1), before_ + 1, 'the served request was not counted');
    });

    it('HTTP/2: a 10 kB header is refused (431 or a reset stream), the session stays usable', async () => {
      const session = http2.connect(server.origin);
      session.on('error', () => {});
      try {
        const get = (headers) =>
          new Promise((resolve) => {
            const s = session.request({ ':path': '/healthz', ...headers });
            let status = 0;
            s.on('response', (h) => {
              status = h[':status'];
            });
            s.on('error', (e) => resolve({ status: 0, error: e.code }));
            s.resume();
            s.on('close', () => resolve({ status, rst: s.rstCode }));
          });
        const big = await get({ 'x-big': 'h'.repeat(10 * 1024) });
        assert.ok(big.status === 431 || big.status === 0 || (big.status >= 400 && big.status < 500), `HTTP/2 big header: ${JSON.stringify(big)}`);
        if (!session.destroyed && !session.closed) {
          const ok = await get({});
          assert.equal(ok.status, 200, 'the session goes on');
        }
      } finally {
        session.destroy();
      }
    });
  });

  describe('paths', () => {
    const bad = ['/%zz', '/%', '/%4', '/%ff', '/%c3%28', '/%c0%af', '/%ed%a0%80', '/%f4%90%80%80', '/%00', '/a%00b',
      '/update/%ff', '/api/entries/%c0%ae', '/api/entries/1%00'];
    for (const p of bad) {
      it(`GET ${p}: 400`, async () => {
        assertRefused(await raw(server.port, head('GET', p)), p, [400]);
      });
    }
    it('raw bytes that are not UTF-8 in the path: 400', async () => {
      assertRefused(await raw(server.port, Buffer.from('GET /\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 'latin1')), 'raw \\xff', [400]);
    });
    const badQueries = ['/?page=%zz', '/?page=%ff', '/?a=1&a=2', '/api/entries?limit=%zz', '/api/entries?after=%c3%28', '/api/entries?limit=1&limit=2'];
    for (const p of badQueries) {
      it(`GET ${p}: 400`, async () => {
        assertRefused(await raw(server.port, head('GET', p)), p, [400]);
      });
    }
  });

  describe('forms', () => {
    const cases = [
      ['bad percent-encoding', 'title=%zz&description=x'],
      ['a lone %', 'title=a%&description=x'],
      ['invalid UTF-8', 'title=%ff%fe&description=x'],
      ['an overlong encoding', 'title=%c0%af&description=x'],
      ['a UTF-16 surrogate', 'title=%ed%a0%80&description=x'],
      ['a repeated field', 'title=a&title=b&description=x'],
    ];
    for (const [what, body] of cases) {
      it(`POST /add with ${what}: 400`, async () => {
        assertRefused(await raw(server.port, head('POST', '/add', formHeaders(), withToken(body))), what, [400]);
      });
    }
    it('POST /add with the token field repeated: 400', async () => {
      const body = withToken(withToken('title=a&description=x'));
      assertRefused(await raw(server.port, head('POST', '/add', formHeaders(), body)), 'repeated token', APP ? [400] : [400, 201]);
    });
    if (APP) {
      it('POST /update/:id with a malformed form: 400', async () => {
        assertRefused(await raw(server.port, head('POST', `/update/${seedId}`, formHeaders(), withToken('title=%zz&description=x'))), 'update', [400]);
      });
      it('POST /turn/:id and /delete/:id with a repeated field: 400', async () => {
        for (const p of [`/turn/${seedId}`, `/delete/${seedId}`]) {
          assertRefused(await raw(server.port, head('POST', p, formHeaders(), withToken('x=1&x=2'))), p, [400]);
        }
      });
    }
  });

  describe('JSON bodies', () => {
    const bad = [
      ['an unterminated object', '{'],
      ['a trailing comma', '{"title":"a","description":"b",}'],
      ['trailing garbage', '{"title":"a","description":"b"} x'],
      ['an array', '[{"title":"a","description":"b"}]'],
      ['a string', '"title"'],
      ['null', 'null'],
      ['an empty body', ''],
      ['NaN', '{"title":NaN,"description":"b"}'],
      ['a hex number', '{"title":0x10,"description":"b"}'],
      ['a lone surrogate escape', '{"title":"\\udc00","description":"b"}'],
      ['nesting 2000 deep', `${'['.repeat(2000)}${']'.repeat(2000)}`],
      ['nesting 20 objects deep', `{"title":${'{"a":'.repeat(20)}1${'}'.repeat(20)},"description":"b"}`],
      ['single quotes', "{'title':'a','description':'b'}"],
    ];
    for (const [what, body] of bad) {
      it(`POST /api/entries with ${what}: 400`, async () => {
        assertRefused(await raw(server.port, head('POST', '/api/entries', JSONCT, body)), what, [400]);
      });
    }
    it('POST /api/entries with invalid UTF-8 bytes in a string: 400', async () => {
      const body = Buffer.concat([Buffer.from('{"title":"'), Buffer.from([0xff, 0xc3, 0x28]), Buffer.from('","description":"b"}')]);
      const data = Buffer.concat([Buffer.from(head('POST', '/api/entries', { ...JSONCT, 'Content-Length': String(body.length) }), 'latin1'), body]);
      assertRefused(await raw(server.port, data), 'invalid UTF-8 in JSON', [400]);
    });
    if (APP) {
      it('POST /api/entries as text/plain, or JSON in latin1: 415', async () => {
        const body = JSON.stringify({ title: 'a', description: 'b' });
        for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'multipart/form-data; boundary=x']) {
          assertRefused(await raw(server.port, head('POST', '/api/entries', { 'Content-Type': ct }, body)), ct, [415]);
        }
      });
      it('PATCH /api/entries/:id with malformed JSON: 400', async () => {
        assertRefused(await raw(server.port, head('PATCH', `/api/entries/${seedId}`, JSONCT, '{"title":')), 'PATCH', [400]);
      });
      it('fields of the wrong type or size: 422', async () => {
        const cases = [
          { title: 1, description: 'b' },
          { title: ['a'], description: 'b' },
          { title: { a: 1 }, description: 'b' },
          { title: 'a', description: 'b', status: 'yes' },
          { title: 'x'.repeat(65), description: 'b' },
          { title: 'a', description: 'é'.repeat(121) },
          { title: '   ', description: 'b' },
          { description: 'b' },
        ];
        for (const c of cases) {
          const bytes = Buffer.from(JSON.stringify(c)).toString('latin1'); // UTF-8, sent byte for byte
          assertRefused(await raw(server.port, head('POST', '/api/entries', JSONCT, bytes)), JSON.stringify(c).slice(0, 80), [422]);
        }
      });
    }
  });

  describe('ids', () => {
    const ids = ['99999999999999999999', '9007199254740992', '18446744073709551616', '0', '-1', '1e3', '0x10', '01', '1.0', ' 1', '١'];
    const paths = APP ? ['/update/', '/api/entries/'] : ['/entries/'];
    for (const base of paths) {
      it(`GET ${base}<absurd id>: 404 (${ids.length} ids)`, async () => {
        for (const id of ids) {
          const r = await raw(server.port, head('GET', base + encodeURIComponent(id)));
          assertRefused(r, base + id, [404]);
        }
      });
    }
    it('GET of the largest id the router takes, 9007199254740991, with no such row: 404', async () => {
      const r = await raw(server.port, head('GET', `${paths[0]}9007199254740991`));
      assertRefused(r, 'max id', [404]);
    });
    if (APP) {
      it('POST /turn, /delete, /update and PATCH, DELETE /api with absurd ids: 404', async () => {
        for (const id of ['99999999999999999999', '9007199254740991', '0']) {
          for (const p of [`/turn/${id}`, `/delete/${id}`, `/update/${id}`]) {
            const body = withToken('title=t&description=d');
            assertRefused(await raw(server.port, head('POST', p, formHeaders(), body)), `POST ${p}`, [404]);
          }
          assertRefused(await raw(server.port, head('PATCH', `/api/entries/${id}`, JSONCT, '{"title":"t"}')), `PATCH ${id}`, [404]);
          assertRefused(await raw(server.port, head('DELETE', `/api/entries/${id}`)), `DELETE ${id}`, [404]);
        }
      });
      it('?after= / ?before= of the list and ?limit= / ?after= of the API out of range: 404 and 400', async () => {
        for (const q of ['99999999999', '-', '-0', '01', '1e2', '18446744073709551616', '0x1', '2147483648']) {
          assertRefused(await raw(server.port, head('GET', `/?after=${q}`)), `after=${q}`, [404]);
          if (q !== '2147483648') assertRefused(await raw(server.port, head('GET', `/?before=${q}`)), `before=${q}`, [404]);
        }
        assertRefused(await raw(server.port, head('GET', '/?after=1&before=2')), 'after and before', [404]);
        for (const q of ['limit=0', 'limit=101', 'limit=99999999999999999999', 'after=-1', 'after=99999999999999999999', 'limit=1e1', 'after=0x1']) {
          assertRefused(await raw(server.port, head('GET', `/api/entries?${q}`)), q, [400]);
        }
      });
    }
  });

  describe('CR/LF meant for response headers', () => {
    const injected = (r) => r.responses.some((x) => x.headers['x-evil'] !== undefined || /evil/.test(x.headers['set-cookie'] ?? '') ||
      /evil/.test(x.headers.location ?? ''));
    it('in the query string: no header is made of it', async () => {
      for (const p of ['/?after=1%0d%0aSet-Cookie:%20evil=1', '/?before=1%0aX-Evil:%201', '/api/entries?after=1%0d%0aX-Evil:1']) {
        const r = await raw(server.port, head('GET', p));
        assertRefused(r, p);
        assert.equal(injected(r), false, `${p}: injected header`);
      }
    });
    if (APP) {
      it('in a form post redirect target (?after=): no header is made of it', async () => {
        const p = `/turn/9007199254740991?after=2%0d%0aLocation:%20http://evil.example/`;
        const r = await raw(server.port, head('POST', p, formHeaders(), withToken('x=1')));
        assertRefused(r, p, [404]);
        assert.equal(injected(r), false);
      });
      it('in form values that do not validate: shown in the page, escaped, never in a header', async () => {
        const body = withToken(`title=${encodeURIComponent('a\r\nSet-Cookie: evil=1\r\nX-Evil: 1')}&description=${'d'.repeat(200)}`);
        const r = await raw(server.port, head('POST', '/add', formHeaders(), body));
        assert.equal(r.status, 422);
        assert.equal(injected(r), false);
      });
    }
  });

  describe('slow clients', () => {
    it(`slowloris: 20 connections sending their headers a byte a second are closed after REQ_TIMEOUT=${REQ_TIMEOUT}`, async (t) => {
      const started = Date.now();
      const one = () =>
        new Promise((resolve) => {
          const t0 = Date.now();
          const s = net.connect(server.port, '127.0.0.1');
          let got = '';
          let sent = 0;
          const text = 'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n';
          const timer = setInterval(() => {
            if (sent < text.length) s.write(text[sent++]);
          }, 1000);
          const stopAt = setTimeout(() => s.destroy(), 15000);
          s.setEncoding('latin1');
          s.on('data', (d) => {
            got += d;
          });
          s.on('error', () => {});
          s.on('close', () => {
            clearInterval(timer);
            clearTimeout(stopAt);
            resolve({ ms: Date.now() - t0, got, sent });
          });
          s.on('connect', () => s.write(text[sent++]));
        });
      const res = await Promise.all(Array.from({ length: 20 }, one));
      const worst = Math.max(...res.map((r) => r.ms));
      t.diagnostic(`slowloris: 20 connections closed after ${Math.min(...res.map((r) => r.ms))}..${worst} ms, ` +
        `having sent ${Math.max(...res.map((r) => r.sent))} bytes at most`);
      for (const r of res) {
        assert.ok(r.ms >= REQ_TIMEOUT * 1000 - 300, `closed too early (${r.ms} ms)`);
        if (r.got !== '') assert.match(r.got, /^HTTP\/1\.1 (408|400)/);
      }
      const ms = res.map((r) => r.ms);
      assert.ok(percentile(ms, 95) <= REQ_TIMEOUT * 1000 + 1500, `closed after ${describeMs(ms)} (REQ_TIMEOUT=${REQ_TIMEOUT})`);
      assert.ok(Date.now() - started < 15000);
    });

    it(`a body sent a byte a second is dropped after REQ_TIMEOUT=${REQ_TIMEOUT}, nothing written`, async () => {
      const t0 = Date.now();
      const body = 'title=slow&description=slow';
      const r = await new Promise((resolve) => {
        const s = net.connect(server.port, '127.0.0.1');
        let got = '';
        let i = 0;
        const timer = setInterval(() => {
          if (i < body.length) s.write(body[i++]);
        }, 1000);
        s.setEncoding('latin1');
        s.on('data', (d) => {
          got += d;
        });
        s.on('error', () => {});
        s.on('close', () => {
          clearInterval(timer);
          resolve({ got, ms: Date.now() - t0 });
        });
        s.on('connect', () => s.write(head('POST', '/add', { ...formHeaders(), 'Content-Length': String(body.length) })));
        setTimeout(() => s.destroy(), 15000);
      });
      // not at once (the body is still coming), not long after REQ_TIMEOUT; closed, or a 408
      assert.ok(r.ms >= REQ_TIMEOUT * 1000 - 300, `dropped too early (${r.ms} ms)`);
      assert.ok(r.ms <= REQ_TIMEOUT * 1000 + 3000, `dropped after ${r.ms} ms`);
      if (r.got !== '') assert.match(r.got, /^HTTP\/1\.1 408 /, 'the only answer to a stalled body is 408');
    });
  });

  it('the normal client was served 200 throughout', async (t) => {
    normal.stop = true;
    await normal.loop;
    t.diagnostic(`normal client: statuses ${JSON.stringify(Object.fromEntries(normal.statuses))}, ${describeMs(normal.ms)}`);
    assert.deepEqual([...normal.statuses.keys()], [200]);
    assert.ok(normal.ms.length > 100, `${normal.ms.length} requests`);
    const limit = IS_SANITIZED ? 500 : 250;
    assert.ok(percentile(normal.ms, 95) < limit, `normal requests: ${describeMs(normal.ms)} (want p95 < ${limit})`);
  });

  it('nothing was written to the database', async () => {
    assert.equal(await count(), rowsBefore);
    const [row] = await db.root(`SELECT title, description FROM \`${name}\`.entry WHERE id = ?`, [seedId]);
    assert.deepEqual({ ...row }, { title: 'seed', description: 'seed row' });
  });

  it('exits 0 on SIGTERM without a sanitizer report', async () => {
    assert.equal(server.exited, null, 'still running');
    await server.stopClean();
  });
});
