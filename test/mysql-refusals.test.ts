import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { adminPool, helperTables, mysqlUrl, runCli, tableChecksum } from './support/mysql.js';
import { isMultiPrimaryMode, multiPrimaryMember } from '../src/engines/mysql/server/group-replication.js';

let db: mysql.Pool;

beforeAll(async () => {
  db = adminPool();
  await db.query(`
    DROP TABLE IF EXISTS r_child, r_parent, r_plain, r_myisam, r_nokey, r_trig, r_plain__new, r_plain__old, r_log;
    CREATE TABLE r_plain (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB;
    INSERT INTO r_plain SELECT seq, CONCAT('v', seq) FROM seq_1_to_100;
    CREATE TABLE r_myisam (id INT PRIMARY KEY) ENGINE=MyISAM;
    CREATE TABLE r_nokey (a INT, b INT) ENGINE=InnoDB;
    CREATE TABLE r_parent (id INT PRIMARY KEY) ENGINE=InnoDB;
    CREATE TABLE r_child (id INT PRIMARY KEY, p INT, FOREIGN KEY (p) REFERENCES r_parent (id)) ENGINE=InnoDB;
    CREATE TABLE r_trig (id INT PRIMARY KEY, v INT) ENGINE=InnoDB;
    CREATE TABLE r_log (id INT) ENGINE=InnoDB;
    CREATE TRIGGER r_trig_ai AFTER INSERT ON r_trig FOR EACH ROW INSERT INTO r_log VALUES (NEW.id);
    DROP USER IF EXISTS 'sc_weak'@'%';
    CREATE USER 'sc_weak'@'%' IDENTIFIED BY 'weak';
    GRANT SELECT ON *.* TO 'sc_weak'@'%';`);
});

afterAll(async () => {
  await db.query(`DROP TABLE IF EXISTS r_child, r_parent, r_plain, r_myisam, r_nokey, r_trig, r_plain__new, r_plain__old, r_log;
    DROP USER IF EXISTS 'sc_weak'@'%'`);
  await db.end();
});

const weakUrl = () => mysqlUrl().replace(/\/\/[^@]+@/, '//sc_weak:weak@');

// [what, args, expected message fragment, table whose contents must not change]
const cases: [string, string[], RegExp][] = [
  ['unknown table', ['--table', 'r_missing', '--alter', 'ADD COLUMN x INT'], /does not exist/],
  ['a MyISAM table', ['--table', 'r_myisam', '--alter', 'ADD COLUMN x INT'], /only InnoDB/],
  ['no usable key', ['--table', 'r_nokey', '--alter', 'ADD COLUMN x INT'], /no PRIMARY KEY or NOT NULL UNIQUE key/],
  // A table's keys to others move to the new table; one the ALTER breaks is refused, as the native ALTER refuses it.
  [
    'foreign keys out',
    ['--table', 'r_child', '--alter', 'MODIFY p BIGINT'],
    /has foreign keys the new table could not take \(.*: column p would change from int\(11\) to bigint\(20\)\)/,
  ],
  // A table other tables reference is migrated; one whose new shape they could not reference is not.
  ['foreign keys in', ['--table', 'r_parent', '--alter', 'MODIFY id BIGINT'], /referenced by foreign keys the new table could not take/],
  ['triggers', ['--table', 'r_trig', '--alter', 'ADD COLUMN x INT'], /triggers/],
  ['an ALTER that renames the table', ['--table', 'r_plain', '--alter', 'RENAME TO r_other'], /renames the table/],
  ['an invalid ALTER', ['--table', 'r_plain', '--alter', 'ADD COLUMN'], /the ALTER fails/],
  ['an ALTER on a missing column', ['--table', 'r_plain', '--alter', 'DROP COLUMN nope'], /the ALTER fails/],
  ["an ALTER that drops the only key's column", ['--table', 'r_plain', '--alter', 'DROP COLUMN id'], /drops or converts a column of every PRIMARY/],
  ['a full ALTER statement instead of a clause', ['--table', 'r_plain', '--alter', 'ALTER TABLE r_plain ADD x INT'], /only the clause/],
  ['an empty ALTER', ['--table', 'r_plain', '--alter', ' '], /empty/],
  ['an ALTER adding a foreign key', ['--table', 'r_plain', '--alter', 'ADD COLUMN p INT, ADD FOREIGN KEY (p) REFERENCES r_parent (id)'], /foreign keys/],
  ['another database in --table', ['--table', 'otherdb.r_plain', '--alter', 'ADD COLUMN x INT'], /names database otherdb/],
  [
    'a misspelt load indicator',
    ['--table', 'r_plain', '--alter', 'ADD COLUMN x INT', '--max-load', 'Threads_runing=25'],
    /unknown load indicator\(s\) Threads_runing/,
  ],
  // Replicas are only contacted by a real run (watching them writes a heartbeat table).
  [
    'a replica URL of another engine',
    ['--table', 'r_plain', '--alter', 'ADD COLUMN x INT', '--execute', '--replica', 'postgres://x/y'],
    /--replica postgres:\/\/x\/y: must start with mysql:\/\//,
  ],
  ['a malformed --window', ['--table', 'r_plain', '--alter', 'ADD COLUMN x INT', '--window', '9-17'], /--window 9-17 is not HH:MM-HH:MM/],
];

