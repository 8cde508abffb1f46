import { backoffMs, sleep } from './backoff.js';
import { ChangeBuffer } from './change-buffer.js';
import { ChunkSizer } from './chunk-sizer.js';
import { AbortedError, LockTimeoutError, UniqueViolationError, UserError } from './errors.js';
import { silentReporter, type Reporter } from './reporter.js';
import type {
  CatchUp,
  ChangeStream,
  CheckResult,
  Engine,
  Key,
  KeyRange,
  MigrationRequest,
  Plan,
  Position,
  Session,
} from './types.js';
import { verify } from './verify.js';

export interface MigrateOptions {
  execute: boolean;
  /** Target duration of one copy chunk. */
  chunkTimeMs: number;
  /** How long the cut-over (and the checksum's brief lock) may wait for its locks. */
  lockTimeoutMs: number;
  cutoverAttempts: number;
  dropOld: boolean;
  /** Keys applied per statement. */
  applyBatch: number;
  /** Rows per checksum chunk. */
  checksumChunkRows: number;
  reporter: Reporter;
  /** Resolves or rejects the run from outside (Ctrl-C). */
  signal?: AbortSignal;
}

/** Most keys applied in one call when a unique conflict makes batches go together. */
const JOINT_APPLY_LIMIT = 20_000;

export const defaultOptions: MigrateOptions = {
  execute: false,
  chunkTimeMs: 100,
  lockTimeoutMs: 500,
  cutoverAttempts: 10,
  dropOld: false,
  applyBatch: 500,
  checksumChunkRows: 20_000,
  reporter: silentReporter,
};

export interface MigrateResult {
  plan: Plan;
  checks: CheckResult[];
  executed: boolean;
  rowsCopied: number;
  changesApplied: number;
  cutoverAttempts: number;
  cutoverLockedMs: number;
  checksumRounds: number;
  durationMs: number;
}

/**
 * The phase machine: checks -> setup -> copy (stream running) -> catch-up -> verify -> cutover -> cleanup.
 * Copy and apply run in one loop, never at once, so a chunk and an apply never touch the same keys
 * concurrently (DESIGN.md invariant 3) without any per-key locking of our own.
 */
export async function migrate(
  engine: Engine,
  request: MigrationRequest,
  partial: Partial<MigrateOptions> = {},
): Promise<MigrateResult> {
  const options: MigrateOptions = { ...defaultOptions, ...partial };
  const started = Date.now();

  const plan = await engine.prepare(request);
  const checks = await engine.checks(plan);
  const failed = checks.filter((c) => !c.ok);
  const result: MigrateResult = {
    plan,
    checks,
    executed: false,
    rowsCopied: 0,
    changesApplied: 0,
    cutoverAttempts: 0,
    cutoverLockedMs: 0,
    checksumRounds: 0,
    durationMs: 0,
  };
  if (failed.length > 0) throw new UserError(failed.map((c) => c.message).join('; '));
  if (!options.execute) return result;

  const run = new Run(engine, plan, options, result);
  await run.execute();
  result.executed = true;
  result.durationMs = Date.now() - started;
  return result;
}

class Run {
  private readonly buffer = new ChangeBuffer();
  private stream: ChangeStream | null = null;
  private readonly report: Reporter;
  private copyStarted = 0;
  private appliedUnderLock: Key[] = [];
  private phase = 'setup';

  constructor(
    private readonly engine: Engine,
    private readonly plan: Plan,
    private readonly options: MigrateOptions,
    private readonly result: MigrateResult,
  ) {
    this.report = options.reporter;
  }

