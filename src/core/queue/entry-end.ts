import type { RunnerDeps, RunnerOptions, Running } from './runner-types.js';
import { entryTables } from './spec.js';
import type { StageExit } from './stage-process.js';
import { BEFORE_CHANGES, markLost } from './stages.js';
import { EXIT_NO_CHECKPOINT } from '../engine/errors.js';
import type { QueueEvent } from './types.js';
import type { QueueRow, QueueState } from '../engine/ports/queue.js';

/**
 * How an entry's end is written: a stage's exit, a resumed stage that found no checkpoint, an entry
 * failed without running, a dead runner's entry queued again; each with its history entry and hook.
 * Kept apart from the runner, which only decides what starts when.
 */
export class EntryEnds {
  /** Entries that failed under this runner. */
  failures = 0;

  constructor(
    private readonly deps: RunnerDeps,
    private readonly options: RunnerOptions,
    /** Starts an entry afresh (not resumed): its dead attempt had changed nothing. */
    private readonly restart: (row: QueueRow) => void,
  ) {}

  async ended(r: Running, exit: StageExit): Promise<void> {
    const { row, status, attempt } = r;
    clearInterval(r.renewer);
    attempt.endedAt = new Date().toISOString();
    let state: QueueState;
    if (r.suspended) {
      attempt.outcome = 'suspended';
      status.waiting = `${r.suspended}; the next "queue run" resumes it from its checkpoint`;
      state = 'queued';
    } else if (exit.code === 0) {
      attempt.outcome = 'complete';
      state = 'complete';
    } else if (r.cancelling && exit.code === 3) {
      attempt.outcome = 'cancelled';
      state = 'cancelled';
    } else if (r.resumed && exit.code === EXIT_NO_CHECKPOINT) {
      return this.noCheckpoint(r);
    } else {
      attempt.outcome = 'failed';
      attempt.error = `exit ${exit.code ?? exit.signal}: ${exit.lastError}`;
      status.lastError = attempt.error;
      state = 'failed';
    }
    if (state === 'failed') this.failures++;
    const written = await this.deps.store.finish(row.id, this.options.runner, state, status);
    this.deps.log(`#${row.id}: ${state}${attempt.error ? ` (${attempt.error})` : ''}${written ? '' : ' (not written: the claim was lost)'}`);
    if (state === 'queued' && written) await this.note(row, 'suspended', status.waiting!);
    const event: QueueEvent = state === 'complete' ? 'queue-complete' : state === 'queued' ? 'queue-suspend' : 'queue-failure';
    await this.emit(event, row, state === 'cancelled' ? 'cancelled' : (attempt.error ?? status.waiting));
  }

  /**
   * A resumed stage found no checkpoint: the attempt before ended after its cleanup (the history has
   * this entry's stage succeeding: complete), or before it changed anything (run it afresh). Anything
   * else could run a change twice, so it stops and says so.
   */
  private async noCheckpoint(r: Running): Promise<void> {
    const { row, status } = r;
    const attempts = status.attempts.slice(0, -1);
    const since = attempts[attempts.length - 1]?.startedAt ?? r.attempt.startedAt;
    r.attempt.endedAt = new Date().toISOString();
    // The dead attempt had swapped the tables and was stopped in its cleanup, which removes the checkpoint
    // before the stage writes its history: the change is made.
    if (row.status.swapped || (await this.deps.succeededSince(row.spec, since))) {
      r.attempt.outcome = 'complete';
      await this.deps.store.finish(row.id, this.options.runner, 'complete', status);
      this.deps.log(
        `#${row.id}: complete (the interrupted attempt had ${row.status.swapped ? 'cut over; only its cleanup was cut short' : 'finished; the history says so'})`,
      );
      await this.emit('queue-complete', row);
      return;
    }
    const phase = row.status.phase ?? '';
    if (BEFORE_CHANGES[row.spec.stage].has(phase)) {
      this.restart({ ...row, status: { attempts } });
      return;
    }
    r.attempt.outcome = 'failed';
    r.attempt.error =
      `the interrupted attempt (last seen in "${phase}") left neither a checkpoint nor a history entry: look at ${entryTables(row.spec).join(', ')} ` +
      '("shadowcut status --table" with the URL names what a dead run left; "shadowcut cleanup" removes it), then "queue retry" or "queue cancel"';
    status.lastError = r.attempt.error;
    this.failures++;
    await this.deps.store.finish(row.id, this.options.runner, 'failed', status);
    this.deps.log(`#${row.id}: failed (${r.attempt.error})`);
    await this.note(row, 'failure', r.attempt.error);
    await this.emit('queue-failure', row, r.attempt.error);
  }

