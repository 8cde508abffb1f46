import { verdict, type Check } from '../../../core/check.js';
import type { PgCheckContext } from './context.js';

/** Tables whose rows the copy or the stream would not see whole: partitions, inheritance trees, UNLOGGED. */
export const tableKind: Check<PgCheckContext> = {
  name: 'table kind',
  async run({ pool, table: t }) {
    const { rows } = await pool.query(
      `SELECT (SELECT string_agg(i.inhparent::regclass::text, ', ') FROM pg_inherits i WHERE i.inhrelid = $1) AS parents,
              (SELECT string_agg(i.inhrelid::regclass::text, ', ') FROM pg_inherits i WHERE i.inhparent = $1) AS children`,
      [t.oid],
    );
    const { parents, children } = rows[0];
    const table = `${t.schema}.${t.name}`;
    return [
      verdict(
        'not partitioned',
        t.kind !== 'p' && !t.isPartition,
        'plain table',
        `${table} is partitioned or a partition; shadowcut does not migrate partitioned tables yet: ALTER the partitions or the parent directly`,
      ),
      // Rows of children are read through the parent, and the swap would leave them under the old one.
      verdict(
        'inheritance',
        !parents && !children,
        'no inheritance',
        parents
          ? `${table} inherits from ${parents}; shadowcut does not migrate tables in an inheritance tree: ALTER it directly`
          : `${table} has inheriting tables (${children}); shadowcut does not migrate tables in an inheritance tree: ALTER it directly`,
      ),
      verdict(
        'logged',
        t.persistence !== 'u',
        'logged table',
        `${table} is UNLOGGED, so logical replication cannot follow its changes; ALTER TABLE ... SET LOGGED first, or ALTER it directly`,
      ),
    ];
  },
};
