import type { Applier } from './applier.js';
import type { Checkpointer, Resumable } from './checkpointer.js';
import { ChunkSizer } from '../run/chunk-sizer.js';
import type { Planned, RunContext } from './context.js';
import type { MigrationCopy } from '../engine/ports/copy.js';
import { CopyProof } from './copy-proof.js';
import { UniqueViolationError } from '../engine/errors.js';
import { KeySample } from '../preflight/mapping-proof.js';
import type { Pacing } from '../run/pacing.js';
import type { Progress } from '../run/progress.js';
import type { CheckedCopy, Key, KeyRange } from '../engine/types.js';

/**
 * Copies the table in keyset chunks, `threads` disjoint chunks at a time (a wave), each on its own
 * session. Between waves the stream is applied, so copy and apply never run at once (docs/invariants.md,
 * invariant 3) and no per-key locking of our own is needed. The checkpoint is only written between
 * waves, when every chunk below its bound has committed, so it stays one key however many chunks run.
 */
export class CopyLoop {
  /** Upper bound of the last committed wave. */
  copiedUpTo: Key | null;
  done: boolean;
  /** Keys the copy stepped over: where the proof at verification takes its rows. */
  readonly sample = new KeySample();
  /** What the copy's own checksums proved; a resumed run's copy proves nothing of what the dead run copied. */
  readonly proof: CopyProof;

  constructor(
    private readonly ctx: RunContext<Planned & MigrationCopy>,
    private readonly applier: Applier,
    from: Resumable | null,
  ) {
    this.copiedUpTo = from?.copiedUpTo ?? null;
    this.done = from?.copyDone ?? false;
    this.proof = new CopyProof(ctx.config.checksumWhileCopying && from === null);
  }

  async run(pacing: Pacing, checkpointer: Checkpointer, progress: Progress): Promise<void> {
    const { result, state, config } = this.ctx;
    const sizer = new ChunkSizer(state.settings.chunkTimeMs);
    await pacing.startCopy();
    progress.copyStarting();
    // Every key applied from here on is compared again at verification (see copy-proof.ts).
    if (this.proof.active) this.applier.changed.restart();
    for (;;) {
      this.ctx.checkAbort();
      await pacing.holdWhileThrottled();
      await this.applier.applyPending();
      sizer.target(pacing.chunkTimeMs());
      const ranges = await this.nextWave(config.copyThreads, Math.min(sizer.rows, pacing.chunkRows(config.copyThreads)));
      const t0 = performance.now();
      const rows = await this.copyWave(ranges, sizer);
      const elapsed = performance.now() - t0;
      result.rowsCopied += rows;
      const upTo = ranges[ranges.length - 1].upTo;
      this.copiedUpTo = upTo;
      for (const range of ranges) this.sample.offer(range.upTo);
      this.done = upTo === null;
      await checkpointer.save(this.done);
      progress.update();
      if (this.done) return;
      await pacing.afterChunk(rows, elapsed);
    }
  }

  /** Up to `threads` consecutive ranges of about `rows` rows from where the copy stands; the last may be open-ended. */
  private async nextWave(threads: number, rows: number): Promise<KeyRange[]> {
    const ranges: KeyRange[] = [];
    let after = this.copiedUpTo;
    while (ranges.length < threads) {
      const from = after;
      const upTo = await this.ctx.transient('finding the next chunk', () => this.ctx.migration.nextBoundary(from, rows));
      ranges.push({ after: from, upTo });
      if (upTo === null) break;
      after = upTo;
    }
    return ranges;
  }

  /**
   * The wave's chunks at once. A chunk that meets a unique conflict is copied again once the others
   * have ended, alone, after the applier caught up: catching up while the other chunks still run
   * would apply during a copy.
   */
  private async copyWave(ranges: KeyRange[], sizer: ChunkSizer): Promise<number> {
    const timed = (range: KeyRange) =>
      this.ctx.transient('copying a chunk', async () => {
        const t0 = performance.now();
        const copied = await this.copyOnce(range);
        sizer.record(copied.rows, performance.now() - t0);
        return copied.rows;
      });
    const settled = await Promise.allSettled(ranges.map(timed));
    let rows = 0;
    for (const [i, outcome] of settled.entries()) {
      rows += outcome.status === 'fulfilled' ? outcome.value : await this.retryAlone(ranges[i], outcome.reason);
    }
    return rows;
  }

  private async copyOnce(range: KeyRange): Promise<CheckedCopy> {
    const { migration } = this.ctx;
    const copied = this.proof.active ? await migration.copyAndChecksum(range) : { rows: await migration.copyRange(range), matched: null };
    this.proof.record(range, copied.matched);
    return { rows: copied.rows, matched: copied.matched === true };
  }

  private async retryAlone(range: KeyRange, error: unknown): Promise<number> {
    if (!(error instanceof UniqueViolationError)) throw error;
    await this.applier.catchUp();
    const rows = await this.copyRange(range);
    this.proof.record(range, null);
    return rows;
  }

  /** Also verification's repair: makes the shadow's rows in the range equal to the original's. */
  copyRange(range: KeyRange): Promise<number> {
    return this.applier.uniqueSafe(() => this.ctx.migration.copyRange(range));
  }
}
