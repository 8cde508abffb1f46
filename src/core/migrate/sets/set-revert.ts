import type { RevertWindowOutcome } from '../../run/config.js';
import { UserError } from '../../engine/errors.js';
import type { RunState } from '../../run/run-state.js';
import type { EngineMigrations } from '../../engine/ports/migrations.js';
import { JointCutover } from './set-cutover.js';

/**
 * A set's revert window (several tables, one cut-over, then `--revert-window`). Each table's window
 * follows on its own, as one table's does; the set goes back as it went forward, every table in one
 * swap. Each attempt to go back is one `JointCutover` of the ways back, the n-th attempt of every
 * table meeting in the n-th round (the tables succeed or fail each round together, so their counts
 * agree): a revert asked of one table starts its round, and every other table, seeing the round
 * started, joins it. A window that ends ends them all, since the set could no longer go back at once.
 */
export class JointRevert {
  private readonly states = new Map<string, RunState>();
  private readonly rounds: JointCutover[] = [];
  private ended: { how: Exclude<RevertWindowOutcome['outcome'], 'reverted'>; message: string } | null = null;

  constructor(
    private readonly swapAll: EngineMigrations['jointCutover'],
    /** The set's tables, qualified. */
    readonly tables: readonly string[],
  ) {}

  /** A table's window is open (or resumed): it hears how the others' end from now on. */
  enlist(table: string, state: RunState): void {
    this.states.set(table, state);
    if (this.ended) this.endOne(state);
  }

  /** Whether another table started the `attempt`-th round: this table goes back with it. */
  started(attempt: number): boolean {
    return this.rounds[attempt] !== undefined;
  }

  /** A table's window ended without going back: the others end too, keeping the new schema as it does. */
  end(table: string, how: Exclude<RevertWindowOutcome['outcome'], 'reverted'>, why?: string): void {
    if (this.ended) return;
    const what = how === 'failed' ? `failed (${why})` : how === 'aborted' ? 'was aborted' : how === 'completed' ? 'was completed' : 'is over';
    this.ended = { how, message: `${table}'s revert window ${what}, and the set goes back only together` };
    for (const [other, state] of this.states) if (other !== table) this.endOne(state);
  }

  /** The meeting of every table's `attempt`-th swap back. */
  round(attempt: number): JointCutover {
    return (this.rounds[attempt] ??= new JointCutover(this.swapAll, this.tables, 'the set goes back together'));
  }

  /** A table that will not go back this time (its before-revert hook said no): the round fails for all, and every window goes on. */
  miss(attempt: number, table: string, error: Error): void {
    this.round(attempt).cancel(new UserError(`${table} did not go back (${error.message})`));
  }

  private endOne(state: RunState): void {
    const { how, message } = this.ended!;
    // Completed or over: the others complete as well. Failed or aborted: they stop, saying why.
    if (how === 'completed' || how === 'ended') state.completeRequested = true;
    else state.abortReason ??= message;
  }
}
