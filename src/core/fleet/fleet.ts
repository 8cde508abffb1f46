import { AbortedError, UserError } from '../engine/errors.js';
import { JointSwap } from './joint-swap.js';
import type { FleetOptions, FleetTarget, TargetOutcome } from './types.js';

export type { FleetHold, FleetOptions, FleetTarget, TargetOutcome } from './types.js';

/** How often the fleet's one line of progress is printed. */
const PROGRESS_MS = 5_000;
/** How often a cut-over asked of one target is passed to the others. */
const RELEASE_MS = 200;

/**
 * `shadowcut cutover` asked of any target (the control client sends it to all that run; the queue's
 * runner passes one on while some run) is the fleet's: every target, running or still to start, has
 * it, so a fleet held with --postpone-cutover needs one release, not one per target in turn. Once:
 * a later wait that asks for a request of its own (older snapshots) is not answered by this one.
 */
function releaseAll(targets: FleetTarget[]): boolean {
  if (!targets.some((t) => t.state.cutoverRequested)) return false;
  for (const t of targets) t.state.cutoverRequested = true;
  return true;
}

/**
 * One change over many servers (`migrate --targets`): the same table and ALTER on each target, each
 * its own run (claim, checkpoint, capture, proof, swap) on its own server. The fleet only decides when
 * each runs: at most `parallel` at once, the first `canary` alone before the rest, no new target
 * started once one failed. With `jointCutover`, no target swaps before every one is verified and waiting,
 * then all swap at once, and if any cannot, those that did go back (joint-swap.ts).
 */
export async function runFleet(targets: FleetTarget[], options: FleetOptions): Promise<TargetOutcome[]> {
  const outcomes: TargetOutcome[] = targets.map((t) => ({ label: t.label, outcome: 'not started' }));
  const jointSwap = options.jointCutover ? new JointSwap(targets, options.reporter, options.hold) : null;
  const running = new Map<number, Promise<void>>();
  let failed = false;
  const start = (i: number) => {
    const target = targets[i];
    const run = target.run().then(
      (result) => {
        Object.assign(outcomes[i], { outcome: jointSwap?.wentBack(i) ? 'swapped back' : 'done', result });
        jointSwap?.finished(i);
      },
      (error: unknown) => {
        Object.assign(outcomes[i], { outcome: 'failed', error });
        failed = true;
        jointSwap?.failed(i, error);
      },
    );
    running.set(i, tracked(run));
  };
  const progress = setInterval(() => options.reporter.info(fleetLine(targets, outcomes)), PROGRESS_MS);
  progress.unref();
  const released = setInterval(() => releaseAll(targets) && clearInterval(released), RELEASE_MS);
  released.unref();
  try {
    let next = 0;
    // The canaries alone: each must be through (done, or verified and waiting for a joint swap) before the rest begin.
    const canaries = Math.min(options.canary, targets.length);
    while (next < canaries && !failed) {
      await admit(running, options.parallel, jointSwap);
      start(next++);
    }
    if (canaries > 0) await passed(running, [...Array(canaries).keys()], jointSwap);
    while (next < targets.length && !failed) {
      await admit(running, options.parallel, jointSwap);
      if (!failed) start(next++);
    }
    if (jointSwap && !failed) await jointSwap.swapWhenAllWaiting(next, options.keepWindow);
    else jointSwap?.abortAll('another target failed before every target was verified');
    await Promise.all(running.values());
  } finally {
    clearInterval(progress);
    clearInterval(released);
  }
  options.reporter.info(fleetLine(targets, outcomes));
  return outcomes;
}

/** Waits until fewer than `parallel` targets are at work (a target waiting for the joint swap is not at work). */
async function admit(running: Map<number, Promise<void>>, parallel: number, jointSwap: JointSwap | null): Promise<void> {
  for (;;) {
    const busy = [...running.keys()].filter((i) => !(jointSwap?.waiting(i) ?? false));
    const pending = busy.filter((i) => running.has(i) && !settled.has(running.get(i)!));
    if (pending.length < parallel) return;
    await Promise.race([...pending.map((i) => running.get(i)!), sleep(200)]);
  }
}

/** The canaries through: finished, or (joint) verified and waiting to swap. */
async function passed(running: Map<number, Promise<void>>, canaries: number[], jointSwap: JointSwap | null): Promise<void> {
  for (;;) {
    if (canaries.every((i) => settled.has(running.get(i)!) || (jointSwap?.waiting(i) ?? false))) return;
    await Promise.race([...canaries.map((i) => running.get(i)!), sleep(200)]);
  }
}

const settled = new WeakSet<Promise<void>>();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `fleet: 4 targets: db1 done, db2 copy 45%, db3 waiting to swap, db4 not started` */
function fleetLine(targets: FleetTarget[], outcomes: TargetOutcome[]): string {
  const parts = targets.map((t, i) => {
    const o = outcomes[i];
    if (o.outcome !== 'not started' || t.state.status.timeline.length === 0) return `${t.label} ${o.outcome}`;
    const s = t.state.status;
    if (s.state === 'postponed') return `${t.label} verified, waiting to swap`;
    return `${t.label} ${s.phase}${s.phase === 'copy' ? ` ${s.percent.toFixed(0)}%` : ''}`;
  });
  return `fleet: ${targets.length} targets: ${parts.join(', ')}`;
}

const NO_WAY_BACK = '--revert-window: the change could not be reverted';

/** The fleet's verdict: nothing when every target is done; else one line naming what each target is left with. */
export function fleetFailure(outcomes: TargetOutcome[], jointCutover: boolean): UserError | null {
  const failed = outcomes.filter((o) => o.outcome === 'failed');
  if (!failed.length) return null;
  const first = failed.find((o) => !(o.error instanceof AbortedError)) ?? failed[0];
  const said = (first.error as Error)?.message ?? String(first.error);
  // The joint cut-over gave each target its revert window: say so, not "run without" one the operator never asked for.
  const why =
    jointCutover && said.startsWith(NO_WAY_BACK)
      ? `--joint-cutover swaps back through a revert window, which this change cannot have${said.slice(NO_WAY_BACK.length).replace(/; run without a revert window$/, '')}; run it without --joint-cutover`
      : said;
  const left = (what: TargetOutcome['outcome']) => outcomes.filter((o) => o.outcome === what).map((o) => o.label);
  const done = left('done');
  const tail = jointCutover
    ? `; every target has its old table (${[...left('swapped back').map((l) => `${l} swapped back`), ...left('not started'), ...failed.map((o) => o.label)].join(', ')})`
    : `; ${done.length ? `changed: ${done.join(', ')}; ` : ''}not changed: ${[...failed, ...outcomes.filter((o) => o.outcome === 'not started')].map((o) => o.label).join(', ')}`;
  return new UserError(`target ${first.label} failed (${why})${tail}`);
}

/** Marks `promise` settled once it is, so the scheduler can tell without awaiting it. */
function tracked(promise: Promise<void>): Promise<void> {
  void promise.finally(() => settled.add(promise));
  return promise;
}
