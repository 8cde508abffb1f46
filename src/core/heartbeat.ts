import { describeError } from './errors.js';

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

  /** A failed write is only remembered: the next tick retries it, and replica readings report it meanwhile. */
  private async beat(): Promise<void> {
    try {
      await this.write();
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
