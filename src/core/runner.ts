import { backoffMs, sleep } from './backoff.js';
import { ChangeBuffer } from './change-buffer.js';
import { ChangedKeys } from './changed-keys.js';
import { ClaimLostError, RunClaim } from './claim.js';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from './checkpoint.js';
import { ChunkSizer } from './chunk-sizer.js';
import { AbortedError, LockTimeoutError, UniqueViolationError, UserError } from './errors.js';
import { KeySample, proveMapping, type MappingProof } from './mapping-proof.js';
import { silentReporter, type Reporter } from './reporter.js';
import { RunState, settingsOf, type Settings } from './run-state.js';
import { fileExists, throttleQueryValue, Throttler, type ThrottleOptions } from './throttler.js';
import type { CatchUp, ChangeStream, CheckResult, Engine, Key, KeyRange, MigrationRequest, Plan, Position, Probes, Session } from './types.js';
import { verify } from './verify.js';

export type HookEvent = 'startup' | 'before-copy' | 'copy-complete' | 'before-cutover' | 'success' | 'failure';

export interface MigrateOptions extends Settings, ThrottleOptions {
  execute: boolean;
  /** Continue a crashed run from its checkpoint (same table, same ALTER). */
  resume: boolean;
  /** How long the cut-over (and the checksum's brief lock) may wait for its locks. */
  lockTimeoutMs: number;
  cutoverAttempts: number;
  dropOld: boolean;
  /** Keys applied per statement. */
  applyBatch: number;
  /** Rows per checksum chunk. */
  checksumChunkRows: number;
  /** Replica URLs whose lag holds the copy back. */
  replicas: string[];
  /** Keep the shadow in sync after verification until a cut-over is requested. */
  postponeCutover: boolean;
  /** While this file exists, the cut-over is postponed (as with postponeCutover). */
  postponeFlagFile?: string;
  reporter: Reporter;
  /** Shared live state (control endpoint, metrics); created from these options when absent. Its settings then rule. */
  state?: RunState;
  /** Runs the operator's hook for an event (with the error, on failure); a rejection before the cut-over stops the run. */
  hook?: (event: HookEvent, state: RunState, error?: unknown) => Promise<void>;
  /** Ctrl-C: stops the run, helper objects are removed. */
  signal?: AbortSignal;
  /** First ask the server to make the change in place, instantly (gh-ost's --attempt-instant-ddl). */
  attemptInstant?: boolean;
  /** When this file appears, the run stops at the next safe point and removes its helper objects. */
  panicFlagFile?: string;
}

export const defaultOptions: MigrateOptions = {
  execute: false,
  resume: false,
  // Short: the copy takes no locks on the original, but a long chunk's binlog write delays the
  // commits grouped behind it. In bench/, 500 ms chunks raised the longest write stall from
  // 142 ms to 242 ms for no clear gain in wall time.
  chunkTimeMs: 100,
  maxLagMs: 1500,
  maxLoad: {},
  criticalLoad: {},
  maxRowsPerSec: 0,
  niceRatio: 0,
  lockTimeoutMs: 500,
  cutoverAttempts: 10,
  dropOld: false,
  applyBatch: 500,
  checksumChunkRows: 50_000,
  replicas: [],
  postponeCutover: false,
  reporter: silentReporter,
};

/** Most keys applied in one call when a unique conflict makes batches go together. */
const JOINT_APPLY_LIMIT = 20_000;
/** A lost connection is retried this many times, with backoff, before the run gives up. */
const TRANSIENT_RETRIES = 8;
/**
 * Most changed keys left for the row-by-row comparison under the cut-over lock; more are first
 * compared in a consistent view (without blocking writers), so the lock stays short.
 */
const LOCKED_COMPARISON_LIMIT = 1000;
/** Rounds of that comparison before the cut-over goes ahead with what remains. */
const NARROWING_ROUNDS = 5;

