import type { Reporter } from '../report/reporter.js';
import { flagHolds } from '../run/flag-files.js';
import type { FleetHold, FleetTarget } from './types.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The fleet's joint cut-over (`--joint-cutover`). Servers share no transaction, so "all or none" is
 * made of two things each target already has: a postponed cut-over (verified, then kept in sync until
 * told) and a revert window (after its swap, the old table follows the new one and can take its place
 * again without losing a write). Every target runs as a joint target with a window: verified, it waits
 * for the fleet alone (a `shadowcut cutover` sent to one target does not swap it apart from the
 * others). Once every one is waiting, and the operator's own hold is off (`--postpone-cutover` until
 * `shadowcut cutover` reaches any target, the flag file until it is gone: as for one run), all are told
 * to swap at the same moment. If every swap is made, the windows are ended (or kept, when the operator
 * asked for one); if any target cannot swap (its lock not had within its attempts, a failure), every
 * target that did is told to swap back, so none is left with the new table. A failure before the swap
 * stops every target at its next safe point, with nothing swapped.
 */
export class JointSwap {
  private released = false;
  private readonly failures = new Map<number, unknown>();
  private readonly swappedBack = new Set<number>();

  constructor(
    private readonly targets: FleetTarget[],
    private readonly reporter: Reporter,
    private readonly hold: FleetHold,
  ) {}

  /** Verified and kept in sync, waiting for the swap. */
  waiting(i: number): boolean {
    return this.targets[i].state.status.state === 'postponed';
  }

  /** Swapped and following back in its window. */
  private swapped(i: number): boolean {
    return this.targets[i].state.status.phase === 'revert window';
  }

  wentBack(i: number): boolean {
    return this.swappedBack.has(i);
  }

  /** A target's run ended without waiting for the swap (it had nothing to swap): the fleet cannot swap it with the others. */
  finished(i: number): void {
    if (!this.released) this.failed(i, new Error('its run ended before the joint swap'));
  }

  failed(i: number, error: unknown): void {
    this.failures.set(i, error);
    if (!this.released) this.abortAll(`target ${this.targets[i].label} failed (${(error as Error)?.message ?? String(error)}), and the fleet swaps together`);
  }

  /** Every target still at work stops at its next safe point, leaving its table as it was. */
  abortAll(reason: string): void {
    for (const t of this.targets) t.state.abortReason ??= reason;
  }

  /** The first `count` targets were started: once each is waiting (or one failed), and the operator lets them, all swap, or none does. */
  async swapWhenAllWaiting(count: number, keepWindow: boolean): Promise<void> {
    const started = [...Array(count).keys()];
    while (!started.every((i) => this.waiting(i) || this.failures.has(i))) await sleep(100);
    let said: string | null = null;
    for (let why = this.heldBy(started); why !== null && !this.failures.size; why = this.heldBy(started)) {
      if (why !== said) this.reporter.info(`fleet: all ${count} targets verified and in sync; ${(said = why)}`);
      await sleep(100);
    }
    if (this.failures.size) return this.abortAll('another target failed before every target was verified');
    this.released = true;
    this.reporter.info(`fleet: all ${count} targets verified and in sync; every one swaps now`);
    for (const i of started) this.targets[i].state.fleetReleased = true;
    while (!started.every((i) => this.swapped(i) || this.failures.has(i))) await sleep(50);
    if (this.failures.size) {
      const failed = [...this.failures.keys()].map((i) => this.targets[i].label);
      this.reporter.warn(`fleet: ${failed.join(', ')} could not swap: every target that did swaps back`);
      for (const i of started) {
        if (!this.swapped(i)) continue;
        this.swappedBack.add(i);
        this.targets[i].state.revertRequested = true;
      }
      return;
    }
    this.reporter.info(`fleet: all ${count} targets swapped`);
    if (!keepWindow) for (const i of started) this.targets[i].state.completeRequested = true;
  }

  /**
   * What holds the swap on the operator's behalf, as it would hold one target's run (postponement.ts):
   * nothing once `shadowcut cutover` reached any target; else `--postpone-cutover`, or the flag file while it is there.
   */
  private heldBy(started: number[]): string | null {
    if (started.some((i) => this.targets[i].state.cutoverRequested)) return null;
    const release = `run "shadowcut cutover --table ${this.hold.table}" to swap every target`;
    if (this.hold.postponeCutover) return `cut-over postponed (--postpone-cutover): ${release}`;
    const file = this.hold.flagFile;
    const first = this.targets[started[0]].state;
    if (file !== undefined && flagHolds('--postpone-cutover-flag-file', file, first, (m) => this.reporter.warn(`fleet: ${m}`))) {
      return `cut-over postponed while ${file} exists: remove it, or ${release}`;
    }
    return null;
  }
}
