import { verdict, type Check } from '../../../core/engine/checks/check.js';
import type { PgCheckContext } from './context.js';

/**
 * Tables whose rows the copy or the stream would not see whole: a partition on its own (its root's
 * tree is migrated whole), inheritance trees, UNLOGGED. A declaratively partitioned root is migrated
 * as a tree (schema/partitions.ts).
 */
export const tableKind: Check<PgCheckContext> = {
  name: 'table kind',
  async run({ pool, table: t }) {
    const { rows } = await pool.query(
      `SELECT (SELECT string_agg(i.inhparent::regclass::text, ', ') FROM pg_inherits i WHERE i.inhrelid = $1) AS parents,
              (SELECT string_agg(i.inhrelid::regclass::text, ', ') FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = $1 AND NOT c.relispartition) AS children,
              (SELECT string_agg(r.relid::regclass::text, ', ') FROM pg_partition_ancestors($1) r WHERE r.relid <> $1 AND
                 NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = r.relid)) AS root,
              (SELECT string_agg(c.oid::regclass::text, ', ') FROM pg_partition_tree($1) t JOIN pg_class c ON c.oid = t.relid
                WHERE c.relpersistence = 'u') AS unlogged`,
      [t.oid],
    );
    const { parents, children, root, unlogged } = rows[0];
    const table = `${t.schema}.${t.name}`;
    return [
      verdict(
        'not a partition',
        !t.isPartition,
        t.kind === 'p' ? 'partitioned table: migrated with all its partitions' : 'plain table',
        `${table} is a partition of ${root}; shadowcut migrates a partitioned table whole: give --table ${root}`,
      ),
      // Rows of children are read through the parent, and the swap would leave them under the old one.
      verdict(
        'inheritance',
        t.isPartition || (!parents && !children),
        'no inheritance',
        parents
          ? `${table} inherits from ${parents}; shadowcut does not migrate tables in an inheritance tree: ALTER it directly`
          : `${table} has inheriting tables (${children}); shadowcut does not migrate tables in an inheritance tree: ALTER it directly`,
      ),
      verdict(
        'logged',
        t.persistence !== 'u' && !unlogged,
        'logged table',
        `${unlogged ?? table} is UNLOGGED, so logical replication cannot follow its changes; ALTER TABLE ... SET LOGGED first, or ALTER it directly`,
      ),
    ];
  },
};
