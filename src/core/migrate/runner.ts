import { CheckpointRun, type Checkpoint, type RevertWindowState } from '../engine/state/checkpoint.js';
import { ClaimLostError, RunClaim } from '../run/claim.js';
import type { HookEvent, MigrateOptions, MigrateResult, RunServices } from '../run/config.js';
import { RunContext } from './context.js';
import { Cutover } from './cutover/cutover.js';
import { DiskFullError, KeptForResumeError, CLEANUP_AFTER_FAILURE, CLOSING, FAILURE_HOOK, ignoreFailure } from '../engine/errors.js';
import { proveMapping } from '../preflight/mapping-proof.js';
import { cleanupRun, runHook, RunMachinery } from './run-machinery.js';
import { postponed, waitForCutoverRequest } from './cutover/postponement.js';
import { retryTransient } from '../engine/retry/retry.js';
import { startRun } from './start.js';
import { installRetried } from '../engine/capture/install-retried.js';
import { requireRevertible } from '../preflight/revert-verdict.js';
import { RevertWindow } from './revert/revert-window.js';
import { watchFlagFiles } from '../run/flag-files.js';
import type { Engine, MigrationRequest, Probes } from '../engine/types.js';
import { checksumRounds } from './verify.js';
import { TableProbe } from './cutover/table-probe.js';
import type { JointCutover } from './sets/set-cutover.js';
import type { JointRevert } from './sets/set-revert.js';

export { defaultOptions, type HookEvent, type MigrateOptions, type MigrateResult } from '../run/config.js';

/** The phases that swap the tables. */
const SWAPS: ReadonlySet<string> = new Set(['cutover', 'revert']);

/**
 * The phase order: checks -> setup -> copy (stream running) -> catch-up -> verify -> [postponed]
 * -> cutover -> cleanup [-> revert window]. Each phase's work lives in its own module; this file only orders them.
 */
export async function migrate(
  engine: Engine,
  request: MigrationRequest,
  options: Partial<MigrateOptions> = {},
  /** One table of a set changed in one cut-over (sets/migrate-set.ts). */
  jointCutover?: JointCutover,
  /** With --revert-window: where the set's windows meet to go back together (sets/set-revert.ts). */
  jointRevert?: JointRevert,
): Promise<MigrateResult> {
  // Before anything is read or dropped: a live run's checkpoint and objects are not ours.
  const claim = await RunClaim.take(engine, request.table);
  try {
    return await migrateClaimed(engine, request, options, claim, jointCutover, jointRevert);
  } finally {
    await claim.release();
  }
}

async function migrateClaimed(
  engine: Engine,
  request: MigrationRequest,
  options: Partial<MigrateOptions>,
  claim: RunClaim,
  jointCutover: JointCutover | undefined,
  jointRevert: JointRevert | undefined,
): Promise<MigrateResult> {
  const started = Date.now();
  const start = await startRun(engine, request, options, jointCutover, started);
  if ('finished' in start) return start.finished;
  const { config, services, migration, checkpoint, probes, result } = start;
  const run = checkpoint ? CheckpointRun.continuing(checkpoint) : CheckpointRun.fresh(engine, request.table);
  const ctx = new RunContext(engine, migration, config, result.state, services.reporter, result, run, services.signal);
  if (jointCutover) {
    // Nothing is made on any table of the set before every one of them passed its checks.
    await jointCutover.accepted(ctx).catch(async (error) => {
      await probes.close().catch(ignoreFailure(CLEANUP_AFTER_FAILURE));
      throw error;
    });
  }
  await new Run(ctx, services, checkpoint, probes, claim, jointCutover, jointRevert).execute();
  result.executed = true;
  result.durationMs = Date.now() - started;
  return result;
}

class Run {
  private readonly machinery: RunMachinery;
  private claimLost = false;

  constructor(
    private readonly ctx: RunContext,
    private readonly services: RunServices,
    private readonly checkpoint: Checkpoint | null,
    private readonly probes: Probes,
    private readonly claim: RunClaim,
    private readonly jointCutover?: JointCutover,
    private readonly jointRevert?: JointRevert,
  ) {
    this.machinery = new RunMachinery(ctx, checkpoint, probes, claim);
  }

