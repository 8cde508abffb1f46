import type { Connection, Pool, RowDataPacket } from 'mysql2/promise';
import { ident, qualified } from '../server/sql.js';
import type { MysqlPlan } from '../schema/plan.js';

// The shadow's own index on the key, for an ALTER that leaves the new table none (schema/key-choice.ts).
// The applier finds rows by it until the last change is applied under the cut-over lock; then it goes,
// so the new table is as the native ALTER leaves it. An attempt that fails after that, or a run killed
// there, gets it back before anything is applied again.

/** Made with the shadow, and again where a failed or killed cut-over dropped it. */
export async function addHelperKey(db: Pool | Connection, p: MysqlPlan): Promise<void> {
  if (!p.helperKey || (await hasHelperKey(db, p))) return;
  await db.query(`ALTER TABLE ${qualified(p.database, p.shadow)} ADD INDEX ${ident(p.helperKey.name)} (${p.helperKey.columns.map(ident).join(', ')})`);
}

/** Under the cut-over lock, after the last change is applied and compared: a secondary index, dropped in place. */
export async function dropHelperKey(locker: Connection, p: MysqlPlan): Promise<void> {
  if (!p.helperKey) return;
  await locker.query(`ALTER TABLE ${qualified(p.database, p.shadow)} DROP INDEX ${ident(p.helperKey.name)}, ALGORITHM=INPLACE`);
}

async function hasHelperKey(db: Pool | Connection, p: MysqlPlan): Promise<boolean> {
  const [rows] = await db.query<RowDataPacket[]>(
    'SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = ? LIMIT 1',
    [p.database, p.shadow, p.helperKey!.name],
  );
  return rows.length > 0;
}
