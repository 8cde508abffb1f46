import { Applier } from './applier.js';
import type { Checkpoint } from '../checkpoint.js';
import { Checkpointer } from './checkpointer.js';
import { ClaimLostError, RunClaim } from '../claim.js';
import { configure, type HookEvent, type MigrateOptions, type MigrateResult, type MigrateWiring } from '../config.js';
import { RunContext } from './context.js';
import { CopyLoop } from './copy-loop.js';
import { Cutover } from './cutover.js';
import { UserError } from '../errors.js';
import { proveMapping } from '../mapping-proof.js';
import { Pacing, type Waiting } from '../pacing.js';
import { postponed, waitForCutoverRequest } from './postponement.js';
import { preflight } from '../preflight.js';
import { Progress } from '../progress.js';
import { inPlace } from '../in-place/migrate.js';
import { Throttler, watchPanicFlagFile } from '../throttler.js';
import type { Engine, MigrationRequest, Probes } from '../types.js';
import { checksumRounds } from './verify.js';

export { defaultOptions, type HookEvent, type MigrateOptions, type MigrateResult } from '../config.js';

/**
 * The phase order: checks -> setup -> copy (stream running) -> catch-up -> verify -> [postponed]
 * -> cutover -> cleanup. Each phase's work lives in its own module; this file only orders them.
 */
export async function migrate(engine: Engine, request: MigrationRequest, options: Partial<MigrateOptions> = {}): Promise<MigrateResult> {
  // Before anything is read or dropped: a live run's checkpoint and objects are not ours.
  const claim = await RunClaim.take(engine, request.table);
  try {
    return await migrateClaimed(engine, request, options, claim);
  } finally {
    await claim.release();
  }
}

async function migrateClaimed(engine: Engine, request: MigrationRequest, options: Partial<MigrateOptions>, claim: RunClaim): Promise<MigrateResult> {
  const started = Date.now();
  const { config, wiring, settings, makeState } = configure(options);
  // A resumed run is a copy by definition; otherwise in place whenever the server can.
  const sorted = config.resume || config.forceCopy ? null : await engine.classifyAlter(request.table, request.alter);
  if (sorted?.path === 'in-place') {
    return inPlace(engine, request, sorted, config, wiring, makeState(engine.qualify(request.table), request.alter, engine.kind), started);
  }
  const { migration, checks, checkpoint, proof, probes } = await preflight(engine, request, config, settings);
  const plan = migration.plan;
  const result: MigrateResult = {
    plan,
    path: 'copy',
    parts: sorted?.parts ?? [],
    pathReason: sorted?.why ?? (config.resume ? 'resuming an interrupted copy' : '--force-copy'),
    inPlaceStatements: [],
    checks,
    executed: false,
    resumed: checkpoint !== null,
    rowsCopied: checkpoint?.rowsCopied ?? 0,
    changesApplied: checkpoint?.changesApplied ?? 0,
    cutoverAttempts: 0,
    cutoverLockedMs: 0,
    checksumRounds: 0,
    mappingProofs: proof ? [proof] : [],
    keysCompared: 0,
    keysComparedAtCutover: 0,
    durationMs: 0,
    state: makeState(plan.table, plan.alter, engine.kind),
  };
  result.state.status.capture = plan.capture?.kind ?? 'stream';
  if (!probes) return result;
  const ctx = new RunContext(engine, migration, config, result.state, wiring.reporter, result, wiring.signal);
  await new Run(ctx, wiring, checkpoint, probes, claim).execute();
  result.executed = true;
  result.durationMs = Date.now() - started;
  return result;
}

class Run {
  private readonly applier: Applier;
  private readonly copy: CopyLoop;
  private readonly checkpointer: Checkpointer;
  private readonly progress: Progress;
  private readonly pacing: Pacing;
  private claimLost = false;

  constructor(
    private readonly ctx: RunContext,
    private readonly wiring: MigrateWiring,
    private readonly checkpoint: Checkpoint | null,
    private readonly probes: Probes,
    claim: RunClaim,
  ) {
    this.applier = new Applier(ctx, checkpoint?.position ?? null, () => this.progress.update());
    this.copy = new CopyLoop(ctx, this.applier, checkpoint);
    this.progress = new Progress(ctx, () => ({
      done: ctx.result.rowsCopied,
      estimated: ctx.plan.estimatedRows,
      finished: this.copy.done,
      changesApplied: ctx.result.changesApplied,
      backlog: this.applier.backlog,
    }));
    this.checkpointer = new Checkpointer(ctx, claim, () => ({ copiedUpTo: this.copy.copiedUpTo, copyDone: this.copy.done, position: this.applier.applied! }));
    // While held back or resting, the stream keeps being followed (applied when its buffer fills) and the checkpoint kept.
    const waiting: Waiting = {
      check: () => this.applier.checkStream(),
      held: async () => {
        await this.applier.applyIfFilling();
        await this.checkpointer.save();
      },
      rest: (ms) => this.applier.waitApplying(ms),
    };
    this.pacing = new Pacing(ctx, new Throttler(ctx.state, probes, ctx.config), waiting, this.progress);
  }

