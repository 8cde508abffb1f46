import { sleep } from '../backoff.js';
import { formatDuration } from '../duration.js';
import { LeaseWatch } from './lease-watch.js';
import { entryTables, specProblem } from './spec.js';
import { bounded, type Launcher, type StageEvent, type StageExit, type StageProcess } from './stage-process.js';
import type { Attempt, QueueEvent, QueueRow, QueueSpec, QueueState, QueueStatus, QueueStore, Stage } from './types.js';
import { QueueWindow } from './window.js';

export interface RunnerOptions {
  /** Who claims: `user@host:pid:nonce`, kept on the entries it runs. */
  runner: string;
  /** Entries running at once on the server, whichever runner runs them. */
  maxConcurrent: number;
  /** `once`: start what is due now and wait for it; `drain`: until nothing is due or running; `daemon`: for ever. */
  mode: 'once' | 'drain' | 'daemon';
  /** When the runner stops (its own clock); a copy still going is stopped as a crash would, to resume from its checkpoint. */
  until?: Date;
  leaseSeconds: number;
  pollMs: number;
  /** Options every stage gets from the runner's own command line (replicas, hooks, report directory). */
  stageArgs: string[];
}

export interface RunnerDeps {
  store: QueueStore;
  launch: Launcher;
  /** The environment a stage needs to connect (the URL), never its arguments. */
  env: Record<string, string>;
  /** Whether the table's history has this entry's stage succeeding since `since`. */
  succeededSince(spec: QueueSpec, since: string): Promise<boolean>;
  /** What `shadowcut plan` says a migrate entry takes, in ms, or null when it cannot say. */
  estimateMs(spec: QueueSpec): Promise<number | null>;
  log(line: string): void;
  /** Each line a stage prints on stdout (`queue run --json` passes its JSON on). */
  stageOutput?: (entry: number, line: string) => void;
  /**
   * Enters in the table's history what the stage itself could not: its runner stopped it (to be
   * resumed), or failed the entry without running it. A stage records its own run.
   */
  record(row: QueueRow, outcome: 'suspended' | 'failure', line: string): Promise<void>;
  /** The runner's own hooks (`queue run --hooks-dir`), if any. */
  hook?: (event: QueueEvent, entry: { id: number; table: string; stage: string }, error?: string) => Promise<void>;
}

interface Running {
  row: QueueRow;
  status: QueueStatus;
  attempt: Attempt;
  process: StageProcess;
  resumed: boolean;
  cancelling: boolean;
  /** Why the runner stopped the stage itself, to be resumed later; null while it runs on. */
  suspended: string | null;
  /** When its lease was last renewed (this host's clock): a runner cut off from the database stops its stages before the lease lapses. */
  renewedAt: number;
  renewer: NodeJS.Timeout;
  /** Settles once its end is written (or lost). */
  done: Promise<void>;
}

/** Stages that keep a checkpoint: a run stopped midway goes on with --resume. */
const RESUMABLE: ReadonlySet<Stage> = new Set(['migrate', 'backfill']);
/** Stages with a dry run: without --execute they change nothing. */
const EXECUTED: ReadonlySet<Stage> = new Set(['migrate', 'backfill', 'contract']);
/** Stages that hold back outside `--window` by themselves; the others are only started inside it. */
const WINDOWED: ReadonlySet<Stage> = new Set(['migrate', 'backfill']);
const NO_CHECKPOINT = 'there is no checkpoint of an earlier';
/**
 * The phases in which a stage killed before its first checkpoint had changed nothing. A migration's
 * setup makes the shadow and its capture before that checkpoint; a backfill's setup saves it first.
 */
const BEFORE_CHANGES: Record<Stage, ReadonlySet<string>> = {
  migrate: new Set(['']),
  backfill: new Set(['', 'setup']),
  verify: new Set(),
  contract: new Set(),
};
/** Phases a stop at `--until` waits out: a swap and its cleanup are not cut short. */
const UNINTERRUPTED: ReadonlySet<string> = new Set(['cutover', 'cleanup', 'revert']);
/** A relayed request that takes longer than this has failed. */
const RELAY_MS = 60_000;