describe('bad input is refused with one line, a non-zero exit, and nothing changed', () => {
  it.each(cases)('%s', async (_what, args, message) => {
    const before = await tableChecksum(db, 'r_plain');
    for (const execute of [[], ['--execute']]) {
      const r = runCli(['migrate', '--force-copy', '--url', '$URL', ...args, ...execute]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
    expect(await tableChecksum(db, 'r_plain')).toBe(before);
    for (const t of ['r_plain', 'r_trig', 'r_child', 'r_parent', 'r_nokey']) expect(await helperTables(db, t)).toEqual([]);
  });

  it('a URL of an unknown scheme, an unreachable server and a wrong password', () => {
    for (const url of ['redis://x/y', 'mysql://shadowcut:wrong@127.0.0.1:1/shadowcut_test', mysqlUrl().replace(':shadowcut@', ':wrong@')]) {
      const r = runCli(['migrate', '--force-copy', '--url', url, '--table', 'r_plain', '--alter', 'ADD COLUMN x INT'], url);
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^shadowcut: (--url must|cannot connect)/);
      expect(r.stderr).not.toContain(':wrong@'); // passwords are never echoed
    }
  });

  it('--resume with nothing to resume: one line and exit 5, for migrate and backfill, which the queue reads as "no checkpoint"', () => {
    for (const args of [
      ['migrate', '--force-copy', '--url', '$URL', '--table', 'r_plain', '--alter', 'ADD COLUMN x INT', '--execute', '--resume'],
      ['backfill', '--url', '$URL', '--table', 'r_plain', '--set', "v = 'x'", '--execute', '--resume'],
    ]) {
      const r = runCli(args);
      expect(r.code, r.stderr).toBe(5);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^shadowcut: there is no checkpoint of an earlier (run|backfill) on .*r_plain to resume; run without --resume$/m);
    }
  });

  it('a missing required option is named', () => {
    const r = runCli(['migrate', '--force-copy', '--url', '$URL', '--table', 'r_plain']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--alter/);
  });

  it('a user without the needed privileges', async () => {
    const r = runCli(['migrate', '--force-copy', '--url', weakUrl(), '--table', 'r_plain', '--alter', 'ADD COLUMN x INT'], weakUrl());
    expect(r.code).not.toBe(0);
    // The first refusal wins: the helper-table check (it needs TRIGGER to list triggers) or the preflight's.
    expect(r.stderr).toMatch(/missing privileges|lacks the TRIGGER privilege|the ALTER fails|denied/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('leftover helper tables from an earlier run, with the way to clean up', async () => {
    await db.query('CREATE TABLE r_plain__new LIKE r_plain');
    const r = runCli(['migrate', '--force-copy', '--url', '$URL', '--table', 'r_plain', '--alter', 'ADD COLUMN x INT', '--execute']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/already exists.*shadowcut cleanup/);
    const c = runCli(['cleanup', '--url', '$URL', '--table', 'r_plain']);
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/removed: .*r_plain__new/);
    expect(await helperTables(db, 'r_plain')).toEqual([]);
  });

  it('a dry run names every problem at once: triggers not moved and a leftover shadow, on one line', async () => {
    await db.query('CREATE TABLE r_trig__new LIKE r_trig');
    try {
      const before = await tableChecksum(db, 'r_trig');
      const r = runCli(['migrate', '--force-copy', '--url', '$URL', '--table', 'r_trig', '--alter', 'ADD COLUMN x INT']);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/has triggers \(r_trig_ai\); pass --include-triggers/);
      expect(r.stderr).toMatch(/helper table \S+\.r_trig__new already exists/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      // The listing names each check with its result, the passing ones too.
      expect(r.stdout).toMatch(/FAIL triggers: /);
      expect(r.stdout).toMatch(/FAIL leftovers: /);
      expect(r.stdout).toMatch(/ok {3}binlog_format: ROW/);
      expect(await tableChecksum(db, 'r_trig')).toBe(before);
      expect(await helperTables(db, 'r_trig')).toEqual(['r_trig__new']);
    } finally {
      await db.query('DROP TABLE r_trig__new');
    }
  });

  it('binlog_format STATEMENT: refused for the stream, and for the triggers too (the copy reads in READ COMMITTED)', async () => {
    await db.query("SET GLOBAL binlog_format = 'STATEMENT'");
    try {
      const r = runCli(['migrate', '--force-copy', '--capture', 'stream', '--url', '$URL', '--table', 'r_plain', '--alter', 'ADD COLUMN x INT']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/binlog_format is STATEMENT/);
      const auto = runCli(['migrate', '--force-copy', '--url', '$URL', '--table', 'r_plain', '--alter', 'ADD COLUMN x INT']);
      expect(auto.code).not.toBe(0);
      expect(auto.stdout).toMatch(/changes: triggers recording keys into a log table \(the binlog is unavailable: binlog_format is STATEMENT/);
      expect(auto.stderr).toMatch(/binlog_format is STATEMENT, in which the server cannot log the copy's READ COMMITTED writes/);
    } finally {
      await db.query("SET GLOBAL binlog_format = 'ROW'");
    }
  });

  it('a valid request without --execute prints the plan, changes nothing and exits 0', async () => {
    const before = await tableChecksum(db, 'r_plain');
    const r = runCli(['migrate', '--force-copy', '--url', '$URL', '--table', 'r_plain', '--alter', 'ADD COLUMN x INT']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/dry run: nothing was changed/);
    expect(r.stdout).toMatch(/new columns \(default values\): x/);
    expect(await tableChecksum(db, 'r_plain')).toBe(before);
    expect(await helperTables(db, 'r_plain')).toEqual([]);
  });
});

describe('MySQL Group Replication in multi-primary mode (issue 34: the class of Galera)', () => {
  it('is told from the variable as the server shows it, and MariaDB (no plugin) is never taken for a member', async () => {
    expect(isMultiPrimaryMode(['OFF'])).toBe(true);
    expect(isMultiPrimaryMode(['ON'])).toBe(false);
    expect(isMultiPrimaryMode([])).toBe(false);
    expect(await multiPrimaryMember(db)).toBe(false);
    const dry = runCli(['migrate', '--url', mysqlUrl(), '--table', 'r_plain', '--alter', 'ADD COLUMN x INT', '--force-copy']);
    expect(dry.stdout).toMatch(/ok +group replication: not a multi-primary group member/);
  });
});
