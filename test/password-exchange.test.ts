// A server that asks for the password in a form that gives it away does not get it (issue 68, item 6):
// a line of a --targets file can name a host an attacker runs. The servers here are that attacker's
// (support/hostile-servers.ts); the exchanges real servers use (SCRAM, MySQL's scramble, verified
// TLS) are covered by the tests against real servers (tls.test.ts, secrets.test.ts, fleet.test.ts).
// Starts no database server (vitest.config.ts, project `no-servers`); runs the built CLI.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { cliAsync } from './support/cli.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { passwordRefusal } from '../src/core/engine/connect/password-exchange.js';
import { hostileServer, type HostileAsk, type HostileServer } from './support/hostile-servers.js';
import { makeCertificates, type TestCertificates } from './support/tls-certs.js';

const PASSWORD = 'fleet-secret-68';

const shadowcut = (args: string[]) => cliAsync(args);

describe('a server that asks for the password in a form that gives it away', () => {
  const servers = new Map<HostileAsk | 'pg-tls-unverified', HostileServer>();
  let certs: TestCertificates;
  let dir: string;

  beforeAll(async () => {
    certs = makeCertificates();
    dir = mkdtempSync(path.join(tmpdir(), 'sc-hostile-'));
    for (const ask of ['pg-cleartext', 'pg-md5', 'mysql-clear', 'mysql-caching-full'] as const) servers.set(ask, await hostileServer(ask));
    servers.set('pg-tls-unverified', await hostileServer('pg-cleartext', { cert: certs.serverCert, key: certs.serverKey }));
  });
  afterAll(async () => {
    for (const s of servers.values()) await s.close();
    certs?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const port = (name: HostileAsk | 'pg-tls-unverified') => servers.get(name)!.port;

  it('plan --targets: no target learns the password, and the run refuses in one line naming each', async () => {
    const targets = path.join(dir, 'targets');
    const lines = [
      `postgres://fleet:${PASSWORD}@127.0.0.1:${port('pg-cleartext')}/app`,
      `postgres://fleet:${PASSWORD}@127.0.0.1:${port('pg-md5')}/app`,
      `postgres://fleet:${PASSWORD}@localhost:${port('pg-tls-unverified')}/app?sslmode=require`,
      `mysql://fleet:${PASSWORD}@127.0.0.1:${port('mysql-caching-full')}/app`,
      `mysql://fleet:${PASSWORD}@127.0.0.1:${port('mysql-clear')}/app`,
    ];
    writeFileSync(targets, lines.join('\n') + '\n', { mode: 0o600 });
    const run = await shadowcut(['plan', '--targets', targets, '--table', 't', '--alter', 'ADD COLUMN x INT']);
    for (const [name, server] of servers) {
      await server.idle();
      expect(server.asked(), name).toBe(true);
      expect(server.afterAsk().length, `${name} received after asking: ${server.afterAsk().toString('latin1')}`).toBe(0);
      expect(server.received().includes(PASSWORD), name).toBe(false);
    }
    expect(run.code).toBe(2);
    expect(run.stderr.split('\n')).toHaveLength(2);
    const refusal = (at: string, asked: string, remedy: string) =>
      `refusing to send the password to ${at}: the server asks for ${asked}, without verified TLS; ${remedy}`;
    const pgRemedy = "use sslmode=verify-full with the server's CA, or scram-sha-256 on the server";
    const myRemedy = 'use ssl-mode=VERIFY_IDENTITY with ssl-ca';
    const sha2 = 'it in clear text, or encrypted with a key the server sends (caching_sha2_password full authentication)';
    expect(run.stderr).toBe(
      'shadowcut: 5 target(s) would be refused: ' +
        [
          `127.0.0.1:${port('pg-cleartext')}/app: cannot connect to PostgreSQL: ${refusal(`127.0.0.1:${port('pg-cleartext')}`, 'it in clear text ("password" authentication)', pgRemedy)}`,
          `127.0.0.1:${port('pg-md5')}/app: cannot connect to PostgreSQL: ${refusal(`127.0.0.1:${port('pg-md5')}`, 'an MD5 hash of it ("md5" authentication)', pgRemedy)}`,
          `localhost:${port('pg-tls-unverified')}/app: cannot connect to PostgreSQL: ${refusal(`localhost:${port('pg-tls-unverified')}`, 'it in clear text ("password" authentication)', pgRemedy)}`,
          `127.0.0.1:${port('mysql-caching-full')}/app: ${refusal(`127.0.0.1:${port('mysql-caching-full')}`, sha2, myRemedy)}`,
          `127.0.0.1:${port('mysql-clear')}/app: ${refusal(`127.0.0.1:${port('mysql-clear')}`, 'it in clear text (mysql_clear_password)', myRemedy)}`,
        ].join('; ') +
        '\n',
    );
  });

  it('a plain --url is held to the same rule', async () => {
    const server = servers.get('pg-cleartext')!;
    const before = server.received().length;
    const run = await shadowcut([
      'migrate',
      '--url',
      `postgres://fleet:${PASSWORD}@127.0.0.1:${server.port}/app`,
      '--table',
      't',
      '--alter',
      'ADD COLUMN x INT',
    ]);
    await server.idle();
    expect(server.received().subarray(before).includes(PASSWORD)).toBe(false);
    expect(run).toMatchObject({ code: 2, stdout: '' });
    expect(run.stderr).toMatch(
      /^shadowcut: cannot connect to PostgreSQL: refusing to send the password to 127\.0\.0\.1:\d+: the server asks for it in clear text[^\n]*\n$/,
    );
  });
});

describe('passwordRefusal: where a password may go', () => {
  const transport = (socket: unknown, verifyChain: boolean, unixSocket = false) => ({ server: 'db:5432', unixSocket, socket, verifyChain });
  const verified = Object.assign(Object.create(TLSSocket.prototype) as TLSSocket, { authorized: true });
  const unverified = Object.assign(Object.create(TLSSocket.prototype) as TLSSocket, { authorized: false });

  it('over TLS the driver verified, or a Unix socket; nowhere else', () => {
    expect(passwordRefusal(transport(verified, true), 'it', 'fix')).toBeNull();
    expect(passwordRefusal(transport(new Socket(), false, true), 'it', 'fix')).toBeNull();
    // A chain that happens to verify where the operator did not ask for it to be (sslmode=require): the name was never checked.
    expect(passwordRefusal(transport(verified, false), 'it', 'fix')?.message).toBe(
      'refusing to send the password to db:5432: the server asks for it, without verified TLS; fix',
    );
    expect(passwordRefusal(transport(unverified, true), 'it', 'fix')).not.toBeNull();
    expect(passwordRefusal(transport(new Socket(), true), 'it', 'fix')).not.toBeNull();
  });
});