  async execute(): Promise<void> {
    let cutOver = false;
    try {
      this.enter('setup');
      await this.engine.createShadow(this.plan);
      this.stream = await this.engine.openChanges(this.plan, this.buffer);
      this.buffer.advance(this.stream.start);

      this.enter('copy');
      await this.copy();
      // Level first: a unique index built in afterCopy must not meet a value that only looks
      // duplicated because a change moving it is still unapplied.
      await this.catchUpUnlocked();
      await this.retryingUniqueConflicts(() => this.engine.afterCopy(this.plan));

      this.enter('catch-up');
      await this.catchUpUnlocked();

      this.enter('verify');
      this.result.checksumRounds = await verify(this.engine, this.plan, {
        catchUp: this.catchUpLocked,
        lockTimeoutMs: this.options.lockTimeoutMs,
        chunkRows: this.options.checksumChunkRows,
        between: () => this.applyPending(),
        repair: (range) => this.copyRange(range),
        withLockRetries: (fn) => this.withLockRetries('checksum lock', fn),
        reporter: this.report,
        abort: () => this.checkAbort(),
      });

      this.enter('cutover');
      const { lockedMs } = await this.withLockRetries('cut-over', async () => {
        await this.catchUpUnlocked();
        return this.engine.cutover(this.plan, {
          lockTimeoutMs: this.options.lockTimeoutMs,
          catchUp: this.catchUpLocked,
        });
      });
      cutOver = true;
      this.result.cutoverLockedMs = lockedMs;
      this.report.info(`cut-over done, writers blocked for ${lockedMs} ms`, { lockedMs });
    } finally {
      await this.stream?.stop().catch(() => {});
      this.enter('cleanup');
      await this.engine.cleanup(this.plan, { dropOld: this.options.dropOld, cutOver });
      this.report.close();
    }
    this.enter('done');
  }

  private enter(phase: string): void {
    this.phase = phase;
    this.report.phase(phase);
  }

  private checkAbort(): void {
    this.buffer.check();
    if (this.options.signal?.aborted) throw new AbortedError(String(this.options.signal.reason ?? 'interrupted'));
  }

  private async copy(): Promise<void> {
    const sizer = new ChunkSizer(this.options.chunkTimeMs);
    this.copyStarted = Date.now();
    let after: Key | null = null;
    for (;;) {
      this.checkAbort();
      await this.applyPending();
      const upTo = await this.engine.nextBoundary(this.plan, after, sizer.rows);
      const range: KeyRange = { after, upTo };
      const t0 = performance.now();
      const rows = await this.copyRange(range);
      sizer.record(rows, performance.now() - t0);
      this.result.rowsCopied += rows;
      this.progress();
      if (upTo === null) return;
      after = upTo;
    }
  }

  private copyRange(range: KeyRange): Promise<number> {
    return this.retryingUniqueConflicts(() => this.engine.copyRange(this.plan, range));
  }

