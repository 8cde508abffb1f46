import type pg from 'pg';
import { sleep } from '../../core/backoff.js';
import { errorCode, ident, qualified } from './connect.js';
import type { PgDetail } from './plan.js';

/** Idempotent: every step tolerates what an earlier (possibly interrupted) cleanup already removed. */
export async function cleanup(pool: pg.Pool, d: PgDetail, options: { dropOld: boolean; cutOver: boolean }): Promise<void> {
  // The slot holds WAL back on the server: it goes first, whatever fails after it.
  await dropStream(pool, d.slot, d.publication);
  if (options.cutOver) {
    await validateForeignKeys(pool, d);
    if (options.dropOld) await pool.query(`DROP TABLE IF EXISTS ${qualified(d.schema, d.old)}`);
  } else {
    await pool.query(`DROP TABLE IF EXISTS ${qualified(d.schema, d.shadow)}`);
  }
}

export async function dropStream(pool: pg.Pool, slot: string, publication: string): Promise<void> {
  await dropSlot(pool, slot);
  await pool.query(`DROP PUBLICATION IF EXISTS ${ident(publication)}`);
}

/** The cut-over re-added foreign keys NOT VALID to keep the lock short; check the rows now, unlocked. */
async function validateForeignKeys(pool: pg.Pool, d: PgDetail): Promise<void> {
  const table = qualified(d.schema, d.name);
  const { rows } = await pool.query(
    `SELECT conrelid::regclass::text AS tbl, conname FROM pg_constraint
      WHERE contype = 'f' AND NOT convalidated AND (conrelid = $1::regclass OR confrelid = $1::regclass)
        AND conname IN (SELECT json_array_elements_text($2::json))`,
    [table, JSON.stringify(d.validatedForeignKeys)],
  );
  for (const r of rows) await pool.query(`ALTER TABLE ${r.tbl} VALIDATE CONSTRAINT ${ident(r.conname)}`);
}

/** A slot still held by a walsender (a crashed run's, or one not yet gone) cannot be dropped: end it first. */
async function dropSlot(pool: pg.Pool, slot: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const { rows } = await pool.query(`SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
    if (rows.length === 0) return;
    if (rows[0].active_pid !== null) {
      await pool.query(`SELECT pg_terminate_backend($1)`, [rows[0].active_pid]);
      await sleep(50);
      continue;
    }
    try {
      await pool.query(`SELECT pg_drop_replication_slot($1)`, [slot]);
      return;
    } catch (error) {
      // 55006: became active again in between; 42704: dropped by someone else meanwhile.
      if (errorCode(error) === '42704') return;
      if (errorCode(error) !== '55006') throw error;
      await sleep(50);
    }
  }
  throw new Error(`replication slot ${slot} stays active; drop it with SELECT pg_drop_replication_slot('${slot}')`);
}
