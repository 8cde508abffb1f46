import { sleep } from '../engine/retry/backoff.js';
import type { Reporter } from '../report/reporter.js';
import type { RunState } from './run-state.js';
import type { Hold, HoldKind, Throttler } from './throttler.js';
import { BASELINE_WAIT_MS, type WriterPace } from './writer-pace.js';

/** The longest burst --max-rows-per-sec lets a chunk copy at full speed. */
const BURST_MS = 250;

/** What a paced loop shares with its pacing: the live state, the log, and its safe point to stop at. */
export interface PacingContext {
  readonly state: RunState;
  readonly report: Reporter;
  checkAbort(): void;
}

/**
 * The work that goes on while the loop is held back or resting. A migration follows its change
 * stream and keeps its checkpoint (see runner.ts); a backfill has no stream and only keeps its claim.
 */
export interface Waiting {
  /** Before each look at the throttle: fails when the background work has failed (a lost stream). */
  check(): Promise<void>;
  /** Once per held round (every 250 ms): keep up what must not fall behind during a long hold. */
  held(): Promise<void>;
  /** Rest `ms` (rate limit, nice ratio), doing the background work meanwhile. */
  rest(ms: number): Promise<void>;
}

/**
 * How fast a loop of chunks may go: held back while paused or throttled, and after each chunk slowed
 * to the row rate and nice ratio. Migrate's stream is applied all the while, so a pause never grows a
 * backlog.
 */
export class Pacing {
  constructor(
    private readonly ctx: PacingContext,
    private readonly throttler: Throttler,
    private readonly waiting: Waiting,
    private readonly progress: { update(): void },
    /** Paces the copy by the heartbeat's write times; null where the loop has none (a backfill). */
    private readonly writers: WriterPace | null = null,
  ) {}

  /**
   * Before the first chunk: with --max-writer-slowdown, waits (about a second) for the stand-in
   * writer's baseline, taken while nothing of ours runs, then judges its writes against it. While
   * another session holds the stand-in's row, the copy does not start unpaced: once one of its writes
   * was held off, it is held back, said once, until a baseline is made or the operator sets
   * max-writer-slowdown to 0.
   */
  async startCopy(): Promise<void> {
    const writers = this.writers;
    if (!writers) return;
    writers.startBaseline();
    const until = Date.now() + BASELINE_WAIT_MS;
    let announced = false;
    while (this.ctx.state.settings.maxWriterSlowdown > 0 && !writers.baselineReady) {
      const held = writers.baselineHeld;
      if (Date.now() >= until && held === null) break;
      if (Date.now() >= until && !announced) {
        announced = true;
        this.holdForBaseline(held!);
      }
      this.ctx.checkAbort();
      const since = Date.now();
      await this.waiting.rest(50);
      if (announced) this.count('writers', Date.now() - since);
    }
    if (announced) {
      Object.assign(this.ctx.state.status, { state: 'running', throttleReason: null, throttleKind: null });
      this.ctx.report.info('going on: no longer held back');
    }
    writers.startCopy();
    const limit = writers.limitMs();
    if (limit !== null) {
      this.ctx.report.info(
        `pacing by the writers: a stand-in write took up to ${writers.baselineMs()!.toFixed(1)} ms (90th percentile) before the copy; the copy keeps it under ${limit.toFixed(1)} ms`,
        { writerBaselineMs: writers.baselineMs(), writerLimitMs: limit },
      );
    } else if (this.ctx.state.settings.maxWriterSlowdown > 0) {
      this.ctx.report.warn(
        '--max-writer-slowdown: too few stand-in writes before the copy for a baseline (the heartbeat could not be written?); the copy is not paced by the writers',
      );
    }
  }

  /** Says, once, why the copy waits for the writers' baseline, and how to stop waiting. */
  private holdForBaseline(why: string): void {
    const message =
      `--max-writer-slowdown has no baseline: ${why}; the copy waits for the stand-in's writes to be made ` +
      '(end that session, or "shadowcut set ... max-writer-slowdown 0" to copy without this pacing)';
    // As every hold is shown: `status` and the metrics say why, under its kind.
    Object.assign(this.ctx.state.status, { state: 'throttled', throttleReason: message, throttleKind: 'writers' });
    this.ctx.report.warn(`holding back: ${message}`, { throttle: message });
  }

  /** The chunk time the copy aims at now: the operator's, shortened while the writers are slowed. */
  chunkTimeMs(): number {
    const configured = this.ctx.state.settings.chunkTimeMs;
    return this.writers ? this.writers.chunkTimeMs(configured) : configured;
  }

  /** Holds the loop back while paused or throttled; the background work goes on. */
  async holdWhileThrottled(): Promise<void> {
    const { state, report } = this.ctx;
    let announced: string | null = null;
    for (;;) {
      this.ctx.checkAbort();
      await this.waiting.check();
      const hold: Hold | null = state.paused ? { kind: 'paused', message: 'paused by operator' } : await this.throttler.hold();
      if (!hold) break;
      state.status.state = state.paused ? 'paused' : 'throttled';
      if (hold.message !== announced) report.warn(`holding back: ${hold.message}`, { throttle: hold.message });
      announced = hold.message;
      const since = Date.now();
      // A hold can last hours: the checkpoint keeps up, and the claim's session stays alive.
      await this.waiting.held();
      await sleep(250);
      this.count(hold.kind, Date.now() - since);
      this.progress.update();
    }
    if (announced) report.info('going on: no longer held back');
    state.status.state = 'running';
  }

  /**
   * The most rows a chunk may take on each of `threads` sessions under --max-rows-per-sec: a quarter
   * second's worth of the limit, so the rate holds within each second. Resting after a chunk alone
   * let a chunk grown to the chunk time copy thousands of rows at full speed, then rest (a DBA who
   * asked for 500 rows a second saw bursts of 16,000), and the last chunk went unthrottled.
   */
  chunkRows(threads: number): number {
    const limit = this.ctx.state.settings.maxRowsPerSec;
    return limit > 0 ? Math.max(1, Math.ceil((limit * BURST_MS) / 1000 / threads)) : Number.POSITIVE_INFINITY;
  }

  /** --max-rows-per-sec and --nice-ratio, after a chunk of `rows` that took `elapsedMs`. */
  async afterChunk(rows: number, elapsedMs: number): Promise<void> {
    const settings = this.ctx.state.settings;
    const limit = settings.maxRowsPerSec;
    // At most `limit` rows a second: a chunk of n rows takes at least n / limit seconds.
    await this.rest('rate', limit > 0 ? (rows / limit) * 1000 - elapsedMs : 0);
    // gh-ost's nice ratio: leave the server to the application for a multiple of each chunk's time.
    await this.rest('nice', settings.niceRatio * elapsedMs);
    // --max-writer-slowdown: rest as long as the writers' stand-in says it is needed.
    if (this.writers) await this.rest('writers', this.writers.restAfter(elapsedMs));
  }

  private async rest(kind: HoldKind, ms: number): Promise<void> {
    if (ms <= 0) return;
    await this.waiting.rest(ms);
    this.count(kind, ms);
  }

  private count(kind: HoldKind, ms: number): void {
    const spent = this.ctx.state.status.throttledMs;
    spent[kind] = (spent[kind] ?? 0) + Math.round(ms);
  }
}
