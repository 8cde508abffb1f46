import ZongJi from '@vlasky/zongji';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { UserError } from '../../../../core/errors.js';
import type { ChangeSink, ChangeStream, Key, Position, Session } from '../../../../core/types.js';
import type { MysqlTarget, ServerZone } from '../../server/connect.js';
import type { MysqlPlan } from '../../schema/plan.js';
import { LockedSession } from '../../server/lock.js';
import { touches, type Touch } from './statement.js';
import { isChildKeyMove } from '../../cutover/child-keys.js';

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

interface RowsEvent {
  getEventName(): string;
  rows: Record<string, unknown>[] | { before: Record<string, unknown>; after: Record<string, unknown> }[];
}

/**
 * Follows the binlog from a position fixed before the copy starts (DESIGN.md invariant 1) and
 * reports only the keys of changed rows: the applier re-reads rows from the original, so column
 * values never need to survive decoding, and only key values travel (exact: numbers beyond 2^53
 * and DECIMALs as strings, dates as strings, binary as Buffers).
 */
export async function openBinlogStream(
  target: MysqlTarget,
  zone: ServerZone,
  pool: Pool,
  plan: MysqlPlan,
  sink: ChangeSink,
  from?: Position,
): Promise<ChangeStream> {
  const start = (from as BinlogPosition | undefined) ?? (await binlogHead(pool));
  // TIMESTAMP keys must read as our sessions print them: in the server's zone (a fixed offset; checks refuse DST zones for such keys).
  const zongji = new ZongJi({ ...target.config, timezone: zone.offset, connectionLimit: undefined, waitForConnections: undefined });
  let paused = false;
  const position = (): BinlogPosition => ({ file: zongji.options.filename ?? start.file, pos: zongji.options.position ?? start.pos });

  // A reader being stopped can still deliver a packet or an error; it must not reach the sink, which
  // by then belongs to the reader that replaced it.
  let stopped = false;
  zongji.on('binlog', (raw: unknown) => {
    if (stopped) return;
    const event = raw as RowsEvent & { query?: string; schema?: string };
    const name = event.getEventName();
    if (name === 'writerows' || name === 'deleterows' || name === 'updaterows') {
      const keys: Key[] = [];
      try {
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
        sink.fail(error as Error);
        return;
      }
      sink.keys(keys, position());
    } else if (
      name === 'query' &&
      event.query &&
      !isChildKeyMove(event.query, [...plan.children, ...(plan.setKeys ?? [])]) &&
      touches(event.query, event.schema, plan.database, plan.table)
    ) {
      sink.fail(touchedBy(event.query, touches(event.query, event.schema, plan.database, plan.table)!));
    } else {
      sink.advance(position());
    }
    if (!paused && !sink.hasRoom()) {
      // Back-pressure: stop reading the socket until the applier has drained the buffer.
      paused = true;
      zongji.connection?.pause();
      sink.onRoom(() => {
        paused = false;
        zongji.connection?.resume();
      });
    }
  });
  // Keep the driver's error code: the runner tells a lost connection (reopen) from a real failure by it.
  // An error without one comes from inside the reader, typically after its control connection was
  // killed (it then meets a null connection): a new reader from the last applied position is the cure.
  zongji.on('error', (error: unknown) => {
    if (stopped) return;
    const code = (error as { code?: string }).code ?? 'BINLOG_READER_BROKEN';
    sink.fail(Object.assign(new Error(`binlog stream failed: ${(error as Error).message}`), { code }));
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: unknown) => reject(error);
    zongji.once('ready', () => {
      zongji.off('error', onError);
      resolve();
    });
    zongji.once('error', onError);
    zongji.start({
      serverId: 100_000 + Math.floor(Math.random() * 1_000_000_000),
      filename: start.file,
      position: start.pos,
      includeSchema: { [plan.database]: [plan.table] },
    });
  });

  return {
    start,
    head: (session?: Session) => binlogHead(session instanceof LockedSession ? session.conn : pool),
    acknowledge: async () => {},
    stop: () =>
      new Promise<void>((resolve) => {
        stopped = true;
        const timer = setTimeout(resolve, 2000);
        zongji.once('stopped', () => {
          clearTimeout(timer);
          resolve();
        });
        zongji.stop();
      }),
  };
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
