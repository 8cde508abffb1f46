import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { differences, migratePg, pgPool } from './support/pg.js';
import { background, runState, waitFor } from './support/run.js';

const alter = 'ADD COLUMN note int';

/**
 * A key stored out of line (TOAST) is not in the new tuple of an update that leaves it alone:
 * pgoutput sends "unchanged" for it, and the key must come from the old-key tuple instead.
 */
describe('a primary key stored out of line (PostgreSQL)', () => {
  let db: pg.Pool;
  beforeAll(() => {
    db = pgPool();
  });
  afterAll(() => db.end());

  it('identifies the row on updates of other columns and on deletes during the run', async () => {
    const t = 'toast_key';
    await db.query(`DROP TABLE IF EXISTS ${t}, ${t}__new, ${t}__old, ${t}__state, ${t}_mirror CASCADE`);
    for (const table of [t, `${t}_mirror`]) {
      await db.query(`CREATE TABLE ${table} (id text PRIMARY KEY, v int NOT NULL)`);
      // EXTERNAL: out of line and uncompressed once the row passes ~2 kB, yet small enough for the index.
      await db.query(`ALTER TABLE ${table} ALTER COLUMN id SET STORAGE EXTERNAL`);
    }
    await db.query(`INSERT INTO ${t} SELECT g || ':' || repeat(md5(g::text), 75), g FROM generate_series(1, 300) g`);
    await db.query(`INSERT INTO ${t}_mirror SELECT * FROM ${t}`);
    const toast = (await db.query(`SELECT reltoastrelid::regclass AS r FROM pg_class WHERE oid = '${t}'::regclass`)).rows[0].r;
    const stored = await db.query(`SELECT count(DISTINCT chunk_id) AS n FROM ${toast}`);
    expect(Number(stored.rows[0].n)).toBe(300); // every key is out of line

    const state = runState(t, alter, 'postgres');
    const run = background(migratePg(t, alter, { state, postponeCutover: true }));
    await waitFor('the postponed cut-over', () => state.status.state === 'postponed', run);
    for (const table of [t, `${t}_mirror`]) {
      await db.query(`UPDATE ${table} SET v = v + 1000 WHERE v <= 100`);
      await db.query(`DELETE FROM ${table} WHERE v BETWEEN 200 AND 250`);
    }
    state.cutoverRequested = true;
    await waitFor('the run to end', () => run.settled, null, 30_000);
    expect(run.error).toBeUndefined();
    await db.query(`ALTER TABLE ${t}_mirror ${alter}`);
    expect(await differences(db, t, `${t}_mirror`)).toEqual([]);
  });
});
