import { note, verdict, type Check } from '../../../../core/engine/checks/check.js';
import { mentioned, mentions } from '../../../../core/engine/contract/mentions.js';
import type { ContractCheck } from '../../../../core/engine/ports/contract.js';
import { droppedNames, type ContractContext } from './context.js';

/** Schema changes name the column too; they are not the application reading or writing it. */
const DDL = /^\s*(ALTER|CREATE|DROP|COMMENT|GRANT|REVOKE|ANALYZE|VACUUM|TRUNCATE)\b/i;

/**
 * What the statistics saw since they were last reset: pg_stat_statements' normalized queries that
 * name the table and a dropped column (when the extension is installed in this database), and for
 * an index its scans (pg_stat_user_indexes). What cannot be looked at is said. A use seen is a
 * refusal --force may override: the query may be retired code.
 */
export const statements: Check<ContractContext> = {
  name: 'query statistics',
  async run(ctx): Promise<ContractCheck[]> {
    const { pool, t, dropped } = ctx;
    if (dropped.kind === 'index') {
      const { rows } = await pool.query(
        `SELECT s.idx_scan, (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()) AS reset
           FROM pg_stat_user_indexes s WHERE s.indexrelid = $1`,
        [dropped.oid],
      );
      const scans = Number(rows[0]?.idx_scan ?? 0);
      const since = `since the statistics were reset (${rows[0]?.reset ?? 'never: since the cluster was created'})`;
      return [
        {
          ...verdict(
            'index usage',
            scans === 0,
            `no scan of ${dropped.index} ${since}`,
            `${scans} scan(s) of index ${dropped.index} ${since}; --force to drop it anyway`,
          ),
          overridable: true,
        },
      ];
    }
    const { rows: ext } = await pool.query("SELECT extnamespace::regnamespace::text AS schema FROM pg_extension WHERE extname = 'pg_stat_statements'");
    if (!ext.length) return [note('query statistics', 'pg_stat_statements is not installed in this database: could not look for queries that use it')];
    const names = droppedNames(ctx);
    const view = `"${ext[0].schema.replace(/"/g, '""')}".pg_stat_statements`;
    let found: { query: string; calls: string }[];
    try {
      ({ rows: found } = await pool.query(
        `SELECT query, calls FROM ${view} WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query ILIKE '%' || $1 || '%'`,
        [t.name],
      ));
    } catch (error) {
      return [note('query statistics', `pg_stat_statements could not be read (${(error as Error).message}): could not look for queries that use it`)];
    }
    const reset = await pool.query(`SELECT stats_reset FROM ${view}_info`).then(
      (r) => String(r.rows[0]?.stats_reset),
      () => 'unknown',
    );
    const since = `since pg_stat_statements was reset (${reset})`;
    const users = found.filter((r) => !DDL.test(r.query) && mentions(r.query, t.name) && mentioned(r.query, names).length);
    const example = users[0] ? `, e.g. "${users[0].query.slice(0, 160)}" (${users[0].calls} call(s))` : '';
    return [
      {
        ...verdict(
          'query statistics',
          users.length === 0,
          `no query using ${names.join(', ')} ${since}`,
          `${users.length} quer${users.length > 1 ? 'ies' : 'y'} used ${names.join(', ')} of ${t.schema}.${t.name}${example} ${since}; stop them first, or --force if that code is retired`,
        ),
        overridable: true,
      },
    ];
  },
};
