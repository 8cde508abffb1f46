import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { differences, migratePg, pgDropTables, pgPool, pgSchemaOf, pgTwins } from './support/pg.js';

const ALTER = 'ALTER COLUMN n TYPE bigint, ADD COLUMN extra int';
let db: pg.Pool;

beforeAll(() => {
  db = pgPool();
});

afterAll(async () => {
  await pgDropTables(db, ['pdi_t', 'pdi_mirror']);
  await db.end();
});

async function shadowIndexes(): Promise<string[]> {
  const { rows } = await db.query(`SELECT indexname FROM pg_indexes WHERE tablename = 'pdi_t__new' ORDER BY 1`);
  return rows.map((r) => r.indexname);
}

describe('secondary indexes built after the copy (PostgreSQL)', () => {
  it.each([
    ['auto', ['pdi_t__new_pkey']],
    ['off', ['pdi_t__new_code_key', 'pdi_t__new_n_idx', 'pdi_t__new_pkey']],
  ] as const)('--defer-indexes %s: the shadow has %j when the copy starts; the result equals the mirror', async (mode, atCopy) => {
    await pgTwins(
      db,
      ['pdi_t', 'pdi_mirror'],
      'CREATE TABLE {t} (id int PRIMARY KEY, code text UNIQUE NOT NULL, n int NOT NULL)',
      `INSERT INTO {t} SELECT g, 'c' || g, g % 40 FROM generate_series(1, 5000) g`,
    );
    for (const t of ['pdi_t', 'pdi_mirror']) await db.query(`CREATE INDEX ON ${t} (n)`);
    const during: string[][] = [];
    const hook = async (event: string) => {
      if (event === 'before-copy') during.push(await shadowIndexes());
    };
    await migratePg('pdi_t', ALTER, { hook }, { deferIndexes: mode });
    expect(during).toEqual([atCopy]);
    await db.query(`ALTER TABLE pdi_mirror ${ALTER}`);
    expect(await pgSchemaOf(db, 'pdi_t')).toEqual(await pgSchemaOf(db, 'pdi_mirror'));
    expect(await differences(db, 'pdi_t', 'pdi_mirror')).toEqual([]);
  });
});
