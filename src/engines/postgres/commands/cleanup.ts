import type pg from 'pg';
import { ident, qualified } from '../server/sql.js';
import type { PgDetail } from '../schema/plan.js';
import type { CleanupSteps } from '../../../core/engine/cleanup-steps.js';

/**
 * The tables' part of a migration's cleanup, after the change source's (LogicalSource.cleanup).
 * Idempotent: every step tolerates what an earlier (possibly interrupted) cleanup already removed.
 */
export async function cleanup(pool: pg.Pool, d: PgDetail, steps: Pick<CleanupSteps, 'shadow' | 'old'>): Promise<void> {
  if (!steps.shadow) {
    // The tables were swapped: the shadow is the table now.
    await validateForeignKeys(pool, d);
    if (steps.old) await pool.query(`DROP TABLE IF EXISTS ${qualified(d.schema, d.old)}`);
  } else {
    await dropOwnShadow(pool, d);
  }
}

/**
 * Only the migrating role's own shadow goes: a table another role made under the name (while a run
 * was down, say) is its owner's, and a superuser's DROP would take it all the same.
 */
async function dropOwnShadow(pool: pg.Pool, d: PgDetail): Promise<void> {
  const { rows } = await pool.query(
    `SELECT c.relowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user) AS ours
       FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1)`,
    [qualified(d.schema, d.shadow)],
  );
  if (rows.length > 0 && (rows[0].ours === true || rows[0].ours === 't')) await pool.query(`DROP TABLE IF EXISTS ${qualified(d.schema, d.shadow)}`);
}

/**
 * The cut-over re-added foreign keys NOT VALID to keep the lock short; check the rows now, unlocked.
 * Those to one partition too (pg_partition_tree lists nothing for a plain table); a key's clones
 * (on partitions, or to them) are validated with it.
 */
async function validateForeignKeys(pool: pg.Pool, d: PgDetail): Promise<void> {
  const table = qualified(d.schema, d.name);
  const { rows } = await pool.query(
    `SELECT conrelid::regclass::text AS tbl, conname FROM pg_constraint
      WHERE contype = 'f' AND NOT convalidated AND conparentid = 0
        AND (conrelid = $1::regclass OR confrelid = $1::regclass OR confrelid IN (SELECT relid FROM pg_partition_tree($1::regclass)))
        AND conname IN (SELECT json_array_elements_text($2::json))`,
    [table, JSON.stringify(d.validatedForeignKeys)],
  );
  for (const r of rows) await pool.query(`ALTER TABLE ${r.tbl} VALIDATE CONSTRAINT ${ident(r.conname)}`);
}
