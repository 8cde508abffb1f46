import type { Database } from './database.js';
import { OwnedIds, type Statement } from './workload.js';

/**
 * The mirror workload's writes on a table `(id, qty, label, at, price)`: inserts, updates
 * (microsecond timestamps, 30-digit decimals), deletes and key changes; worker w owns the ids
 * congruent to w mod 3, the first `seed` of them seeded. Only those columns are named, so a table
 * with more (a new column with a default) takes the same statements.
 */
export function ownedRowWrites(db: Database, seed: number): (worker: number) => Statement {
  const zone = db.kind === 'postgres' ? '+00' : '';
  const p = (n: number) => db.param(n);
  const ids = new OwnedIds(seed, 10_000_000);
  return (w) => {
    const r = Math.random();
    if (r < 0.4 && ids.size(w)) {
      const micros = String(Math.floor(Math.random() * 1_000_000)).padStart(6, '0');
      return {
        sql: `UPDATE {t} SET qty = qty + 1, at = ${p(1)}, price = ${p(2)} WHERE id = ${p(3)}`,
        values: [`2025-06-01 12:00:00.${micros}${zone}`, `12345678901234567890.${micros}0123`, ids.pick(w)],
      };
    }
    if (r < 0.65 || ids.size(w) < 100) {
      return { sql: `INSERT INTO {t} (id, qty, label, at) VALUES (${p(1)}, 1, NULL, '2025-01-01 00:00:00.000002${zone}')`, values: [ids.fresh(w)] };
    }
    if (r < 0.8) return { sql: `DELETE FROM {t} WHERE id = ${p(1)}`, values: [ids.remove(w)] };
    const from = ids.remove(w);
    return { sql: `UPDATE {t} SET id = ${p(1)} WHERE id = ${p(2)}`, values: [ids.fresh(w), from] };
  };
}

/** The table and its mirror, dropped first, with the same `rows` rows; `create` and `at` are the engine's words. */
export async function ownedRowsPair(db: Database, name: string, rows: number, create: (t: string) => string, at: string): Promise<void> {
  await db.drop(name, `${name}_mirror`);
  for (const t of [name, `${name}_mirror`]) {
    await db.query(create(t));
    await db.query(`INSERT INTO ${t} SELECT g, g % 13, CONCAT('row ', g), ${at}, g * 1.0000000001 FROM (${db.series(rows)}) s`);
  }
}
