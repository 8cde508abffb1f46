import type { Connection, Pool, RowDataPacket } from 'mysql2/promise';
import { KeysetSql } from '../../../core/engine/keyset.js';
import { keyId } from '../../../core/migrate/capture/change-buffer.js';
import type { Key, Reference } from '../../../core/engine/types.js';
import type { Cascade, SetKey } from '../schema/foreign-keys.js';
import type { ColumnPair } from '../schema/column-map.js';
import type { TableShape } from '../schema/inspect.js';
import { mysqlDialect, qualified, rowValues } from '../server/sql.js';
import { findsSameRows } from './same-rows.js';

const ACTS = new Set(['CASCADE', 'SET NULL', 'SET DEFAULT']);

/** Whether a key's rule changes the table's rows when the parent changes. */
export function cascades(rule: string): boolean {
  return ACTS.has(rule.toUpperCase());
}

/** The table's keys (all of them: one the ALTER drops still acts on the original until the swap) that cascade into it. */
export async function planCascades(pool: Pool, keys: SetKey[], columns: ColumnPair[], keyColumns: string[]): Promise<Cascade[]> {
  const found: Cascade[] = [];
  for (const key of keys.filter((k) => cascades(k.onDelete) || cascades(k.onUpdate))) {
    const parentDatabase = key.parentDatabase ?? key.database;
    const target = (c: string) => columns.find((p) => p.source.toLowerCase() === c.toLowerCase())?.target ?? null;
    const own = new Set(keyColumns.map((c) => c.toLowerCase()));
    found.push({
      name: key.name,
      parentDatabase,
      parent: key.parent,
      columns: key.columns,
      shadowColumns: key.columns.map(target),
      referencedColumns: key.referencedColumns,
      onDelete: key.onDelete,
      onUpdate: key.onUpdate,
      movesKeys: key.onUpdate.toUpperCase() === 'CASCADE' && key.columns.some((c) => own.has(c.toLowerCase())),
      parentCascaded: await cascadingInto(pool, parentDatabase, key.parent),
    });
  }
  return found;
}

async function cascadingInto(pool: Pool, database: string, table: string): Promise<string[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT CONSTRAINT_NAME n, DELETE_RULE d, UPDATE_RULE u FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`,
    [database, table],
  );
  return rows.filter((r) => cascades(String(r.d)) || cascades(String(r.u))).map((r) => String(r.n));
}

/** Why the run could not follow this key's cascades, or null. */
export function cascadeProblem(
  cascade: Cascade,
  plan: { database: string; table: string; original: TableShape; shadowShape: TableShape; log?: string; galeraNode?: string },
): string | null {
  if (plan.log !== undefined) return 'cascaded changes fire no trigger: follow the binlog instead (log_bin on, --capture stream)';
  if (plan.galeraNode !== undefined) return 'a Galera cluster: not followed there yet';
  if (cascade.parentDatabase === plan.database && cascade.parent === plan.table) {
    return 'a key to the table itself cascades from row to row, and no log records the rows past the first';
  }
  if (cascade.parentCascaded.length) {
    return `its parent ${cascade.parent} itself takes cascaded changes (${cascade.parentCascaded.join(', ')}), which no log records`;
  }
  const dropped = cascade.columns.find((_, i) => cascade.shadowColumns[i] === null);
  if (dropped) return `column ${dropped} is not in the new table, so the rows a cascade reaches could not be found there`;
  // The rows are found by the parent's values: a column that holds or compares them otherwise in the
  // new table would miss some. A widening (INT to BIGINT, a longer VARCHAR) finds the same rows.
  for (const [i, name] of cascade.columns.entries()) {
    const before = plan.original.columns.find((c) => c.name.toLowerCase() === name.toLowerCase());
    const after = plan.shadowShape.columns.find((c) => c.name.toLowerCase() === cascade.shadowColumns[i]!.toLowerCase());
    if (before && after && !findsSameRows(before, after)) {
      return `column ${name} would change from ${before.type} to ${after.type}${after.collation ? ` ${after.collation}` : ''}, so the rows a cascade reaches could not be found there by the parent's values`;
    }
  }
  const wanted = cascade.shadowColumns.map((c) => c!.toLowerCase());
  const leads = plan.shadowShape.indexes.some((i) => wanted.every((c, at) => i.columns[at]?.toLowerCase() === c));
  return leads ? null : `the new table would have no index leading with (${wanted.join(', ')}) to find the rows a cascade reaches`;
}

/** The shadow's indexes the lookups need: never deferred to after the copy. */
export function lookupIndexes(cascadeList: Cascade[], shadow: TableShape): Set<string> {
  const needed = new Set<string>();
  for (const cascade of cascadeList) {
    const wanted = cascade.shadowColumns.map((c) => c?.toLowerCase());
    const index = shadow.indexes.find((i) => wanted.every((c, at) => i.columns[at]?.toLowerCase() === c));
    if (index) needed.add(index.name);
  }
  return needed;
}

