import { describeError, CLEANUP_AFTER_FAILURE, ignoreFailure } from './errors.js';
import type { WriteTimes } from './ports/throttle.js';

/** How often the primary's heartbeat row is rewritten; lag readings are as fine as this. */
export const BEAT_MS = 100;

/**
 * A beat not made because another session holds the heartbeat's row or table: the engine locks it
 * without waiting first, so a lock held by someone else (MySQL's helper tables can be written by the
 * application's accounts) is told apart from a slow write, instead of being timed as one.
 */
export class HeartbeatHeldError extends Error {}

/**
 * Rewrites a heartbeat row on the primary every BEAT_MS; each replica reads its age to measure its
 * lag. The engine supplies the write (its own SQL, on its own connection, so a busy copy never delays
 * a beat, which would read as lag).
 */
export class Heartbeat {
  /** Local time of the first beat: a replica without the row yet is at least this far behind. */
  readonly since = Date.now();
  /** Why the last write failed; cleared by the next success. A stale row would only overstate lag. */
  failure: string | null = null;
  private writing: Promise<void> | null = null;
  /** Told how long each write took, commit included (what an application's write feels), and of each write held off (writer-pace.ts). */
  private timed: WriteTimes | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly table: string,
    private readonly write: () => Promise<unknown>,
  ) {
    this.timer = setInterval(() => {
      // A slow write delays the next beat instead of piling writes up behind it.
      this.writing ??= this.beat().finally(() => (this.writing = null));
    }, BEAT_MS);
    // Probes must never keep the process alive.
    this.timer.unref();
  }

  timeWrites(listener: WriteTimes): void {
    this.timed = listener;
  }

  /** A failed write is only remembered: the next tick retries it, and replica readings report it meanwhile. */
  private async beat(): Promise<void> {
    try {
      const began = performance.now();
      // An engine that times the part standing in for an application's write itself says how long it took.
      const took = await this.write();
      this.timed?.took(typeof took === 'number' ? took : performance.now() - began);
      this.failure = null;
    } catch (error) {
      this.failure = describeError(error);
      if (error instanceof HeartbeatHeldError) this.timed?.held(error.message);
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.writing;
  }
}

/** The SQL an engine gives the heartbeat: its table's creation, the beat itself, and the teardown. */
export interface HeartbeatIo {
  create(): Promise<unknown>;
  /**
   * One beat. May resolve to the milliseconds of the part that stands in for an application's write
   * (else the whole call is timed), and throws HeartbeatHeldError when another session held it off.
   */
  write(): Promise<unknown>;
  /** Ends the heartbeat's own connection. */
  end(): Promise<unknown>;
  /** Drops the table on the primary; the DROP replicates, so the replicas lose it too. */
  drop(): Promise<unknown>;
}

/** Creates the table, writes the first beat, and starts beating; `stop` undoes all of it. */
export async function startHeartbeat(table: string, io: HeartbeatIo): Promise<{ heartbeat: Heartbeat; stop(): Promise<void> }> {
  try {
    await io.create();
    // Held by another session, the first beat is only late: the beats that follow try again.
    await io.write().catch((error: unknown) => {
      if (!(error instanceof HeartbeatHeldError)) throw error;
    });
  } catch (error) {
    await io.end().catch(ignoreFailure(CLEANUP_AFTER_FAILURE));
    throw error;
  }
  const heartbeat = new Heartbeat(table, io.write);
  return {
    heartbeat,
    async stop() {
      await heartbeat.stop();
      await io.end().catch(ignoreFailure('the heartbeat writes no more: its connection is done with, and the DROP that follows says whether the table went'));
      await io.drop();
    },
  };
}