  async execute(): Promise<void> {
    const { migration, config, state, report } = this.ctx;
    const { applier, checkpointer } = this.machinery;
    const window = this.checkpoint?.revertWindow ?? (config.revertWindowMs === undefined ? null : { lengthMs: config.revertWindowMs });
    let cutOver = false;
    state.mark('start');
    const stopWatching = watchFlagFiles(config, state, (message) => report.warn(message));
    // The swaps (the cut-over, a revert's) have the writers' stand-in probing every 10 ms instead.
    const tableProbe = new TableProbe(await migration.openLockProbe(), state.samples, () => SWAPS.has(state.status.phase));
    try {
      try {
        await this.hook('startup');
        if (this.checkpoint?.plan.reverse) {
          cutOver = true; // a resumed revert window: the forward run's swap is long done
          this.jointCutover?.leave();
        } else if (this.checkpoint && (this.checkpoint.cutOver || (await migration.swapped()))) {
          // The crash came after the swap committed: only cleanup is left (and a set swaps the rest without this table).
          cutOver = true;
          this.jointCutover?.leave();
          report.info('the interrupted run had already cut over; cleaning up');
        } else {
          // Saved with the run's first checkpoint: a crash right after the swap still opens the window.
          checkpointer.revertWindow = window;
          cutOver = await this.phases();
        }
      } catch (caught) {
        const error = this.ctx.engine.isDiskFull(caught) ? new DiskFullError(caught, state.status.phase) : caught;
        // Another run owns the objects now, or a resume must find out what a swap made (or use what
        // was copied once there is room): leave them to it.
        this.claimLost = error instanceof ClaimLostError || error instanceof KeptForResumeError;
        this.jointCutover?.fail(this.ctx.plan.table, error);
        state.status.state = 'failed';
        state.mark('failed');
        await this.hook('failure', error).catch(ignoreFailure(FAILURE_HOOK));
        throw error;
      } finally {
        await applier.stop();
        if (!this.claimLost && !this.checkpoint?.plan.reverse) {
          this.ctx.enter('cleanup');
          // A lost session (a killed backend, a failover) is retried here too, and even when the run
          // was aborted: what cleanup leaves, a dead run's slot or triggers, costs the server until removed.
          const cleanupCtx = { isTransient: (e: unknown) => this.ctx.isTransient(e), report: this.ctx.report, checkAbort: () => {} };
          await retryTransient(cleanupCtx, 'cleanup', () =>
            cleanupRun(this.ctx, { dropOld: config.dropOld, cutOver, keepCheckpoint: cutOver && window !== null }),
          );
        }
      }
      if (cutOver && window) await this.followBack({ ...window, ...checkpointer.revertWindow });
    } finally {
      stopWatching();
      await tableProbe.stop();
      await this.probes.close().catch(ignoreFailure(CLOSING));
      report.close();
    }
    state.status.state = 'done';
    this.ctx.enter('done');
    state.mark('end');
    await this.hook('success');
  }

  /** The way back: a migration from the new table to the old one, followed until a revert, `complete` or the window's end. */
  private async followBack(window: RevertWindowState): Promise<void> {
    const resumed = this.checkpoint?.plan.reverse ? this.checkpoint : null;
    const reverse = resumed ? this.ctx.migration : await this.ctx.transient('reading the way back', () => this.ctx.migration.reversed());
    const ctx = new RunContext(this.ctx.engine, reverse, this.ctx.config, this.ctx.state, this.ctx.report, this.ctx.result, this.ctx.run, this.ctx.signal);
    // A crash between the swap and the checkpoint that dates the window: it starts now.
    const until = window.until ?? new Date(Date.now() + window.lengthMs).toISOString();
    await new RevertWindow(ctx, this.services, resumed, this.probes, this.claim, { ...window, until }, this.jointRevert).run();
  }