  /**
   * A unique conflict while copying or indexing may be transient: the shadow row holding the value
   * is stale and its change is in the stream. Catch up and retry once; a conflict that survives is in
   * the data itself, and the new schema cannot hold it.
   */
  private async retryingUniqueConflicts<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (error) {
      if (!(error instanceof UniqueViolationError)) throw error;
      await this.catchUpUnlocked();
      try {
        return await step();
      } catch (again) {
        if (again instanceof UniqueViolationError) throw new UserError(`the rows violate a unique key of the new schema: ${again.message}`);
        throw again;
      }
    }
  }

  /** Apply whatever the stream has delivered so far, in batches. */
  private async applyPending(session?: Session): Promise<Position | null> {
    let position: Position | null = null;
    for (;;) {
      const batch = this.buffer.take(this.options.applyBatch);
      if (batch.keys.length > 0) {
        const joint = await this.applyBatch(batch.keys, session);
        if (joint) batch.position = joint.position;
      }
      if (batch.position) position = batch.position;
      if (this.buffer.size === 0) break;
    }
    if (position && !session) await this.stream!.acknowledge(position);
    return position;
  }

  /**
   * Applies one batch. On a unique conflict, the stale row holding the value usually belongs to a key
   * still pending in another batch: apply the batch together with everything pending, in one call,
   * so all old rows go before any new one. Returns what was taken additionally, if anything.
   */
  private async applyBatch(keys: Key[], session?: Session): Promise<{ position: Position | null } | null> {
    // Work done inside a locked transaction is lost if that transaction rolls back: remember it.
    if (session) this.appliedUnderLock.push(...keys);
    try {
      await this.engine.applyKeys(this.plan, keys, session);
      this.result.changesApplied += keys.length;
      return null;
    } catch (error) {
      if (!(error instanceof UniqueViolationError)) throw error;
      const rest = this.buffer.take(JOINT_APPLY_LIMIT);
      if (session) this.appliedUnderLock.push(...rest.keys);
      const all = [...keys, ...rest.keys];
      try {
        await this.engine.applyKeys(this.plan, all, session);
      } catch (again) {
        this.buffer.requeue(all);
        if (again instanceof UniqueViolationError) throw new UserError(`the rows violate a unique key of the new schema: ${again.message}`);
        throw again;
      }
      this.result.changesApplied += all.length;
      return { position: rest.position };
    }
  }

  /** Bring the shadow level with the server's head without holding any lock (before locking). */
  private async catchUpUnlocked(): Promise<void> {
    const target = await this.stream!.head();
    await this.catchUpTo(target, undefined, Number.POSITIVE_INFINITY);
  }

  /** Used under a lock: bounded, so a slow stream turns into a retry instead of a long write stall. */
  private readonly catchUpLocked: CatchUp = async (target, session) => {
    const budget = Math.max(1000, 4 * this.options.lockTimeoutMs);
    await this.catchUpTo(target, session, budget);
  };

  private async catchUpTo(target: Position, session: Session | undefined, budgetMs: number): Promise<void> {
    const deadline = Date.now() + budgetMs;
    for (;;) {
      this.checkAbort();
      await this.applyPending(session);
      const seen = this.buffer.seen;
      if (this.buffer.size === 0 && seen && this.engine.comparePositions(seen, target) >= 0) return;
      if (Date.now() > deadline) {
        throw new LockTimeoutError(`the change stream did not reach the lock's position within ${budgetMs} ms`);
      }
      if (this.buffer.size === 0) await this.buffer.waitForChange(50);
      if (!session) this.progress();
    }
  }

  private async withLockRetries<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      this.checkAbort();
      this.appliedUnderLock = [];
      if (what === 'cut-over') this.result.cutoverAttempts = attempt + 1;
      try {
        return await fn();
      } catch (error) {
        this.buffer.requeue(this.appliedUnderLock);
        if (!(error instanceof LockTimeoutError)) throw error;
        if (attempt + 1 >= this.options.cutoverAttempts) {
          throw new UserError(
            `${what} failed ${attempt + 1} times: ${error.message}; the original table is unchanged and serving ` +
              `(raise --lock-timeout-ms or --cutover-attempts, or retry when the table is less busy)`,
          );
        }
        const wait = backoffMs(attempt);
        this.report.warn(`${what} attempt ${attempt + 1} failed (${error.message}); retrying in ${wait} ms`);
        const until = Date.now() + wait;
        while (Date.now() < until) {
          await this.applyPending();
          await sleep(Math.min(100, Math.max(0, until - Date.now())));
        }
      }
    }
  }

  private progress(): void {
    const elapsed = (Date.now() - this.copyStarted) / 1000;
    const copied = this.result.rowsCopied;
    const rate = elapsed > 0 ? copied / elapsed : 0;
    const estimated = Math.max(this.plan.estimatedRows, copied);
    const remaining = this.phase === 'copy' ? Math.max(0, estimated - copied) : 0;
    this.report.progress({
      phase: this.phase,
      rowsCopied: copied,
      rowsEstimated: estimated,
      rowsPerSec: Math.round(rate),
      etaSeconds: rate > 0 ? Math.round(remaining / rate) : null,
      changesApplied: this.result.changesApplied,
      backlog: this.buffer.size,
    });
  }
}
