import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mysql from 'mysql2/promise';
import { migrate as migrateCore } from '../src/core/migrate/runner.js';
import type { Migration } from '../src/core/engine/types.js';
import { createMysqlEngine } from '../src/engines/mysql/index.js';
import { adminPool, mysqlUrl, runCli } from './support/mysql.js';
import { withMigration } from './support/wrap.js';
import { catalogDifferences } from './support/mysql-catalog-oracle.js';

/**
 * docs/invariants.md, invariant 17 on MariaDB: the database after shadowcut is the one the native ALTER makes.
 * Each case sets up two fresh databases alike; the twin takes the server's own ALTER, shadowcut
 * migrates the other; the catalog oracle must find no difference, or shadowcut must refuse in one
 * line having made nothing.
 */
const A = 'sc_cat';
const TWIN = 'sc_cat_twin';
let root: mysql.Pool;

const urlOf = (db: string, user?: { name: string; password: string }) => {
  const u = new URL(mysqlUrl());
  u.pathname = `/${db}`;
  if (user) {
    u.username = user.name;
    u.password = user.password;
  }
  return u.toString();
};

beforeAll(() => {
  root = adminPool();
});

afterAll(async () => {
  await root.query(`DROP DATABASE IF EXISTS ${A}; DROP DATABASE IF EXISTS ${TWIN}; DROP USER IF EXISTS sc_owner, sc_mover`);
  await root.end();
});

/** Runs the statements in each database, in a session of its own (so SET NAMES and sql_mode stay in it). */
async function inBoth(statements: string[]): Promise<void> {
  for (const db of [A, TWIN]) await inDatabase(db, statements);
}

async function inDatabase(db: string, statements: string[]): Promise<void> {
  const conn = await root.getConnection();
  try {
    await conn.query(`USE ${db}`);
    for (const s of statements) await conn.query(s);
  } finally {
    conn.destroy(); // its session settings go with it
  }
}

async function fresh(charset = 'utf8mb4'): Promise<void> {
  for (const db of [A, TWIN]) {
    await root.query(`DROP DATABASE IF EXISTS ${db}`);
    await root.query(`CREATE DATABASE ${db} CHARACTER SET ${charset}`);
  }
}

function migrate(table: string, alter: string, flags: string[], url = urlOf(A)) {
  return runCli(['migrate', '--url', '$URL', '--table', table, '--alter', alter, '--execute', ...flags], url);
}

/** The twin takes the ALTER natively; shadowcut's run must succeed and leave the same catalog. */
async function expectSameAsNative(table: string, alter: string, flags: string[], suffix = '_sc'): Promise<void> {
  await root.query(`ALTER TABLE ${TWIN}.${table} ${alter}`);
  const r = migrate(table, alter, flags);
  expect(r.stderr).not.toMatch(/internal error/);
  expect(r.code, r.stderr).toBe(0);
  expect(await catalogDifferences(root, A, TWIN, { triggerSuffix: suffix })).toEqual([]);
}

/** Everything in the database that shadowcut could have made: tables and triggers, whatever their names. */
async function objects(db: string): Promise<string[]> {
  const [t] = await root.query<mysql.RowDataPacket[]>('SELECT TABLE_NAME n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY 1', [db]);
  const [g] = await root.query<mysql.RowDataPacket[]>('SELECT TRIGGER_NAME n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY 1', [db]);
  return [...t.map((r) => `table ${r.n}`), ...g.map((r) => `trigger ${r.n}`)];
}

/** A refusal: exit 2, one line on stderr matching `why`, and not one object made. */
async function expectRefused(table: string, alter: string, flags: string[], why: RegExp, url = urlOf(A)): Promise<void> {
  const before = await objects(A);
  const r = migrate(table, alter, flags, url);
  expect(r.stderr).toMatch(why);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).not.toMatch(/internal error/);
  expect(r.code).toBe(2);
  expect(await objects(A)).toEqual(before);
}