/**
 * Works through the queue: takes due entries in order under a lease, at most `maxConcurrent` on the
 * server, one per table, each in its window; runs each as its own `shadowcut <stage>` child, relays
 * the operators' requests to it, and writes its end. Deciding and claiming happen under the queue's
 * lock, so runners on several hosts share one queue and its limits.
 */
export class QueueRunner {
  private readonly running = new Map<number, Running>();
  private readonly estimates = new Map<number, number | null>();
  private failures = 0;
  /** Stages whose end has been written, counted so the loop knows one ended while it looked. */
  private endedStages = 0;
  private stopping = false;
  private readonly leases = new LeaseWatch();

  constructor(
    private readonly deps: RunnerDeps,
    private readonly options: RunnerOptions,
  ) {}

  /** SIGTERM: stop as at `--until`, now. */
  stop(): void {
    this.stopping = true;
  }

  /** Returns the number of entries that failed under this runner. */
  async run(): Promise<number> {
    let errors = 0;
    for (let first = true; ; first = false) {
      if (this.stopping || (this.options.until && Date.now() >= this.options.until.getTime())) {
        await this.suspendAll();
        break;
      }
      let started = 0;
      let leaseUndecided = false;
      const endedBefore = this.endedStages;
      try {
        const rows = await this.deps.store.list();
        await this.relay(rows);
        if (this.options.mode !== 'once' || first) {
          await this.estimate(rows);
          started = await this.deps.store.exclusive(() => this.startDue());
        }
        if (this.options.mode === 'drain') leaseUndecided = this.leases.undecided(rows, (id) => this.running.has(id), await this.deps.store.now());
        errors = 0;
      } catch (error) {
        // A failover or a restart: the stages go on, their leases are renewed on their own timers.
        this.deps.log(`the queue could not be read or written (${(error as Error).message}); trying again`);
        if (++errors >= 10 && this.running.size === 0 && this.options.mode !== 'daemon') throw error;
        started = -1;
      }
      // A stage that ended while the entries were read was still running in what was read, and the
      // entries after it were left waiting: look again before calling the queue idle.
      // A dead runner's entry is waited for until its lease lapses, and taken over then.
      if (this.options.mode !== 'daemon' && this.running.size === 0 && started === 0 && !leaseUndecided && this.endedStages === endedBefore) break;
      await Promise.race([sleep(this.options.pollMs), ...[...this.running.values()].map((r) => r.done)]);
    }
    return this.failures;
  }

  /** Carries out what operators asked of the entries it runs, and cancels queued entries asked to be. */
  private async relay(rows: QueueRow[]): Promise<void> {
    const { store } = this.deps;
    for (const row of rows) {
      const mine = this.running.get(row.id);
      if (!row.request) continue;
      if (!mine) {
        if (row.state === 'queued' && row.request === 'cancel') await store.transition(row.id, ['queued'], 'cancelled');
        continue;
      }
      if (row.request === 'cancel' && !mine.cancelling) {
        mine.cancelling = true;
        this.deps.log(`#${row.id}: cancelled; the stage stops at its next safe point and removes what it made`);
        mine.process.kill('SIGTERM');
      } else if (row.request === 'cutover' || row.request === 'revert') {
        // A set's cut-over is asked of each table (it swaps once all were); one table's revert takes the set back.
        let passed = true;
        const tables = entryTables(row.spec);
        for (const table of row.request === 'cutover' ? tables : tables.slice(0, 1)) {
          const relayed = await bounded(this.deps.launch([row.request, '--table', table], this.deps.env), RELAY_MS);
          this.deps.log(
            `#${row.id}: ${row.request} ${relayed.code === 0 ? 'passed on' : `not passed on: ${relayed.lastError || `exit ${relayed.code}`}`} (${table})`,
          );
          passed &&= relayed.code === 0;
        }
        if (passed) await store.request(row.id, null);
      }
    }
  }

