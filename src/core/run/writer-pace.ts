/** Writes timed before the copy starts (a second of heartbeats), and the longest the copy waits for them. */
const BASELINE_SAMPLES = 10;
export const BASELINE_WAIT_MS = 2000;
/** The latest stand-in writes during the copy that the verdict looks at: about a second's worth. */
const WINDOW = 10;
/** The level changes at most once a second, so one verdict is seen through before the next. */
const SETTLE_MS = 1000;
/** At most this many times a chunk's own time resting after it; chunks no shorter than this. */
const MAX_LEVEL = 8;
const MIN_CHUNK_MS = 10;
/** Below a millisecond, a write's latency is noise: the limit never falls under baseline + this. */
const SLACK_MS = 1;

/**
 * Paces the copy by what the application's writers feel (`--max-writer-slowdown`). The heartbeat's
 * write (one row, committed, on its own session every 100 ms: core/engine/heartbeat.ts) stands in for
 * an application's write; it queues for the same CPU, log flush and group commit. Its times just
 * before the copy, with nothing of ours running, are the baseline. While the 90th percentile of its
 * latest times is above the allowed multiple of the baseline's, the copy rests after each wave for
 * `level` times the wave's own time and its chunks shorten by 1 + `level`; the level doubles (from a
 * quarter) while the writers are slowed and halves while they are not. This comes on top of the
 * other throttles, which hold the copy back for the replicas and the server.
 *
 * The stand-in writes another table: a writer slowed by a lock on the table itself (none the copy
 * takes) would not show here.
 */
export class WriterPace {
  private readonly baseline: number[] = [];
  /** Why a stand-in write was held off by another session since the baseline began (the latest such). */
  private heldWhy: string | null = null;
  private readonly recent: number[] = [];
  private level = 0;
  private changedAt = Number.NEGATIVE_INFINITY;
  private copying = false;

  /** `factor`: the allowed slowdown, read at each look (an operator may change it); 0 is off. */
  constructor(private readonly factor: () => number) {}

  /** A stand-in write took `ms`: before the copy it joins the baseline, during it the window. */
  record(ms: number): void {
    const into = this.copying ? this.recent : this.baseline;
    into.push(ms);
    if (into.length > (this.copying ? WINDOW : BASELINE_SAMPLES * 5)) into.shift();
  }

  /**
   * A stand-in write another session held off (its row or table locked). Before the copy it is no
   * sample, and the baseline waits for writes that are made; during the copy it reads as a writer
   * slowed past any limit: whoever holds the heartbeat can only make the copy slower.
   */
  held(why: string): void {
    if (!this.copying) this.heldWhy = why;
    else this.record(Number.POSITIVE_INFINITY);
  }

  /**
   * Why a stand-in write was held off since the baseline began, or null. Once one was, the baseline
   * is waited for however long it takes: a session that held the row until just before the wait's
   * end would otherwise have left too few writes for a baseline, and the copy unpaced.
   */
  get baselineHeld(): string | null {
    return this.heldWhy;
  }

  /** The baseline starts again from here: what came before (our own setup's DDL) is not the writers' normal. */
  startBaseline(): void {
    this.baseline.length = 0;
    this.heldWhy = null;
  }

  get baselineReady(): boolean {
    return this.baseline.length >= BASELINE_SAMPLES;
  }

  /** The copy begins: later writes are judged against those taken so far. */
  startCopy(): void {
    this.copying = true;
  }

  /** The baseline's 90th percentile, or null before there is one. */
  baselineMs(): number | null {
    return this.baselineReady ? quantile(this.baseline, 0.9) : null;
  }

  /** The stand-in's latency the copy keeps under, or null while there is no limit (off, or no baseline). */
  limitMs(): number | null {
    const factor = this.factor();
    if (factor <= 0 || !this.baselineReady) return null;
    const base = this.baselineMs()!;
    return Math.max(base * factor, base + SLACK_MS);
  }

  /** After a wave that took `elapsedMs`: the level follows the latest writes; returns how long to rest. */
  restAfter(elapsedMs: number, now = performance.now()): number {
    const limit = this.limitMs();
    if (limit === null) {
      this.level = 0;
      return 0;
    }
    if (now - this.changedAt >= SETTLE_MS && this.recent.length >= 3) {
      const slowed = quantile(this.recent, 0.9) > limit;
      const next = slowed ? Math.min(MAX_LEVEL, Math.max(0.25, this.level * 2)) : this.level < 0.25 ? 0 : this.level / 2;
      if (next !== this.level) this.changedAt = now;
      this.level = next;
    }
    return this.level * elapsedMs;
  }

  /** The chunk time to aim at: the operator's, shortened while the writers are slowed. */
  chunkTimeMs(configured: number): number {
    return this.level === 0 ? configured : Math.max(MIN_CHUNK_MS, configured / (1 + this.level));
  }

  /** How far the copy is held back now (the unit tests read it). */
  get currentLevel(): number {
    return this.level;
  }
}

/** The `q` quantile of `values` (nearest rank). */
function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
