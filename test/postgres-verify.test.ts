import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../src/core/migrate/runner.js';
import { databases, type Database } from './support/fixture.js';
import { withMigration } from './support/wrap.js';

/**
 * PostgreSQL's checksum hashes values where equality is identity and text elsewhere. Each damage
 * below is a change that equality alone would not see (1.5 = 1.50, -0 = 0, '1 day' = '24 hours',
 * 'abc' = 'ABC' under a case-insensitive collation): hashing those columns' values would let the
 * shadow keep it, and this test would fail.
 */
let db: Database;

beforeAll(async () => {
  db = databases.find((d) => d.name === 'PostgreSQL')!.open();
  await db.query("CREATE COLLATION IF NOT EXISTS test_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)");
});

afterAll(async () => {
  await db.drop('pv_t', 'pv_copy');
  await db.close();
});

const ALTER = 'ALTER COLUMN n TYPE bigint, ADD COLUMN x int';

async function engineThatDamagesTheShadow(damage: string[]) {
  const engine = await db.engine();
  return withMigration(engine, (migration) => ({
    async afterCopy(copied) {
      for (const sql of damage) await db.query(sql);
      await migration.afterCopy(copied);
    },
  }));
}

describe('verification (PostgreSQL)', () => {
  it.each([
    ['a changed value', ["UPDATE pv_t__new SET v = v || '!' WHERE id = 777"]],
    ['a NULL instead of an empty string', ['UPDATE pv_t__new SET e = NULL WHERE id = 4242']],
    ['a missing row', ['DELETE FROM pv_t__new WHERE id = 9999']],
    ['a changed integer whose type the ALTER widens', ['UPDATE pv_t__new SET n = n + 1 WHERE id = 555']],
    ['two rows that swapped a value', ['UPDATE pv_t__new SET v = md5(101::text) WHERE id = 100', 'UPDATE pv_t__new SET v = md5(100::text) WHERE id = 101']],
    ['a numeric with another scale', ['UPDATE pv_t__new SET d = 1.50 WHERE id = 321']],
    ['a zero that lost its sign', ['UPDATE pv_t__new SET f = 0 WHERE id = 11']],
    ['an interval spelt another way', ["UPDATE pv_t__new SET iv = '24 hours' WHERE id = 12"]],
    ['a case change under a case-insensitive collation', ['UPDATE pv_t__new SET ci = upper(ci) WHERE id = 13']],
    ['a jsonb number with another scale', [`UPDATE pv_t__new SET j = '{"a": 1.00}' WHERE id = 14`]],
  ])('finds %s in the shadow, repairs it and proves parity before the cut-over', async (_what, damage) => {
    await db.drop('pv_t', 'pv_copy');
    await db.query(
      'CREATE TABLE pv_t (id int PRIMARY KEY, v text NOT NULL, e text, n int NOT NULL, d numeric, f float8, iv interval, ci text COLLATE test_ci, j jsonb)',
    );
    await db.query(
      `INSERT INTO pv_t SELECT g, md5(g::text), '', g * 7, 1.5, CASE WHEN g = 11 THEN '-0'::float8 ELSE g / 3.0 END,
              '1 day', 'abc' || g, '{"a": 1.0}' FROM generate_series(1, 20000) g`,
    );
    await db.query('CREATE TABLE pv_copy AS SELECT * FROM pv_t');
    const engine = await engineThatDamagesTheShadow(damage);
    try {
      const result = await migrate(engine, { url: db.url, table: 'pv_t', alter: ALTER }, { execute: true, forceCopy: true, checksumChunkRows: 3000 });
      expect(result.checksumRounds).toBe(2);
    } finally {
      await engine.close();
    }
    await db.query(`ALTER TABLE pv_copy ADD PRIMARY KEY (id), ${ALTER}`);
    expect(await db.differences('pv_t', 'pv_copy')).toEqual([]);
  });
});