  /**
   * Plans, outside the queue's lock (a plan copies a sample), for migrate entries that must fit a window or `--until`.
   * Not for a postponed entry: the plan runs the entry's ALTER on a probe table, and an entry held back
   * (maybe until someone has read it) must run nothing of its own before `queue retry` releases it.
   */
  private async estimate(rows: QueueRow[]): Promise<void> {
    for (const row of rows) {
      const fits = row.spec.window !== undefined || this.options.until !== undefined;
      if (row.state !== 'queued' || row.spec.postponed || row.spec.stage !== 'migrate' || row.status.attempts.length > 0 || !fits) continue;
      if (this.estimates.has(row.id)) continue;
      if (specProblem(row.spec) !== null) continue;
      this.estimates.set(row.id, await this.deps.estimateMs(row.spec));
    }
  }

  /** Under the queue's lock: starts the entries that are due, in order; returns how many it started. */
  private async startDue(): Promise<number> {
    const { store } = this.deps;
    const [rows, now] = [await store.list(), await store.now()];
    const alive = (r: QueueRow) => r.state === 'running' && (this.running.has(r.id) || (r.leaseUntil !== null && new Date(r.leaseUntil) > now));
    const busy = rows.filter(alive);
    let started = 0;
    for (const row of rows) {
      const orphan = row.state === 'running' && !alive(row);
      if (!(row.state === 'queued' && !row.spec.postponed) && !orphan) continue;
      const wrong = specProblem(row.spec);
      if (wrong) {
        await this.fail(row, `the entry cannot be run: ${wrong}`, orphan ? 'orphan' : 'queued');
        continue;
      }
      const waiting = await this.whyWait(row, rows, busy, now);
      if (waiting === false) continue;
      if (waiting) {
        // A dead runner's entry that cannot go on now is queued again, so the queue shows it waiting.
        if (orphan) await this.requeue(row, waiting);
        else if (waiting !== row.status.waiting) await store.wait(row.id, waiting);
        continue;
      }
      if (!(await store.claim(row.id, this.options.runner, this.options.leaseSeconds))) continue;
      busy.push({ ...row, state: 'running' });
      started++;
      await this.begin(row, orphan);
    }
    return started;
  }

  /** Why `row` may not start now, null when it may, false when its predecessor failed (so it failed too). */
  private async whyWait(row: QueueRow, rows: QueueRow[], busy: QueueRow[], now: Date): Promise<string | null | false> {
    const { spec } = row;
    if (spec.after !== undefined) {
      const before = rows.find((r) => r.id === spec.after);
      if (!before || before.state === 'failed' || before.state === 'cancelled') {
        await this.fail(row, `#${spec.after} ${before ? before.state : 'is gone'}, and this entry comes after it`, 'queued');
        return false;
      }
      if (before.state !== 'complete') return `waits for #${spec.after} (${before.state})`;
    }
    const window = spec.window ? new QueueWindow(spec.window, spec.tz) : null;
    const windowLeft = window ? window.msLeft(now) : Infinity;
    if (windowLeft === 0) return `outside its window ${window!.describe()}`;
    const tables = entryTables(spec);
    for (const other of busy) {
      const shared = other.id !== row.id && entryTables(other.spec).find((t) => tables.includes(t));
      if (shared) return `#${other.id} is running on ${shared}`;
    }
    const slots = busy.filter((r) => r.id !== row.id).length;
    if (slots >= this.options.maxConcurrent) return `${slots} of ${this.options.maxConcurrent} running (--max-concurrent)`;
    const room = Math.max(0, Math.min(windowLeft, this.options.until ? this.options.until.getTime() - Date.now() : Infinity));
    const needs = this.estimates.get(row.id);
    if (needs != null && row.status.attempts.length === 0 && needs > room) {
      return `needs about ${formatDuration(roundUp(needs))}, ${formatDuration(roundUp(room))} left`;
    }
    return null;
  }

