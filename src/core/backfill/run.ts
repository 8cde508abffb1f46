import { backoffMs, sleep } from '../engine/retry/backoff.js';
import { CheckpointRun, isBackfill, openCheckpoint } from '../engine/state/checkpoint.js';
import { checkStateKey } from '../engine/state/state-seal.js';
import { ChunkSizer } from '../run/chunk-sizer.js';
import { ClaimLostError, RunClaim } from '../run/claim.js';
import { definedOnly, type HookEvent } from '../run/config.js';
import { AbortedError, DiskFullError, LockTimeoutError, UserError, CLOSING, FAILURE_HOOK, ignoreFailure } from '../engine/errors.js';
import { Pacing } from '../run/pacing.js';
import { Progress } from '../run/progress.js';
import type { Reporter } from '../report/reporter.js';
import { retryBounded, retryTransient, sleepThenCheck } from '../engine/retry/retry.js';
import { RunState, settingsOf, type Phase } from '../run/run-state.js';
import { Throttler } from '../run/throttler.js';
import { watchFlagFiles } from '../run/flag-files.js';
import type { Key, KeyRange, Probes } from '../engine/types.js';
import type { EngineServer } from '../engine/ports/server.js';
import { defaultBackfillOptions, type BackfillOptions, type BackfillResult } from './config.js';
import { backfillPreflight } from './preflight.js';
import type { BackfillCheckpoint } from '../engine/state/backfill-checkpoint.js';
import type { Backfill, BackfillRequest, EngineBackfill } from '../engine/ports/backfill.js';

/** A batch whose row locks were not had in time, or whose connection was lost, is tried this many times. */
const BATCH_ATTEMPTS = 12;

/**
 * `shadowcut backfill`: the UPDATE in keyset batches, each its own short transaction that also
 * saves the checkpoint, paced like migrate's copy. One run per table: it takes migrate's claim.
 */
export async function backfill(
  engine: EngineServer & EngineBackfill,
  request: BackfillRequest,
  options: Partial<BackfillOptions> = {},
): Promise<BackfillResult> {
  // A key that cannot seal the checkpoints is refused before anything is made.
  checkStateKey();
  const claim = await RunClaim.take(engine, request.table);
  try {
    return await claimed(engine, request, { ...defaultBackfillOptions, chunkTimeMs: engine.chunkTimeMs, ...definedOnly(options) }, claim);
  } finally {
    await claim.release();
  }
}

/** How the run's state names what it does, in place of migrate's ALTER. */
export function statementOf(request: BackfillRequest): string {
  return `SET ${request.set.trim()}${request.where?.trim() ? ` WHERE ${request.where.trim()}` : ''}`;
}

async function claimed(engine: EngineServer & EngineBackfill, request: BackfillRequest, options: BackfillOptions, claim: RunClaim): Promise<BackfillResult> {
  const started = Date.now();
  const settings = options.state?.settings ?? settingsOf(options);
  const { target, checks, checkpoint, estimatedMatching, probes } = await backfillPreflight(engine, request, options, settings);
  const state = options.state ?? new RunState(settings, { table: target.table, alter: statementOf(request), engine: engine.kind, command: 'backfill' });
  state.status.table = target.table;
  state.status.command = 'backfill';
  const where = request.where?.trim() ? request.where.trim() : null;
  const result: BackfillResult = {
    outcome: 'dry-run',
    rowsTouched: checkpoint?.rowsUpdated ?? 0,
    checks,
    summary: [
      `table: ${target.table}, about ${target.estimatedRows} row(s)`,
      `key: ${target.keyIndex} (${target.keyColumns.join(', ')}), walked in keyset batches`,
      `set: ${request.set.trim()}`,
      where === null ? 'where: none: every row is updated, and running it again applies the SET again (give --where to make it idempotent)' : `where: ${where}`,
      `rows estimated to match: ${estimatedMatching}`,
    ],
    detail: {
      table: target.table,
      key: target.keyIndex,
      keyColumns: target.keyColumns,
      set: request.set.trim(),
      where,
      estimatedRows: target.estimatedRows,
      estimatedMatching,
      rowsScanned: checkpoint?.rowsScanned ?? 0,
      batches: checkpoint?.batches ?? 0,
      resumed: checkpoint !== null,
      durationMs: 0,
    },
    state,
  };
  if (!probes) return result;
  const run = new BackfillRun(engine, target, request, options, state, checkpoint, probes, claim);
  const done = await run.execute();
  result.outcome = 'success';
  result.rowsTouched = done.rowsUpdated;
  result.detail.rowsScanned = done.rowsScanned;
  result.detail.batches = done.batches;
  result.detail.durationMs = Date.now() - started;
  result.summary.push(
    `done: ${done.rowsUpdated} row(s) updated in ${done.batches} batch(es), ${done.rowsScanned} row(s) scanned, ${(result.detail.durationMs / 1000).toFixed(1)} s in all`,
  );
  return result;
}

