import type pg from 'pg';
import { inTransaction } from '../server/transactions.js';
import { isTrue, qualified } from '../server/sql.js';
import { indexStatements, type ShadowIndex } from '../schema/shadow-indexes.js';

/** The most a build is given to sort in memory: past it the server sorts on disk, as it would anyway. */
const MAX_SORT_MEMORY_KB = 1024 * 1024;

/**
 * An index of the shadow, built once over its full heap: as pg_repack does, the copy fills a table
 * with no index at all (a row costs one heap write, no index entry and no index WAL) and the key's
 * index comes right after, before any change is applied (changes wait in the slot or the trigger
 * log meanwhile, bounded by the change buffer). The session's `maintenance_work_mem` is raised to
 * the table's size, up to 1 GB, so a build sorts in memory where the server's default (64 MB) would
 * spill a large table to disk; `sessions` builds sharing the server divide it between them.
 * Idempotent: the shadow's index that exists is left alone (a retried or resumed build).
 */
export async function buildIndex(pool: pg.Pool, schema: string, table: string, index: ShadowIndex, sessions = 1): Promise<void> {
  // The shadow's own index of that name: another relation under it (index names are the schema's) is not the build done.
  const { rows } = await pool.query('SELECT EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass($1) AND indrelid = $2::regclass) AS e', [
    qualified(schema, index.shadow),
    qualified(schema, table),
  ]);
  if (isTrue(rows[0].e)) return;
  await inTransaction(pool, async (client) => {
    const { rows: sized } = await client.query(
      `SELECT GREATEST(pg_size_bytes(current_setting('maintenance_work_mem')) / 1024,
                       LEAST($2::bigint, pg_table_size($1::regclass) / 1024 / $3::int)) AS kb`,
      [qualified(schema, table), MAX_SORT_MEMORY_KB, sessions],
    );
    await client.query(`SET LOCAL maintenance_work_mem = '${Number(sized[0].kb)}kB'`);
    for (const sql of indexStatements(index)) await client.query(sql);
  });
}
