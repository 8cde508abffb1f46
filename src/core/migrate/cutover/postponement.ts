import type { Applier } from '../applier.js';
import type { Checkpointer } from '../checkpointer.js';
import type { Planned, RunContext } from '../context.js';
import type { Progress } from '../../run/progress.js';
import { flagHolds } from '../../run/flag-files.js';

/**
 * --postpone-cutover and its flag file (one the run cannot trust holds too): true until `shadowcut
 * cutover` (or the file is removed). A fleet's joint target swaps only with the others, when the
 * fleet says (which weighs these for all).
 */
export async function postponed(ctx: RunContext<Planned>): Promise<boolean> {
  if (ctx.config.jointFleet) return !ctx.state.fleetReleased;
  if (ctx.state.cutoverRequested) return false;
  if (ctx.config.postponeCutover) return true;
  const file = ctx.config.postponeFlagFile;
  return file !== undefined && flagHolds('--postpone-cutover-flag-file', file, ctx.state, (message) => ctx.report.warn(message));
}

/**
 * Keeps the shadow in sync, and the checkpoint and claim fresh, until the cut-over is requested
 * (`why` given: by "shadowcut cutover" only, whatever the options; a request made before does not count).
 */
export async function waitForCutoverRequest(
  ctx: RunContext<Planned>,
  applier: Applier,
  checkpointer: Checkpointer,
  progress: Progress,
  why?: string,
): Promise<void> {
  ctx.state.status.state = 'postponed';
  if (why !== undefined) ctx.state.cutoverRequested = false;
  const held = why === undefined ? () => postponed(ctx) : async () => !ctx.state.cutoverRequested;
  ctx.report.info(
    why === undefined && ctx.config.jointFleet
      ? 'verified: the shadow is kept in sync until every target of the fleet is, to swap together'
      : `cut-over postponed${why ? ` (${why})` : ''}: the shadow is kept in sync; run "shadowcut cutover" to go on`,
  );
  while (await held()) {
    ctx.checkAbort();
    await applier.checkStream();
    await applier.applyPending();
    await checkpointer.save();
    await applier.waitForChange(500);
    progress.update();
  }
  ctx.state.status.state = 'running';
}
