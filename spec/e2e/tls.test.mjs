// TLS_CERT + TLS_KEY: HTTPS with HTTP/2 and HTTP/1.1 over ALPN (spec/e2e/support/tls: a
// self-signed certificate for localhost and 127.0.0.1, for tests only).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import path from 'node:path';
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

describeServer('tls', { TLS_CERT: CERT, TLS_KEY: KEY, WORKERS: '1', HTTP2: 'on' }, (h) => {
  it('serves HTTPS over HTTP/1.1', async () => {
    const res = await httpsGet(h.server.port, '/echo');
    assert.equal(res.status, 200);
    assert.ok(res.alpn === 'http/1.1' || res.alpn === false, `ALPN ${res.alpn}`);
    const req = JSON.parse(res.text);
    assert.equal(req.version, 'HTTP/1.1');
    assertSecurityHeaders(res, 'https');
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