  /** A claimed entry: a dead runner's contract is looked up rather than run again; anything else starts. */
  private async begin(row: QueueRow, orphan: boolean): Promise<void> {
    if (orphan && row.spec.stage === 'contract') {
      const since = row.status.attempts[row.status.attempts.length - 1]?.startedAt ?? row.createdAt;
      const status = { ...row.status, attempts: markLost(row.status.attempts) };
      if (await this.deps.succeededSince(row.spec, since)) {
        await this.deps.store.finish(row.id, this.options.runner, 'complete', status);
        this.deps.log(`#${row.id}: complete (its runner died after the contract; the history says so)`);
      } else {
        await this.fail(
          { ...row, status },
          'its runner died during the contract: look at the table and the backup, then "queue retry" or "queue cancel"',
          'held',
        );
      }
      return;
    }
    this.start(row, orphan);
  }

  private start(row: QueueRow, orphan: boolean, fresh = false): void {
    const { store } = this.deps;
    const last = row.status.attempts[row.status.attempts.length - 1];
    const previous = markLost(row.status.attempts);
    // Only a stage that was stopped (a dead runner, `--until`) goes on; one that ended by itself cleaned up.
    const resumed =
      !fresh && RESUMABLE.has(row.spec.stage) && last !== undefined && (last.outcome === undefined || last.outcome === 'suspended' || last.outcome === 'lost');
    const attempt: Attempt = { runner: this.options.runner, startedAt: new Date().toISOString() };
    // The swap belongs to an attempt: a new one starts without it (a resumed one finds it in its checkpoint).
    const status: QueueStatus = { attempts: [...previous, attempt] };
    this.deps.log(
      `#${row.id}: ${orphan ? 'its runner is gone; ' : ''}${resumed ? 'resuming' : 'starting'} ${row.spec.stage} on ${entryTables(row.spec).join(', ')}`,
    );
    const renew = () =>
      store.renew(row.id, this.options.runner, this.options.leaseSeconds, status).then(
        (held) => {
          if (held) entry.renewedAt = Date.now();
          else this.suspend(entry, 'its claim was taken over by another runner');
        },
        () => {
          if (Date.now() - entry.renewedAt > 0.8 * this.options.leaseSeconds * 1000)
            this.suspend(entry, 'its runner lost the database for longer than its lease');
        },
      );
    const onEvent = (e: StageEvent) => {
      const changed = (e.phase !== undefined && e.phase !== status.phase) || (e.swapped === true && !status.swapped);
      Object.assign(status, Object.fromEntries(Object.entries(e).filter(([, v]) => v !== undefined)));
      // Written at once: a runner that dies now leaves the next one the phase, and whether the swap was made.
      if (changed) void renew();
    };
    // The entry's number goes into the stage's history entry ("by ... (queue #N)").
    const env = { ...this.deps.env, ...(row.spec.tz ? { TZ: row.spec.tz } : {}), SHADOWCUT_QUEUE_ENTRY: String(row.id) };
    const entry: Running = {
      row,
      status,
      attempt,
      resumed,
      process: this.deps.launch(this.stageArgs(row.spec, resumed), env, onEvent, this.deps.stageOutput && ((line) => this.deps.stageOutput!(row.id, line))),
      cancelling: false,
      suspended: null,
      renewedAt: Date.now(),
      renewer: setInterval(() => void renew(), (this.options.leaseSeconds * 1000) / 3),
      done: Promise.resolve(),
    };
    entry.done = entry.process.exit
      .then((exit) => this.ended(entry, exit))
      .catch((error: Error) => this.deps.log(`#${row.id}: its end was not written: ${error.message}`))
      // Running until its end is written, so the loop does not see an idle queue and close the store under it.
      .finally(() => {
        if (this.running.get(row.id) === entry) this.running.delete(row.id);
        this.endedStages++;
      });
    this.running.set(row.id, entry);
    void this.emit('queue-start', row);
  }