class BackfillRun {
  readonly report: Reporter;
  private cp: Omit<BackfillCheckpoint, 'owner'>;
  /** Whose its checkpoints are: the killed run's when resuming. */
  private readonly run: CheckpointRun;
  private readonly resumed: boolean;
  private readonly pacing: Pacing;
  private readonly progress: Progress;
  private claimConfirmed = Date.now();

  constructor(
    private readonly engine: EngineServer,
    private readonly target: Backfill,
    private readonly request: BackfillRequest,
    private readonly options: BackfillOptions,
    readonly state: RunState,
    checkpoint: BackfillCheckpoint | null,
    private readonly probes: Probes,
    private readonly claim: RunClaim,
  ) {
    this.report = options.reporter;
    this.resumed = checkpoint !== null;
    this.run = checkpoint ? CheckpointRun.continuing(checkpoint) : CheckpointRun.fresh(engine, request.table);
    const now = new Date().toISOString();
    this.cp = checkpoint ?? {
      version: 1,
      command: 'backfill',
      set: request.set.trim(),
      where: request.where?.trim() ? request.where.trim() : null,
      keyColumns: target.keyColumns,
      after: null,
      done: false,
      batches: 0,
      rowsScanned: 0,
      rowsUpdated: 0,
      startedAt: now,
      savedAt: now,
    };
    this.progress = new Progress(this, () => ({
      done: this.cp.rowsScanned,
      estimated: target.estimatedRows,
      finished: this.cp.done,
      changesApplied: 0,
      backlog: 0,
      rowsUpdated: this.cp.rowsUpdated,
    }));
    // No stream to follow: while held back, only the claim's session is kept alive.
    const waiting = { check: async () => {}, held: () => this.confirmClaim(), rest: (ms: number) => sleep(ms) };
    this.pacing = new Pacing(this, new Throttler(state, probes, options, (message) => this.report.warn(message)), waiting, this.progress);
  }

  checkAbort(): void {
    if (this.options.signal?.aborted) throw new AbortedError(String(this.options.signal.reason ?? 'interrupted'));
    if (this.state.abortReason) throw new AbortedError(this.state.abortReason);
  }

  isTransient(error: unknown): boolean {
    return this.engine.isTransient(error);
  }

  async execute(): Promise<Omit<BackfillCheckpoint, 'owner'>> {
    const { state, report } = this;
    let claimLost = false;
    state.mark('start');
    const stopWatching = watchFlagFiles(this.options, state, (message) => report.warn(message));
    try {
      await this.hook('startup');
      this.enter('setup');
      if (!this.resumed) {
        const sealed = this.run.seal(this.cp);
        await this.transient('saving the checkpoint', () => this.target.start(sealed.text));
        sealed.saved();
      }
      await this.hook('before-backfill');
      this.enter('backfill');
      await this.loop();
      state.mark('backfill done');
    } catch (caught) {
      // The batches committed stay; the checkpoint that says so is kept whatever happens (finish).
      const kept =
        this.cp.batches > 0
          ? 'the checkpoint of the batches done: make room and run it again with --resume'
          : 'nothing (no batch was done): make room and run it again';
      const error = this.engine.isDiskFull(caught) ? new DiskFullError(caught, this.state.status.phase, kept) : caught;
      claimLost = error instanceof ClaimLostError;
      state.status.state = 'failed';
      state.mark('failed');
      await this.hook('failure', error).catch(ignoreFailure(FAILURE_HOOK));
      throw error;
    } finally {
      stopWatching();
      await this.probes.close().catch(ignoreFailure(CLOSING));
      await this.finish(claimLost);
      report.close();
    }
    state.status.state = 'done';
    this.enter('done');
    state.mark('end');
    await this.hook('success');
    return this.cp;
  }

  /**
   * Done, or nothing committed yet: the checkpoint goes. Otherwise it stays, because the batches
   * already committed are permanent, and without --where a fresh run would apply the SET to them again.
   */
  private async finish(claimLost: boolean): Promise<void> {
    if (claimLost) return; // another run owns the table's objects now
    if (this.cp.done || this.cp.batches === 0) {
      this.enter('cleanup');
      await this.target.cleanup().then(
        () => this.run.ended(this.report),
        (error: Error) => this.report.warn(`could not remove ${this.target.table}__state: ${error.message}`),
      );
      return;
    }
    this.report.warn(
      `stopped after ${this.cp.batches} committed batch(es), ${this.cp.rowsUpdated} row(s) updated; the checkpoint is kept: ` +
        `continue with "shadowcut backfill ... --resume", or remove it with "shadowcut cleanup"`,
    );
  }

