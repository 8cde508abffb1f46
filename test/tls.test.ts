import type mysql from 'mysql2/promise';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../src/core/migrate/runner.js';
import { createEngine } from '../src/engines/index.js';
import { startExtraMariadb, type ExtraMariadb } from './support/extra-mariadb.js';
import { startExtraPostgres, type ExtraPostgres } from './support/extra-postgres.js';
import { mysqlUrl, runCli } from './support/mysql.js';
import { pgUrl } from './support/pg.js';
import { background, runState, waitFor } from './support/run.js';
import { makeCertificates, type TestCertificates } from './support/tls-certs.js';

/**
 * Servers that take TLS connections only, with a CA the test makes: a migration goes through them
 * with the strictest verification, its change stream included (the writes made while the cut-over
 * waits reach the shadow through it), and each mode means what it means to the engine's own client.
 */
const ALTER = 'ADD COLUMN note INT NULL';

/**
 * A migration whose cut-over waits until `write` has run: those writes arrive by the change stream,
 * or the run cannot end equal. The server is its own `--replica` too: a replica probe that could not
 * connect would hold the copy back for good (an unmeasurable lag holds it).
 */
async function migrateWithWrites(url: string, table: string, write: () => Promise<void>, engineKind: 'mysql' | 'postgres') {
  const state = runState(table, ALTER, engineKind);
  const engine = await createEngine(url);
  const migration = migrate(engine, { url, table, alter: ALTER }, { execute: true, forceCopy: true, state, postponeCutover: true, replicas: [url] }).finally(
    () => engine.close(),
  );
  const run = background(migration);
  await waitFor('the postponed cut-over', () => state.status.state === 'postponed', run);
  await write();
  state.cutoverRequested = true;
  await waitFor('the run to end', () => run.settled, null, 60_000);
  expect(run.error).toBeUndefined();
  const result = await migration;
  // Followed through the change stream, not found and repaired by a checksum round.
  expect(result.changesApplied).toBeGreaterThanOrEqual(101);
  expect(result.checksumRounds).toBe(1);
}

/** A connecting command that changes nothing: the dry run, of an ALTER of its own (the migrations add `note`). */
const dryRun = (url: string, table: string) => runCli(['migrate', '--url', '$URL', '--table', table, '--alter', 'ADD COLUMN dry INT NULL'], url);

let certs: TestCertificates;
beforeAll(() => {
  certs = makeCertificates();
});
afterAll(() => certs?.remove());

