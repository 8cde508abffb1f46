import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminPool, differences, helperTables, migrateMysql, runCli, schemaOf } from './support/mysql.js';
import { pgHelpers, pgPool, pgUrl } from './support/pg.js';

let db: mysql.Pool;

beforeAll(() => {
  db = adminPool();
});

afterAll(async () => {
  await db.query('DROP TABLE IF EXISTS in_t, in_t__old, in_t__new, in_mirror');
  await db.end();
});

async function seed() {
  await db.query('DROP TABLE IF EXISTS in_t, in_t__old, in_t__new, in_mirror');
  for (const t of ['in_t', 'in_mirror']) {
    await db.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL, n INT NOT NULL) ENGINE=InnoDB`);
    await db.query(`INSERT INTO ${t} SELECT seq, CONCAT('v', seq), seq FROM seq_1_to_5000`);
  }
}

async function same(alter: string) {
  await db.query(`ALTER TABLE in_mirror ${alter}`);
  expect(await schemaOf(db, 'in_t')).toEqual(await schemaOf(db, 'in_mirror'));
  expect(await differences(db, 'in_t', 'in_mirror')).toEqual([]);
}

describe('--attempt-instant-ddl (MySQL)', () => {
  it('an ALTER the server can make in place is made instantly: nothing copied, no helper or old table', async () => {
    await seed();
    const alter = "ADD COLUMN note VARCHAR(50) NOT NULL DEFAULT 'x'";
    const result = await migrateMysql('in_t', alter, { attemptInstant: true });
    expect(result.instant).toBe(true);
    expect(result.rowsCopied).toBe(0);
    expect(await helperTables(db, 'in_t')).toEqual([]);
    await same(alter);
  });

  it('one that would touch rows goes the online way instead', async () => {
    await seed();
    const alter = 'MODIFY n BIGINT NOT NULL';
    const result = await migrateMysql('in_t', alter, { attemptInstant: true });
    expect(result.instant).toBe(false);
    expect(result.rowsCopied).toBe(5000);
    expect(await helperTables(db, 'in_t')).toEqual(['in_t__old']);
    await same(alter);
  });

  it('a table lock held elsewhere makes it give up within the lock timeout and go the online way', async () => {
    await seed();
    const blocker = await db.getConnection();
    await blocker.query('BEGIN');
    await blocker.query('SELECT * FROM in_t LIMIT 1');
    const alter = 'ADD COLUMN extra INT NULL';
    let result;
    try {
      // The online path's cut-over needs the lock too: release it once the instant attempt is over.
      const release = new Promise((r) => setTimeout(r, 1500)).then(() => blocker.query('COMMIT'));
      result = await migrateMysql('in_t', alter, { attemptInstant: true, lockTimeoutMs: 200, cutoverAttempts: 30 });
      await release;
    } finally {
      blocker.release();
    }
    expect(result.instant).toBe(false);
    expect(result.rowsCopied).toBe(5000);
    await same(alter);
  });

  it('is refused on PostgreSQL with one line and exit 2, leaving nothing behind', async () => {
    const pgdb = pgPool();
    try {
      await pgdb.query('DROP TABLE IF EXISTS in_pg; CREATE TABLE in_pg (id int PRIMARY KEY)');
      const r = runCli(['migrate', '--url', pgUrl(), '--table', 'in_pg', '--alter', 'ADD COLUMN x int', '--attempt-instant-ddl', '--execute'], pgUrl());
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/--attempt-instant-ddl is for MySQL\/MariaDB/)]);
      expect(await pgHelpers(pgdb, 'in_pg')).toEqual([]);
      await pgdb.query('DROP TABLE in_pg');
    } finally {
      await pgdb.end();
    }
  });
});