export interface MigrateResult {
  plan: Plan;
  checks: CheckResult[];
  executed: boolean;
  resumed: boolean;
  rowsCopied: number;
  changesApplied: number;
  cutoverAttempts: number;
  cutoverLockedMs: number;
  checksumRounds: number;
  /** The server's proofs of the column mapping: before the copy, and at each verification. */
  mappingProofs: MappingProof[];
  /** Keys changed after the last checksum view, compared row by row (in views and under the cut-over lock). */
  keysCompared: number;
  /** Of those, the ones compared under the cut-over lock itself. */
  keysComparedAtCutover: number;
  /** The server made the change in place (--attempt-instant-ddl): nothing was copied. */
  instant: boolean;
  durationMs: number;
  state: RunState;
}

/**
 * The phase machine: checks -> setup -> copy (stream running) -> catch-up -> verify -> [postponed]
 * -> cutover -> cleanup. Copy and apply run in one loop, never at once, so a chunk and an apply never
 * touch the same keys concurrently (DESIGN.md invariant 3) without any per-key locking of our own.
 */
export async function migrate(engine: Engine, request: MigrationRequest, partial: Partial<MigrateOptions> = {}): Promise<MigrateResult> {
  const options: MigrateOptions = { ...defaultOptions, ...partial };
  // Before anything is read or dropped: a live run's checkpoint and objects are not ours.
  const claim = await RunClaim.take(engine, request.table);
  try {
    return await migrateClaimed(engine, request, options, claim);
  } finally {
    await claim.release();
  }
}

async function migrateClaimed(engine: Engine, request: MigrationRequest, options: MigrateOptions, claim: RunClaim): Promise<MigrateResult> {
  const started = Date.now();
  const checkpoint = options.resume ? await loadCheckpoint(engine, request) : null;
  const plan = checkpoint?.plan ?? (await engine.prepare(request));
  const checks = await engine.checks(plan, { resuming: checkpoint !== null });
  const state =
    options.state ??
    new RunState(
      settingsOf(options),
      { table: plan.table, alter: plan.alter, engine: engine.kind },
    );
  // A state made by the caller (for its control endpoint or metrics) names the table as typed.
  state.status.table = plan.table;
  const result: MigrateResult = {
    plan,
    checks,
    executed: false,
    resumed: checkpoint !== null,
    rowsCopied: checkpoint?.rowsCopied ?? 0,
    changesApplied: checkpoint?.changesApplied ?? 0,
    cutoverAttempts: 0,
    cutoverLockedMs: 0,
    checksumRounds: 0,
    mappingProofs: [],
    keysCompared: 0,
    keysComparedAtCutover: 0,
    instant: false,
    durationMs: 0,
    state,
  };
  const failed = checks.filter((c) => !c.ok);
  if (failed.length > 0) throw new UserError(failed.map((c) => c.message).join('; '));
  if (options.attemptInstant && !engine.alterInstantly) {
    throw new UserError(`--attempt-instant-ddl is for MySQL/MariaDB; ${engine.kind} has no instant ALTER to ask for`);
  }
  // In the dry run too: a mapping the server disagrees with is refused before anything is created.
  if (!checkpoint) result.mappingProofs.push(await proveMapping(engine, plan, null));

  // Probes before anything is created: a bad --replica or load name is refused like any bad input.
  // (Watching replicas writes a heartbeat table, so a dry run checks only the load names.)
  const probes = await engine.openProbes(plan, options.execute ? options.replicas : []);
  try {
    await checkLoadNames(probes, state.settings);
    if (options.throttleQuery) {
      await throttleQueryValue(probes, options.throttleQuery).catch((error: Error) => {
        throw new UserError(`--throttle-query fails: ${error.message}`);
      });
    }
  } catch (error) {
    await probes.close();
    throw error;
  }
  if (!options.execute) {
    await probes.close();
    return result;
  }
  await new Run(engine, plan, options, result, checkpoint, probes, claim).execute();
  result.executed = true;
  result.durationMs = Date.now() - started;
  return result;
}

/** A misspelt indicator would read as 0 and silently never throttle: refuse names the server does not know. */
async function checkLoadNames(probes: Probes, settings: Settings): Promise<void> {
  const names = [...new Set([...Object.keys(settings.maxLoad), ...Object.keys(settings.criticalLoad)])];
  if (names.length === 0) return;
  const known = await probes.load(names);
  const unknown = names.filter((n) => !(n in known));
  if (unknown.length) throw new UserError(`unknown load indicator(s) ${unknown.join(', ')} for --max-load/--critical-load`);
}

