// Proves the topology scripts/servers.sh promises: binlog/WAL configured for change capture,
// writes on each primary reaching its replica, and the plain servers as they come.
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { migrateOn, plainDatabases, useDatabase } from './support/fixture.js';

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; the vitest global setup (test/global-setup.ts) starts the servers`);
  return value;
}

/** Polls `probe` until it returns something other than undefined, for at most `timeoutMs`. */
async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// Unique per run so a leftover from a crashed run (or another checkout) never collides.
const table = `servers_probe_${process.pid}_${Date.now().toString(36)}`;

describe('MariaDB primary and replica', () => {
  let primary: Connection | undefined;
  let replica: Connection | undefined;

  afterAll(async () => {
    await primary?.query(`DROP TABLE IF EXISTS \`${table}\``);
    await primary?.end();
    await replica?.end();
  });

  it('has row-based binlog with full images and the event scheduler on', async () => {
    primary = await mysql.createConnection(env('SHADOWCUT_MYSQL_URL'));
    const [rows] = await primary.query<RowDataPacket[]>(
      `SELECT @@log_bin AS log_bin, @@binlog_format AS format, @@binlog_row_image AS row_image,
              @@binlog_row_metadata AS row_metadata, @@event_scheduler AS event_scheduler`,
    );
    expect(rows[0]).toEqual({
      log_bin: 1,
      format: 'ROW',
      row_image: 'FULL',
      row_metadata: 'FULL',
      event_scheduler: 'ON',
    });
  });

  // A starting mariadbd deletes every #sql* file in its tmpdir: with a shared /tmp, any other
  // instance starting (another checkout's, a test's own) would delete our temporary tables.
  it("keeps its temporary files in a directory of its own, apart from the replica's", async () => {
    primary ??= await mysql.createConnection(env('SHADOWCUT_MYSQL_URL'));
    const other = await mysql.createConnection(env('SHADOWCUT_MYSQL_REPLICA_URL'));
    const [[p]] = await primary.query<RowDataPacket[]>('SELECT @@tmpdir AS dir');
    const [[r]] = await other.query<RowDataPacket[]>('SELECT @@tmpdir AS dir');
    await other.end();
    expect(p.dir).not.toMatch(/^\/(var\/)?tmp\/?$/);
    expect(r.dir).not.toBe(p.dir);
  });

  it('replicates a new table and row to the read-only replica', async () => {
    primary ??= await mysql.createConnection(env('SHADOWCUT_MYSQL_URL'));
    replica = await mysql.createConnection(env('SHADOWCUT_MYSQL_REPLICA_URL'));

    const [[flags]] = await replica.query<RowDataPacket[]>('SELECT @@read_only AS read_only, @@server_id AS server_id');
    expect(flags).toEqual({ read_only: 1, server_id: 2 });

    await primary.query(`CREATE TABLE \`${table}\` (id INT PRIMARY KEY, note VARCHAR(64) NOT NULL)`);
    await primary.query(`INSERT INTO \`${table}\` VALUES (1, 'hello replica')`);

    const replicaConn = replica;
    const note = await eventually('the row on the MariaDB replica', async () => {
      // ER_NO_SUCH_TABLE until the CREATE TABLE has been applied: eventually() retries.
      const [found] = await replicaConn.query<RowDataPacket[]>(`SELECT note FROM \`${table}\` WHERE id = 1`);
      return found[0]?.note as string | undefined;
    });
    expect(note).toBe('hello replica');
  });
});

describe('PostgreSQL primary and standby', () => {
  let primary: pg.Client | undefined;
  let standby: pg.Client | undefined;

  afterAll(async () => {
    await primary?.query(`DROP TABLE IF EXISTS ${table}`);
    await primary?.end();
    await standby?.end();
  });

  it('has logical WAL on the primary', async () => {
    primary = new pg.Client({ connectionString: env('SHADOWCUT_PG_URL') });
    await primary.connect();
    const { rows } = await primary.query<{ wal_level: string; in_recovery: boolean }>(
      `SELECT current_setting('wal_level') AS wal_level, pg_is_in_recovery() AS in_recovery`,
    );
    expect(rows[0]).toEqual({ wal_level: 'logical', in_recovery: false });
  });

  it('streams a new table and row to the hot standby', async () => {
    if (!primary) {
      primary = new pg.Client({ connectionString: env('SHADOWCUT_PG_URL') });
      await primary.connect();
    }
    standby = new pg.Client({ connectionString: env('SHADOWCUT_PG_STANDBY_URL') });
    await standby.connect();

    await primary.query(`CREATE TABLE ${table} (id int PRIMARY KEY, note text NOT NULL)`);
    await primary.query(`INSERT INTO ${table} VALUES (1, 'hello standby')`);

    const standbyConn = standby;
    const seen = await eventually('the row on the PostgreSQL standby', async () => {
      // 42P01 (undefined_table) until the standby has replayed the CREATE TABLE: retried.
      const { rows } = await standbyConn.query<{ note: string; in_recovery: boolean }>(
        `SELECT note, pg_is_in_recovery() AS in_recovery FROM ${table} WHERE id = 1`,
      );
      return rows[0];
    });
    expect(seen).toEqual({ note: 'hello standby', in_recovery: true });
  });
});

