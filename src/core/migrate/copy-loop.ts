import type { Applier } from './applier.js';
import type { Checkpointer, Resumable } from './checkpointer.js';
import { ChunkSizer } from '../chunk-sizer.js';
import type { RunContext } from './context.js';
import { KeySample } from '../mapping-proof.js';
import type { Pacing } from '../pacing.js';
import type { Progress } from '../progress.js';
import type { Key, KeyRange } from '../types.js';

/**
 * Copies the table in keyset chunks. Between chunks the stream is applied, so copy and apply never
 * run at once (DESIGN.md invariant 3) and no per-key locking of our own is needed.
 */
export class CopyLoop {
  /** Upper bound of the last committed chunk. */
  copiedUpTo: Key | null;
  done: boolean;
  /** Keys the copy stepped over: where the proof at verification takes its rows. */
  readonly sample = new KeySample();

  constructor(
    private readonly ctx: RunContext,
    private readonly applier: Applier,
    from: Resumable | null,
  ) {
    this.copiedUpTo = from?.copiedUpTo ?? null;
    this.done = from?.copyDone ?? false;
  }

  async run(pacing: Pacing, checkpointer: Checkpointer, progress: Progress): Promise<void> {
    const { migration, result, state } = this.ctx;
    const sizer = new ChunkSizer(state.settings.chunkTimeMs);
    progress.copyStarting();
    for (;;) {
      this.ctx.checkAbort();
      await pacing.holdWhileThrottled();
      await this.applier.applyPending();
      sizer.target(state.settings.chunkTimeMs);
      const after = this.copiedUpTo;
      const upTo = await this.ctx.transient('finding the next chunk', () => migration.nextBoundary(after, sizer.rows));
      const t0 = performance.now();
      const rows = await this.ctx.transient('copying a chunk', () => this.copyRange({ after, upTo }));
      const elapsed = performance.now() - t0;
      sizer.record(rows, elapsed);
      result.rowsCopied += rows;
      this.copiedUpTo = upTo;
      this.sample.offer(upTo);
      this.done = upTo === null;
      await checkpointer.save(this.done);
      progress.update();
      if (this.done) return;
      await pacing.afterChunk(rows, elapsed);
    }
  }

  /** Also verification's repair: makes the shadow's rows in the range equal to the original's. */
  copyRange(range: KeyRange): Promise<number> {
    return this.applier.uniqueSafe(() => this.ctx.migration.copyRange(range));
  }
}
