// h2lua's own HTTPS listener (TLS_CERT/TLS_KEY, core/server.c setup_tls) as Debian's testssl.sh
// sees it: no finding of severity LOW or above but the test certificate's own (the allow-list is
// spec/support/testssl.mjs CERTIFICATE_FINDINGS). testssl runs offline and takes about a minute.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, describeServer } from './support/server.mjs';
import { testssl } from '../support/testssl.mjs';

const CERT = path.join(ROOT, 'spec/e2e/support/tls/cert.pem');
const KEY = path.join(ROOT, 'spec/e2e/support/tls/key.pem');

describeServer('tls as testssl.sh sees it', { TLS_CERT: CERT, TLS_KEY: KEY, WORKERS: '2' }, (h) => {
  it('testssl.sh finds nothing of severity LOW or above but the test certificate', { timeout: 300000 }, async () => {
    const { findings, serverFindings, output } = await testssl(`127.0.0.1:${h.server.port}`, { path: '/healthz' });
    // the scan reached the server: the self-signed certificate is always reported
    assert.ok(findings.some((f) => f.id === 'cert_chain_of_trust'), `no certificate findings: the scan did not run?\n${output.slice(-3000)}`);
    assert.deepEqual(serverFindings, [], `the server's findings:\n${output}`);
  });
});