  private async phases(): Promise<boolean> {
    const { migration, state, report, result } = this.ctx;
    const { applier, copy, checkpointer, progress, pacing } = this.machinery;
    this.ctx.enter('setup');
    // A lost session (a restart, a killed connection) is another attempt: the engine makes the shadow afresh.
    if (!this.checkpoint) await this.ctx.transient('making the shadow table', () => migration.createShadow());
    else await this.ctx.transient('readying the shadow table', async () => migration.resumeShadow?.());
    await this.ctx.transient('opening the change stream', () => applier.open());
    await checkpointer.save(true);

    if (!copy.done) {
      await this.hook('before-copy');
      this.ctx.enter('copy');
      await copy.run(pacing, checkpointer, progress);
    }
    this.ctx.enter('catch-up');
    // The engine orders its key and index builds; the shadow is levelled when it asks, else by the verification.
    await migration.afterCopy({
      transient: (what, step) => this.ctx.transient(what, step),
      catchUp: () => applier.catchUp(),
      uniqueSafe: (step) => applier.uniqueSafe(step),
    });
    state.mark('copy done');
    await this.hook('copy-complete');

    await this.verify();
    if (await postponed(this.ctx)) {
      this.ctx.enter('postponed');
      await waitForCutoverRequest(this.ctx, applier, checkpointer, progress);
      await this.verify(); // parity is proven before every cut-over, however long the wait was
    }
    if (checkpointer.revertWindow) await this.prepareWayBack();

    await this.hook('before-cutover');
    this.ctx.enter('cutover');
    const cutover = new Cutover(this.ctx, applier, pacing, checkpointer, () => this.verify(), progress);
    const { lockedMs, writerWaitMs } = this.jointCutover ? await this.jointCutover.join({ ctx: this.ctx, applier, cutover }) : await cutover.run();
    // Before any cleanup step: a crash between its steps (the old table dropped, the checkpoint not yet)
    // must still read as "swapped, only cleanup left", which the tables alone may no longer show.
    checkpointer.cutOver = true;
    const window = checkpointer.revertWindow;
    if (window) checkpointer.revertWindow = { ...window, until: new Date(Date.now() + window.lengthMs).toISOString() };
    await checkpointer.save(true);
    result.cutoverLockedMs = lockedMs;
    result.cutoverWriterWaitMs = writerWaitMs;
    state.status.cutoverLockedMs = lockedMs;
    state.mark('cut-over');
    report.info(`cut-over done, writers blocked for ${lockedMs} ms (a write waited up to ${writerWaitMs} ms)`, { lockedMs, writerWaitMs });
    return true;
  }

  /**
   * A revert window's way back, made before the swap: the reverse mapping proven again on rows the
   * copy stepped over, then the new table's triggers that let the old one follow it from the swap's instant.
   */
  private async prepareWayBack(): Promise<void> {
    const { migration, config, report, result } = this.ctx;
    this.ctx.enter('revert capture');
    result.revert = await this.ctx.transient('proving the way back', () => requireRevertible(migration, this.machinery.copy.sample.anchors()));
    report.info(`the way back proven by the server on ${result.revert.provenRows} sampled row(s)`);
    // A session lost midway is another attempt: the install makes only what is missing.
    await this.ctx.transient('installing the revert triggers', () =>
      installRetried((lockTimeoutMs) => migration.installReverseCapture(lockTimeoutMs), 'the revert triggers', {
        lockTimeoutMs: config.lockTimeoutMs,
        attempts: config.cutoverAttempts,
        warn: (message) => report.warn(message),
      }),
    );
  }

  /** The mapping proven again on rows the copy stepped over, then checksum rounds until the tables match. */
  private async verify(): Promise<void> {
    const { migration, state, report, result } = this.ctx;
    const { applier, copy, checkpointer } = this.machinery;
    this.ctx.enter('verify');
    // A session lost mid-proof (a failover, a killed connection) leaves nothing: the probes die with it.
    const proof = await this.ctx.transient('proving the column mapping', () => proveMapping(migration, copy.sample.anchors()));
    result.mappingProofs.push(proof);
    report.info(`column mapping proven by the server's own ALTER on ${proof.rows} sampled row(s)`, { mappingProof: proof });
    result.checksumRounds = await checksumRounds(this.ctx, applier, (range) => copy.copyRange(range), copy.proof.take());
    state.mark('verified');
    await checkpointer.save(true);
  }

  private hook(event: HookEvent, error?: unknown): Promise<void> {
    return runHook(this.ctx, this.services, event, error);
  }
}