  async execute(): Promise<void> {
    const { migration, config, state, report } = this.ctx;
    let cutOver = false;
    state.mark('start');
    const stopWatching = watchPanicFlagFile(config.panicFlagFile, state);
    try {
      await this.hook('startup');
      if (this.checkpoint && (this.checkpoint.cutOver || (await migration.swapped()))) {
        // The crash came after the swap committed: only cleanup is left.
        cutOver = true;
        report.info('the interrupted run had already cut over; cleaning up');
      } else {
        cutOver = await this.phases();
      }
    } catch (error) {
      // Another run owns the objects now: leave them to it.
      this.claimLost = error instanceof ClaimLostError;
      state.status.state = 'failed';
      state.mark('failed');
      await this.hook('failure', error).catch(() => {});
      throw error;
    } finally {
      stopWatching();
      await this.applier.stop();
      await this.probes.close().catch(() => {});
      if (!this.claimLost) {
        this.ctx.enter('cleanup');
        await migration.cleanup({ dropOld: config.dropOld, cutOver });
      }
      report.close();
    }
    state.status.state = 'done';
    this.ctx.enter('done');
    state.mark('end');
    await this.hook('success');
  }

  private async phases(): Promise<boolean> {
    const { migration, state, report, result } = this.ctx;
    this.ctx.enter('setup');
    if (!this.checkpoint) await migration.createShadow();
    else await migration.resumeShadow?.();
    await this.applier.open();
    await this.checkpointer.save(true);

    if (!this.copy.done) {
      await this.hook('before-copy');
      this.ctx.enter('copy');
      await this.copy.run(this.pacing, this.checkpointer, this.progress);
    }
    this.ctx.enter('catch-up');
    // Level first: a unique index built in afterCopy must not meet a value that only looks
    // duplicated because a change moving it is still unapplied.
    await this.applier.catchUp();
    await this.ctx.transient('index build', () => this.applier.uniqueSafe(() => migration.afterCopy()));
    state.mark('copy done');
    await this.hook('copy-complete');

    await this.verify();
    if (await postponed(this.ctx)) {
      this.ctx.enter('postponed');
      await waitForCutoverRequest(this.ctx, this.applier, this.checkpointer, this.progress);
      await this.verify(); // parity is proven before every cut-over, however long the wait was
    }

    await this.hook('before-cutover');
    this.ctx.enter('cutover');
    const lockedMs = await new Cutover(this.ctx, this.applier, this.pacing, this.checkpointer, () => this.verify()).run();
    // Before any cleanup step: a crash between its steps (the old table dropped, the checkpoint not yet)
    // must still read as "swapped, only cleanup left", which the tables alone may no longer show.
    this.checkpointer.cutOver = true;
    await this.checkpointer.save(true);
    result.cutoverLockedMs = lockedMs;
    state.status.cutoverLockedMs = lockedMs;
    state.mark('cut-over');
    report.info(`cut-over done, writers blocked for ${lockedMs} ms`, { lockedMs });
    return true;
  }

  /** The mapping proven again on rows the copy stepped over, then checksum rounds until the tables match. */
  private async verify(): Promise<void> {
    const { migration, state, report, result } = this.ctx;
    this.ctx.enter('verify');
    // A session lost mid-proof (a failover, a killed connection) leaves nothing: the probes die with it.
    const proof = await this.ctx.transient('proving the column mapping', () => proveMapping(migration, this.copy.sample.anchors()));
    result.mappingProofs.push(proof);
    report.info(`column mapping proven by the server's own ALTER on ${proof.rows} sampled row(s)`, { mappingProof: proof });
    result.checksumRounds = await checksumRounds(this.ctx, this.applier, (range) => this.copy.copyRange(range));
    state.mark('verified');
    await this.checkpointer.save(true);
  }

  private async hook(event: HookEvent, error?: unknown): Promise<void> {
    if (!this.wiring.hook) return;
    try {
      await this.wiring.hook(event, this.ctx.state, error);
    } catch (failure) {
      if (error !== undefined || event === 'success') return this.ctx.report.warn(`hook ${event} failed: ${(failure as Error).message}`);
      throw new UserError(`hook ${event} failed, stopping before the cut-over: ${(failure as Error).message}`);
    }
  }
}
