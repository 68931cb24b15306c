// Compression (COMPRESS, COMPRESS_LEVEL): text responses of 1 KB or more go out gzipped to a
// client that accepts gzip (brotli, quality 1, to one that accepts br), with Vary: Accept-Encoding — the application's (fixture /sized), its
// streams chunk by chunk (each chunk decodable as soon as it is sent: an endless stream's first
// chunk is read while the stream still runs) and the static files (compressed once, the same
// bytes and ETag at every request; brotli for clients that accept br, once its copy is made). Small bodies, compressed types, HEAD, clients without gzip and
// COMPRESS=off get the body as it is.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import zlib from 'node:zlib';
import { describeServer, startServer } from './support/server.mjs';

const GZIP = { 'accept-encoding': 'gzip, deflate, br' };
/** What a dynamic response goes out as, by what the client accepts. */
const ENCODINGS = [['gzip', { 'accept-encoding': 'gzip' }], ['br', { 'accept-encoding': 'gzip, deflate, br' }]];
const BOOTSTRAP_CSS = '/usr/share/javascript/bootstrap5/css/bootstrap.min.css';

/** The decoded body of a response (gunzipped or brotli-decoded when it says so). */
function decoded(res) {
  const enc = res.headers['content-encoding'];
  return enc === 'gzip' ? zlib.gunzipSync(res.body) : enc === 'br' ? zlib.brotliDecompressSync(res.body) : res.body;
}

/**
 * GETs p with Accept-Encoding: gzip and reads the decoded body until it holds `want`; then drops
 * the connection. Resolves { headers, text } — it never waits for the end of the response.
 */
function readUntil(port, p, want, headers = GZIP) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false, headers }, (res) => {
      const enc = res.headers['content-encoding'];
      const body = enc === 'gzip' ? res.pipe(zlib.createGunzip()) : enc === 'br' ? res.pipe(zlib.createBrotliDecompress()) : res;
      let text = '';
      body.setEncoding('utf8');
      body.on('data', (d) => {
        text += d;
        if (text.includes(want)) {
          resolve({ headers: res.headers, text });
          req.destroy();
        }
      });
      body.on('error', reject);
      res.on('end', () => reject(new Error(`the response ended without ${JSON.stringify(want)}: ${text}`)));
    });
    req.on('error', (e) => {
      if (e.code !== 'ECONNRESET') reject(e);
    });
    req.setTimeout(30000, () => req.destroy(new Error(`GET ${p}: ${JSON.stringify(want)} not read within 30 s`)));
  });
}

