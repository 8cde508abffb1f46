import type pg from 'pg';
import type { PgDetail } from '../schema/plan.js';
import { qualified } from '../server/sql.js';
import type { Client } from '../server/connect.js';

// Index names at the swap: the old table's step aside to free names, the new table's take theirs,
// partitions' indexes paired through their root's, and what belongs to an index by name carried over.

/**
 * The old table's indexes step aside under names of their own. A fixed name can be taken, for one
 * by the indexes of a table an operator swapped back after an earlier run, so the first free one
 * of `base`, `base_2`, `base_3`... is used.
 */
export async function freeRelationName(client: pg.PoolClient, schema: string, base: string): Promise<string> {
  for (let n = 1; ; n++) {
    const name = n === 1 ? base : `${base}_${n}`;
    if (!(await relationExists(client, schema, name))) return name;
  }
}

export async function relationExists(client: pg.PoolClient, schema: string, name: string): Promise<boolean> {
  const { rowCount } = await client.query('SELECT 1 FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = $1 AND c.relname = $2', [
    schema,
    name,
  ]);
  return rowCount !== 0;
}

/**
 * The partitions' own indexes, paired through the index of the root each one belongs to (whose
 * pair the plan knows), so the new partitions take the names the old ones had. Read before the
 * renames; an index the ALTER added or dropped has no pair and keeps its name.
 */
export async function partitionIndexPairs(client: Client, d: PgDetail): Promise<{ original: string; shadow: string }[]> {
  const partitions = d.partitions ?? [];
  if (partitions.length === 0) return [];
  const { rows } = await client.query(
    `WITH RECURSIVE up(idx, anc) AS (
       SELECT i.indexrelid, i.indexrelid FROM pg_index i WHERE i.indrelid = ANY ($1::regclass[])
       UNION ALL
       SELECT up.idx, h.inhparent FROM up JOIN pg_inherits h ON h.inhrelid = up.anc)
     SELECT t.relname AS partition, c.relname AS index, a.relname AS root_index
       FROM up JOIN pg_index i ON i.indexrelid = up.idx JOIN pg_class c ON c.oid = up.idx JOIN pg_class a ON a.oid = up.anc
       JOIN pg_class t ON t.oid = i.indrelid
      WHERE NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = up.anc)`,
    [partitions.flatMap((p) => [qualified(d.schema, p.name), qualified(d.schema, p.shadow)])],
  );
  const originalOf = new Map([
    ...d.indexRenames.map((r) => [r.shadow, r.original] as [string, string]),
    ...partitions.map((p) => [p.shadow, p.name] as [string, string]),
  ]);
  const originals = new Map<string, string>();
  for (const r of rows) originals.set(`${r.partition}\0${r.root_index}`, r.index);
  const pairs: { original: string; shadow: string }[] = [];
  for (const r of rows) {
    const partition = originalOf.get(r.partition);
    const rootIndex = originalOf.get(r.root_index);
    if (partition === undefined || rootIndex === undefined) continue;
    const original = originals.get(`${partition}\0${rootIndex}`);
    if (original !== undefined) pairs.push({ original, shadow: r.index });
  }
  return pairs;
}

/**
 * What belongs to each index that steps aside, for its twin on the new table once it has the name:
 * its comment, its constraint's comment (a renamed index renames its constraint too) and the CLUSTER
 * mark. LIKE copies comments only for indexes it builds, and the copy's own build has none of them.
 * Read before the renames; the statements run after them.
 */
export async function boundToIndexes(client: Client, d: PgDetail, pairs: { original: string }[]): Promise<string[]> {
  if (pairs.length === 0) return [];
  const { rows } = await client.query(
    `SELECT format('COMMENT ON INDEX %I.%I IS %L', $1::text, c.relname, obj_description(c.oid, 'pg_class')) AS sql, 1 AS o
       FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relname = ANY ($2) AND obj_description(c.oid, 'pg_class') IS NOT NULL
     UNION ALL
     SELECT format('COMMENT ON CONSTRAINT %I ON %I.%I IS %L', c.relname, $1::text, t.relname, obj_description(k.oid, 'pg_constraint')), 2
       FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid JOIN pg_class t ON t.oid = i.indrelid
       -- The index's own constraint: a foreign key that uses it as its referenced key names it too.
       JOIN pg_constraint k ON k.conindid = c.oid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x')
      WHERE c.relnamespace = $1::regnamespace AND c.relname = ANY ($2) AND obj_description(k.oid, 'pg_constraint') IS NOT NULL
     UNION ALL
     SELECT format('ALTER TABLE %I.%I CLUSTER ON %I', $1::text, t.relname, c.relname), 3
       FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid JOIN pg_class t ON t.oid = i.indrelid
      -- A plan's marks set the table's own as the ALTER left it (bound-to-original.ts).
      WHERE c.relnamespace = $1::regnamespace AND c.relname = ANY ($2) AND i.indisclustered AND (NOT $3 OR NOT t.oid = $4::oid)
     ORDER BY 2, 1`,
    [d.schema, pairs.map((p) => p.original), d.marks !== undefined, d.oid],
  );
  return rows.map((r) => String(r.sql));
}
