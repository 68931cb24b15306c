// Debian's testssl.sh (3.0.x, command `testssl`) against a TLS listener, offline, and the findings
// of severity LOW or above that are the server's: what the e2e test of h2lua's own HTTPS listener
// (spec/e2e/tls_testssl.test.mjs) and the stack test of its front (spec/stack/stack.test.mjs)
// assert is empty.
//
// testssl(target, { path }) runs `testssl --severity LOW --jsonfile-pretty ...` against
// https://<target><path> and resolves to { findings, serverFindings, output }: findings are every
// entry of the JSON report ({ section, id, severity, finding }), serverFindings those of severity
// LOW, MEDIUM, HIGH, CRITICAL (and WARN or FATAL: a check that could not run hides what it would
// have found) whose id is not in CERTIFICATE_FINDINGS nor SCANNER_NOTES. Rejects when testssl does not finish or
// writes no report. Takes 40-90 s.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// The test certificates' own findings (self-signed, made by the harness): properties of the
// certificate a deployment replaces, not of the server's TLS configuration. By testssl id.
export const CERTIFICATE_FINDINGS = new Map([
  ['cert_chain_of_trust', 'self-signed: no CA vouches for a test certificate'],
  ['cert_trust', 'the name checked against the certificate: a test certificate names localhost and 127.0.0.1 only'],
  ['cert_validityPeriod', 'the test certificates live long (spec/e2e: 100 years) so that tests never meet an expiry'],
  ['cert_expirationStatus', 'the days a test certificate has left'],
  ['cert_revocation', 'a self-signed certificate names no CRL nor OCSP responder'],
  ['cert_crlDistributionPoints', 'the same: no CRL'],
  ['cert_ocspURL', 'the same: no OCSP URI'],
  ['OCSP_stapling', 'nothing to staple without an OCSP responder'],
  ['cert_certificateTransparency', 'no CA, no CT log: no SCTs'],
  ['DNS_CAArecord', 'no DNS for localhost (and --nodns none)'],
]);

// What testssl reports about the machine it runs on rather than the server. By testssl id.
export const SCANNER_NOTES = new Map([
  ['engine_problem', "Debian's openssl has no GOST engine: only GOST suites go untested, which OpenSSL servers never offer"],
  // testssl 3.0.8 races TLS 1.3's tickets, sent after the handshake: when its first probe happens to
  // read one, it tests resumption by ticket with an `openssl s_client -sess_out` that quits before the
  // ticket arrives, then resumes from the empty file, which fails: a WARN, "check failed because of
  // connect problem", in about one run of three against nginx as against h2lua (reproduced with
  // --debug 2: "0, 1, empty"). Resumption itself works (TLS 1.2 by session ID, TLS 1.3 by its
  // stateful tickets); turning TLS 1.3 resumption off only to quiet the scanner would cost clients.
  ['sessionresumption_ticket', 'a race of testssl 3.0.8 with TLS 1.3 tickets (above); INFO or WARN only, never a finding'],
]);

const REPORTED = new Set(['LOW', 'MEDIUM', 'HIGH', 'CRITICAL', 'WARN', 'FATAL']);

/** The entries of a --jsonfile-pretty report, each { section, id, severity, finding }. */
export function reportFindings(report) {
  const out = [];
  const walk = (section, value) => {
    if (Array.isArray(value)) {
      for (const f of value) {
        if (f && typeof f === 'object' && 'id' in f && 'severity' in f) out.push({ section, id: f.id, severity: f.severity, finding: f.finding });
      }
    }
  };
  for (const [k, v] of Object.entries(report)) walk(k, v); // clientProblem*, scan problems
  for (const scan of report.scanResult || []) {
    for (const [k, v] of Object.entries(scan)) walk(k, v);
  }
  return out;
}

export function testssl(target, { path: urlPath = '/', timeoutMs = 180000 } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'testssl-'));
  const json = path.join(dir, 'report.json');
  const args = [
    '--quiet', // no banner
    '--color', '0',
    '--warnings', 'off', // never wait for a key press
    '--nodns', 'none', // no DNS lookups at all (no rDNS, CAA, MX)
    '--openssl-timeout', '30', // a handshake that hangs fails the check, not the whole test
    '--connect-timeout', '30',
    '--severity', 'LOW',
    '--jsonfile-pretty', json,
    // no --phone-out: no CRL or OCSP fetches; no --fast: it drops cipher checks
    `https://${target}${urlPath}`,
  ];
  return new Promise((resolve, reject) => {
    execFile('testssl', args, { timeout: timeoutMs, maxBuffer: 16 << 20, env: { ...process.env, TERM: 'dumb' } }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      let report;
      try {
        report = JSON.parse(fs.readFileSync(json, 'utf8'));
      } catch (e) {
        fs.rmSync(dir, { recursive: true, force: true });
        reject(new Error(`testssl wrote no report (${err ? err.message : e.message}):\n${output.slice(-4000)}`));
        return;
      }
      fs.rmSync(dir, { recursive: true, force: true });
      if (err && err.killed) {
        reject(new Error(`testssl did not finish within ${timeoutMs} ms:\n${output.slice(-4000)}`));
        return;
      }
      const findings = reportFindings(report);
      const serverFindings = findings.filter((f) => REPORTED.has(f.severity) && !CERTIFICATE_FINDINGS.has(f.id) && !SCANNER_NOTES.has(f.id));
      resolve({ findings, serverFindings, output, exitCode: err ? err.code : 0 });
    });
  });
}
