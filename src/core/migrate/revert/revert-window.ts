import type { Checkpoint, RevertWindowState } from '../../engine/state/checkpoint.js';
import type { RunClaim } from '../../run/claim.js';
import type { RunServices, RevertWindowOutcome } from '../../run/config.js';
import type { RunContext } from '../context.js';
import { Cutover } from '../cutover/cutover.js';
import { ClaimLostError } from '../../run/claim.js';
import { AbortedError, UnfinishedSwapError, UserError, ignoreFailure } from '../../engine/errors.js';
import { cleanupRun, runHook, RunMachinery } from '../run-machinery.js';
import type { Probes } from '../../engine/types.js';
import type { JointRevert } from '../sets/set-revert.js';
import { checksumRounds } from '../verify.js';

/** A fresh window starts at the reverse log's first poll: the triggers have logged since before the swap. */
const FROM_THE_SWAP = { copiedUpTo: null, copyDone: true, position: { poll: 0 } };

/**
 * `--revert-window`: after the cut-over the old table follows the new one, through the way back the
 * engine builds (`Migration.reversed`: the new table as the original, the old table as its shadow,
 * the reverse mapping, triggers on the new table as the change source). It is proven level by a
 * checksum round, then kept level until `shadowcut revert` swaps the tables back (with the cut-over's
 * own proof under its lock), `shadowcut complete` or the window's end stop it, or the operator
 * aborts (which ends it too: nothing would follow a log left behind). A crash leaves the triggers
 * logging and the checkpoint saying so: `migrate --resume` carries on, `cleanup` ends it.
 */
export class RevertWindow {
  private readonly machinery: RunMachinery;
  private readonly outcome: RevertWindowOutcome;
  /** This table's attempts to go back: a set's tables meet attempt by attempt. */
  private attempts = 0;

  constructor(
    private readonly ctx: RunContext,
    private readonly services: RunServices,
    private readonly resumed: Checkpoint | null,
    probes: Probes,
    claim: RunClaim,
    private readonly window: RevertWindowState & { until: string },
    /** One table of a set's window: the set decides and goes back together. */
    private readonly jointRevert?: JointRevert,
  ) {
    this.machinery = new RunMachinery(ctx, resumed ?? FROM_THE_SWAP, probes, claim);
    this.machinery.checkpointer.revertWindow = window;
    this.outcome = { until: window.until, outcome: 'ended', changesApplied: 0, lockedMs: 0 };
    ctx.result.revertWindow = this.outcome;
  }

  async run(): Promise<void> {
    const { migration, state, result } = this.ctx;
    const appliedBefore = result.changesApplied;
    let ended: boolean;
    try {
      ended = await this.followAndDecide();
    } catch (error) {
      if (error instanceof AbortedError) {
        this.ctx.report.warn(`${error.message}: the revert window ends; the table keeps its new schema`);
        this.outcome.outcome = 'aborted';
      } else if (error instanceof UserError && !(error instanceof ClaimLostError) && !(error instanceof UnfinishedSwapError)) {
        // A row the old table cannot take, parity that will not hold: a resumed run would meet it again,
        // while the triggers kept logging for no one. The window ends; the new table is in place and whole.
        this.ctx.report.warn(`the revert window ends: ${error.message}; the table keeps its new schema`);
        this.outcome.outcome = 'failed';
        this.outcome.reason = error.message;
      } else {
        // Left as it is, triggers logging: the resumed run carries the window on (or, a set swapped
        // back in part, swaps the rest back).
        await this.machinery.applier.stop();
        await migration
          .cleanup({ dropOld: false, cutOver: false })
          .catch(ignoreFailure('cleaning up before the error thrown next, which is what matters: what stays is for the resumed run or "shadowcut cleanup"'));
        throw new UserError(
          `${(error as Error).message}; the revert window stays open: continue it with "shadowcut migrate ... --resume", or end it with "shadowcut cleanup"`,
        );
      }
      ended = true;
    } finally {
      this.outcome.changesApplied = result.changesApplied - appliedBefore;
      state.status.revertWindowUntil = null;
    }
    const { outcome, reason } = this.outcome;
    if (ended && outcome !== 'reverted') this.jointRevert?.end(this.ctx.plan.table, outcome, reason);
    await this.machinery.applier.stop();
    this.ctx.enter('cleanup');
    await cleanupRun(this.ctx, { dropOld: false, cutOver: true });
    if (!ended) await runHook(this.ctx, this.services, 'after-revert');
  }

