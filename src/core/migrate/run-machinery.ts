import { Applier } from './applier.js';
import { Checkpointer, type Resumable } from './checkpointer.js';
import type { RunClaim } from '../run/claim.js';
import type { HookEvent, RunServices } from '../run/config.js';
import type { RunContext } from './context.js';
import { CopyLoop } from './copy-loop.js';
import { UserError } from '../engine/errors.js';
import { Pacing, type Waiting } from '../run/pacing.js';
import { WriterPace } from '../run/writer-pace.js';
import { Progress } from '../run/progress.js';
import { Throttler } from '../run/throttler.js';
import type { Probes } from '../engine/types.js';
import type { CleanupOptions } from '../engine/ports/cleanup.js';
import { cleanupSteps } from '../engine/cleanup-steps.js';

/** What a run on one migration is made of; the forward run and a revert window's way back are each made of one. */
export class RunMachinery {
  readonly applier: Applier;
  readonly copy: CopyLoop;
  readonly checkpointer: Checkpointer;
  readonly progress: Progress;
  readonly pacing: Pacing;

  constructor(ctx: RunContext, checkpoint: Resumable | null, probes: Probes, claim: RunClaim) {
    this.applier = new Applier(ctx, checkpoint?.position ?? null, () => this.progress.update());
    this.copy = new CopyLoop(ctx, this.applier, checkpoint);
    this.progress = new Progress(ctx, () => ({
      done: ctx.result.rowsCopied,
      estimated: ctx.plan.estimatedRows,
      finished: this.copy.done,
      changesApplied: ctx.result.changesApplied,
      backlog: this.applier.backlog,
    }));
    this.checkpointer = new Checkpointer(ctx, claim, () => ({ copiedUpTo: this.copy.copiedUpTo, copyDone: this.copy.done, position: this.applier.applied! }));
    // While held back or resting, the stream keeps being followed (applied when its buffer fills) and the checkpoint kept.
    const waiting: Waiting = {
      check: () => this.applier.checkStream(),
      held: async () => {
        await this.applier.applyIfFilling();
        await this.checkpointer.save();
      },
      rest: (ms) => this.applier.waitApplying(ms),
    };
    const writers = new WriterPace(() => ctx.state.settings.maxWriterSlowdown);
    probes?.timeWrites?.({ took: (ms) => writers.record(ms), held: (why) => writers.held(why) });
    this.pacing = new Pacing(ctx, new Throttler(ctx.state, probes, ctx.config, (message) => ctx.report.warn(message)), waiting, this.progress, writers);
  }
}

/**
 * Runs the operator's hook. A failing hook before a swap (the cut-over, a revert) stops that swap;
 * after the fact, or on failure, it is only a warning.
 */
export async function runHook(ctx: RunContext, services: RunServices, event: HookEvent, error?: unknown): Promise<void> {
  if (!services.hook) return;
  try {
    await services.hook(event, ctx.state, error);
  } catch (failure) {
    if (error !== undefined || event === 'success' || event === 'after-revert') return ctx.report.warn(`hook ${event} failed: ${(failure as Error).message}`);
    const stopped = event === 'before-revert' ? 'staying on the new table' : 'stopping before the cut-over';
    throw new UserError(`hook ${event} failed, ${stopped}: ${(failure as Error).message}`);
  }
}

/**
 * The migration's cleanup; once it has removed the checkpoint, the run has ended, and its ledger
 * says so (engine/state/run-ledger.ts): a copy of one of its checkpoints put back later is refused.
 */
export async function cleanupRun(ctx: RunContext, options: CleanupOptions): Promise<void> {
  await ctx.migration.cleanup(options);
  if (cleanupSteps(ctx.plan.reverse === true, options)?.checkpoint) ctx.run.ended(ctx.report);
}
