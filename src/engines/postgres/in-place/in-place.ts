import type pg from 'pg';
import type { InPlaceStep, WorkWaits } from '../../../core/engine/ports/in-place.js';
import { DEFAULT_SNAPSHOT_WAIT_MS } from '../../../core/engine/defaults.js';
import { localFreeSpace } from '../../../core/engine/disk.js';
import type { DiskSpace, TableSize } from '../../../core/engine/ports/sizing.js';
import { asLockTimeout, errorCode } from '../server/errors.js';
import { asUser } from '../server/connect.js';
import { qualified } from '../server/sql.js';
import { runWatched } from './run-watched.js';
import { ROLLBACK_AFTER_FAILURE, SESSION_RESET, ignoreFailure } from '../../../core/engine/errors.js';

/** A caller that gives no bound of its own: the default --snapshot-wait-ms, said nowhere. */
const NO_WORK_WAITS: WorkWaits = { snapshotWaitMs: DEFAULT_SNAPSHOT_WAIT_MS, report: () => {} };

/**
 * One in-place step with `lock_timeout`: a DDL waiting for its lock queues every later reader and
 * writer of the table behind it, so it waits milliseconds, not until a long transaction ends. A
 * transaction step changes nothing when it fails; CREATE INDEX CONCURRENTLY cannot be in one,
 * and leaves an INVALID index when it fails, which the step's undo drops. A CONCURRENTLY statement
 * also waits for every older transaction in the database, which is not a lock wait: it runs
 * watched (run-watched.ts), not under `lock_timeout`.
 */
export async function runPgStep(pool: pg.Pool, step: InPlaceStep, timeoutMs: number, waits?: WorkWaits): Promise<void> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    if (step.transaction) {
      await client.query('BEGIN');
      await client.query(`SET LOCAL lock_timeout = ${Math.round(timeoutMs)}`);
      await asUser(client, async () => {
        for (const sql of step.sql) await client.query(sql);
      });
      await client.query('COMMIT');
    } else {
      for (const sql of step.sql) {
        await client.query(`SET lock_timeout = ${Math.round(timeoutMs)}`);
        if (/\bCONCURRENTLY\b/i.test(sql)) await asUser(client, () => runWatched(pool, client, sql, timeoutMs, waits ?? NO_WORK_WAITS, step.what));
        else await asUser(client, () => client.query(sql));
      }
    }
  } catch (error) {
    if (step.transaction) await client.query('ROLLBACK').catch(ignoreFailure(ROLLBACK_AFTER_FAILURE));
    broken = errorCode(error) === undefined ? (error as Error) : undefined;
    throw asLockTimeout(error, step.what);
  } finally {
    if (!broken && !step.transaction) await client.query('RESET lock_timeout').catch(ignoreFailure(SESSION_RESET));
    client.release(broken);
  }
}

export async function pgTableSize(pool: pg.Pool, schema: string, name: string): Promise<TableSize> {
  const { rows } = await pool.query(
    `SELECT c.reltuples AS r, pg_table_size(c.oid) AS d, pg_indexes_size(c.oid) AS i, pg_relation_size(c.oid) AS heap,
            (SELECT sum(CASE WHEN a.attlen > 0 THEN a.attlen ELSE 32 END) FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS width
     FROM pg_class c WHERE c.oid = $1::regclass`,
    [qualified(schema, name)],
  );
  const r = rows[0] as { r: string; d: string; i: string; heap: string; width: string | null };
  return { rows: estimatedRows(Number(r.r), Number(r.heap), Number(r.width ?? 0)), dataBytes: Number(r.d), indexBytes: Number(r.i) };
}

/**
 * reltuples is -1 until the table is first vacuumed or analysed: a table loaded and migrated at once
 * would be planned as empty ("about 0 rows", a plan of two seconds for millions of rows). Then the
 * heap's size over each row's size as the catalog gives it, the planner's own guess for a table it
 * knows nothing of (fixed-width columns at their length, others at 32 bytes, plus the tuple header and
 * its line pointer). The catalog, not the rows: reading them would run the table's policies.
 */
function estimatedRows(reltuples: number, heapBytes: number, width: number): number {
  if (reltuples >= 0) return Math.round(reltuples);
  return heapBytes > 0 ? Math.round(heapBytes / (width + 28)) : 0;
}

/** `data_directory` is readable by superusers and members of pg_read_all_settings only. */
export async function pgDiskSpace(pool: pg.Pool, url: string): Promise<DiskSpace> {
  const dir = await pool.query(`SELECT current_setting('data_directory') AS d`).then(
    (r) => String(r.rows[0].d),
    (error: Error) => error,
  );
  if (dir instanceof Error) return { unknown: `the server's data_directory is not readable by this role (${dir.message}; it needs pg_read_all_settings)` };
  const u = new URL(url);
  const host = u.searchParams.get('host') ?? u.hostname;
  return localFreeSpace(host.startsWith('/') ? undefined : host, dir);
}
