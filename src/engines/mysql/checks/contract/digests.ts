import type { RowDataPacket } from 'mysql2/promise';
import { note, verdict, type Check } from '../../../../core/engine/checks/check.js';
import { mentioned, mentions } from '../../../../core/engine/contract/mentions.js';
import type { ContractCheck } from '../../../../core/engine/ports/contract.js';
import { droppedNames, type ContractContext } from './context.js';

/** Schema changes name the column too; they are not the application reading or writing it. */
const DDL = /^\s*(ALTER|CREATE|DROP|RENAME|SHOW|TRUNCATE|ANALYZE|OPTIMIZE)\b/i;

/**
 * What performance_schema saw since the server started (or the tables were truncated): statement
 * digests that name the table and a dropped column, or, for an index, reads through it. Off, it
 * cannot look, and says so. A use seen is a refusal --force may override (the statement may be
 * retired code).
 */
export const digests: Check<ContractContext> = {
  name: 'query statistics',
  async run(ctx): Promise<ContractCheck[]> {
    const { pool, database, table, dropped } = ctx;
    const [[ps]] = await pool.query<RowDataPacket[]>('SELECT @@performance_schema AS on_');
    if (Number(ps.on_) !== 1) {
      return [
        note(
          'query statistics',
          'performance_schema is OFF: could not look for queries that use it (turn it on, and let the workload run, to have this checked)',
        ),
      ];
    }
    const [[uptime]] = await pool.query<RowDataPacket[]>("SHOW GLOBAL STATUS LIKE 'Uptime'");
    const since = `seen since the server started ${Math.round(Number(uptime.Value) / 3600)} h ago (or performance_schema was last truncated)`;
    if (dropped.kind === 'index') {
      const [rows] = await pool.query<RowDataPacket[]>(
        'SELECT COUNT_STAR AS n FROM performance_schema.table_io_waits_summary_by_index_usage WHERE OBJECT_SCHEMA = ? AND OBJECT_NAME = ? AND INDEX_NAME = ?',
        [database, table, dropped.index.name],
      );
      const reads = Number(rows[0]?.n ?? 0);
      return [
        {
          ...verdict(
            'index usage',
            reads === 0,
            `no read through ${dropped.index.name} ${since}`,
            `${reads} row read(s) through index ${dropped.index.name} ${since}; --force to drop it anyway`,
          ),
          overridable: true,
        },
      ];
    }
    const names = droppedNames(ctx);
    const [rows] = await pool.query<RowDataPacket[]>(
      "SELECT DIGEST_TEXT AS q, COUNT_STAR AS n, LAST_SEEN AS last FROM performance_schema.events_statements_summary_by_digest WHERE (SCHEMA_NAME = ? OR SCHEMA_NAME IS NULL) AND DIGEST_TEXT LIKE CONCAT('%', ?, '%')",
      [database, table],
    );
    const users = rows.filter((r) => !DDL.test(String(r.q)) && mentions(String(r.q), table) && mentioned(String(r.q), names).length);
    const example = users[0] ? `, e.g. "${String(users[0].q).slice(0, 160)}" (${users[0].n} time(s), last ${users[0].last})` : '';
    return [
      {
        ...verdict(
          'query statistics',
          users.length === 0,
          `no statement using ${names.join(', ')} ${since}`,
          `${users.length} statement digest(s) use ${names.join(', ')} of ${database}.${table}${example}, ${since}; stop them first, or --force if that code is retired`,
        ),
        overridable: true,
      },
    ];
  },
};
