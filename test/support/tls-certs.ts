import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** PEM files a test's TLS server and clients use; `remove` deletes them. */
export interface TestCertificates {
  dir: string;
  /** The CA that signed the server's certificate. */
  ca: string;
  /** A CA that signed nothing the server has: verifying against it must fail. */
  otherCa: string;
  serverCert: string;
  serverKey: string;
  remove(): void;
}

const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });

/**
 * A CA of the test's own, and a server certificate it signs for localhost only: connected to as
 * 127.0.0.1, the same server is one whose name the certificate does not have.
 */
export function makeCertificates(): TestCertificates {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'shadowcut-tls-'));
  const ca = (name: string) =>
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.crt`], dir);
  ca('test-ca');
  ca('other-ca');
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr'], dir);
  writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName = DNS:localhost\n');
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'test-ca.crt',
      '-CAkey',
      'test-ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      'san.ext',
      '-out',
      'server.crt',
    ],
    dir,
  );
  return {
    dir,
    ca: path.join(dir, 'test-ca.crt'),
    otherCa: path.join(dir, 'other-ca.crt'),
    serverCert: path.join(dir, 'server.crt'),
    serverKey: path.join(dir, 'server.key'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
