import { rightsLikeOriginal } from './rights.js';
import type pg from 'pg';
import { UserError } from '../../../core/engine/errors.js';
import { helperNames } from '../server/helper-names.js';
import { qualified } from '../server/sql.js';
import type { Client } from '../server/connect.js';
import { RELOPTIONS } from './inspect.js';

/**
 * One partition of a declaratively partitioned table, at any depth, with what the shadow's twin is
 * made from and the names both take at the cut-over. Parents come before their children.
 */
export interface Partition {
  oid: string;
  name: string;
  /** The parent's name in the original tree (the root's own name for the first level). */
  parent: string;
  /** `pg_get_expr(relpartbound)`: `FOR VALUES ...` or `DEFAULT`. */
  bound: string;
  /** `pg_get_partkeydef` of a sub-partitioned partition, null for a leaf. */
  partitionBy: string | null;
  reloptions: string | null;
  /** The twin's name in the shadow tree, then the partition's own once the trees are swapped. */
  shadow: string;
  /** The name the original partition steps aside to at the cut-over: `<name>__old` here, a free one of its family in the plan (schema/old-tables.ts). */
  old: string;
}

/** The partition key of a partitioned table (`RANGE (at)`), or null for a plain one. */
export async function partitionKey(db: pg.Pool | Client, oid: string): Promise<string | null> {
  const { rows } = await db.query(`SELECT pg_get_partkeydef($1) AS key`, [oid]);
  return rows[0].key ?? null;
}

/** Every partition under `rootOid`, parents first, siblings by name. */
export async function readPartitions(db: pg.Pool | Client, schema: string, rootOid: string): Promise<Partition[]> {
  const { rows } = await db.query(
    `SELECT c.oid, c.relname, c.relkind, p.relname AS parent, n.nspname, pg_get_expr(c.relpartbound, c.oid) AS bound,
            pg_get_partkeydef(c.oid) AS partition_by, ${RELOPTIONS} AS reloptions, t.level
       FROM pg_partition_tree($1::regclass) t JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_class p ON p.oid = t.parentrelid
      WHERE t.level > 0 ORDER BY t.level, c.relname`,
    [rootOid],
  );
  return rows.map((r) => {
    if (r.relkind === 'f') throw new UserError(`partition ${r.nspname}.${r.relname} is a foreign table; shadowcut cannot copy it: ALTER the table directly`);
    if (r.nspname !== schema) {
      throw new UserError(`partition ${r.nspname}.${r.relname} is in another schema than its root; shadowcut keeps a tree in one schema: ALTER it directly`);
    }
    const names = helperNames(schema, r.relname);
    return {
      oid: String(r.oid),
      name: r.relname,
      parent: r.parent,
      bound: r.bound,
      partitionBy: r.partition_by ?? null,
      reloptions: r.reloptions ?? null,
      shadow: names.shadow,
      old: names.old,
    };
  });
}

/**
 * The tree as text: each partition's OID, parent, bound and the transaction that attached it
 * (pg_inherits' xmin), so a partition detached and attached again, with rows the stream never saw,
 * reads as a change too. Compared under the cut-over lock and at every copy chunk.
 */
export async function partitionTree(db: pg.Pool | Client, rootOid: string): Promise<string> {
  const { rows } = await db.query(
    `SELECT coalesce(string_agg(format('%s<%s@%s %s', c.oid, i.inhparent, i.xmin, pg_get_expr(c.relpartbound, c.oid)), E'\n' ORDER BY c.oid), '') AS tree
       FROM pg_partition_tree($1::regclass) t JOIN pg_class c ON c.oid = t.relid JOIN pg_inherits i ON i.inhrelid = c.oid
      WHERE t.level > 0`,
    [rootOid],
  );
  return String(rows[0].tree);
}

/** Stops the run with one line when the tree is not the one planned. */
export async function expectPartitionTree(db: pg.Pool | Client, d: { oid: string; schema: string; name: string; partitionTree?: string }): Promise<void> {
  if (d.partitionTree === undefined) return;
  if ((await partitionTree(db, d.oid)) !== d.partitionTree) {
    throw new UserError(`partitions of ${d.schema}.${d.name} were attached, detached, created or dropped during the migration; stopped safely, start again`);
  }
}

/**
 * What the shadow tree cannot carry yet, as one line each: what belongs to a partition alone (an
 * index or constraint not on its parent) would be lost, and before PostgreSQL 18 a partitioned
 * table cannot take a foreign key NOT VALID, so the cut-over would have to check every row under
 * its lock.
 */