async function loadCheckpoint(engine: Engine, request: MigrationRequest): Promise<Checkpoint> {
  const text = await engine.loadCheckpoint(request.table);
  if (!text) throw new UserError(`there is no checkpoint of an earlier run on ${request.table} to resume; run without --resume`);
  const checkpoint = decodeCheckpoint(text);
  if (checkpoint.alter.trim() !== request.alter.trim()) {
    throw new UserError(
      `the interrupted run on ${request.table} was for a different ALTER ("${checkpoint.alter}"); resume it with that --alter, or remove it with "shadowcut cleanup"`,
    );
  }
  return checkpoint;
}

class Run {
  private readonly buffer = new ChangeBuffer();
  private stream: ChangeStream | null = null;
  private throttler: Throttler | null = null;
  private readonly report: Reporter;
  private readonly state: RunState;
  private copyStarted = 0;
  private copiedUpTo: Key | null;
  private copyDone: boolean;
  /** Everything before this position is applied: a safe place to restart the stream from. */
  private applied: Position | null;
  private lastCheckpoint = 0;
  private appliedUnderLock: Key[] = [];
  /** Keys the copy stepped over: where the proof at verification takes its rows. */
  private readonly sample = new KeySample();
  /** Applied since the last consistent view: parity is proven for them row by row before the swap. */
  private readonly changed = new ChangedKeys();
  private claimLost = false;

  constructor(
    private readonly engine: Engine,
    private readonly plan: Plan,
    private readonly options: MigrateOptions,
    private readonly result: MigrateResult,
    private readonly checkpoint: Checkpoint | null,
    private readonly probes: Probes,
    private readonly claim: RunClaim,
  ) {
    this.report = options.reporter;
    this.state = result.state;
    this.copiedUpTo = checkpoint?.copiedUpTo ?? null;
    this.copyDone = checkpoint?.copyDone ?? false;
    this.applied = checkpoint?.position ?? null;
  }

  async execute(): Promise<void> {
    let cutOver = false;
    this.state.mark('start');
    const stopWatching = this.watchPanicFlagFile();
    try {
      await this.hook('startup');
      if (this.checkpoint && (await this.engine.swapped(this.plan))) {
        // The crash came after the swap committed: only cleanup is left.
        cutOver = true;
        this.report.info('the interrupted run had already cut over; cleaning up');
      } else {
        cutOver = await this.migrate();
      }
    } catch (error) {
      this.claimLost = error instanceof ClaimLostError;
      this.state.status.state = 'failed';
      this.state.mark('failed');
      await this.hook('failure', error).catch(() => {});
      throw error;
    } finally {
      stopWatching();
      await this.stream?.stop().catch(() => {});
      await this.probes.close().catch(() => {});
      if (!this.claimLost) {
        this.enter('cleanup');
        await this.engine.cleanup(this.plan, { dropOld: this.options.dropOld, cutOver });
      }
      this.report.close();
    }
    this.state.status.state = 'done';
    this.enter('done');
    this.state.mark('end');
    await this.hook('success');
  }

