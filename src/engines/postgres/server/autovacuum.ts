import type pg from 'pg';
import { errorCode } from './errors.js';
import { isTrue } from './sql.js';

/**
 * Autovacuum gives way to a lock request only once that request has waited `deadlock_timeout`
 * (1 s by default): the deadlock check is what cancels it. Our brief locks (the checksum's SHARE,
 * the cut-over's ACCESS EXCLUSIVE) give up sooner, after `lock_timeout`, so behind an autovacuum
 * worker on the table they time out again and again while writers queue behind each try. So, as
 * the server itself would after a second, a worker vacuuming one of `relations` (SQL names) is cancelled before
 * the lock is asked for; the launcher comes back to the table later. A vacuum that prevents
 * wraparound never gives way in the server either, and is left alone.
 *
 * Cancelling a worker takes superuser or pg_signal_backend. Without either, the lock is asked for
 * as before and waits out the worker under `lock_timeout`.
 */
export async function yieldAutovacuum(pool: pg.Pool, relations: string[]): Promise<void> {
  if (relations.length === 0) return;
  const { rows } = await pool.query(
    `SELECT DISTINCT a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE a.backend_type = 'autovacuum worker' AND l.locktype = 'relation'
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.relation IN (SELECT to_regclass(r) FROM unnest($1::text[]) r) AND a.query NOT LIKE '%(to prevent wraparound)%'`,
    [relations],
  );
  for (const { pid } of rows as { pid: number }[]) {
    await pool.query('SELECT pg_cancel_backend($1)', [pid]).catch((error: unknown) => {
      // 42501: this role may not signal it; the lock then waits for the worker, as it always did.
      if (errorCode(error) !== '42501') throw error;
    });
  }
}

/**
 * The shadow is written by the copy alone until the swap: an autovacuum of it would compete with the
 * copy and could hold the cut-over's lock. It is made with autovacuum off; at the swap it gets back
 * exactly the options the ALTER left it: each as spelt and in the order the catalog had them, since
 * that is what a dump of the native ALTER's table shows.
 */
export interface StorageOptions {
  table: string[];
  toast: string[];
}

/** The table's storage options (reloptions) and its TOAST table's, as the catalog has them. */
export async function storageOptions(client: pg.Pool | pg.PoolClient, table: string): Promise<StorageOptions> {
  const { rows } = await client.query(
    `SELECT to_json(coalesce(c.reloptions, '{}')) AS t, to_json(coalesce((SELECT x.reloptions FROM pg_class x WHERE x.oid = c.reltoastrelid), '{}')) AS toast
       FROM pg_class c WHERE c.oid = $1::regclass`,
    [table],
  );
  return { table: JSON.parse(String(rows[0].t)) as string[], toast: JSON.parse(String(rows[0].toast)) as string[] };
}

/** Turns autovacuum off on a table (`table`: its SQL name), and on its TOAST table where it has one. */
export async function autovacuumOff(client: pg.PoolClient, table: string): Promise<void> {
  const toast = await hasToast(client, table);
  await client.query(`ALTER TABLE ${table} SET (autovacuum_enabled = false${toast ? ', toast.autovacuum_enabled = false' : ''})`);
}

/** Gives the table back `kept` (under the cut-over's lock: catalog changes only, no rewrite). */
export async function restoreStorageOptions(client: pg.PoolClient, table: string, kept: StorageOptions): Promise<void> {
  const now = await storageOptions(client, table);
  const names = (options: string[], prefix: string) => options.map((o) => prefix + optionName(o));
  const current = [...names(now.table, ''), ...names(now.toast, 'toast.')];
  if (current.length) await client.query(`ALTER TABLE ${table} RESET (${current.join(', ')})`);
  const pairs = (options: string[], prefix: string) => options.map((o) => `${prefix}${optionName(o)} = ${client.escapeLiteral(o.slice(o.indexOf('=') + 1))}`);
  const wanted = [...pairs(kept.table, ''), ...(kept.toast.length && (await hasToast(client, table)) ? pairs(kept.toast, 'toast.') : [])];
  if (wanted.length) await client.query(`ALTER TABLE ${table} SET (${wanted.join(', ')})`);
}

async function hasToast(client: pg.PoolClient, table: string): Promise<boolean> {
  const { rows } = await client.query('SELECT reltoastrelid <> 0 AS toast FROM pg_class WHERE oid = $1::regclass', [table]);
  return isTrue(rows[0]?.toast);
}

/**
 * An option's name, which goes into the statement as it is: the plan (read back from the checkpoint)
 * holds it, so anything but a plain reloption name is refused rather than run.
 */
function optionName(option: string): string {
  const name = option.slice(0, option.indexOf('='));
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a storage option: ${JSON.stringify(option)}`);
  return name;
}
