import { sleep } from '../engine/retry/backoff.js';
import { EntryEnds } from './entry-end.js';
import { LeaseWatch } from './lease-watch.js';
import type { RunnerDeps, RunnerOptions, Running } from './runner-types.js';
import { startStage, suspendStage, type StageHost } from './running-stage.js';
import { entryTables, specProblem } from './spec.js';
import { bounded } from './stage-process.js';
import { EXECUTED, markLost, RESUMABLE, UNINTERRUPTED } from './stages.js';
import type { QueueRow } from '../engine/ports/queue.js';
import { whyWait } from './wait-reason.js';

export type { RunnerDeps, RunnerOptions } from './runner-types.js';

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
  /** Stages whose end has been written, counted so the loop knows one ended while it looked. */
  private endedStages = 0;
  private stopping = false;
  private readonly leases = new LeaseWatch();
  /** What the runner said it will not go by, so each is said once. */
  private readonly distrusted = new Set<string>();
  private readonly ends: EntryEnds;
  private readonly host: StageHost;

  constructor(
    private readonly deps: RunnerDeps,
    private readonly options: RunnerOptions,
  ) {
    this.ends = new EntryEnds(deps, options, (row) => this.start(row, false, true));
    this.host = { deps, options, ends: this.ends, running: this.running, stageEnded: () => this.endedStages++ };
  }

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
        this.distrust(rows);
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
    return this.ends.failures;
  }

  /** Carries out what operators asked of the entries it runs, and cancels queued entries asked to be. */
  private async relay(rows: QueueRow[]): Promise<void> {
    const { store } = this.deps;
    for (const row of rows) {
      const mine = this.running.get(row.id);
      // Only a sealed request is the operator's: the plain column is anyone's who can write the table.
      if (!row.request || row.refused) continue;
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
   * Says, once each, what the runner does not go by: plain columns another account changed (the
   * sealed values count), and entries nothing of which is proven shadowcut's.
   */
  private distrust(rows: QueueRow[]): void {
    for (const row of rows) {
      const line = row.refused
        ? `#${row.id}: ${row.refused}; it is not run, resumed or waited on`
        : row.changed &&
          `#${row.id}: ${row.changed.join(', ')} changed by another account after shadowcut wrote the entry; going by what shadowcut sealed (${row.state}${row.request ? `, ${row.request} asked` : ''})`;
      // Once per document: a holder's next write puts the columns right, and a new change is said again.
      if (!line || this.distrusted.has(`${row.generation} ${line}`)) continue;
      this.distrusted.add(`${row.generation} ${line}`);
      this.deps.log(line);
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
      if (row.refused || row.state !== 'queued' || row.spec.postponed || row.spec.stage !== 'migrate' || row.status.attempts.length > 0 || !fits) continue;
      if (this.estimates.has(row.id)) continue;
      if (specProblem(row.spec) !== null) continue;
      this.estimates.set(row.id, await this.deps.estimateMs(row.spec));
    }
  }

  /** Under the queue's lock: starts the entries that are due, in order; returns how many it started. */
  private async startDue(): Promise<number> {
    const { store } = this.deps;
    const [rows, now] = [await store.list(), await store.now()];
    // A lease holds up to its last instant: the store takes it only once it has passed (lease_until < now).
    const alive = (r: QueueRow) => this.running.has(r.id) || (!r.refused && r.state === 'running' && r.leaseUntil !== null && new Date(r.leaseUntil) >= now);
    const busy = rows.filter(alive);
    let started = 0;
    for (const row of rows) {
      if (row.refused) {
        // Nothing in it is proven: never run, and never waited on. One that says it is queued is failed, saying why.
        if (row.state === 'queued' && !this.running.has(row.id)) await this.ends.refuse(row);
        continue;
      }
      const orphan = row.state === 'running' && !alive(row);
      if (!(row.state === 'queued' && !row.spec.postponed) && !orphan) continue;
      const wrong = specProblem(row.spec);
      if (wrong) {
        await this.ends.fail(row, `the entry cannot be run: ${wrong}`, orphan ? 'orphan' : 'queued');
        continue;
      }
      const waiting = await whyWait(row, {
        rows,
        busy,
        now,
        options: this.options,
        estimates: this.estimates,
        fail: (failed, why) => this.ends.fail(failed, why, 'queued'),
      });
      if (waiting === false) continue;
      if (waiting) {
        // A dead runner's entry that cannot go on now is queued again, so the queue shows it waiting.
        if (orphan) await this.ends.requeue(row, waiting);
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

  /**
   * A claimed entry: one whose change the history shows this very entry made is complete, and a dead
   * runner's contract is looked up, rather than run again; anything else starts.
   */
  private async begin(row: QueueRow, orphan: boolean): Promise<void> {
    if (!orphan && EXECUTED.has(row.spec.stage) && (await this.deps.ranBefore(row))) {
      await this.deps.store.finish(row.id, this.options.runner, 'complete', row.status);
      this.deps.log(
        `#${row.id}: complete: the history of ${entryTables(row.spec).join(', ')} has this entry's ${row.spec.stage} succeeding already ` +
          '(an older document of the entry was put back); not run again',
      );
      return;
    }
    if (orphan && row.spec.stage === 'contract') {
      const since = row.status.attempts[row.status.attempts.length - 1]?.startedAt ?? row.createdAt;
      const status = { ...row.status, attempts: markLost(row.status.attempts) };
      if (await this.deps.succeededSince(row.spec, since)) {
        await this.deps.store.finish(row.id, this.options.runner, 'complete', status);
        this.deps.log(`#${row.id}: complete (its runner died after the contract; the history says so)`);
      } else {
        await this.ends.fail(
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
    startStage(this.host, row, orphan, fresh);
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
      suspendStage(this.deps, r, this.stopping ? 'its runner was stopped' : "stopped at the runner's --until");
    }
    await Promise.all([...this.running.values()].map((r) => r.done));
  }
}
