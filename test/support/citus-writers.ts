import type pg from 'pg';
import type { CitusTwins } from './citus-twins.js';

/** One application transaction: its statements, in order. */
export type Statements = [string, unknown[]][];

/**
 * Two writers through each coordinator, every transaction committed on the migrated database and
 * then on the twin, until stopped. `transaction(n, next)` draws the n-th one (`next()` a fresh key).
 */
export function citusWriters(twins: CitusTwins, transaction: (n: number, next: () => number) => Statements): { stop: () => Promise<number> } {
  let stopped = false;
  let fresh = 1_000_000;
  let committed = 0;
  const loop = async (seed: number) => {
    for (let n = seed; !stopped;) {
      n = (n * 1103515245 + 12345) % 2147483648;
      const statements = transaction(n, () => fresh++);
      for (const db of [twins.live.coordinator, twins.twin.coordinator]) await inTransaction(db, statements);
      committed++;
    }
  };
  const running = Promise.all([loop(7), loop(11)]).then(
    () => null,
    (error: unknown) => ((stopped = true), error),
  );
  return {
    stop: async () => {
      stopped = true;
      const failed = await running;
      if (failed) throw failed;
      return committed;
    },
  };
}

export async function inTransaction(db: pg.Pool, statements: Statements): Promise<void> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    for (const [sql, values] of statements) await client.query(sql, values);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** Nothing of the run on any node: no slot, publication, shadow or helper table of `table`. */
export async function helpersLeft(twins: CitusTwins, table: string): Promise<string[]> {
  const left: string[] = [];
  for (const db of [twins.live.coordinator, ...twins.live.workers]) {
    const { rows } = await db.query<{ x: string }>(
      `SELECT 'slot ' || slot_name AS x FROM pg_replication_slots UNION ALL SELECT 'publication ' || pubname FROM pg_publication
       UNION ALL SELECT 'table ' || relname FROM pg_class WHERE relname ~ ('^' || $1 || '__(new|state|hb|log)')`,
      [table],
    );
    left.push(...rows.map((r) => r.x));
  }
  return left;
}
