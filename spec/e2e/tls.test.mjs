// TLS_CERT + TLS_KEY: HTTPS with HTTP/2 and HTTP/1.1 over ALPN (spec/e2e/support/tls: a
// self-signed certificate for localhost and 127.0.0.1, for tests only); Mozilla's intermediate
// profile (TLS 1.2 with ECDHE and AEAD suites, TLS 1.3, no renegotiation; tls_testssl.test.mjs has
// testssl.sh's view) and HSTS (HSTS_MAX_AGE) on HTTPS responses only.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { ROOT, assertSecurityHeaders, describeServer } from './support/server.mjs';

const CERT = path.join(ROOT, 'spec/e2e/support/tls/cert.pem');
const KEY = path.join(ROOT, 'spec/e2e/support/tls/key.pem');
const CA = fs.readFileSync(CERT);

function httpsGet(port, p) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: p, ca: CA, agent: false, ALPNProtocols: ['http/1.1'] }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString(), alpn: req.socket.alpnProtocol }));
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error('no answer')));
    req.end();
  });
}

/** Resolves to the protocol and cipher of a handshake with `opts`, or to { error } when it fails. */
function handshake(port, opts) {
  return new Promise((resolve) => {
    const sock = tls.connect({ host: '127.0.0.1', port, ca: CA, servername: 'localhost', ...opts }, () => {
      const out = { protocol: sock.getProtocol(), cipher: sock.getCipher().name, sock };
      resolve(out);
    });
    sock.on('error', (error) => resolve({ error }));
    sock.setTimeout(10000, () => sock.destroy(new Error('no handshake')));
  });
}

describeServer('tls', { TLS_CERT: CERT, TLS_KEY: KEY, WORKERS: '1', HTTP2: 'on' }, (h) => {
  it('serves HTTPS over HTTP/1.1', async () => {
    const res = await httpsGet(h.server.port, '/echo');
    assert.equal(res.status, 200);
    assert.ok(res.alpn === 'http/1.1' || res.alpn === false, `ALPN ${res.alpn}`);
    const req = JSON.parse(res.text);
    assert.equal(req.version, 'HTTP/1.1');
    assertSecurityHeaders(res, 'https');
    assert.equal(res.headers['strict-transport-security'], 'max-age=31536000', 'HSTS_MAX_AGE by default');
  });

  it('speaks TLS 1.3 and TLS 1.2 with ECDHE and AEAD suites only, never TLS 1.0 or 1.1', async () => {
    const port = h.server.port;
    const t13 = await handshake(port, {});
    assert.equal(t13.protocol, 'TLSv1.3');
    t13.sock.destroy();
    for (const cipher of ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305']) {
      const t12 = await handshake(port, { maxVersion: 'TLSv1.2', ciphers: cipher });
      assert.equal(t12.protocol, 'TLSv1.2', cipher);
      assert.equal(t12.cipher, cipher);
      t12.sock.destroy();
    }
    // CBC, static RSA and DHE suites are refused, as are the old protocols
    for (const cipher of ['ECDHE-ECDSA-AES128-SHA256', 'ECDHE-ECDSA-AES256-SHA', 'AES128-GCM-SHA256', 'DHE-RSA-AES128-GCM-SHA256']) {
      const r = await handshake(port, { maxVersion: 'TLSv1.2', ciphers: cipher });
      assert.ok(r.error, `${cipher} was accepted`);
    }
    for (const v of ['TLSv1', 'TLSv1.1']) {
      const r = await handshake(port, { minVersion: v, maxVersion: v, ciphers: 'DEFAULT:@SECLEVEL=0' });
      assert.ok(r.error, `${v} was accepted`);
    }
  });

  it('the server picks the TLS 1.2 suite (its order, not the client\'s)', async () => {
    const r = await handshake(h.server.port, {
      maxVersion: 'TLSv1.2',
      ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256',
      honorCipherOrder: false,
    });
    assert.equal(r.cipher, 'ECDHE-ECDSA-AES128-GCM-SHA256');
    r.sock.destroy();
  });

  it('refuses a renegotiation asked by the client', async () => {
    const r = await handshake(h.server.port, { maxVersion: 'TLSv1.2' });
    assert.equal(r.protocol, 'TLSv1.2');
    const outcome = await new Promise((resolve) => {
      r.sock.on('error', (e) => resolve(`error: ${e.message}`));
      r.sock.on('close', () => resolve('closed'));
      r.sock.renegotiate({}, (err) => resolve(err ? `error: ${err.message}` : 'renegotiated'));
    });
    r.sock.destroy();
    assert.notEqual(outcome, 'renegotiated');
  });

  it('negotiates HTTP/2 by ALPN', async () => {
    const session = http2.connect(`https://127.0.0.1:${h.server.port}`, { ca: CA });
    try {
      const res = await new Promise((resolve, reject) => {
        const s = session.request({ ':path': '/echo' });
        let headers;
        const chunks = [];
        s.on('response', (hd) => {
          headers = hd;
        });
        s.on('data', (c) => chunks.push(c));
        s.on('end', () => resolve({ headers, text: Buffer.concat(chunks).toString() }));
        s.on('error', reject);
      });
      assert.equal(session.alpnProtocol, 'h2');
      assert.equal(res.headers[':status'], 200);
      const req = JSON.parse(res.text);
      assert.equal(req.version, 'HTTP/2');
      assertSecurityHeaders(res, 'h2 over tls');
    } finally {
      session.close();
    }
  });
});

describeServer('tls with HSTS_MAX_AGE=0', { TLS_CERT: CERT, TLS_KEY: KEY, WORKERS: '1', HSTS_MAX_AGE: '0' }, (h) => {
  it('sends no Strict-Transport-Security', async () => {
    const res = await httpsGet(h.server.port, '/healthz');
    assert.equal(res.status, 200);
    assert.equal(res.headers['strict-transport-security'], undefined);
  });
});

describeServer('plain HTTP', { WORKERS: '1', HSTS_MAX_AGE: '600' }, (h) => {
  it('sends no Strict-Transport-Security, X-Forwarded-Proto: https or not (only the TLS terminator may)', async () => {
    for (const headers of [{}, { 'x-forwarded-proto': 'https' }]) {
      const res = await h.server.get('/healthz', { headers });
      assert.equal(res.status, 200);
      assert.equal(res.headers['strict-transport-security'], undefined, JSON.stringify(headers));
    }
  });
});