describe('TLS on PostgreSQL: a server with hostssl lines only', () => {
  let server: ExtraPostgres;
  let db: pg.Client;
  beforeAll(async () => {
    server = await startExtraPostgres({
      settings: [
        'ssl = on',
        `ssl_cert_file = 'server.crt'`,
        `ssl_key_file = 'server.key'`,
        'wal_level = logical',
        'max_replication_slots = 4',
        'max_wal_senders = 4',
      ],
      hba: ['hostssl all all 127.0.0.1/32 scram-sha-256', 'hostssl replication all 127.0.0.1/32 scram-sha-256'],
      files: [certs.serverCert, certs.serverKey],
    });
    const admin = await server.admin();
    await admin.query(`CREATE ROLE sc_tls LOGIN SUPERUSER PASSWORD 'tls-secret'`);
    await admin.query('CREATE DATABASE tls_db OWNER sc_tls');
    await admin.end();
    db = await server.admin('tls_db');
    await db.query('CREATE TABLE tls_t (id int PRIMARY KEY, n int NOT NULL)');
    await db.query('ALTER TABLE tls_t OWNER TO sc_tls');
    await db.query('INSERT INTO tls_t SELECT g, g FROM generate_series(1, 3000) g');
  }, 120_000);
  afterAll(async () => {
    await db?.end();
    await server?.stop();
  });
  const url = (query: string, host = '127.0.0.1') => `postgres://sc_tls:tls-secret@${host}:${server.port}/tls_db?${query}`;

  it('migrates with sslmode=verify-full: the change stream, the claim and a standby probe too', async () => {
    await migrateWithWrites(
      url(`sslmode=verify-full&sslrootcert=${encodeURIComponent(certs.ca)}`, 'localhost'),
      'tls_t',
      async () => {
        await db.query('UPDATE tls_t SET n = -n WHERE id <= 100');
        await db.query('INSERT INTO tls_t VALUES (9000, 9000)');
      },
      'postgres',
    );
    const { rows } = await db.query(`SELECT count(*) AS c, sum(n) AS s, count(note) AS notes FROM tls_t`);
    expect(rows[0]).toEqual({ c: '3001', s: String((3000 * 3001) / 2 - 2 * 5050 + 9000), notes: '0' });
  });

  it('verify-full checks the host name, verify-ca does not', () => {
    const ca = encodeURIComponent(certs.ca);
    expect(dryRun(url(`sslmode=verify-full&sslrootcert=${ca}`), 'tls_t')).toMatchObject({
      code: 2,
      stderr: "shadowcut: cannot connect to PostgreSQL: TLS: Hostname/IP does not match certificate's altnames: IP: 127.0.0.1 is not in the cert's list: \n",
    });
    expect(dryRun(url(`sslmode=verify-ca&sslrootcert=${ca}`), 'tls_t')).toMatchObject({ code: 0 });
  });

  it('require and prefer connect without a CA; allow goes on to TLS when the server refuses a connection without', () => {
    for (const mode of ['require', 'prefer', 'allow']) expect(dryRun(url(`sslmode=${mode}`), 'tls_t')).toMatchObject({ code: 0 });
  });

  it('refuses a certificate another CA signed, in one line', () => {
    const wrongCa = dryRun(url(`sslmode=verify-ca&sslrootcert=${encodeURIComponent(certs.otherCa)}`), 'tls_t');
    expect(wrongCa).toMatchObject({ code: 2, stdout: '' });
    expect(wrongCa.stderr).toMatch(/^shadowcut: cannot connect to PostgreSQL: TLS: unable to verify the first certificate\n$/);
    // libpq's require verifies the chain once it has a root certificate.
    expect(dryRun(url(`sslmode=require&sslrootcert=${encodeURIComponent(certs.otherCa)}`), 'tls_t').stderr).toMatch(
      /TLS: unable to verify the first certificate/,
    );
  });

  it('sslmode=disable is refused by the server; an unknown parameter by shadowcut', () => {
    expect(dryRun(url('sslmode=disable'), 'tls_t')).toMatchObject({ code: 2, stderr: expect.stringMatching(/no pg_hba\.conf entry .*no encryption\n$/) });
    const unknown = dryRun(url('sslmode=require&ssl_mode=verify-full'), 'tls_t');
    expect(unknown).toMatchObject({ code: 2, stdout: '' });
    expect(unknown.stderr).toBe(
      'shadowcut: --url has an unknown parameter ssl_mode; shadowcut reads host, port, user, password, application_name, options, sslmode, sslrootcert, sslcert, sslkey, sslpassword\n',
    );
  });

  it('prefer falls back to a connection without TLS on a server without it', () => {
    expect(dryRun(`${pgUrl()}?sslmode=prefer`, 'tls_absent')).toMatchObject({ stderr: expect.stringMatching(/tls_absent/) });
    expect(dryRun(`${pgUrl()}?sslmode=require`, 'tls_absent')).toMatchObject({
      code: 2,
      stderr: 'shadowcut: cannot connect to PostgreSQL: The server does not support SSL connections\n',
    });
  });
});

