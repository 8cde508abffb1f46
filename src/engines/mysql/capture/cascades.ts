import type { Connection, Pool, RowDataPacket } from 'mysql2/promise';
import { KeysetSql } from '../../../core/engine/keyset.js';
import { keyId } from '../../../core/engine/capture/key-id.js';
import type { Key, Reference } from '../../../core/engine/types.js';
import type { Cascade, SetKey } from '../schema/foreign-keys.js';
import type { ColumnPair } from '../schema/column-map.js';
import type { TableShape } from '../schema/inspect.js';
import { mysqlDialect, qualified, rowValues } from '../server/sql.js';
import { findsSameRows } from './same-rows.js';
import { descendantKeys, orphanedKeys, planChain } from './cascade-chains.js';

const ACTS = new Set(['CASCADE', 'SET NULL', 'SET DEFAULT']);

/** Whether a key's rule changes the table's rows when the parent changes. */
export function cascades(rule: string): boolean {
  return ACTS.has(rule.toUpperCase());
}

/** The table's keys (all of them: one the ALTER drops still acts on the original until the swap) that cascade into it. */
export async function planCascades(
  pool: Pool,
  table: { database: string; table: string },
  keys: SetKey[],
  columns: ColumnPair[],
  keyColumns: string[],
): Promise<Cascade[]> {
  const found: Cascade[] = [];
  for (const key of keys.filter((k) => cascades(k.onDelete) || cascades(k.onUpdate))) {
    const parentDatabase = key.parentDatabase ?? key.database;
    const target = (c: string) => columns.find((p) => p.source.toLowerCase() === c.toLowerCase())?.target ?? null;
    const own = new Set(keyColumns.map((c) => c.toLowerCase()));
    const self = parentDatabase === table.database && key.parent === table.table;
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
      ...(await planChain(pool, parentDatabase, key.parent, { ...table, name: key.name, referenced: key.referencedColumns })),
      ...(self ? { shadowReferencedColumns: key.referencedColumns.map(target) } : {}),
    });
  }
  return found;
}

/** Why the run could not follow this key's cascades, or null. */
export function cascadeProblem(
  cascade: Cascade,
  plan: { database: string; table: string; original: TableShape; shadowShape: TableShape; log?: string; galeraNode?: string },
): string | null {
  if (plan.log !== undefined) return 'cascaded changes fire no trigger: follow the binlog instead (log_bin on, --capture stream)';
  if (plan.galeraNode !== undefined) return 'a Galera cluster: not followed there yet';
  // A cascade into the parent that rewrites the values this key references moves this table's keys
  // to values no event gives.
  if (cascade.movesKeys && cascade.rewrittenInParent?.length) {
    return `its parent ${cascade.parent}'s columns ${cascade.rewrittenInParent.join(', ')} are rewritten by cascades into it, which no log records, and the rows of this table they move could not be found`;
  }
  // The rows are found by the parent's values (by the table's own, row by row, for a key to itself): a
  // column that holds or compares them otherwise in the new table would miss some. A widening (INT to
  // BIGINT, a longer VARCHAR) finds the same rows.
  const own = cascade.shadowReferencedColumns ? cascade.referencedColumns.map((c, i) => [c, cascade.shadowReferencedColumns![i]] as const) : [];
  for (const [name, shadowName] of [...cascade.columns.map((c, i) => [c, cascade.shadowColumns[i]] as const), ...own]) {
    if (shadowName === null) return `column ${name} is not in the new table, so the rows a cascade reaches could not be found there`;
    const before = plan.original.columns.find((c) => c.name.toLowerCase() === name.toLowerCase());
    const after = plan.shadowShape.columns.find((c) => c.name.toLowerCase() === shadowName.toLowerCase());
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
    refs.push(...throughAncestors(cascade, parentDatabase, parent, event, named));
    if (cascade.parentDatabase !== parentDatabase || cascade.parent !== parent) continue;
    // An insert reaches no row: nothing references a value before it exists. Unless the parent's
    // rows also go by cascades, found as the rows whose parent is gone: a value given again would
    // hide those, so the rows that hold it are looked at too (only stale ones can: it was not there).
    const chained = (cascade.ancestors ?? []).length > 0;
    if (kind === 'insert') {
      if (chained) for (const row of rows) refs.push(...referenced(cascade.name, named(row, cascade.referencedColumns), 'held'));
      continue;
    }
    for (const row of rows) {
      if (kind === 'update' && 'before' in row && 'after' in row) {
        if (!cascades(cascade.onUpdate) && !chained) continue;
        const before = named(row.before as Row, cascade.referencedColumns);
        const after = named(row.after as Row, cascade.referencedColumns, before);
        if (keyId(before) === keyId(after)) continue;
        if (chained) refs.push(...referenced(cascade.name, after, 'held'));
        if (!cascades(cascade.onUpdate)) continue;
        refs.push(...referenced(cascade.name, before, 'held'));
        if (cascade.movesKeys) refs.push(...referenced(cascade.name, after, 'holds'));
      } else if (kind === 'delete' && cascades(cascade.onDelete)) {
        refs.push(...referenced(cascade.name, named(row, cascade.referencedColumns), 'held'));
      }
    }
  }
  return refs;
}

/**
 * A change of a table whose own cascades reach the cascade's parent: a delete, or an update of a
 * column those keys reference, may have taken or changed parent rows with no event of theirs.
 */
function throughAncestors(
  cascade: Cascade,
  database: string,
  table: string,
  event: { kind: 'insert' | 'update' | 'delete'; rows: (Row | { before: Row; after: Row })[] },
  named: (row: Row, columns: string[], unchanged?: Key) => Key,
): Reference[] {
  const refs: Reference[] = [];
  for (const ancestor of (cascade.ancestors ?? []).filter((a) => a.database === database && a.table === table)) {
    const through = `${database}.${table}`;
    for (const row of event.kind === 'insert' ? [] : event.rows) {
      let values: Key;
      if ('before' in row && 'after' in row) {
        values = named(row.before as Row, ancestor.columns);
        if (keyId(values) === keyId(named(row.after as Row, ancestor.columns, values))) continue;
      } else values = named(row, ancestor.columns);
      refs.push({ via: cascade.name, values, rows: 'orphaned', through });
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
    const orphaned = references.filter((r) => r.via === cascade.name && r.rows === 'orphaned');
    if (orphaned.length) keys.push(...(await orphanedKeys(db, plan, cascade, orphaned, lockClause)));
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
      // A key to the table itself that deletes: the rows that held the values, and theirs, and so on.
      if (rows === 'held' && cascade.shadowReferencedColumns && cascade.onDelete.toUpperCase() === 'CASCADE') {
        keys.push(...(await descendantKeys(db, plan, cascade, values)));
        continue;
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