export async function refuseUncarried(db: pg.Pool | Client, rootOid: string, partitions: Partition[]): Promise<void> {
  const oids = partitions.map((p) => p.oid);
  const own = await db.query(
    `SELECT format('index %s', i.indexrelid::regclass) AS what FROM pg_index i
      WHERE i.indrelid = ANY ($1::oid[]) AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)
     UNION ALL
     SELECT format('constraint %I on %s', c.conname, c.conrelid::regclass) FROM pg_constraint c
      WHERE c.conrelid = ANY ($1::oid[]) AND c.coninhcount = 0 AND c.conparentid = 0 AND c.contype IN ('c', 'f', 'p', 'u', 'x')
     UNION ALL
     -- A partition made with PARTITION OF gets no statistics object of its own.
     SELECT format('statistics object %I.%I', n.nspname, s.stxname) FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace
      WHERE s.stxrelid = ANY ($1::oid[])`,
    [oids],
  );
  if (own.rows.length) {
    const list = own.rows.map((r) => r.what).join(', ');
    throw new UserError(
      `${list}: on a partition alone, not on its parent; shadowcut does not carry those yet: create them on the partitioned table, or drop them`,
    );
  }
  // A partition made with PARTITION OF takes its columns and tablespace from its parent: a default,
  // NOT NULL, storage or statistics target, or tablespace set on a partition alone would be dropped.
  const differing = await db.query(
    `SELECT format('column %I of %s', a.attname, a.attrelid::regclass) AS what
       FROM pg_attribute a JOIN pg_inherits h ON h.inhrelid = a.attrelid
       JOIN pg_attribute pa ON pa.attrelid = h.inhparent AND pa.attname = a.attname
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       LEFT JOIN pg_attrdef pd ON pd.adrelid = pa.attrelid AND pd.adnum = pa.attnum
      WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
        AND (a.attnotnull <> pa.attnotnull OR a.attstorage <> pa.attstorage OR a.attstattarget IS DISTINCT FROM pa.attstattarget
             OR pg_get_expr(d.adbin, d.adrelid) IS DISTINCT FROM pg_get_expr(pd.adbin, pd.adrelid))
     UNION ALL
     SELECT format('the tablespace of %s', c.oid::regclass) FROM pg_class c JOIN pg_inherits h ON h.inhrelid = c.oid
       JOIN pg_class pc ON pc.oid = h.inhparent
      WHERE c.oid = ANY ($1::oid[]) AND c.reltablespace <> pc.reltablespace`,
    [oids],
  );
  if (differing.rows.length) {
    throw new UserError(
      `${differing.rows.map((r) => r.what).join(', ')}: set on a partition alone (a default, NOT NULL, storage, statistics or tablespace unlike its parent's); ` +
        `shadowcut does not carry those yet: set them on the partitioned table, or reset them`,
    );
  }
  // Such a key has a copy on each of its partitions, and cannot be re-added NOT VALID before PostgreSQL 18.
  const referrers = await db.query(
    `SELECT string_agg(format('%s.%I', c.conrelid::regclass, c.conname), ', ') AS keys FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
      WHERE c.contype = 'f' AND c.confrelid = $1 AND c.conparentid = 0 AND r.relkind = 'p'`,
    [rootOid],
  );
  if (referrers.rows[0].keys) {
    throw new UserError(
      `partitioned table(s) reference it (foreign key(s) ${referrers.rows[0].keys}); before PostgreSQL 18 such keys cannot be re-added NOT VALID, ` +
        `so the cut-over would check every row under its lock: drop them for the migration and add them back after`,
    );
  }
  const fks = await db.query(`SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = $1 ORDER BY conname`, [rootOid]);
  if (fks.rows.length) {
    throw new UserError(
      `the partitioned table has foreign key(s) ${fks.rows.map((r) => r.conname).join(', ')}; before PostgreSQL 18 they cannot be re-added NOT VALID, ` +
        `so the cut-over would check every row under its lock: drop them for the migration and add them back after`,
    );
  }
}

/** The shadow's partitions, with the original's bounds, under the shadow root (named `root`). */
export async function createShadowPartitions(
  client: Client,
  schema: string,
  root: { original: string; shadow: string },
  partitions: Partition[],
  nameOf: (p: Partition) => string,
): Promise<void> {
  const shadowOf = new Map([[root.original, root.shadow], ...partitions.map((p) => [p.name, nameOf(p)] as [string, string])]);
  for (const p of partitions) {
    const by = p.partitionBy ? ` PARTITION BY ${p.partitionBy}` : '';
    const options = p.reloptions ? ` WITH (${p.reloptions})` : '';
    await client.query(
      `CREATE TABLE ${qualified(schema, shadowOf.get(p.name)!)} PARTITION OF ${qualified(schema, shadowOf.get(p.parent)!)} ${p.bound}${by}${options}`,
    );
    // A partition has rights of its own (a reader who names it is checked against them, not the root's).
    await rightsLikeOriginal(client, qualified(schema, p.name), qualified(schema, shadowOf.get(p.name)!));
  }
}