describe('TLS on MariaDB: a server with require_secure_transport', () => {
  let server: ExtraMariadb;
  let root: mysql.Connection;
  beforeAll(async () => {
    server = await startExtraMariadb([
      `--ssl-ca=${certs.ca}`,
      `--ssl-cert=${certs.serverCert}`,
      `--ssl-key=${certs.serverKey}`,
      '--require-secure-transport=ON',
    ]);
    root = await server.root();
    await root.query('CREATE DATABASE tls_db; USE tls_db');
    await root.query('CREATE TABLE tls_t (id INT PRIMARY KEY, n INT NOT NULL)');
    await root.query('INSERT INTO tls_t SELECT seq, seq FROM seq_1_to_3000');
  }, 120_000);
  afterAll(async () => {
    await root?.end();
    await server?.stop();
  });
  const url = (query: string, host = '127.0.0.1') => `${server.url('tls_db').replace('127.0.0.1', host)}?${query}`;

  it('migrates with ssl-mode=VERIFY_IDENTITY: the binlog reader, the claim and a replica probe too', async () => {
    await migrateWithWrites(
      url(`ssl-mode=VERIFY_IDENTITY&ssl-ca=${encodeURIComponent(certs.ca)}`, 'localhost'),
      'tls_t',
      async () => {
        await root.query('UPDATE tls_t SET n = -n WHERE id <= 100');
        await root.query('INSERT INTO tls_t VALUES (9000, 9000)');
      },
      'mysql',
    );
    const [rows] = await root.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS c, SUM(n) AS s, COUNT(note) AS notes FROM tls_t');
    expect(rows[0]).toEqual({ c: 3001, s: String((3000 * 3001) / 2 - 2 * 5050 + 9000), notes: 0 });
  });

  it('VERIFY_IDENTITY checks the host name, VERIFY_CA does not', () => {
    const ca = encodeURIComponent(certs.ca);
    expect(dryRun(url(`ssl-mode=VERIFY_IDENTITY&ssl-ca=${ca}`), 'tls_t')).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/: TLS: Hostname\/IP does not match certificate's altnames: IP: 127\.0\.0\.1 is not in the cert's list: \n$/),
    });
    expect(dryRun(url(`ssl-mode=VERIFY_CA&ssl-ca=${ca}`), 'tls_t')).toMatchObject({ code: 0 });
  });

  it('REQUIRED (in any case) and PREFERRED connect without a CA', () => {
    for (const mode of ['required', 'PREFERRED']) expect(dryRun(url(`ssl-mode=${mode}`), 'tls_t')).toMatchObject({ code: 0 });
  });

  it('refuses a certificate another CA signed, in one line', () => {
    const wrongCa = dryRun(url(`ssl-mode=VERIFY_CA&ssl-ca=${encodeURIComponent(certs.otherCa)}`), 'tls_t');
    expect(wrongCa).toMatchObject({ code: 2, stdout: '' });
    expect(wrongCa.stderr).toMatch(
      /^shadowcut: cannot connect to mysql:\/\/shadowcut:\*\*\*@127\.0\.0\.1:\d+\/tls_db\?.*: TLS: self-signed certificate in certificate chain\n$/,
    );
  });

  it('DISABLED is refused by the server; an unknown parameter by shadowcut', () => {
    // MariaDB answers a connection without TLS so; the same user and password connect with it above.
    expect(dryRun(url('ssl-mode=DISABLED'), 'tls_t')).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/ssl-mode=DISABLED: Access denied for user 'shadowcut'/),
    });
    const unknown = dryRun(url('sslmode=require'), 'tls_t');
    expect(unknown).toMatchObject({ code: 2, stdout: '' });
    expect(unknown.stderr).toBe(
      'shadowcut: --url has an unknown parameter sslmode; shadowcut reads socket, password, defaults-file, ssl-mode, ssl-ca, ssl-cert, ssl-key\n',
    );
    expect(dryRun(url('ssl-mode=VERIFY_CA'), 'tls_t').stderr).toBe(
      "shadowcut: --url has ssl-mode=VERIFY_CA without ssl-ca, the CA certificate to verify the server's with\n",
    );
  });

  it('PREFERRED falls back to a connection without TLS on a server without it', () => {
    expect(dryRun(`${mysqlUrl()}?ssl-mode=PREFERRED`, 'tls_absent')).toMatchObject({ stderr: expect.stringMatching(/tls_absent/) });
    expect(dryRun(`${mysqlUrl()}?ssl-mode=REQUIRED`, 'tls_absent')).toMatchObject({ code: 2, stderr: expect.stringMatching(/: TLS: .*\n$/) });
  });
});
