import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../src/core/engine/types.js';
import { createPostgresEngine } from '../src/engines/postgres/index.js';
import { pgDropTables, pgPool, pgUrl } from './support/pg.js';

/**
 * A change that lets the new table take rows the old one refuses: a write of such a row in the window
 * could not follow back, and would stop the window at the first such write: refused before the window
 * is promised, as MySQL's refusals name a column made nullable.
 */
let db: pg.Pool;
let engine: Engine;

beforeAll(async () => {
  db = pgPool();
  engine = await createPostgresEngine(pgUrl());
  await pgDropTables(db, ['rv_loose']);
  await db.query(`CREATE TABLE rv_loose (id int PRIMARY KEY, qty int NOT NULL CHECK (qty >= 0), email text UNIQUE)`);
  await db.query(`INSERT INTO rv_loose SELECT g, g, 'e' || g FROM generate_series(1, 50) g`);
});

afterAll(async () => {
  await engine.close();
  await db.end();
});

describe('PostgreSQL: what the new table takes and the old one refuses', () => {
  it.each([
    ['ALTER COLUMN qty DROP NOT NULL', /^column qty becomes nullable: a NULL written after the cut-over could not go back into the old table$/],
    ['DROP CONSTRAINT rv_loose_qty_check', /^check rv_loose_qty_check is dropped: rows written after the cut-over could break it$/],
  ])('%s is refused for a revert window', async (alter, reason) => {
    const migration = await engine.prepare({ url: pgUrl(), table: 'rv_loose', alter });
    expect(migration.revertRefusals().join('; ')).toMatch(reason);
  });

  it("the table's NOT VALID CHECK is refused for the reason it has, never taken for one the ALTER drops (the cut-over adds it back); the ALTER's own is no reason", async () => {
    await db.query('ALTER TABLE rv_loose ADD CONSTRAINT rv_loose_email_nv CHECK (email IS NOT NULL) NOT VALID');
    try {
      const migration = await engine.prepare({
        url: pgUrl(),
        table: 'rv_loose',
        alter: 'ALTER COLUMN qty TYPE int8, ADD CONSTRAINT rv_loose_qty_nv CHECK (qty < 10) NOT VALID',
      });
      expect(migration.revertRefusals()).toEqual([
        'CHECK rv_loose_email_nv NOT VALID: rows the old table holds without meeting it could not be put back into it',
      ]);
    } finally {
      await db.query('ALTER TABLE rv_loose DROP CONSTRAINT rv_loose_email_nv');
    }
  });

  it('a change that keeps every rule is not refused', async () => {
    const migration = await engine.prepare({ url: pgUrl(), table: 'rv_loose', alter: 'ALTER COLUMN qty TYPE int8, ADD COLUMN note text' });
    expect(migration.revertRefusals()).toEqual([]);
  });
});