  private async migrate(): Promise<boolean> {
    if (this.options.attemptInstant && !this.checkpoint && (await this.alteredInstantly())) return true;
    this.enter('setup');
    this.throttler = new Throttler(this.state, this.probes, this.options);
    if (!this.checkpoint) await this.engine.createShadow(this.plan);
    await this.openStream();
    await this.saveCheckpoint(true);

    if (!this.copyDone) {
      await this.hook('before-copy');
      this.enter('copy');
      await this.copy();
    }
    this.enter('catch-up');
    // Level first: a unique index built in afterCopy must not meet a value that only looks
    // duplicated because a change moving it is still unapplied.
    await this.catchUpUnlocked();
    await this.retrying('index build', () => this.retryingUniqueConflicts(() => this.engine.afterCopy(this.plan)));
    this.state.mark('copy done');
    await this.hook('copy-complete');

    await this.verify();
    if (await this.postponed()) {
      this.enter('postponed');
      await this.waitForCutoverRequest();
      await this.verify(); // parity is proven before every cut-over, however long the wait was
    }

    await this.hook('before-cutover');
    this.enter('cutover');
    const { lockedMs } = await this.withLockRetries('cut-over', async () => {
      await this.holdWhileThrottled();
      await this.narrowChanged();
      await this.retrying('confirming the run lock', () => this.claim.confirm());
      return this.engine.cutover(this.plan, { lockTimeoutMs: this.options.lockTimeoutMs, catchUp: this.catchUpAndCompare });
    });
    this.result.cutoverLockedMs = lockedMs;
    this.state.status.cutoverLockedMs = lockedMs;
    this.state.mark('cut-over');
    this.report.info(`cut-over done, writers blocked for ${lockedMs} ms`, { lockedMs });
    return true;
  }

  /** Nothing is created first, so a refusal leaves nothing behind and the online path starts clean. */
  private async alteredInstantly(): Promise<boolean> {
    this.enter('instant');
    const outcome = await this.retrying('the instant ALTER', () => this.engine.alterInstantly!(this.plan, this.options.lockTimeoutMs));
    if (outcome !== true) {
      this.report.info(`no instant ALTER (${outcome}); migrating online`);
      return false;
    }
    this.result.instant = true;
    this.state.mark('instant ALTER');
    this.report.info('the server made the change in place, instantly: nothing to copy');
    return true;
  }

  private async verify(): Promise<void> {
    this.enter('verify');
    const proof = await proveMapping(this.engine, this.plan, this.sample.anchors());
    this.result.mappingProofs.push(proof);
    this.report.info(`column mapping proven by the server's own ALTER on ${proof.rows} sampled row(s)`, { mappingProof: proof });
    this.result.checksumRounds = await verify(this.engine, this.plan, {
      viewOpened: () => this.changed.restart(),
      catchUp: this.catchUpLocked,
      lockTimeoutMs: this.options.lockTimeoutMs,
      chunkRows: this.options.checksumChunkRows,
      between: () => this.applyPending(),
      repair: (range) => this.copyRange(range),
      withLockRetries: (fn) => this.withLockRetries('checksum lock', fn),
      reporter: this.report,
      abort: () => this.checkAbort(),
    });
    this.state.mark('verified');
    await this.saveCheckpoint(true);
  }

  private enter(phase: string): void {
    this.state.status.phase = phase;
    this.report.phase(phase);
  }

  private async hook(event: HookEvent, error?: unknown): Promise<void> {
    if (!this.options.hook) return;
    try {
      await this.options.hook(event, this.state, error);
    } catch (failure) {
      if (error !== undefined || event === 'success') return this.report.warn(`hook ${event} failed: ${(failure as Error).message}`);
      throw new UserError(`hook ${event} failed, stopping before the cut-over: ${(failure as Error).message}`);
    }
  }

  /** gh-ost's --panic-flag-file, checked 4 times a second whatever the run is doing. */
  private watchPanicFlagFile(): () => void {
    const file = this.options.panicFlagFile;
    if (!file) return () => {};
    const look = () =>
      void fileExists(file).then((exists) => {
        if (exists) this.state.abortReason ??= `panic flag file ${file} exists`;
      });
    look();
    const timer = setInterval(look, 250);
    return () => clearInterval(timer);
  }

  private checkAbort(): void {
    if (this.options.signal?.aborted) throw new AbortedError(String(this.options.signal.reason ?? 'interrupted'));
    if (this.state.abortReason) throw new AbortedError(this.state.abortReason);
  }

  /** Opens (or, after a lost connection, reopens) the change stream from the last applied position. */
  private async openStream(): Promise<void> {
    await this.stream?.stop().catch(() => {});
    this.buffer.reset();
    this.stream = await this.engine.openChanges(this.plan, this.buffer, this.applied ?? undefined);
    this.applied ??= this.stream.start;
    this.buffer.advance(this.stream.start);
  }

