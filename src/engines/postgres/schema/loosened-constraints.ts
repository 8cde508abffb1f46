import type { Client } from '../server/connect.js';
import type { ColumnMap } from './shadow.js';

/**
 * What the old table refuses and the new one would take (read on the probe shadow, in the plan's
 * rolled-back transaction): a NOT NULL the ALTER drops, a CHECK it drops. A row written so in the
 * window could not follow back, and would stop the window at its first such write.
 */
export async function loosenedRules(client: Client, original: string, shadow: string, columns: ColumnMap[]): Promise<string[]> {
  const notNull = `SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attnotnull`;
  const checks = `SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'c'`;
  const names = async (sql: string, table: string) => new Set((await client.query(sql, [table])).rows.map((r) => String(r.attname ?? r.conname)));
  const [wasNotNull, isNotNull] = [await names(notNull, original), await names(notNull, shadow)];
  const [hadChecks, hasChecks] = [await names(checks, original), await names(checks, shadow)];
  const reasons = columns
    .filter((c) => c.column !== undefined && wasNotNull.has(c.column) && !isNotNull.has(c.target))
    .map((c) => `column ${c.column} becomes nullable: a NULL written after the cut-over could not go back into the old table`);
  for (const name of hadChecks) if (!hasChecks.has(name)) reasons.push(`check ${name} is dropped: rows written after the cut-over could break it`);
  return reasons;
}