describeServer('compression of dynamic responses', {}, (h) => {
  for (const [enc, accept] of ENCODINGS) {
    for (const type of ['html', 'css', 'js', 'json', 'svg', 'txt']) {
      it(`a ${type} body of 4 KB goes out as ${enc} for a client that accepts ${accept['accept-encoding']}`, async () => {
        const plain = await h.server.get(`/sized?type=${type}&bytes=4096`);
        const res = await h.server.get(`/sized?type=${type}&bytes=4096`, { headers: accept });
        assert.equal(res.status, 200);
        assert.equal(res.headers['content-encoding'], enc);
        assert.match(res.headers.vary ?? '', /accept-encoding/i);
        assert.ok(res.body.length < 1024, `${res.body.length} bytes on the wire`);
        assert.ok(decoded(res).equals(plain.body), 'decoded, it is the body sent as it is');
        assert.equal(plain.body.length, 4096);
      });
    }
  }

  it('a client that does not accept gzip gets the body as it is, with Vary', async () => {
    const res = await h.server.get('/sized?type=html&bytes=4096');
    assert.equal(res.headers['content-encoding'], undefined);
    assert.match(res.headers.vary ?? '', /accept-encoding/i);
    assert.equal(Number(res.headers['content-length']), 4096);
  });

  it('a body under 1 KB is sent as it is', async () => {
    const res = await h.server.get('/sized?type=html&bytes=1000', { headers: GZIP });
    assert.equal(res.headers['content-encoding'], undefined);
    assert.equal(res.body.length, 1000);
  });

  it('types that are compressed already (image/png, application/gzip) are sent as they are', async () => {
    for (const type of ['png', 'gz']) {
      const res = await h.server.get(`/sized?type=${type}&bytes=4096`, { headers: GZIP });
      assert.equal(res.headers['content-encoding'], undefined, type);
      assert.equal(res.body.length, 4096, type);
    }
  });

  it('HEAD gets no body', async () => {
    const res = await h.server.request('/sized?type=html&bytes=4096', { method: 'HEAD', headers: GZIP });
    assert.equal(res.status, 200);
    assert.equal(res.body.length, 0);
  });

  for (const [enc, accept] of ENCODINGS) {
    it(`a stream goes out as ${enc} chunk by chunk: the first chunk of an endless stream is read while it runs`, async () => {
      const r = await readUntil(h.server.port, '/stream/forever?ms=1000', 'tick 1\n', accept);
      assert.equal(r.headers['content-encoding'], enc);
      assert.match(r.headers.vary ?? '', /accept-encoding/i);
      assert.ok(r.text.startsWith('tick 1\n'), r.text);
    });

    it(`server-sent events go out as ${enc} event by event: the first event arrives while the stream runs`, async () => {
      const r = await readUntil(h.server.port, '/stream/sse?n=100000&ms=1000', 'data: tick 1\n\n', accept);
      assert.equal(r.headers['content-encoding'], enc);
      assert.match(r.headers['content-type'], /^text\/event-stream/);
      assert.equal(r.text, 'data: tick 1\n\n');
    });

    it(`a finished stream sent as ${enc} decodes to what the handler sent`, async () => {
      const res = await h.server.get('/stream/chunks?n=3&ms=10', { headers: accept });
      assert.equal(res.headers['content-encoding'], enc);
      assert.equal(decoded(res).toString(), 'chunk 1\nchunk 2\nchunk 3\n');
    });
  }

  it('Bootstrap is sent gzipped, the same bytes and ETag at every request (compressed once)', async () => {
    const ONLY_GZIP = { 'accept-encoding': 'gzip' };
    const a = await h.server.get('/static/bootstrap/css/bootstrap.min.css', { headers: ONLY_GZIP });
    const b = await h.server.get('/static/bootstrap/css/bootstrap.min.css', { headers: ONLY_GZIP });
    assert.equal(a.headers['content-encoding'], 'gzip');
    assert.match(a.headers.vary ?? '', /accept-encoding/i);
    assert.ok(decoded(a).equals(fs.readFileSync(BOOTSTRAP_CSS)), 'gunzipped, it is the file');
    assert.ok(a.body.length < 40000, `${a.body.length} bytes`);
    assert.ok(a.body.equals(b.body));
    assert.equal(a.headers.etag, b.headers.etag);
    const plain = await h.server.get('/static/bootstrap/css/bootstrap.min.css');
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.notEqual(plain.headers.etag, a.headers.etag, 'each encoding has its own ETag');
  });

  it('a client that accepts br gets Bootstrap in brotli once its copy is made, gzip until then', async () => {
    const p = '/static/bootstrap/css/bootstrap.min.css';
    const file = fs.readFileSync(BOOTSTRAP_CSS);
    let res;
    const deadline = Date.now() + 120000; // the copy is made by a thread of its own, once
    for (;;) {
      res = await h.server.get(p, { headers: GZIP });
      assert.equal(res.status, 200);
      assert.ok(['gzip', 'br'].includes(res.headers['content-encoding']), res.headers['content-encoding']);
      if (res.headers['content-encoding'] === 'br') break;
      assert.ok(decoded(res).equals(file), 'meanwhile, the gzip copy');
      assert.ok(Date.now() < deadline, 'no brotli copy within 120 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(zlib.brotliDecompressSync(res.body).equals(file), 'decoded, it is the file');
    assert.ok(res.body.length < 24000, `${res.body.length} bytes`);
    assert.match(res.headers.etag, /-br"$/);
    assert.match(res.headers.vary ?? '', /accept-encoding/i);
    const again = await h.server.get(p, { headers: { ...GZIP, 'if-none-match': res.headers.etag } });
    assert.equal(again.status, 304);
    const gz = await h.server.get(p, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(gz.headers['content-encoding'], 'gzip', 'a client without br still gets gzip');
  });

  it('a static file under 1 KB is sent as it is', async () => {
    const res = await h.server.get('/static/hello.txt', { headers: GZIP });
    assert.equal(res.headers['content-encoding'], undefined);
  });
});

describe('compression over HTTP/2', () => {
  it('a page is gzipped, and an endless stream is read chunk by chunk while it runs', async () => {
    const server = await startServer({ env: { HTTP2: 'on' } });
    const client = http2.connect(server.origin);
    try {
      const get = (p, until) => new Promise((resolve, reject) => {
        const s = client.request({ ':path': p, 'accept-encoding': 'gzip' });
        let headers;
        let body;
        let text = '';
        s.on('response', (h) => {
          headers = h;
          body = h['content-encoding'] === 'gzip' ? s.pipe(zlib.createGunzip()) : s;
          body.setEncoding('utf8');
          body.on('data', (d) => {
            text += d;
            if (until && text.includes(until)) {
              resolve({ headers, text });
              s.close(http2.constants.NGHTTP2_CANCEL);
            }
          });
          body.on('end', () => resolve({ headers, text }));
          body.on('error', reject);
        });
        s.on('error', reject);
        s.setTimeout(30000, () => s.destroy(new Error(`${p}: no answer within 30 s`)));
      });
      const page = await get('/sized?type=html&bytes=4096');
      assert.equal(page.headers['content-encoding'], 'gzip');
      assert.equal(page.text.length, 4096);
      const stream = await get('/stream/forever?ms=1000', 'tick 1\n');
      assert.equal(stream.headers['content-encoding'], 'gzip');
      assert.ok(stream.text.startsWith('tick 1\n'), stream.text);
    } finally {
      client.close();
      await server.stopClean();
    }
  });
});

describe('COMPRESS=off', () => {
  it('sends every response as it is', async () => {
    const server = await startServer({ env: { COMPRESS: 'off' } });
    try {
      for (const p of ['/sized?type=html&bytes=4096', '/static/bootstrap/css/bootstrap.min.css', '/stream/chunks?n=2&ms=10']) {
        const res = await server.get(p, { headers: GZIP });
        assert.equal(res.status, 200, p);
        assert.equal(res.headers['content-encoding'], undefined, p);
      }
    } finally {
      await server.stopClean();
    }
  });

  it('an invalid COMPRESS or COMPRESS_LEVEL exits 2 with a line naming it', async () => {
    const { runOnce } = await import('./support/server.mjs');
    for (const [k, v] of [['COMPRESS', 'yes'], ['COMPRESS_LEVEL', '10'], ['COMPRESS_LEVEL', 'x']]) {
      const r = await runOnce({ env: { [k]: v } });
      assert.equal(r.code, 2, `${k}=${v}`);
      assert.match(r.stderr, new RegExp(`${k}`), `${k}=${v}: ${r.stderr}`);
    }
  });
});