  /** Stream failures: a lost connection is reopened from the last applied position; anything else stops the run. */
  private async checkStream(): Promise<void> {
    const failure = this.buffer.failure;
    if (!failure) return;
    if (!this.engine.isTransient(failure)) throw failure;
    this.report.warn(`change stream lost (${failure.message}); reopening from the last applied position`);
    await this.retrying('reopening the change stream', () => this.openStream());
  }

  private async copy(): Promise<void> {
    const sizer = new ChunkSizer(this.state.settings.chunkTimeMs);
    this.copyStarted = Date.now();
    const copiedAtStart = this.result.rowsCopied;
    for (;;) {
      this.checkAbort();
      await this.holdWhileThrottled();
      await this.applyPending();
      sizer.target(this.state.settings.chunkTimeMs);
      const after = this.copiedUpTo;
      const upTo = await this.retrying('finding the next chunk', () => this.engine.nextBoundary(this.plan, after, sizer.rows));
      const t0 = performance.now();
      const rows = await this.retrying('copying a chunk', () => this.copyRange({ after, upTo }));
      const elapsed = performance.now() - t0;
      sizer.record(rows, elapsed);
      this.result.rowsCopied += rows;
      this.copiedUpTo = upTo;
      this.sample.offer(upTo);
      this.copyDone = upTo === null;
      await this.saveCheckpoint(this.copyDone);
      this.progress(copiedAtStart);
      if (this.copyDone) return;
      await this.limitRate(rows, elapsed);
      await this.beNice(elapsed);
    }
  }

  /** --nice-ratio: leave the server to the application for a multiple of each chunk's time. */
  private async beNice(elapsedMs: number): Promise<void> {
    const rest = this.state.settings.niceRatio * elapsedMs;
    if (rest <= 0) return;
    await this.waitApplying(rest);
    this.state.status.throttledMs.nice = (this.state.status.throttledMs.nice ?? 0) + Math.round(rest);
  }

  /** --max-rows-per-sec: a chunk of n rows takes at least n / limit seconds. */
  private async limitRate(rows: number, elapsedMs: number): Promise<void> {
    const limit = this.state.settings.maxRowsPerSec;
    const wait = limit > 0 ? (rows / limit) * 1000 - elapsedMs : 0;
    if (wait <= 0) return;
    await this.waitApplying(wait);
    this.state.status.throttledMs.rate = (this.state.status.throttledMs.rate ?? 0) + Math.round(wait);
  }

  /** Holds the copy back while paused or throttled; the stream keeps being read, and applied when the buffer fills. */
  private async holdWhileThrottled(): Promise<void> {
    let announced: string | null = null;
    for (;;) {
      this.checkAbort();
      await this.checkStream();
      const reason = this.state.paused ? 'paused by operator' : await this.throttler!.reason();
      if (!reason) break;
      this.state.status.state = this.state.paused ? 'paused' : 'throttled';
      if (reason !== announced) this.report.warn(`holding back: ${reason}`, { throttle: reason });
      announced = reason;
      const since = Date.now();
      if (this.buffer.size > this.buffer.capacity / 2) await this.applyPending();
      // A hold can last hours: the checkpoint keeps up, and the claim's session stays alive.
      await this.saveCheckpoint();
      await sleep(250);
      const kind = reason.split(/[ :]/)[0];
      this.state.status.throttledMs[kind] = (this.state.status.throttledMs[kind] ?? 0) + (Date.now() - since);
      this.progress();
    }
    if (announced) this.report.info('going on: no longer held back');
    this.state.status.state = 'running';
  }

  private async postponed(): Promise<boolean> {
    if (this.state.cutoverRequested) return false;
    if (this.options.postponeCutover) return true;
    return this.options.postponeFlagFile !== undefined && (await fileExists(this.options.postponeFlagFile));
  }

