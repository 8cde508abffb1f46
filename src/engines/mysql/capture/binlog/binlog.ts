import type { Pool, RowDataPacket } from 'mysql2/promise';
import { UserError } from '../../../../core/engine/errors.js';
import type { ChangeSink, Key, Position } from '../../../../core/engine/types.js';
import type { MysqlPlan } from '../../schema/plan.js';
import { touches, type Touch } from './statement.js';
import { isPrelockCreate } from '../trigger/capture-triggers.js';
import { isGateCreate } from '../../galera/gate.js';
import { isChildKeyMove } from '../../cutover/child-keys.js';
import { cascadeSources, movedKeys } from '../../schema/foreign-keys.js';
import { referencesIn } from '../cascades.js';

export interface BinlogPosition extends Position {
  file: string;
  pos: number;
}

export function compareBinlogPositions(a: Position, b: Position): number {
  const fa = fileNumber(String(a.file));
  const fb = fileNumber(String(b.file));
  if (fa !== fb) return fa < fb ? -1 : 1;
  return Number(a.pos) - Number(b.pos);
}

function fileNumber(file: string): number {
  const m = file.match(/(\d+)$/);
  return m ? Number(m[1]) : 0;
}

/** The server's current end of binlog. MySQL 8.2+ renamed the statement; MariaDB kept the old one. */
export async function binlogHead(db: { query: Pool['query'] }): Promise<BinlogPosition> {
  let rows: RowDataPacket[];
  try {
    [rows] = await db.query<RowDataPacket[]>('SHOW BINARY LOG STATUS');
  } catch {
    [rows] = await db.query<RowDataPacket[]>('SHOW MASTER STATUS');
  }
  if (rows.length === 0) throw new UserError('binary logging is off (log_bin); shadowcut follows changes through the binlog');
  return { file: String(rows[0].File), pos: Number(rows[0].Position) };
}

/** What the reader hands on: a row event names its table through the table map. */
export interface BinlogEvent {
  getEventName(): string;
  rows: Record<string, unknown>[] | { before: Record<string, unknown>; after: Record<string, unknown> }[];
  tableId?: number;
  tableMap?: Record<number, { parentSchema: string; tableName: string }>;
  query?: string;
  schema?: string;
}

/**
 * One event of the binlog, as one table's stream sees it (`hub.ts` reads the binlog, from a position
 * fixed before the copy starts: docs/invariants.md, invariant 1). Only the keys of that table's changed rows
 * are reported: the applier re-reads rows from the original, so column values never need to survive
 * decoding, and only key values travel (exact: numbers beyond 2^53 and DECIMALs as strings, dates as
 * strings, binary as Buffers). Anything else is a position with nothing for the table in it.
 */
export function deliver(event: BinlogEvent, plan: MysqlPlan, sink: ChangeSink, position: BinlogPosition): void {
  const name = event.getEventName();
  if (name === 'writerows' || name === 'deleterows' || name === 'updaterows') {
    const table = event.tableMap?.[event.tableId ?? -1];
    if (table?.parentSchema !== plan.database || table.tableName !== plan.table) {
      // A parent whose changes cascade into the table: the rows they reach, which no event names.
      if (!table || !plan.cascades) return sink.advance(position);
      try {
        const kind = name === 'writerows' ? 'insert' : name === 'deleterows' ? 'delete' : 'update';
        const refs = referencesIn(plan.cascades, table.parentSchema, table.tableName, { kind, rows: event.rows }, keyOf);
        return refs.length ? sink.references(refs, position) : sink.advance(position);
      } catch (error) {
        return sink.fail(error as Error);
      }
    }
    const keys: Key[] = [];
    try {
      // A key to the table itself, or a chain of cascades back to it: its own rows may take others.
      const kind = name === 'writerows' ? 'insert' : name === 'deleterows' ? 'delete' : 'update';
      const refs = plan.cascades ? referencesIn(plan.cascades, plan.database, plan.table, { kind, rows: event.rows }, keyOf) : [];
      if (refs.length) sink.references(refs, position);
      for (const row of event.rows) {
        if ('before' in row && 'after' in row) {
          const before = keyOf(row.before as Record<string, unknown>, plan.keyColumns);
          keys.push(before);
          // binlog_row_image=MINIMAL leaves unchanged columns out of the after image: the key stayed.
          keys.push(keyOf(row.after as Record<string, unknown>, plan.keyColumns, before));
        } else {
          keys.push(keyOf(row, plan.keyColumns));
        }
      }
    } catch (error) {
      return sink.fail(error as Error);
    }
    return sink.keys(keys, position);
  }
  const own = (query: string) =>
    isChildKeyMove(query, [...plan.children, ...movedKeys(plan), ...(plan.setChildren ?? [])]) ||
    isPrelockCreate(query, plan.database, plan.table) ||
    isGateCreate(query, plan.database, plan.table);
  const touch = name === 'query' && event.query && !own(event.query) ? touches(event.query, event.schema, plan.database, plan.table) : null;
  // A write to a parent logged as a statement may cascade into the table with no row event to say
  // which values went. (DDL on a parent is left alone: a set's own cut-over moves its keys.)
  const parentWrite = name === 'query' && event.query && cascadeSources(plan).some((t) => touches(event.query!, event.schema, t.database, t.table) === 'write');
  if (touch) sink.fail(touchedBy(event.query!, touch));
  else if (parentWrite) sink.fail(touchedBy(event.query!, 'write'));
  else sink.advance(position);
}

/**
 * The key's values in a row image. A column absent from the image (not NULL: absent) cannot be
 * guessed; with `unchanged` (an update's before image) it kept that value.
 */
function keyOf(row: Record<string, unknown>, columns: string[], unchanged?: Key): Key {
  return columns.map((c, i) => {
    const v = row[c];
    if (v !== undefined) return v === null ? null : (v as Key[number]);
    if (unchanged) return unchanged[i];
    throw new UserError(
      `a row event for the table lacks key column ${c} (a session with binlog_row_image MINIMAL or NOBLOB on a table without a primary key?); ` +
        'set binlog_row_image=FULL for every session and run again. Stopped safely, the original is untouched',
    );
  });
}

function touchedBy(query: string, touch: Touch): UserError {
  const shown = query.replace(/\s+/g, ' ').slice(0, 80);
  return new UserError(
    touch === 'ddl'
      ? `the table was changed by another session during the run (${shown}); stopped safely, the original is untouched`
      : `a write to the table was logged as a statement, not as rows (${shown}): a session with binlog_format STATEMENT or MIXED, ` +
          'perhaps opened before binlog_format was set to ROW; reconnect such sessions, then run again. Stopped safely, the original is untouched',
  );
}