type Row = Record<string, unknown>;

/**
 * The references one row event of `parent` makes, for this table's keys to it. A delete reaches the
 * rows that held the row's values; an update that changes them reaches those rows, and, where the
 * cascade rewrites keys, the rows that hold the new values. `valueOf` reads a column from an image
 * (an absent one, in a MINIMAL image, throws; in an after image it kept its before value).
 */
export function referencesIn(
  cascadeList: Cascade[],
  parentDatabase: string,
  parent: string,
  event: { kind: 'insert' | 'update' | 'delete'; rows: (Row | { before: Row; after: Row })[] },
  valueOf: (row: Row, columns: string[], unchanged?: Key) => Key,
): Reference[] {
  const refs: Reference[] = [];
  const { kind, rows } = event;
  // REFERENCED_COLUMN_NAME keeps the spelling of the REFERENCES clause; the row image, the table's.
  const named = (row: Row, columns: string[], unchanged?: Key) => {
    const names = Object.keys(row);
    return valueOf(
      row,
      columns.map((c) => names.find((n) => n.toLowerCase() === c.toLowerCase()) ?? c),
      unchanged,
    );
  };
  for (const cascade of cascadeList) {
    // An insert reaches no row: nothing references a value before it exists.
    if (kind === 'insert' || cascade.parentDatabase !== parentDatabase || cascade.parent !== parent) continue;
    for (const row of rows) {
      if (kind === 'update' && 'before' in row && 'after' in row) {
        if (!cascades(cascade.onUpdate)) continue;
        const before = named(row.before as Row, cascade.referencedColumns);
        const after = named(row.after as Row, cascade.referencedColumns, before);
        if (keyId(before) === keyId(after)) continue;
        refs.push(...referenced(cascade.name, before, 'held'));
        if (cascade.movesKeys) refs.push(...referenced(cascade.name, after, 'holds'));
      } else if (kind === 'delete' && cascades(cascade.onDelete)) {
        refs.push(...referenced(cascade.name, named(row, cascade.referencedColumns), 'held'));
      }
    }
  }
  return refs;
}

/** No row references a NULL: a key with one is not checked, and no cascade reaches it. */
function referenced(via: string, values: Key, rows: Reference['rows']): Reference[] {
  return values.some((v) => v === null) ? [] : [{ via, values, rows }];
}

/**
 * The keys of the rows the references reach. The shadow is read as it stands (only this run writes
 * it); the parent and the original with a locking read (`lockClause`), which waits for a cascade
 * whose parent's event was seen but whose commit is not yet visible. Under a lock (`lockClause`
 * empty) the parent is not read: the checksum view and the cut-over hold it READ, which waited for
 * its writers to commit.
 */
export async function keysReferencing(
  db: Pool | Connection,
  plan: { database: string; table: string; shadow: string; keyColumns: string[]; shadowKeyColumns: string[]; cascades?: Cascade[] },
  references: Reference[],
  lockClause: string,
): Promise<Key[]> {
  const keys: Key[] = [];
  for (const cascade of plan.cascades ?? []) {
    for (const rows of ['held', 'holds'] as const) {
      const values = references.filter((r) => r.via === cascade.name && r.rows === rows).map((r) => r.values);
      if (values.length === 0) continue;
      if (rows === 'held' && lockClause) {
        // The parent's writer is in the binlog, but its commit, and so its cascade, may not be
        // visible yet (group commit). A locking read of the parent's rows as it found them waits for
        // it, as applyKeys's does for a row of the table: the rows not in the shadow yet are then
        // copied as the cascade left them, by any chunk that starts after this.
        const parentWhere = new KeysetSql(mysqlDialect, cascade.referencedColumns).keyIn(values);
        await db.query({
          sql: `SELECT 1 FROM ${qualified(cascade.parentDatabase, cascade.parent)} WHERE ${parentWhere.sql}${lockClause}`,
          values: parentWhere.params,
        });
      }
      const [table, columns, keyColumns, lock] =
        rows === 'held'
          ? [plan.shadow, cascade.shadowColumns as string[], plan.shadowKeyColumns, '']
          : [plan.table, cascade.columns, plan.keyColumns, lockClause];
      const where = new KeysetSql(mysqlDialect, columns).keyIn(values);
      const select = new KeysetSql(mysqlDialect, keyColumns).orderBy();
      const [found] = await db.query<RowDataPacket[]>({
        sql: `SELECT ${select} FROM ${qualified(plan.database, table)} WHERE ${where.sql}${lock}`,
        values: where.params,
        rowsAsArray: true,
      });
      keys.push(...found.map(rowValues));
    }
  }
  return keys;
}