  /**
   * The stage's argv: the runner's own options first, the queued ones last, so a queued option left
   * without its value fails the stage instead of swallowing --execute.
   */
  private stageArgs(spec: QueueSpec, resume: boolean): string[] {
    return [
      spec.stage,
      ...(EXECUTED.has(spec.stage) ? ['--execute'] : []),
      '--json',
      ...(resume ? ['--resume'] : []),
      ...(spec.window && WINDOWED.has(spec.stage) ? ['--window', spec.window] : []),
      ...(spec.postponeCutover ? ['--postpone-cutover'] : []),
      ...this.options.stageArgs,
      ...entryTables(spec).flatMap((table) => ['--table', table]),
      ...spec.args,
    ];
  }

  private suspend(r: Running, why: string): void {
    if (r.suspended) return;
    this.deps.log(`#${r.row.id}: ${why}; stopping its stage, to be resumed`);
    r.suspended = why;
    r.process.kill('SIGKILL');
  }

  private async ended(r: Running, exit: StageExit): Promise<void> {
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
    } else if (r.resumed && exit.lastError.includes(NO_CHECKPOINT)) {
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
      this.start({ ...row, status: { attempts } }, false, true);
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
  private async fail(row: QueueRow, why: string, from: 'queued' | 'orphan' | 'held'): Promise<void> {
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

  /** A dead runner's entry that must wait: claimed, then queued again with its attempt marked lost. */
  private async requeue(row: QueueRow, waiting: string): Promise<void> {
    if (!(await this.deps.store.claim(row.id, this.options.runner, this.options.leaseSeconds))) return;
    const attempts = markLost(row.status.attempts);
    await this.deps.store.finish(row.id, this.options.runner, 'queued', { ...row.status, attempts, waiting });
  }

  /** The history entry; one not written is logged, and changes nothing of the entry. */
  private async note(row: QueueRow, outcome: 'suspended' | 'failure', line: string): Promise<void> {
    await this.deps.record(row, outcome, line).catch((failed: Error) => this.deps.log(`#${row.id}: not entered in the history: ${failed.message}`));
  }

  /** Runs the runner's hook for `event`; a hook that fails is logged, and changes nothing of the entry. */
  private async emit(event: QueueEvent, row: QueueRow, error?: string): Promise<void> {
    if (!this.deps.hook) return;
    await this.deps.hook(event, { id: row.id, table: entryTables(row.spec).join(','), stage: row.spec.stage }, error).catch((failed: Error) => {
      this.deps.log(`#${row.id}: the ${event} hook failed: ${failed.message}`);
    });
  }

  /**
   * `--until` has come (or SIGTERM): copies and backfills stop as a crash would (their checkpoints and
   * capture stay, and the next runner resumes them), once out of a swap or its cleanup; a stage being
   * cancelled finishes its abort; verify and contract are short and finish. Leases are renewed meanwhile.
   */
  private async suspendAll(): Promise<void> {
    for (const r of this.running.values()) {
      if (!RESUMABLE.has(r.row.spec.stage) || r.cancelling) continue;
      while (UNINTERRUPTED.has(r.status.phase ?? '') && this.running.has(r.row.id)) await sleep(200);
      this.suspend(r, this.stopping ? 'its runner was stopped' : "stopped at the runner's --until");
    }
    await Promise.all([...this.running.values()].map((r) => r.done));
  }
}

/** Attempts whose runner died before writing their end: lost. */
function markLost(attempts: Attempt[]): Attempt[] {
  return attempts.map((a) => (a.outcome ? a : { ...a, outcome: 'lost' }));
}

/** Up to the next whole second, or minute from ten minutes on, so a plan's estimate reads as what it is. */
function roundUp(ms: number): number {
  const unit = ms < 600_000 ? 1000 : 60_000;
  return Math.ceil(ms / unit) * unit;
}
