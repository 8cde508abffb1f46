import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { migrate } from '../src/core/migrate/runner.js';
import { createMysqlEngine } from '../src/engines/mysql/index.js';
import { adminPool, differences, mysqlUrl } from './support/mysql.js';
import { withMigration } from './support/wrap.js';

let db: mysql.Pool;

beforeAll(async () => {
  db = adminPool();
});

afterAll(async () => {
  await db.query('DROP TABLE IF EXISTS v_t, v_t__new, v_t__old, v_copy');
  await db.end();
});

/** The real engine, with damage done to the shadow right after the copy, as a bug or a stray write would. */
async function engineThatDamagesTheShadow(damage: string[]) {
  const engine = await createMysqlEngine(mysqlUrl());
  return withMigration(engine, (migration) => ({
    async afterCopy(copied) {
      for (const sql of damage) await db.query(sql);
      await migration.afterCopy(copied);
    },
  }));
}

const ALTER = 'MODIFY n BIGINT UNSIGNED NOT NULL, ADD COLUMN x INT';

describe('verification', () => {
  it.each([
    ['a changed value', 'UPDATE v_t__new SET v = CONCAT(v, "!") WHERE id = 777'],
    ['a NULL instead of an empty string', 'UPDATE v_t__new SET e = NULL WHERE id = 4242'],
    ['a missing row', 'DELETE FROM v_t__new WHERE id = 9999'],
    ['an extra row', 'INSERT INTO v_t__new (id, v, e, n) VALUES (20001, "ghost", "", 1)'],
    ['a changed integer whose type the ALTER widens', 'UPDATE v_t__new SET n = n + 1 WHERE id = 555'],
    // Same lengths, so under an XOR of CRCs (a linear hash) the two changes would cancel out exactly.
    ['two rows that swapped a value', ['UPDATE v_t__new SET v = MD5(101) WHERE id = 100', 'UPDATE v_t__new SET v = MD5(100) WHERE id = 101']],
  ])('finds %s in the shadow, repairs it and proves parity before the cut-over', async (_what, damage) => {
    await db.query('DROP TABLE IF EXISTS v_t, v_t__new, v_t__old, v_copy');
    await db.query('CREATE TABLE v_t (id INT PRIMARY KEY, v VARCHAR(40) NOT NULL, e VARCHAR(10) NULL, n INT NOT NULL) ENGINE=InnoDB');
    await db.query("INSERT INTO v_t SELECT seq, MD5(seq), '', seq * 7 FROM seq_1_to_20000");
    await db.query('CREATE TABLE v_copy AS SELECT * FROM v_t');
    const engine = await engineThatDamagesTheShadow(typeof damage === 'string' ? [damage] : damage);
    try {
      const result = await migrate(engine, { url: mysqlUrl(), table: 'v_t', alter: ALTER }, { execute: true, forceCopy: true, checksumChunkRows: 3000 });
      expect(result.checksumRounds).toBe(2);
    } finally {
      await engine.close();
    }
    await db.query(`ALTER TABLE v_copy ADD PRIMARY KEY (id), ${ALTER}`);
    expect(await differences(db, 'v_t', 'v_copy')).toEqual([]);
  });
});
