// Parity is proven up to the swap (docs/invariants.md, invariant 4): every key applied after the last
// checksum view is compared row by row, in a fresh view while there are many and under the
// cut-over lock for the rest. The engine is wrapped so that it loses the apply of one key, a
// stand-in for any apply that reads the wrong row (the PostgreSQL visibility race was one).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine, Key, Session } from '../src/core/engine/types.js';
import { databases, migrateOn, type Database } from './support/fixture.js';
import { withMigration } from './support/wrap.js';

/** `engine`, except that it skips key `id` in applies while armed: once, or (`always`) on every apply, locked ones too. */
function losingApplies(engine: Engine, id: string, always = false) {
  const state = { armed: false, lost: 0 };
  const wrapped = withMigration(engine, (migration) => ({
    async applyKeys(keys: Key[], session?: Session) {
      const kept = keys.filter((k) => String(k[0]) !== id);
      if (!state.armed || kept.length === keys.length || (session && !always)) return migration.applyKeys(keys, session);
      state.lost++;
      if (!always) state.armed = false;
      if (kept.length) await migration.applyKeys(kept, session);
    },
  }));
  return { engine: wrapped, state };
}

describe.each(databases)('$name: rows changed after the last checksum', ({ open }) => {
  let db: Database;
  const table = 'cp_orders';
  const mirror = 'cp_mirror';

  beforeAll(() => {
    db = open();
  });
  afterAll(() => db.close());

  async function twins(rows: number) {
    await db.drop(table, mirror);
    for (const t of [table, mirror]) {
      await db.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(20), n INT)`);
      await db.query(`INSERT INTO ${t} (id, v, n) SELECT g, 'v', g FROM (${db.series(rows)}) s`);
    }
  }

  /** Runs `sql` (with `{t}`) on the table and the mirror when the run reaches its cut-over. */
  const beforeCutover = (sql: string) => async (event: string) => {
    if (event !== 'before-cutover') return;
    for (const t of [table, mirror]) await db.query(sql.replaceAll('{t}', t));
  };

  it('compares them under the cut-over lock and repairs a lost apply there', async () => {
    await twins(200);
    const { engine, state } = losingApplies(await db.engine(), '7');
    const result = await migrateOn(
      db,
      table,
      'ADD COLUMN x INT',
      {
        hook: async (event) => {
          if (event === 'before-cutover') state.armed = true;
          await beforeCutover(`UPDATE {t} SET v = 'late' WHERE id = 7`)(event);
        },
      },
      { engine },
    ).finally(() => engine.close());
    await db.query(`ALTER TABLE ${mirror} ADD COLUMN x INT`);
    expect(state.lost).toBe(1);
    expect(await db.differences(table, mirror)).toEqual([]);
    expect(result.keysComparedAtCutover).toBeGreaterThanOrEqual(1);
  });

  it('compares many of them in a consistent view first, so the lock compares few', async () => {
    await twins(2000);
    const { engine, state } = losingApplies(await db.engine(), '7');
    const result = await migrateOn(
      db,
      table,
      'ADD COLUMN x INT',
      {
        hook: async (event) => {
          if (event === 'before-cutover') state.armed = true;
          await beforeCutover(`UPDATE {t} SET v = 'bulk' WHERE id <= 1500`)(event);
        },
      },
      { engine },
    ).finally(() => engine.close());
    await db.query(`ALTER TABLE ${mirror} ADD COLUMN x INT`);
    expect(state.lost).toBe(1);
    expect(await db.differences(table, mirror)).toEqual([]);
    expect(result.keysCompared).toBeGreaterThanOrEqual(1500);
    expect(result.keysComparedAtCutover).toBeLessThan(1000);
  });

  it('a row that stays different is never swapped in: the run fails, the original stays', async () => {
    await twins(200);
    const { engine, state } = losingApplies(await db.engine(), '7', true);
    try {
      const run = migrateOn(
        db,
        table,
        'ADD COLUMN x INT',
        {
          cutoverAttempts: 2,
          hook: async (event) => {
            if (event === 'before-cutover') state.armed = true;
            await beforeCutover(`UPDATE {t} SET v = 'late' WHERE id = 7`)(event);
          },
        },
        { engine },
      );
      await expect(run).rejects.toThrow(/still differ after being applied again under the cut-over lock; not cutting over/);
    } finally {
      await engine.close();
    }
    expect(await db.differences(table, mirror)).toEqual([]);
    expect(await db.query(`SELECT count(*) FROM ${table}__new`).catch(() => 'gone')).toBe('gone');
  });
});