  /** Keeps the shadow in sync until `shadowcut cutover` (or the flag file is removed). */
  private async waitForCutoverRequest(): Promise<void> {
    this.state.status.state = 'postponed';
    this.report.info('cut-over postponed: the shadow is kept in sync; run "shadowcut cutover" to go on');
    while (await this.postponed()) {
      this.checkAbort();
      await this.checkStream();
      await this.applyPending();
      await this.saveCheckpoint();
      await this.buffer.waitForChange(500);
      this.progress();
    }
    this.state.status.state = 'running';
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

  /** A lost connection (server restart, network blip, killed session) is retried with backoff, not fatal. */
  private async retrying<T>(what: string, step: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await step();
      } catch (error) {
        if (!this.engine.isTransient(error) || attempt >= TRANSIENT_RETRIES) throw error;
        const wait = backoffMs(attempt, 500);
        this.report.warn(`${what} failed (${(error as Error).message}); retrying in ${wait} ms`);
        await sleep(wait);
        this.checkAbort();
      }
    }
  }

  /** Apply whatever the stream has delivered so far, in batches. */
  private async applyPending(session?: Session): Promise<Position | null> {
    let position: Position | null = null;
    for (;;) {
      if (!session) await this.checkStream();
      else if (this.buffer.failure) throw this.buffer.failure;
      const batch = this.buffer.take(this.options.applyBatch);
      if (batch.keys.length > 0) {
        const joint = session
          ? await this.applyBatch(batch.keys, session)
          : await this.retrying('applying changes', () => this.applyBatch(batch.keys)).catch((error) => {
              this.buffer.requeue(batch.keys);
              throw error;
            });
        if (joint) batch.position = joint.position;
      }
      if (batch.position) position = batch.position;
      if (this.buffer.size === 0) break;
    }
    this.state.status.changesApplied = this.result.changesApplied;
    this.state.status.backlog = this.buffer.size;
    if (position && !session) {
      this.applied = position;
      await this.stream!.acknowledge(position);
    }
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
    this.changed.add(keys);
    try {
      await this.engine.applyKeys(this.plan, keys, session);
      this.result.changesApplied += keys.length;
      return null;
    } catch (error) {
      if (!(error instanceof UniqueViolationError)) throw error;
      const rest = this.buffer.take(JOINT_APPLY_LIMIT);
      if (session) this.appliedUnderLock.push(...rest.keys);
      this.changed.add(rest.keys);
      const all = [...keys, ...rest.keys];
      try {
        await this.engine.applyKeys(this.plan, all, session);
      } catch (again) {
        this.buffer.requeue(rest.keys);
        if (again instanceof UniqueViolationError) throw new UserError(`the rows violate a unique key of the new schema: ${again.message}`);
        throw again;
      }
      this.result.changesApplied += all.length;
      return { position: rest.position };
    }
  }

  /** Waits `ms` while applying the stream, so a pause never lets the backlog grow unapplied. */
  private async waitApplying(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      await this.applyPending();
      await sleep(Math.min(100, Math.max(0, until - Date.now())));
    }
  }

  /** Bring the shadow level with the server's head without holding any lock (before locking). */
  private async catchUpUnlocked(): Promise<void> {
    const target = await this.retrying('reading the stream head', () => this.stream!.head());
    await this.catchUpTo(target, undefined, Number.POSITIVE_INFINITY);
  }

  /** Used under a lock: bounded, so a slow stream turns into a retry instead of a long write stall. */
  private readonly catchUpLocked: CatchUp = async (target, session) => {
    await this.catchUpTo(target, session, this.lockedBudgetMs());
  };

  private lockedBudgetMs(): number {
    return Math.max(1000, 4 * this.options.lockTimeoutMs);
  }

  /**
   * The cut-over's catch-up, then the proof up to the swap itself (DESIGN.md invariant 4): every
   * key applied since the last checksum view is compared row by row on the locked session. A
   * difference is applied again there and must then be gone.
   */
  private readonly catchUpAndCompare: CatchUp = async (target, session) => {
    const deadline = Date.now() + this.lockedBudgetMs();
    await this.catchUpTo(target, session, this.lockedBudgetMs());
    const keys = this.changed.list();
    const differing = await this.engine.compareKeys(this.plan, keys, session);
    if (differing.length > 0) {
      this.report.warn(`${differing.length} row(s) differed under the cut-over lock; applying them again`, { differing: differing.length });
      await this.applyBatch(differing, session);
      const still = await this.engine.compareKeys(this.plan, differing, session);
      if (still.length > 0) {
        throw new UserError(`${still.length} row(s) still differ after being applied again under the cut-over lock; not cutting over`);
      }
    }
    if (Date.now() > deadline) throw new LockTimeoutError(`catching up and comparing took longer than ${this.lockedBudgetMs()} ms under the lock`);
    this.result.keysCompared += keys.length;
    this.result.keysComparedAtCutover = keys.length;
  };

  /**
   * Catches up, and keeps what the cut-over lock must compare small: while too many keys changed
   * since the last view, compare them in a fresh consistent view (writers blocked only for its
   * brief lock) and re-apply the ones that differ. Past the set's capacity, a whole checksum round
   * instead.
   */
  private async narrowChanged(): Promise<void> {
    for (let round = 0; round < NARROWING_ROUNDS; round++) {
      await this.catchUpUnlocked();
      if (this.changed.overflowed) {
        await this.verify();
        this.enter('cutover');
        continue;
      }
      if (this.changed.size <= LOCKED_COMPARISON_LIMIT) return;
      const view = await this.withLockRetries('checksum lock', () => this.engine.consistentView(this.plan, this.catchUpLocked, this.options.lockTimeoutMs));
      const { keys } = this.changed.restart();
      let differing: Key[];
      try {
        differing = await view.compareKeys(keys);
      } finally {
        await view.close();
      }
      this.result.keysCompared += keys.length;
      if (differing.length > 0) {
        this.report.warn(`${differing.length} of ${keys.length} changed row(s) differed; applying them again`, { differing: differing.length });
        this.buffer.requeue(differing);
        await this.applyPending();
      }
    }
  }

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
      if (what === 'cut-over') this.state.status.cutoverAttempts = this.result.cutoverAttempts = attempt + 1;
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
        await this.waitApplying(wait);
      }
    }
  }

  /** At most once a second, and at phase boundaries (`force`). */
  private async saveCheckpoint(force = false): Promise<void> {
    if (!force && Date.now() - this.lastCheckpoint < 1000) return;
    this.lastCheckpoint = Date.now();
    await this.retrying('confirming the run lock', () => this.claim.confirm());
    const checkpoint: Checkpoint = {
      version: 1,
      alter: this.plan.alter,
      phase: this.state.status.phase,
      plan: this.plan,
      copiedUpTo: this.copiedUpTo,
      copyDone: this.copyDone,
      position: this.applied!,
      rowsCopied: this.result.rowsCopied,
      changesApplied: this.result.changesApplied,
      startedAt: this.state.status.startedAt,
      savedAt: new Date().toISOString(),
    };
    await this.retrying('saving the checkpoint', () => this.engine.saveCheckpoint(this.plan, encodeCheckpoint(checkpoint)));
  }

  private progress(copiedAtStart = 0): void {
    const elapsed = (Date.now() - this.copyStarted) / 1000;
    const copied = this.result.rowsCopied;
    const rate = elapsed > 0 ? (copied - copiedAtStart) / elapsed : 0;
    const estimated = Math.max(this.plan.estimatedRows, copied);
    const remaining = this.copyDone ? 0 : Math.max(0, estimated - copied);
    const s = this.state.status;
    s.rowsCopied = copied;
    s.rowsEstimated = estimated;
    s.percent = estimated > 0 ? Math.min(100, (100 * copied) / estimated) : 100;
    s.rowsPerSec = Math.round(rate);
    s.etaSeconds = rate > 0 ? Math.round(remaining / rate) : null;
    s.changesApplied = this.result.changesApplied;
    s.backlog = this.buffer.size;
    this.report.progress({
      phase: s.phase,
      rowsCopied: copied,
      rowsEstimated: estimated,
      rowsPerSec: s.rowsPerSec,
      etaSeconds: s.etaSeconds,
      changesApplied: s.changesApplied,
      backlog: s.backlog,
      throttle: s.state === 'running' ? null : (s.throttleReason ?? s.state),
      lagMs: s.lagMs,
    });
  }
}