describe("the catalog after shadowcut is the native ALTER's (MariaDB)", () => {
  it('keys in from other tables, a view over the table, its own trigger, routines and an event: compared whole after a copy', async () => {
    await fresh();
    await inBoth([
      'CREATE TABLE parent (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL, n INT NOT NULL DEFAULT 0, KEY by_name (name)) ENGINE=InnoDB',
      'CREATE TABLE child (id INT PRIMARY KEY, parent_id INT, CONSTRAINT child_parent FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE SET NULL) ENGINE=InnoDB',
      'CREATE TABLE audit (id INT, what VARCHAR(10)) ENGINE=InnoDB',
      "INSERT INTO parent (name) SELECT CONCAT('p', seq) FROM seq_1_to_500",
      'INSERT INTO child SELECT seq, seq FROM seq_1_to_100',
      'CREATE VIEW parent_names AS SELECT id, name FROM parent WHERE n = 0',
      "CREATE TRIGGER parent_au AFTER UPDATE ON parent FOR EACH ROW INSERT INTO audit VALUES (NEW.id, 'update')",
      'CREATE FUNCTION twice (x INT) RETURNS INT DETERMINISTIC RETURN x * 2',
      'CREATE PROCEDURE touch_parent () UPDATE parent SET n = n + 1 WHERE id = 1',
      "CREATE EVENT tidy ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE DO DELETE FROM audit",
    ]);
    await expectSameAsNative('parent', 'ADD COLUMN note VARCHAR(30) NULL, MODIFY n BIGINT NOT NULL DEFAULT 0', ['--force-copy', '--include-triggers']);
  });

  it('a moved trigger keeps the character set, collation and sql_mode it was made under', async () => {
    await fresh('latin1');
    await inBoth([
      'CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10)) ENGINE=InnoDB CHARACTER SET utf8mb4',
      'CREATE TABLE seen (v VARCHAR(10)) ENGINE=InnoDB',
      'INSERT INTO t SELECT seq, seq FROM seq_1_to_200',
      'SET NAMES latin1 COLLATE latin1_german1_ci',
      "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION,PIPES_AS_CONCAT'",
      "CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW SET NEW.v = 'x' || NEW.v",
      "CREATE TRIGGER t_ai AFTER INSERT ON t FOR EACH ROW INSERT INTO seen VALUES (IF(NEW.v = 'X1', 'same', 'other'))",
    ]);
    await expectSameAsNative('t', 'ADD COLUMN w INT', ['--force-copy', '--include-triggers']);
    // And they behave as the originals do: PIPES_AS_CONCAT concatenates, latin1_german1_ci compares.
    await root.query(`INSERT INTO ${A}.t (id, v) VALUES (9000, '1'); INSERT INTO ${TWIN}.t (id, v) VALUES (9000, '1')`);
    const [rows] = await root.query<mysql.RowDataPacket[]>(
      `SELECT (SELECT v FROM ${A}.seen) a, (SELECT v FROM ${TWIN}.seen) b, (SELECT v FROM ${A}.t WHERE id = 9000) c`,
    );
    expect(rows[0]).toEqual({ a: 'same', b: 'same', c: 'x1' });
  });

  it('a moved trigger keeps its own DEFINER, and a user who may not set it is refused before anything is made', async () => {
    await fresh();
    await root.query("DROP USER IF EXISTS sc_owner, sc_mover; CREATE USER sc_owner IDENTIFIED BY 'owner-pw'; CREATE USER sc_mover IDENTIFIED BY 'mover-pw'");
    await root.query(`GRANT SELECT, INSERT, TRIGGER ON ${A}.* TO sc_owner; GRANT SELECT, INSERT, TRIGGER ON ${TWIN}.* TO sc_owner`);
    await root.query(
      `GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, LOCK TABLES, CREATE TEMPORARY TABLES, TRIGGER, REFERENCES ON ${A}.* TO sc_mover; ` +
        'GRANT PROCESS, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO sc_mover',
    );
    await inBoth([
      'CREATE TABLE t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB',
      'CREATE TABLE seen (who VARCHAR(200)) ENGINE=InnoDB',
      'INSERT INTO t SELECT seq, seq FROM seq_1_to_100',
      "CREATE DEFINER = 'sc_owner'@'%' TRIGGER t_ai AFTER INSERT ON t FOR EACH ROW INSERT INTO seen VALUES (CURRENT_USER())",
    ]);
    await expectRefused(
      't',
      'ADD COLUMN w INT',
      ['--force-copy', '--include-triggers'],
      /t_ai.*sc_owner.*(SET USER|SUPER)/,
      urlOf(A, { name: 'sc_mover', password: 'mover-pw' }),
    );
    await expectSameAsNative('t', 'ADD COLUMN w INT', ['--force-copy', '--include-triggers']);
    await root.query(`INSERT INTO ${A}.t (id, v) VALUES (9000, 1)`);
    const [[seen]] = await root.query<mysql.RowDataPacket[]>(`SELECT who FROM ${A}.seen`);
    expect(seen.who).toBe('sc_owner@%');
  });

  for (const alter of ['DROP COLUMN f1', 'RENAME COLUMN f1 TO f2', 'CHANGE f1 f2 INT']) {
    it(`a trigger reading a column the ALTER takes away (${alter}) is refused in one line before anything is made`, async () => {
      await fresh();
      await inBoth([
        'CREATE TABLE t (id INT PRIMARY KEY, f1 INT, v INT) ENGINE=InnoDB',
        'CREATE TABLE seen (f INT) ENGINE=InnoDB',
        'INSERT INTO t SELECT seq, seq, seq FROM seq_1_to_300',
        'CREATE TRIGGER t_au AFTER UPDATE ON t FOR EACH ROW INSERT INTO seen VALUES (OLD.`f1`)',
      ]);
      await expectRefused('t', alter, ['--force-copy', '--include-triggers'], /trigger t_au .*f1/);
      await expectRefused('t', alter, ['--include-triggers'], /trigger t_au .*f1/);
      // Without the flag: in place the native ALTER would leave the trigger failing every update, so
      // it is refused as well; the copy refuses any table with triggers, naming the flag.
      await expectRefused('t', alter, [], /trigger t_au .*f1/);
      await expectRefused('t', alter, ['--force-copy'], /has triggers \(t_au\); pass --include-triggers/);
    });
  }

  it('DROP PRIMARY KEY, ADD PRIMARY KEY on a table with an AUTO_INCREMENT column runs, in place and by copy', async () => {
    const alter = 'DROP PRIMARY KEY, ADD PRIMARY KEY (id, k)';
    const setup = [
      'CREATE TABLE t (id INT NOT NULL AUTO_INCREMENT, k INT NOT NULL, v INT, PRIMARY KEY (id)) ENGINE=InnoDB',
      'INSERT INTO t (k, v) SELECT seq % 7, seq FROM seq_1_to_400',
    ];
    await fresh();
    await inBoth(setup);
    await expectSameAsNative('t', alter, []);
    await fresh();
    await inBoth(setup);
    await expectSameAsNative('t', alter, ['--force-copy']);
  });

  it('history, state and heartbeat are utf8mb4 in a latin1 database: a non-latin1 table name and ALTER are recorded as given', async () => {
    await fresh('latin1');
    const table = 'цены';
    await inBoth([
      `CREATE TABLE ${table} (id INT PRIMARY KEY, v INT) ENGINE=InnoDB CHARACTER SET utf8mb4`,
      `INSERT INTO ${table} SELECT seq, seq FROM seq_1_to_100`,
    ]);
    // A timeline an older version made in the database's default character set.
    await inDatabase(A, [
      `CREATE TABLE shadowcut_history (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, table_name VARCHAR(512) NOT NULL, command VARCHAR(16) NOT NULL,
        started_at DATETIME(6) NOT NULL, finished_at DATETIME(6) NOT NULL, outcome VARCHAR(16) NOT NULL, rows_touched BIGINT NOT NULL,
        entry LONGTEXT NOT NULL, KEY by_table (table_name, id)) ENGINE=InnoDB COMMENT='shadowcut: the schema change timeline of each table'`,
    ]);
    const alter = "ADD COLUMN заметка VARCHAR(20) NOT NULL DEFAULT 'нет'";
    await expectSameAsNative(table, alter, ['--force-copy']);
    const listed = runCli(['history', '--url', '$URL', '--table', table, '--json'], urlOf(A));
    expect(listed.stderr).toBe('');
    const entries = listed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { table: string; alter?: string });
    expect(entries).toHaveLength(1);
    expect(JSON.stringify(entries[0])).toContain(alter);
    const [rows] = await root.query<mysql.RowDataPacket[]>(
      'SELECT TABLE_NAME n, TABLE_COLLATION c FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
      [A, 'shadowcut_history'],
    );
    expect(String(rows[0].c)).toMatch(/^utf8mb4_/);
  });

  it('trigger capture in a latin1 database logs a non-latin1 key as written, and the row arrives whole', async () => {
    await fresh('latin1');
    await inBoth([
      'CREATE TABLE t (k VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY, v INT) ENGINE=InnoDB',
      "INSERT INTO t SELECT CONCAT('k', seq), seq FROM seq_1_to_200",
    ]);
    const engine = await createMysqlEngine(urlOf(A));
    // Written after the copy, so only the capture triggers' log carries these keys to the new table.
    // At the first checksum view, with or without its lock (MariaDB's opens with none).
    let written = false;
    const write = async () => {
      if (written) return;
      written = true;
      for (const db of [A, TWIN]) await root.query(`INSERT INTO ${db}.t VALUES ('ключ', 1), ('κλειδί', 2); UPDATE ${db}.t SET v = 0 WHERE k = 'k1'`);
    };
    const hooked = withMigration(engine, (migration) => ({
      async consistentView(...args: Parameters<Migration['consistentView']>) {
        await write();
        return migration.consistentView(...args);
      },
      async snapshotView(catchUp: () => Promise<void>) {
        await write();
        return migration.snapshotView!(catchUp);
      },
    }));
    await migrateCore(hooked, { url: urlOf(A), table: 't', alter: 'ADD COLUMN w INT', capture: 'trigger' }, { execute: true, forceCopy: true }).finally(() =>
      engine.close(),
    );
    await root.query(`ALTER TABLE ${TWIN}.t ADD COLUMN w INT`);
    const rows = async (db: string) => (await root.query<mysql.RowDataPacket[]>(`SELECT k, v, w FROM ${db}.t ORDER BY k`))[0];
    expect(await rows(A)).toEqual(await rows(TWIN));
    expect((await rows(A)).map((r) => r.k)).toContain('ключ');
    expect(await catalogDifferences(root, A, TWIN)).toEqual([]);
  });

  it('a revert window is refused in one line for an ALTER that drops a CHECK the old table would still enforce', async () => {
    await fresh();
    await inBoth([
      'CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL, CONSTRAINT v_small CHECK (v < 1000)) ENGINE=InnoDB',
      'INSERT INTO t SELECT seq, seq FROM seq_1_to_100',
    ]);
    await expectRefused('t', 'DROP CONSTRAINT v_small', ['--force-copy', '--revert-window', '10m'], /v_small/);
    // Without a window it is just an ALTER.
    await expectSameAsNative('t', 'DROP CONSTRAINT v_small', ['--force-copy']);
  });
});
