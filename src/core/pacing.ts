import type { Applier } from './applier.js';
import { sleep } from './backoff.js';
import type { Checkpointer } from './checkpointer.js';
import type { RunContext } from './context.js';
import type { Progress } from './progress.js';
import type { Hold, HoldKind, Throttler } from './throttler.js';

/**
 * How fast the copy may go: held back while paused or throttled, and after each chunk slowed to the
 * row rate and nice ratio. The stream is applied all the while, so a pause never grows a backlog.
 */
export class Pacing {
  constructor(
    private readonly ctx: RunContext,
    private readonly throttler: Throttler,
    private readonly applier: Applier,
    private readonly checkpointer: Checkpointer,
    private readonly progress: Progress,
  ) {}

  /** Holds the copy back while paused or throttled; the stream keeps being read, and applied when the buffer fills. */
  async holdWhileThrottled(): Promise<void> {
    const { state, report } = this.ctx;
    let announced: string | null = null;
    for (;;) {
      this.ctx.checkAbort();
      await this.applier.checkStream();
      const hold: Hold | null = state.paused ? { kind: 'paused', message: 'paused by operator' } : await this.throttler.hold();
      if (!hold) break;
      state.status.state = state.paused ? 'paused' : 'throttled';
      if (hold.message !== announced) report.warn(`holding back: ${hold.message}`, { throttle: hold.message });
      announced = hold.message;
      const since = Date.now();
      await this.applier.applyIfFilling();
      // A hold can last hours: the checkpoint keeps up, and the claim's session stays alive.
      await this.checkpointer.save();
      await sleep(250);
      this.count(hold.kind, Date.now() - since);
      this.progress.update();
    }
    if (announced) report.info('going on: no longer held back');
    state.status.state = 'running';
  }

  /** --max-rows-per-sec and --nice-ratio, after a chunk of `rows` that took `elapsedMs`. */
  async afterChunk(rows: number, elapsedMs: number): Promise<void> {
    const settings = this.ctx.state.settings;
    const limit = settings.maxRowsPerSec;
    // At most `limit` rows a second: a chunk of n rows takes at least n / limit seconds.
    await this.rest('rate', limit > 0 ? (rows / limit) * 1000 - elapsedMs : 0);
    // gh-ost's nice ratio: leave the server to the application for a multiple of each chunk's time.
    await this.rest('nice', settings.niceRatio * elapsedMs);
  }

  private async rest(kind: HoldKind, ms: number): Promise<void> {
    if (ms <= 0) return;
    await this.applier.waitApplying(ms);
    this.count(kind, ms);
  }

  private count(kind: HoldKind, ms: number): void {
    const spent = this.ctx.state.status.throttledMs;
    spent[kind] = (spent[kind] ?? 0) + Math.round(ms);
  }
}
