import ZongJi from '@vlasky/zongji';
import type { Pool } from 'mysql2/promise';
import type { ChangeSink, ChangeStream, Position, Session } from '../../../../core/engine/types.js';
import { ReaderHub, type HubMember } from '../../../../core/engine/capture/reader-hub.js';
import type { MysqlTarget } from '../../server/target.js';
import type { ServerZone } from '../../server/connect.js';
import type { MysqlPlan } from '../../schema/plan.js';
import { cascadeSources } from '../../schema/foreign-keys.js';
import { LockedSession } from '../../server/lock.js';
import { binlogHead, compareBinlogPositions, deliver, type BinlogEvent, type BinlogPosition } from './binlog.js';

/** One table's stream from the hub's reader. */
interface Member extends HubMember<BinlogPosition> {
  plan: MysqlPlan;
}

interface Reader {
  zongji: ZongJi;
  start: BinlogPosition;
  /** A reader being stopped can still deliver a packet or an error; it must reach no one. */
  stopped: boolean;
}

/**
 * One binlog reader for the tables of a set (several tables, one cut-over), or for one table: each
 * table's run subscribes with its own sink and its own start, and the reader, following every table
 * at once, hands each its own row events and everyone the positions between them. The server sends
 * the binlog once, not once per table. A table joining a running reader starts where the reader has
 * read to (everything after is delivered; what came before was committed before its copy began);
 * one resuming from an earlier position starts the reader again from there, and every table skips
 * what it already had. A full sink pauses the reader for all: the set moves at its slowest table's
 * pace, and nothing is lost (the server keeps the binlog). A reader that fails fails every table's
 * stream, and each reopens from its own last applied position.
 */
export class BinlogHub extends ReaderHub<BinlogPosition, Member> {
  private reader: Reader | null = null;
  /** The end of the last event the reader passed on. */
  private at: BinlogPosition | null = null;

  constructor(
    private readonly target: MysqlTarget,
    private readonly zone: ServerZone,
    private readonly pool: Pool,
    /** Every table the reader follows, `database.table`. */
    private readonly tables: string[],
  ) {
    super();
  }

  subscribe(plan: MysqlPlan, sink: ChangeSink, from?: Position): Promise<ChangeStream> {
    const member: Member = { plan, sink, after: null };
    return this.joining(member, async () => {
      // The parents whose changes cascade into the table are read too (capture/cascades.ts). The
      // reader's filter is fixed when it starts: one running without them starts again.
      const missing = cascadeSources(plan)
        .map((t) => `${t.database}.${t.table}`)
        .filter((t) => !this.tables.includes(t));
      this.tables.push(...new Set(missing));
      let start: BinlogPosition;
      if (this.reader === null) {
        start = (from as BinlogPosition | undefined) ?? (await binlogHead(this.pool));
        this.members.add(member);
        await this.startReader(start, member);
      } else if (missing.length || (from !== undefined && compareBinlogPositions(from, this.readTo()) < 0)) {
        const readTo = this.readTo();
        const earlier = from !== undefined && compareBinlogPositions(from, readTo) < 0;
        start = (from as BinlogPosition | undefined) ?? readTo;
        // The tables already following have had everything up to where the reader has read to; a
        // table joining from there or later skips what lies before its start.
        this.repeatingUpTo(readTo);
        if (!earlier) member.after = start;
        this.members.add(member);
        await this.stopReader();
        await this.startReader(earlier ? start : readTo, member);
      } else {
        start = (from as BinlogPosition | undefined) ?? this.readTo();
        member.after = start;
        this.members.add(member);
      }
      return {
        start,
        head: (session?: Session) => binlogHead(session instanceof LockedSession ? session.conn : this.pool),
        acknowledge: async () => {},
        stop: () => this.leave(member),
      };
    });
  }

  protected compare(a: BinlogPosition, b: BinlogPosition): number {
    return compareBinlogPositions(a, b);
  }

  private readTo(): BinlogPosition {
    return this.at ?? this.reader!.start;
  }

  /** `joining`: the table whose subscription starts it, which meets a failure as its own; the others' streams fail with it. */
  private async startReader(start: BinlogPosition, joining?: Member): Promise<void> {
    // TIMESTAMP keys must read as our sessions print them: in the server's zone (a fixed offset; checks refuse DST zones for such keys).
    const zongji = new ZongJi({ ...this.target.config, timezone: this.zone.offset, connectionLimit: undefined, waitForConnections: undefined });
    const reader: Reader = { zongji, start, stopped: false };
    this.reader = reader;
    this.at = null;
    this.readingAgain();
    zongji.on('binlog', (raw: unknown) => {
      if (reader.stopped) return;
      const event = raw as BinlogEvent;
      const position: BinlogPosition = { file: zongji.options.filename ?? start.file, pos: zongji.options.position ?? start.pos };
      this.at = position;
      for (const member of this.members) {
        // Inside a transaction the reader reports the position it began at (the last commit's end, a
        // point to resume from): a table skips what lies before its own, and takes again what a
        // reader started over repeats of a transaction it had begun to get (keys are idempotent).
        if (this.reached(member, position)) deliver(event, member.plan, member.sink, position);
      }
      this.pauseIfFull();
    });
    zongji.on('error', (error: unknown) => {
      if (reader.stopped) return;
      const failure = streamFailure(error);
      // Each table reopens from its own position, into a reader started afresh.
      const failed = [...this.members];
      this.members.clear();
      void this.inTurn(() => (this.reader === reader ? this.stopReader() : Promise.resolve()));
      for (const member of failed) member.sink.fail(failure);
    });

    const includeSchema: Record<string, string[]> = {};
    for (const qualified of this.tables) {
      const dot = qualified.indexOf('.');
      (includeSchema[qualified.slice(0, dot)] ??= []).push(qualified.slice(dot + 1));
    }
    try {
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
          includeSchema,
        });
      });
    } catch (error) {
      // The tables already following (a restart from an earlier position) must not wait on a reader that never came.
      const others = [...this.members].filter((m) => m !== joining);
      this.members.clear();
      await this.stopReader();
      for (const m of others) m.sink.fail(streamFailure(error));
      throw error;
    }
  }

  protected async stopReader(): Promise<void> {
    const reader = this.reader;
    if (reader === null) return;
    this.reader = null;
    this.at = null;
    reader.stopped = true;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      reader.zongji.once('stopped', () => {
        clearTimeout(timer);
        resolve();
      });
      reader.zongji.stop();
    });
  }

  protected pauseReading(): void {
    this.reader?.zongji.connection?.pause();
  }

  protected resumeReading(): void {
    this.reader?.zongji.connection?.resume();
  }
}

/**
 * The driver's error code is kept: the runner tells a lost connection (reopen) from a real failure by
 * it. An error without one comes from inside the reader, typically after its control connection was
 * killed (it then meets a null connection): a new reader from the last applied position is the cure.
 */
function streamFailure(error: unknown): Error {
  const code = (error as { code?: string }).code ?? 'BINLOG_READER_BROKEN';
  return Object.assign(new Error(`binlog stream failed: ${(error as Error).message}`), { code });
}
