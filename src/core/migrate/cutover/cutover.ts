import type { Applier } from '../applier.js';
import type { Checkpointer } from '../checkpointer.js';
import type { Planned, RunContext } from '../context.js';
import type { MigrationCutover } from '../../engine/ports/cutover.js';
import type { MigrationVerification } from '../../engine/ports/verification.js';
import { LockTimeoutError, UserError, CLOSING, ignoreFailure } from '../../engine/errors.js';
import { OldSnapshots } from './old-snapshots.js';
import { WriterWait } from './writer-wait.js';
import type { Pacing } from '../../run/pacing.js';
import { waitForCutoverRequest } from './postponement.js';
import type { Progress } from '../../run/progress.js';
import type { CatchUp } from '../../engine/types.js';
import { openView } from '../view.js';

/**
 * Most changed keys left for the row-by-row comparison under the cut-over lock; more are first
 * compared in a consistent view (without blocking writers), so the lock stays short.
 */
const LOCKED_COMPARISON_LIMIT = 1000;
/** Rounds of that comparison before the cut-over goes ahead with what remains. */
const NARROWING_ROUNDS = 5;

/**
 * The swap, with parity proven up to its instant (docs/invariants.md, invariant 4): every key changed since
 * the last checksum view is compared row by row, the last of them under the cut-over lock.
 */
export class Cutover {
  private readonly oldSnapshots: OldSnapshots;

  constructor(
    private readonly ctx: RunContext<Planned & MigrationCutover & MigrationVerification>,
    private readonly applier: Applier,
    private readonly pacing: Pacing,
    private readonly checkpointer: Checkpointer,
    /** A whole checksum round, when too many keys changed to remember them all. */
    private readonly reverify: () => Promise<void>,
    progress: Progress,
  ) {
    this.oldSnapshots = new OldSnapshots(ctx, applier, async (why) => {
      this.ctx.enter('postponed');
      await waitForCutoverRequest(ctx, applier, checkpointer, progress, why);
      await this.reverify(); // parity is proven before every cut-over, however long the wait was
      this.ctx.enter('cutover');
    });
  }

  /**
   * How long the lock was held, and the longest an application's write would have waited for it. A
   * session lost before the swap's point of no return (the server restarted, a connection killed)
   * left the original as it was: the whole cut-over is tried again once the server answers, from its
   * checks on. Lost past that point the engine says so (UnknownSwapError), and that is not retried.
   */
  run(): Promise<{ lockedMs: number; writerWaitMs: number }> {
    return this.ctx.transient('the cut-over', () => this.attempts());
  }

  private async attempts(): Promise<{ lockedMs: number; writerWaitMs: number }> {
    const { migration, config, state, result } = this.ctx;
    const probe = await migration.openLockProbe();
    let writerWaitMs = 0;
    try {
      const { lockedMs } = await this.applier.underLock(
        'cut-over',
        async () => {
          await this.ready();
          // Each attempt timed by a writer's stand-in, from before its lock request to after its end.
          const writers = new WriterWait(probe, state.samples);
          try {
            return await migration.cutover({ lockTimeoutMs: config.lockTimeoutMs, catchUp: this.catchUpAndCompare, seams: config.seams });
          } finally {
            writerWaitMs = Math.max(writerWaitMs, await writers.stop());
          }
        },
        (attempt) => (state.status.cutoverAttempts = result.cutoverAttempts = attempt),
      );
      return { lockedMs, writerWaitMs };
    } finally {
      await probe.close().catch(ignoreFailure(CLOSING));
    }
  }

  /** Before each attempt's lock: no cut-over onto a lagging replica or while the operator holds the run, nor onto older snapshots. */
  async ready(): Promise<void> {
    await this.pacing.holdWhileThrottled();
    await this.oldSnapshots.settle();
    await this.narrowChanged();
    await this.checkpointer.confirmClaim();
    await this.oldSnapshots.quiet();
  }

  /**
   * Catches up, and keeps what the cut-over lock must compare small: while too many keys changed
   * since the last view, compare them in a fresh consistent view (writers blocked only for its
   * brief lock) and re-apply the ones that differ. Past the set's capacity, a whole checksum round
   * instead.
   */
  private async narrowChanged(): Promise<void> {
    const { report, result } = this.ctx;
    const changed = this.applier.changed;
    for (let round = 0; round < NARROWING_ROUNDS; round++) {
      await this.applier.catchUp();
      if (changed.overflowed) {
        await this.reverify();
        this.ctx.enter('cutover');
        continue;
      }
      if (changed.size <= LOCKED_COMPARISON_LIMIT) return;
      const { keys, differing } = await this.ctx.transient('comparing changed rows', async () => {
        const { view, since, unexcused } = await openView(this.ctx, this.applier);
        try {
          // Rows excused by a view of two instants are among those changed since: compared on the next round.
          return { keys: since.keys, differing: unexcused(await view.compareKeys(since.keys)) };
        } catch (error) {
          // The retry opens a view of its own, which restarts what is changed: these keys would
          // then be compared neither there nor under the lock.
          changed.putBack(since);
          throw error;
        } finally {
          await view.close().catch(ignoreFailure(CLOSING));
        }
      });
      result.keysCompared += keys.length;
      if (differing.length > 0) {
        report.warn(`${differing.length} of ${keys.length} changed row(s) differed; applying them again`, { differing: differing.length });
        this.applier.requeue(differing);
        await this.applier.applyPending();
      }
    }
  }

  /** Under the cut-over lock: the final catch-up, then every key changed since the last view compared row by row. */
  readonly catchUpAndCompare: CatchUp = async (session) => {
    const { migration, report, result } = this.ctx;
    const deadline = Date.now() + this.applier.lockedBudgetMs();
    await this.applier.catchUpLocked(session);
    const keys = this.applier.changed.list();
    const differing = await migration.compareKeys(keys, session);
    if (differing.length > 0) {
      report.warn(`${differing.length} row(s) differed under the cut-over lock; applying them again`, { differing: differing.length });
      await this.applier.applyBatch(differing, session);
      const still = await migration.compareKeys(differing, session);
      if (still.length > 0) {
        throw new UserError(`${still.length} row(s) still differ after being applied again under the cut-over lock; not cutting over`);
      }
    }
    if (Date.now() > deadline) throw new LockTimeoutError(`catching up and comparing took longer than ${this.applier.lockedBudgetMs()} ms under the lock`);
    // Last, so that as little as possible comes between this look and the swap.
    await this.oldSnapshots.underLock(session, deadline);
    result.keysCompared += keys.length;
    result.keysComparedAtCutover = keys.length;
  };
}
