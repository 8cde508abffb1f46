import type { Connection, Pool, RowDataPacket } from 'mysql2/promise';
import { KeysetSql } from '../../../core/engine/keyset.js';
import { keyId } from '../../../core/engine/capture/key-id.js';
import type { Key, Reference } from '../../../core/engine/types.js';
import type { Ancestor, Cascade } from '../schema/foreign-keys.js';
import { ident, mysqlDialect, qualified, rowValues } from '../server/sql.js';

// Cascades of more than one level. InnoDB logs no row of a cascade, at any level: a grandparent's
// delete that takes parent rows takes the table's rows with them, and only the grandparent's own
// row is in the binlog. So the tables whose cascades reach the parent are followed too, and each of
// their changes asks for the rows of the new table whose parent is gone ("orphaned"); a key to the
// table itself is followed row by row through the new table, until no row is found.

const ACTS = new Set(['CASCADE', 'SET NULL', 'SET DEFAULT']);

type Queryable = Pool | Connection;

interface KeyRow {
  name: string;
  schema: string;
  parent: string;
  columns: string[];
  referenced: string[];
}

/** The cascading keys of a table, with their columns in order. */
async function cascadingKeys(db: Queryable, database: string, table: string): Promise<KeyRow[]> {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT rc.CONSTRAINT_NAME n, rc.UNIQUE_CONSTRAINT_SCHEMA s, rc.REFERENCED_TABLE_NAME p, k.COLUMN_NAME c, k.REFERENCED_COLUMN_NAME r, rc.DELETE_RULE d, rc.UPDATE_RULE u
       FROM information_schema.REFERENTIAL_CONSTRAINTS rc
       JOIN information_schema.KEY_COLUMN_USAGE k ON k.CONSTRAINT_SCHEMA = rc.CONSTRAINT_SCHEMA AND k.CONSTRAINT_NAME = rc.CONSTRAINT_NAME AND k.TABLE_NAME = rc.TABLE_NAME
      WHERE rc.CONSTRAINT_SCHEMA = ? AND rc.TABLE_NAME = ? ORDER BY rc.CONSTRAINT_NAME, k.ORDINAL_POSITION`,
    [database, table],
  );
  const keys = new Map<string, KeyRow>();
  for (const r of rows.filter((x) => ACTS.has(String(x.d).toUpperCase()) || ACTS.has(String(x.u).toUpperCase()))) {
    const key = keys.get(String(r.n)) ?? { name: String(r.n), schema: String(r.s), parent: String(r.p), columns: [], referenced: [] };
    key.columns.push(String(r.c));
    key.referenced.push(String(r.r));
    keys.set(key.name, key);
  }
  return [...keys.values()];
}

/**
 * The tables whose cascades reach `parent`, level by level, and the columns of the parent referenced
 * by `referenced` that a cascade into the parent rewrites. `own` is the key being followed, left
 * out: a key of the table to itself is followed row by row instead.
 */
export async function planChain(
  db: Queryable,
  parentDatabase: string,
  parent: string,
  own: { database: string; table: string; name: string; referenced: string[] },
): Promise<{ ancestors: Ancestor[]; rewrittenInParent: string[] }> {
  const found = new Map<string, Ancestor>();
  const lower = new Set(own.referenced.map((c) => c.toLowerCase()));
  const rewritten = new Set<string>();
  const queue = [{ database: parentDatabase, table: parent }];
  for (let at = 0; at < queue.length; at++) {
    const { database, table } = queue[at];
    for (const key of await cascadingKeys(db, database, table)) {
      const self = database === own.database && table === own.table && key.name === own.name;
      if (self) continue;
      if (at === 0) for (const c of key.columns.filter((c) => lower.has(c.toLowerCase()))) rewritten.add(c);
      const id = `${key.schema}.${key.parent}`;
      const ancestor = found.get(id) ?? { database: key.schema, table: key.parent, columns: [] };
      for (const c of key.referenced) if (!ancestor.columns.some((x) => x.toLowerCase() === c.toLowerCase())) ancestor.columns.push(c);
      if (!found.has(id)) {
        found.set(id, ancestor);
        queue.push({ database: key.schema, table: key.parent });
      }
    }
  }
  return { ancestors: [...found.values()], rewrittenInParent: [...rewritten] };
}

/**
 * The keys of the new table's rows whose parent row is gone: those a change of an ancestor (the
 * references' `through`) may have taken by cascades. Unless under the cut-over's lock, the
 * ancestors' changed rows are read with a lock first, which waits for their writers to commit (as a
 * parent's are, in cascades.ts). One pass over the new table's index on the key, for all of them.
 */
export async function orphanedKeys(
  db: Queryable,
  plan: { database: string; shadow: string; shadowKeyColumns: string[] },
  cascade: Cascade,
  references: Reference[],
  lockClause: string,
): Promise<Key[]> {
  if (lockClause) {
    for (const ancestor of cascade.ancestors ?? []) {
      const values = references.filter((r) => r.through === `${ancestor.database}.${ancestor.table}`).map((r) => r.values);
      if (values.length === 0) continue;
      const where = new KeysetSql(mysqlDialect, ancestor.columns).keyIn(values);
      await db.query({ sql: `SELECT 1 FROM ${qualified(ancestor.database, ancestor.table)} WHERE ${where.sql}${lockClause}`, values: where.params });
    }
  }
  const columns = cascade.shadowColumns as string[];
  // No aliases: under LOCK TABLES a table is only known by the name it was locked under.
  const [s, p] = [qualified(plan.database, plan.shadow), qualified(cascade.parentDatabase, cascade.parent)];
  const matches = columns.map((c, i) => `${p}.${ident(cascade.referencedColumns[i])} = ${s}.${ident(c)}`).join(' AND ');
  const [rows] = await db.query<RowDataPacket[]>({
    sql:
      `SELECT ${plan.shadowKeyColumns.map((c) => `${s}.${ident(c)}`).join(', ')} FROM ${s} ` +
      `WHERE ${columns.map((c) => `${s}.${ident(c)} IS NOT NULL`).join(' AND ')} AND NOT EXISTS (SELECT 1 FROM ${p} WHERE ${matches})`,
    rowsAsArray: true,
  });
  return rows.map(rowValues);
}

/**
 * A key to the table itself with ON DELETE CASCADE: the rows that held the deleted values, then the
 * rows that held theirs, level by level through the new table, until no row is found. (InnoDB makes
 * a key to the table itself act as RESTRICT on update, so only deletes go further than one level.)
 */
export async function descendantKeys(
  db: Queryable,
  plan: { database: string; shadow: string; shadowKeyColumns: string[] },
  cascade: Cascade,
  held: Key[],
): Promise<Key[]> {
  const columns = cascade.shadowColumns as string[];
  const referenced = cascade.shadowReferencedColumns as string[];
  const keys: Key[] = [];
  const seen = new Set(held.map(keyId));
  for (let values = held; values.length;) {
    const where = new KeysetSql(mysqlDialect, columns).keyIn(values);
    const [rows] = await db.query<RowDataPacket[]>({
      sql: `SELECT ${[...plan.shadowKeyColumns, ...referenced].map(ident).join(', ')} FROM ${qualified(plan.database, plan.shadow)} WHERE ${where.sql}`,
      values: where.params,
      rowsAsArray: true,
    });
    const next: Key[] = [];
    for (const row of rows.map(rowValues)) {
      keys.push(row.slice(0, plan.shadowKeyColumns.length));
      const value = row.slice(plan.shadowKeyColumns.length);
      if (value.some((v) => v === null) || seen.has(keyId(value))) continue;
      seen.add(keyId(value));
      next.push(value);
    }
    values = next;
  }
  return keys;
}