  private async loop(): Promise<void> {
    const { state, target } = this;
    const sizer = new ChunkSizer(state.settings.chunkTimeMs);
    this.progress.copyStarting();
    while (!this.cp.done) {
      this.checkAbort();
      await this.pacing.holdWhileThrottled();
      sizer.target(state.settings.chunkTimeMs);
      const want = this.options.batchRows ?? Math.min(sizer.rows, this.pacing.chunkRows(1));
      const after = this.cp.after;
      const t0 = performance.now();
      const next = await this.transient('finding the next batch', () => target.nextBatch(after, want));
      // Fewer rows than asked for: the table's end. The last batch is open-ended, so rows inserted
      // after the scan are included rather than chased batch after batch.
      const last = next === null || next.rows < want;
      const range = { after, upTo: last ? null : next.upTo };
      const updated = await this.commit(range, next?.rows ?? 0, next?.upTo ?? after);
      const elapsed = performance.now() - t0;
      sizer.record(next?.rows ?? 0, elapsed);
      this.progress.update();
      await this.confirmClaim();
      // --max-rows-per-sec counts the rows written: those are what replicas replay.
      if (!this.cp.done) await this.pacing.afterChunk(updated, elapsed);
    }
  }

  /**
   * One batch and its checkpoint, in one transaction. A lost connection may have lost only the
   * commit's acknowledgement: the saved checkpoint says whether the batch committed, so it is
   * never applied twice, whatever the SET.
   */
  private async commit(range: KeyRange, scanned: number, upTo: Key | null): Promise<number> {
    const batch = this.cp.batches + 1;
    const before = this.cp;
    const next = (updated: number): Omit<BackfillCheckpoint, 'owner'> => ({
      ...before,
      after: upTo,
      done: range.upTo === null,
      batches: batch,
      rowsScanned: before.rowsScanned + scanned,
      rowsUpdated: before.rowsUpdated + updated,
      savedAt: new Date().toISOString(),
    });
    return retryBounded(
      {
        attempts: BATCH_ATTEMPTS,
        retryable: (error) => error instanceof LockTimeoutError || this.isTransient(error),
        refused: (error) => this.explain(error, range),
        pauseMs: (n) => backoffMs(n - 1, 250),
        retrying: (error, _n, wait) => this.report.warn(`batch ${batch} failed (${(error as Error).message}); retrying in ${wait} ms`),
        wait: sleepThenCheck(() => this.checkAbort()),
        succeededAfterAll: async (error) => {
          if (error instanceof LockTimeoutError) return null; // rolled back: nothing was written
          const saved = await this.transient('reading the checkpoint', () => this.target.savedCheckpoint());
          const opened = saved === null ? null : openCheckpoint(saved, this.engine, this.request.table);
          const found = opened !== null && isBackfill(opened) && opened.owner.run === this.run.id ? opened : null;
          if (found?.batches !== batch) return null;
          this.report.info(`batch ${batch} had committed before its connection was lost`);
          this.cp = found;
          return { value: found.rowsUpdated - before.rowsUpdated };
        },
        exhausted: (error, n) =>
          new UserError(`batch ${batch} failed ${n} times (${(error as Error).message}); rerun with --resume when the table is less busy`),
      },
      async () => {
        // The checkpoint is sealed in the batch's transaction, once its row count is known; the ledger learns it once committed.
        const sealed: { saved(): void }[] = [];
        const updated = await this.target.update(range, (n) => {
          const checkpoint = this.run.seal(next(n));
          sealed.push(checkpoint);
          return checkpoint.text;
        });
        sealed.at(-1)?.saved();
        this.cp = next(updated);
        return updated;
      },
    );
  }

  /** A statement the server refuses on some row (a value too long, a failed cast) is the operator's to fix. */
  private explain(error: unknown, range: KeyRange): unknown {
    if (error instanceof UserError || this.isTransient(error)) return error;
    const from = range.after === null ? 'the start' : `key (${range.after.map(String).join(', ')})`;
    return new UserError(`the UPDATE failed on the batch after ${from}: ${(error as Error).message}`);
  }

  /** At most once a second: keeps the claim's session alive, and takes the claim again after a lost connection. */
  private async confirmClaim(): Promise<void> {
    if (Date.now() - this.claimConfirmed < 1000) return;
    this.claimConfirmed = Date.now();
    await this.transient('confirming the run lock', () => this.claim.confirm());
  }

  private transient<T>(what: string, step: () => Promise<T>): Promise<T> {
    return retryTransient(this, what, step);
  }

  private enter(phase: Phase): void {
    this.state.status.phase = phase;
    this.report.phase(phase);
  }

  private async hook(event: HookEvent, error?: unknown): Promise<void> {
    if (!this.options.hook) return;
    try {
      await this.options.hook(event, this.state, error);
    } catch (failure) {
      if (error !== undefined || event === 'success') return this.report.warn(`hook ${event} failed: ${(failure as Error).message}`);
      throw new UserError(`hook ${event} failed, stopping before the first batch: ${(failure as Error).message}`);
    }
  }
}
