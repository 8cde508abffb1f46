import { describeError, CLEANUP_AFTER_FAILURE, ignoreFailure } from '../engine/errors.js';

/** How often the primary's heartbeat row is rewritten; lag readings are as fine as this. */
export const BEAT_MS = 100;

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
  /** Told how long each write took, commit included: what an application's write feels (writer-pace.ts). */
  private timed: ((ms: number) => void) | null = null;
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

  timeWrites(listener: (ms: number) => void): void {
    this.timed = listener;
  }

  /** A failed write is only remembered: the next tick retries it, and replica readings report it meanwhile. */
  private async beat(): Promise<void> {
    try {
      const began = performance.now();
      await this.write();
      this.timed?.(performance.now() - began);
      this.failure = null;
    } catch (error) {
      this.failure = describeError(error);
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
    await io.write();
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
