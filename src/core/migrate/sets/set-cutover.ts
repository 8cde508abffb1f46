import type { Applier } from '../applier.js';
import type { RunContext } from '../context.js';
import type { Cutover } from '../cutover/cutover.js';
import { AbortedError, CLOSING, ignoreFailure } from '../../engine/errors.js';
import { retryLockTimeouts } from '../../engine/retry/retry.js';
import type { EngineMigrations } from '../../engine/ports/migrations.js';
import type { RunState } from '../../run/run-state.js';
import { WriterWait } from '../cutover/writer-wait.js';

/** One table of a set, as its run reaches the swap. */
export interface JointMember {
  ctx: RunContext;
  applier: Applier;
  cutover: Cutover;
}

/**
 * Several tables, one cut-over (`migrate` with several --table/--alter pairs). Each table has a run
 * of its own (claim, checkpoint, copy, change source, verification); they meet twice: after their
 * checks, so that none makes anything before every table was accepted, and at the swap, which the
 * last to arrive makes for all in one lock set (the engine's `jointCutover`). A member that fails
 * fails the set: the others stop at their next safe point and clean up, so every table stays as it was.
 */
export class JointCutover {
  private readonly checked = new Set<string>();
  private readonly arrived: (JointMember & { idle: Promise<void> })[] = [];
  private failure: Error | null = null;
  private cause: unknown = null;
  /** The members' live states, whose abort stops each at its next safe point. */
  private readonly states = new Set<RunState>();
  private go = false;
  /** Members that need no swap (resumed after theirs was made). */
  private left = 0;
  private swap: Promise<{ lockedMs: number; writerWaitMs: number }> | null = null;

  constructor(
    private readonly swapAll: EngineMigrations['jointCutover'],
    /** The set's tables, qualified. */
    readonly tables: readonly string[],
    /** Why every table of the set takes the copy. */
    readonly why: string,
  ) {}

  /**
   * A member's run failed or was stopped: the others must not swap without it, and stop at their
   * next safe point rather than copy on for nothing (an abort of their own, as the operator's).
   */
  fail(table: string, error: unknown): void {
    if (this.failure) return;
    this.cause = error;
    this.failure = new AbortedError(`${table} of the set failed (${(error as Error).message ?? String(error)}); every table is left as it was`);
    for (const state of this.states) state.abortReason ??= this.failure.message;
  }

  /** This swap will not be made, though no member failed: each member that joins it meets `error`, and nothing is aborted. */
  cancel(error: Error): void {
    this.failure ??= error;
  }

  /** The first member's failure, which stopped the others: what the set failed of. */
  get firstFailure(): unknown {
    return this.cause;
  }

  /** After a member's checks: waits, following its stream, until every member passed theirs. */
  async accepted(ctx: RunContext): Promise<void> {
    this.checked.add(ctx.plan.table);
    this.states.add(ctx.state);
    if (this.failure) ctx.state.abortReason ??= this.failure.message;
    // No stream is open yet: the runs wait with nothing to apply.
    await this.waitFor(ctx, null, () => this.checked.size === this.tables.length);
  }

  /** A resumed member whose table was swapped already (a set swapped in part): the rest swap without it. */
  leave(): void {
    this.left++;
    this.goWhenAllHere();
  }

  /** A member at the swap: the last to arrive makes it for all, the others wait with their streams parked. */
  async join(member: JointMember): Promise<{ lockedMs: number; writerWaitMs: number }> {
    if (this.failure) throw this.failure;
    let parked!: () => void;
    const idle = new Promise<void>((resolve) => (parked = resolve));
    this.arrived.push({ ...member, idle });
    this.goWhenAllHere();
    // Until the leader goes, each keeps applying its stream; then its applier is the leader's to drive.
    await this.waitFor(member.ctx, member.applier, () => this.go);
    parked();
    return this.swap!;
  }

  private goWhenAllHere(): void {
    if (this.go || this.arrived.length === 0 || this.arrived.length < this.tables.length - this.left) return;
    this.go = true;
    this.swap = this.run();
  }

  private async waitFor(ctx: RunContext, applier: Applier | null, done: () => boolean): Promise<void> {
    while (!done()) {
      if (this.failure) throw this.failure;
      ctx.checkAbort();
      // Once the leader goes, a failure here is its to meet: it drives this applier from now on.
      if (applier) await applier.waitApplying(100).catch((error) => (this.go ? undefined : Promise.reject(error)));
      else await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async run(): Promise<{ lockedMs: number; writerWaitMs: number }> {
    // In the set's order, whatever the order of arrival: the engine locks and swaps them so.
    const order = (m: JointMember) => this.tables.indexOf(m.ctx.plan.table);
    const members = [...this.arrived].sort((a, b) => order(a) - order(b));
    // A member still in its last wait would apply while the leader drives its applier.
    await Promise.all(members.map((m) => m.idle));
    const lead = members[0].ctx;
    // A session lost before the swap's point of no return (the server restarted, a connection killed)
    // left every table as it was: the whole cut-over is tried again once the server answers, on new
    // sessions, as a single table's is (cutover/cutover.ts).
    return lead.transient(`the cut-over of ${members.length} tables`, () => this.attempts(members));
  }

  private async attempts(members: JointMember[]): Promise<{ lockedMs: number; writerWaitMs: number }> {
    const lead = members[0].ctx;
    const probes = await Promise.all(members.map((m) => m.ctx.migration.openLockProbe()));
    let writerWaitMs = 0;
    try {
      const { lockedMs } = await retryLockTimeouts(
        lead,
        {
          what: `the cut-over of ${members.length} tables`,
          attempts: lead.config.cutoverAttempts,
          starting: (attempt) => {
            for (const m of members) {
              m.applier.lockAttemptStarting();
              m.ctx.state.status.cutoverAttempts = m.ctx.result.cutoverAttempts = attempt;
            }
          },
          failed: () => members.forEach((m) => m.applier.lockAttemptFailed()),
          wait: async (ms) => {
            await Promise.all(members.map((m) => m.applier.waitApplying(ms)));
          },
        },
        async () => {
          for (const m of members) await m.cutover.ready();
          // Readying one table took time in which the others' streams moved on: level them all again.
          for (const m of members) await m.applier.catchUp();
          const writers = probes.map((probe, i) => new WriterWait(probe, members[i].ctx.state.samples));
          try {
            const parts = members.map((m) => ({ migration: m.ctx.migration, catchUp: m.cutover.catchUpAndCompare }));
            return await this.swapAll(parts, lead.config.lockTimeoutMs, lead.config.seams);
          } finally {
            for (const w of writers) writerWaitMs = Math.max(writerWaitMs, await w.stop());
          }
        },
      );
      return { lockedMs, writerWaitMs };
    } finally {
      await Promise.all(probes.map((p) => p.close().catch(ignoreFailure(CLOSING))));
    }
  }
}
