import type pg from 'pg';
import { sleep } from '../../../../core/engine/retry/backoff.js';
import type { ChangeSink, ChangeSource, ChangeStream } from '../../../../core/engine/ports/change-source.js';
import type { Position } from '../../../../core/engine/contract-values.js';
import { errorCode } from '../../server/errors.js';
import { ident } from '../../server/sql.js';
import type { PgDetail } from '../../schema/plan.js';
import { comparePositions } from '../../server/lsn.js';
import type { SlotHub } from './hub.js';
import type { VisibilityGate } from './visibility.js';

/** Logical decoding (pgoutput) through a publication and a replication slot of the run's own, or of its set's (hub.ts). */
export class LogicalSource implements ChangeSource {
  /** The streams this source opened, of those the engine keeps. */
  private readonly opened = new Set<ChangeStream>();
  readonly pinsServerLog = true;

  constructor(
    private readonly hub: SlotHub,
    private readonly pool: pg.Pool,
    private readonly d: PgDetail,
    private readonly gate: VisibilityGate,
    /** The engine's open streams, stopped when it closes. */
    private readonly streams: Set<ChangeStream>,
  ) {}

  async open(sink: ChangeSink, from: Position | undefined): Promise<ChangeStream> {
    const stream = await this.hub.subscribe(this.d, sink, this.gate, from);
    this.streams.add(stream);
    this.opened.add(stream);
    return stream;
  }

  /** Stops what this source opened, and only that: the other tables of a set follow their own streams on the same engine. */
  async stopOpened(): Promise<void> {
    const streams = [...this.opened];
    this.opened.clear();
    for (const stream of streams) this.streams.delete(stream);
    await Promise.all(streams.map((s) => s.stop()));
  }

  /**
   * The slot holds WAL back on the server: the migration's cleanup removes it first, whatever fails
   * after it. A set's slot is removed by the last of its tables to stop following it.
   */
  async cleanup(): Promise<void> {
    if (this.hub.idle) await dropStream(this.pool, this.d.slot, this.d.publication);
  }

  comparePositions(a: Position, b: Position): number {
    return comparePositions(a, b);
  }
}

export async function dropStream(pool: pg.Pool, slot: string, publication: string): Promise<void> {
  await dropSlot(pool, slot);
  await pool.query(`DROP PUBLICATION IF EXISTS ${ident(publication)}`);
}

/** A slot still held by a walsender (a crashed run's, or one not yet gone) cannot be dropped: end it first. */
async function dropSlot(pool: pg.Pool, slot: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const { rows } = await pool.query(`SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
    if (rows.length === 0) return;
    if (rows[0].active_pid !== null) {
      await pool.query(`SELECT pg_terminate_backend($1::int)`, [rows[0].active_pid]);
      await sleep(50);
      continue;
    }
    try {
      await pool.query(`SELECT pg_drop_replication_slot($1)`, [slot]);
      return;
    } catch (error) {
      // 55006: became active again in between; 42704: dropped by someone else meanwhile.
      if (errorCode(error) === '42704') return;
      if (errorCode(error) !== '55006') throw error;
      await sleep(50);
    }
  }
  throw new Error(`replication slot ${slot} stays active; drop it with SELECT pg_drop_replication_slot('${slot}')`);
}