describe('the plain MariaDB, as it comes', () => {
  const db = useDatabase(plainDatabases[0].open);

  it("has no binlog, and its user has a table owner's privileges but none for replication", async () => {
    expect(await db.query('SELECT @@log_bin, @@binlog_format')).toEqual([['0', 'MIXED']]);
    const global = await db.query(
      'SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = CONCAT("\'", REPLACE(CURRENT_USER(), \'@\', "\'@\'"), "\'")',
    );
    expect(global).toEqual([['PROCESS']]);
    const onDatabase = (await db.query('SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE TABLE_SCHEMA = DATABASE()')).flat();
    expect(onDatabase).toEqual(expect.arrayContaining(['CREATE', 'DROP', 'ALTER', 'INDEX', 'TRIGGER', 'LOCK TABLES']));
  });

  it('has no replica for a test to use', () => {
    expect(() => db.replica).toThrow('the plain MariaDB has no replica');
  });
});

describe('the plain PostgreSQL, as it comes', () => {
  const db = useDatabase(plainDatabases[1].open);

  it('runs at wal_level=replica, as a role that owns the database but is neither superuser nor REPLICATION', async () => {
    expect(
      await db.query(
        `SELECT current_setting('wal_level'), pg_is_in_recovery(), r.rolsuper, r.rolreplication, pg_get_userbyid(d.datdba) = current_user
           FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND d.datname = current_database()`,
      ),
    ).toEqual([['replica', 'f', 'f', 'f', 't']]);
  });

  it('has no standby for a test to use', () => {
    expect(() => db.replica).toThrow('the plain PostgreSQL has no standby');
  });
});

// Today's behaviour, which trigger capture (issue 23) is to change: then this test changes with it.
describe.each(plainDatabases)('$name', ({ kind, open }) => {
  const table = 'plain_refused';
  const db = useDatabase(open, table);
  const refusal = { mysql: /binary logging is off/, postgres: /wal_level is replica; set wal_level = logical/ }[kind];

  it('refuses --capture stream for want of a change stream, changing nothing (auto takes triggers: trigger-capture.test.ts)', async () => {
    await db.drop(table);
    await db.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, v INT)`);
    await db.query(`INSERT INTO ${table} SELECT g, g FROM (${db.series(100)}) s`);
    await expect(migrateOn(db, table, 'ADD COLUMN w INT', {}, { request: { capture: 'stream' } })).rejects.toThrow(refusal);
    expect(await db.helpers(table)).toEqual([]);
    expect(await db.query(`SELECT count(*) FROM ${table}`)).toEqual([['100']]);
  });
});

describe('scripts/servers.sh in a clone inside a private (0700) directory', () => {
  // Like a clone in root's home on Debian: the postgres OS user cannot reach it.
  const home = mkdtempSync(path.join(os.tmpdir(), 'shadowcut-private-'));
  const clone = path.join(home, 'clone');
  const script = path.join(clone, 'scripts', 'servers.sh');
  // Not synchronous: a worker blocked past a minute misses vitest's own messages and the run fails.
  const run = (command: string) =>
    new Promise<{ status: number | null; stderr: string }>((resolve) => {
      execFile(
        'bash',
        [script, command],
        { encoding: 'utf8', env: { ...process.env, SHADOWCUT_SERVERS_DIR: '' }, timeout: 300_000 },
        (error, _stdout, stderr) => resolve({ status: error ? (typeof error.code === 'number' ? error.code : null) : 0, stderr }),
      );
    });

  afterAll(async () => {
    await run('down');
    rmSync(home, { recursive: true, force: true });
  });

  it('starts all six servers, and down removes everything it made', async () => {
    expect(statSync(home).mode & 0o777).toBe(0o700);
    mkdirSync(path.dirname(script), { recursive: true });
    for (const file of ['servers.sh', 'servers.topology'])
      copyFileSync(fileURLToPath(new URL(`../scripts/${file}`, import.meta.url)), path.join(path.dirname(script), file));
    const up = await run('up');
    expect(up.stderr).not.toMatch(/ERROR/);
    expect(up.status).toBe(0);
    const urls = JSON.parse(readFileSync(path.join(clone, '.servers', 'servers.json'), 'utf8')) as Record<string, string>;
    const client = new pg.Client({ connectionString: urls.pgStandbyUrl });
    await client.connect();
    expect((await client.query('SELECT pg_is_in_recovery() AS r')).rows[0].r).toBe(true);
    await client.end();
    for (const url of [urls.mysqlUrl, urls.mysqlPlainUrl]) {
      const conn = await mysql.createConnection(url);
      await conn.end();
    }
    const plain = new pg.Client({ connectionString: urls.pgPlainUrl });
    await plain.connect();
    expect((await plain.query(`SELECT current_setting('wal_level') AS w`)).rows[0].w).toBe('replica');
    await plain.end();
    const dataRoot = process.getuid?.() === 0 ? readFileSync(path.join(clone, '.servers', 'data-root'), 'utf8').trim() : null;
    if (dataRoot) expect(dataRoot).toMatch(/^\/var\/tmp\/shadowcut-servers\./);

    const down = await run('down');
    expect(down.status).toBe(0);
    expect(existsSync(path.join(clone, '.servers'))).toBe(false);
    if (dataRoot) expect(existsSync(dataRoot)).toBe(false);
    const left = spawnSync('pgrep', ['-f', clone], { encoding: 'utf8' }).stdout.trim();
    expect(left).toBe('');
  });
});