  /**
   * Fails an entry, saying why: a queued one, a dead runner's (claimed first), or one this runner
   * already holds.
   */
  async fail(row: QueueRow, why: string, from: 'queued' | 'orphan' | 'held'): Promise<void> {
    const { store } = this.deps;
    const { runner, leaseSeconds } = this.options;
    const status = { ...row.status, waiting: undefined, lastError: why };
    const claimed = from !== 'orphan' || (await store.claim(row.id, runner, leaseSeconds));
    const done =
      from === 'queued' ? await store.transition(row.id, ['queued'], 'failed', status) : claimed && (await store.finish(row.id, runner, 'failed', status));
    if (!done) return;
    this.failures++;
    this.deps.log(`#${row.id}: failed: ${why}`);
    await this.note(row, 'failure', why);
    await this.emit('queue-failure', row, why);
  }

  /**
   * An entry nothing of which is proven shadowcut's, that says it is queued: failed with the reason,
   * never run. One whose completion this host has seen is written back complete instead: only an
   * older document of it can say it is queued.
   */
  async refuse(row: QueueRow): Promise<void> {
    const why = `the entry cannot be run: ${row.refused}`;
    const state = await this.deps.store.refuse(row.id, 'failed', why, true);
    if (state === 'complete') this.deps.log(`#${row.id}: complete, as this host saw it end (${row.refused})`);
    if (state !== 'failed') return;
    this.failures++;
    this.deps.log(`#${row.id}: failed: ${why}`);
    // Its table is named by an unproven document: no history entry for it.
    if (!row.spec.unproven) await this.note(row, 'failure', why);
    await this.emit('queue-failure', row, why);
  }

  /** A dead runner's entry that must wait: claimed, then queued again with its attempt marked lost. */
  async requeue(row: QueueRow, waiting: string): Promise<void> {
    if (!(await this.deps.store.claim(row.id, this.options.runner, this.options.leaseSeconds))) return;
    const attempts = markLost(row.status.attempts);
    await this.deps.store.finish(row.id, this.options.runner, 'queued', { ...row.status, attempts, waiting });
  }

  /** The history entry; one not written is logged, and changes nothing of the entry. */
  private async note(row: QueueRow, outcome: 'suspended' | 'failure', line: string): Promise<void> {
    await this.deps.record(row, outcome, line).catch((failed: Error) => this.deps.log(`#${row.id}: not entered in the history: ${failed.message}`));
  }

  /** Runs the runner's hook for `event`; a hook that fails is logged, and changes nothing of the entry. */
  async emit(event: QueueEvent, row: QueueRow, error?: string): Promise<void> {
    if (!this.deps.hook) return;
    // A refused entry's table and stage are whatever was written into the row (`orders;curl ...`): a
    // hook, a shell script, gets its id alone, which shadowcut's own number is.
    const named = row.refused ? {} : { table: entryTables(row.spec).join(','), stage: row.spec.stage };
    await this.deps.hook(event, { id: row.id, ...named }, error).catch((failed: Error) => {
      this.deps.log(`#${row.id}: the ${event} hook failed: ${failed.message}`);
    });
  }
}