  /** Returns true when the window ended without a revert. */
  private async followAndDecide(): Promise<boolean> {
    const { migration, state, report, plan } = this.ctx;
    const { applier, checkpointer } = this.machinery;
    state.status.state = 'revert-window';
    // The way back follows by triggers, but for a table whose engine follows it by its servers' logs (a Citus table's, on its nodes).
    state.status.capture = migration.changes.pinsServerLog ? 'stream' : 'trigger';
    state.status.revertWindowUntil = this.window.until;
    this.ctx.enter('revert window');
    if (this.resumed && (this.resumed.cutOver || (await migration.swapped()))) {
      report.info('the interrupted revert had already swapped the tables back; cleaning up');
      // A set swapped back in part: the others' resumed revert goes on without this table.
      this.jointRevert?.round(this.attempts).leave();
      this.outcome.outcome = 'reverted';
      return false;
    }
    await migration.resumeShadow?.();
    await applier.open();
    // Past the swap, before the way back's first checkpoint: a resume finds the forward run's, cut over.
    await this.ctx.config.seams.at('window-before-checkpoint');
    await checkpointer.save(true);
    report.info(
      `revert window open until ${this.window.until}: ${plan.shadowTable} follows ${plan.table}; ` +
        '"shadowcut revert" swaps them back, "shadowcut complete" ends the window',
    );
    await applier.catchUp();
    // Proven level through the way back before it is promised; from here on, every change is compared row by row at the revert.
    this.ctx.result.checksumRounds += await this.reverify();
    await this.services.windowOpened?.(this.window.until);
    this.jointRevert?.enlist(plan.table, state);
    for (let reverting = this.window.reverting ?? false; ; reverting = false) {
      if (!reverting) {
        const decision = await this.follow();
        if (decision !== 'reverted') {
          this.outcome.outcome = decision;
          report.info(decision === 'completed' ? 'revert window completed: the new table stays' : 'the revert window is over: the new table stays');
          return true;
        }
      }
      if (await this.revert()) return false;
    }
  }

  /** Keeps the old table level until a decision; the checkpoint and the run's claim stay fresh meanwhile. */
  private async follow(): Promise<'reverted' | 'completed' | 'ended'> {
    const { state } = this.ctx;
    const { applier, checkpointer, progress } = this.machinery;
    state.status.state = 'revert-window';
    for (;;) {
      this.ctx.checkAbort();
      // A set's other table was asked to go back: this one goes with it.
      if (state.revertRequested || this.jointRevert?.started(this.attempts)) return 'reverted';
      if (state.completeRequested) return 'completed';
      if (Date.now() >= Date.parse(this.window.until)) return 'ended';
      await applier.checkStream();
      await applier.applyPending();
      await checkpointer.save();
      await applier.waitForChange(500);
      progress.update();
    }
  }

  /**
   * The swap back; false when it did not happen and the window goes on: the before-revert hook said
   * no, or the swap gave up (its lock not had in its attempts, rows that would not compare equal).
   */
  private async revert(): Promise<boolean> {
    const { state, report, plan } = this.ctx;
    const { applier, checkpointer, pacing, progress } = this.machinery;
    state.revertRequested = false;
    let swap: { lockedMs: number; writerWaitMs: number };
    const attempt = this.attempts++;
    try {
      await runHook(this.ctx, this.services, 'before-revert').catch((error: Error) => {
        this.jointRevert?.miss(attempt, plan.table, error);
        throw error;
      });
      // A crash from here on is resumed as the revert, not as the window.
      checkpointer.revertWindow = { ...this.window, reverting: true };
      await checkpointer.save(true);
      state.status.state = 'running';
      this.ctx.enter('revert');
      const cutover = new Cutover(
        this.ctx,
        applier,
        pacing,
        checkpointer,
        async () => {
          await this.reverify();
          this.ctx.enter('revert');
        },
        progress,
      );
      swap = this.jointRevert ? await this.jointRevert.round(attempt).join({ ctx: this.ctx, applier, cutover }) : await cutover.run();
    } catch (error) {
      if (!(error instanceof UserError) || error instanceof AbortedError || error instanceof UnfinishedSwapError) throw error;
      report.warn(`${error.message}; nothing was swapped, the revert window goes on ("shadowcut revert" to try again)`);
      checkpointer.revertWindow = this.window;
      await checkpointer.save(true);
      this.ctx.enter('revert window');
      return false;
    }
    checkpointer.cutOver = true;
    await checkpointer.save(true);
    this.outcome.outcome = 'reverted';
    const { lockedMs, writerWaitMs } = swap;
    this.outcome.lockedMs = lockedMs;
    state.mark('reverted');
    report.info(
      `reverted: ${plan.table} has its old schema again, writers blocked for ${lockedMs} ms (a write waited up to ${writerWaitMs} ms); the new table is kept as ${plan.oldTable}`,
      { lockedMs, writerWaitMs },
    );
    return true;
  }

  private reverify(): Promise<number> {
    const { applier, copy } = this.machinery;
    return checksumRounds(this.ctx, applier, (range) => copy.copyRange(range));
  }
}
