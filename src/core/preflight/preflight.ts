import { isBackfill, openCheckpoint, type Checkpoint } from '../engine/state/checkpoint.js';
import type { MigrateConfig } from '../run/config.js';
import { backoffMs } from '../engine/retry/backoff.js';
import { retryBounded } from '../engine/retry/retry.js';
import { NoCheckpointError, UserError } from '../engine/errors.js';
import { refusals } from '../engine/checks/check.js';
import { proveMapping, type MappingProof } from './mapping-proof.js';
import { proveRevert, revertCheck, type RevertVerdict } from './revert-verdict.js';
import type { Settings } from '../run/run-state.js';
import { throttleQueryValue } from '../run/throttler.js';
import type { CheckResult, Engine, Migration, MigrationRequest, Plan, Probes } from '../engine/types.js';
import type { EngineMigrations } from '../engine/ports/migrations.js';
import type { EngineServer } from '../engine/ports/server.js';

/** Every failed check's message on one line; the plan and all results, for a dry run to list. */
export class RefusedByChecks extends UserError {
  constructor(
    readonly plan: Plan,
    readonly checks: CheckResult[],
  ) {
    super(refusals(checks));
  }
}

export interface Preflight {
  migration: Migration;
  checks: CheckResult[];
  /** The interrupted run's checkpoint, when resuming. */
  checkpoint: Checkpoint | null;
  /** The server's proof of the mapping; a resumed run proved it when it started. */
  proof: MappingProof | null;
  /** Whether the change could be reverted: for a dry run, and for a run with a revert window (which it refuses otherwise). */
  revert: RevertVerdict | null;
  /** Open only for a run that executes; the caller closes them. */
  probes: Probes | null;
}

/**
 * Everything that can refuse a run, before anything is created: the plan, every registered check,
 * the server's proof of the column mapping, replicas, load names and the throttle query.
 */
export async function preflight(engine: Engine, request: MigrationRequest, config: Readonly<MigrateConfig>, settings: Settings): Promise<Preflight> {
  const checkpoint = config.resume ? await loadCheckpoint(engine, request) : null;
  const windowAsked = config.revertWindowMs !== undefined;
  if (checkpoint && windowAsked && !checkpoint.revertWindow) {
    throw new UserError(`the interrupted run on ${request.table} had no revert window; resume it without --revert-window`);
  }
  // Before the run's plan is made, since a leftover shadow's index names would shape it: a first plan
  // only names what to remove. The run's claim is held, so no live run owns them, and with no
  // checkpoint they are of no use to anyone.
  if (config.discardUnsaved) await discardUnsaved(await engine.prepare(request));
  const migration = checkpoint ? engine.resume(checkpoint.plan) : await engine.prepare(request);
  // Before anything else reads it: the shadow was copied from the table the checkpoint names, and a
  // table made again under that name since would only show as checksums that never agree.
  if (checkpoint && !checkpoint.cutOver && (await migration.tableReplaced())) {
    const table = checkpoint.plan.table;
    throw new UserError(
      `refusing to resume on ${table}: it is not the table the checkpoint was made for (dropped and made again, or rebuilt, since the run was interrupted); ` +
        `nothing was changed: remove the interrupted run's objects with "shadowcut cleanup --url ... --table ${table}" and start again`,
    );
  }
  // A revert window's way back was checked before its forward run cut over.
  const checks = checkpoint?.plan.reverse ? [] : await migration.checks({ resuming: checkpoint !== null, discardUnsaved: config.discardUnsaved });
  if (!checkpoint) checks.push(revertCheck(migration, windowAsked));
  if (checks.some((c) => !c.ok)) throw new RefusedByChecks(migration.plan, checks);
  // In the dry run too: a mapping the server disagrees with is refused before anything is created.
  const proof = checkpoint ? null : await provedAgainOnLostSessions(engine, () => proveMapping(migration, null));
  // The dry run names a change whose values would not come back; a run with a window is refused for it.
  const revert = checkpoint || (config.execute && !windowAsked) ? null : await provedAgainOnLostSessions(engine, () => proveRevert(migration, null));
  if (revert && !revert.revertible && windowAsked) {
    throw new UserError(`--revert-window: the change could not be reverted (${revert.reasons.join('; ')}); run without a revert window`);
  }

  // Pacing by the writers times the heartbeat's writes, so it runs even with no replica to watch.
  const heartbeat = config.execute && settings.maxWriterSlowdown > 0;
  const probes = await checkedProbes((replicas) => migration.openProbes(replicas, { heartbeat }), config, settings);
  return { migration, checks, checkpoint, proof, revert, probes };
}

/**
 * A resumed set's member that saved no checkpoint: whatever the dead run made for it (its shadow, its
 * capture triggers and log) is removed, as a failed run's would be. The set's stream stays: the
 * resumed members follow it, and the member joins it again.
 */
function discardUnsaved(migration: Migration): Promise<void> {
  return migration.cleanup({ cutOver: false, dropOld: false, keepSetStream: true });
}

/** A session lost mid-proof (a failover, a killed connection) leaves nothing behind: the proof is simply made again. */
function provedAgainOnLostSessions<T>(engine: EngineServer, prove: () => Promise<T>): Promise<T> {
  return retryBounded({ attempts: 5, retryable: (error) => engine.isTransient(error), pauseMs: (n) => backoffMs(n - 1, 250) }, prove);
}

/**
 * The throttle's probes, with the load names and the throttle query tried on the server first;
 * null for a dry run, which only tries them: watching replicas writes a heartbeat table.
 */
export async function checkedProbes(
  open: (replicas: string[]) => Promise<Probes>,
  config: { execute: boolean; replicas: string[]; throttleQuery?: string },
  settings: Settings,
): Promise<Probes | null> {
  const probes = await open(config.execute ? config.replicas : []);
  try {
    await checkThrottleInputs(probes, settings, config.throttleQuery);
  } catch (error) {
    await probes.close();
    throw error;
  }
  if (config.execute) return probes;
  await probes.close();
  return null;
}

/** The load names and the throttle query, tried on the server before anything is created (migrate and backfill). */
async function checkThrottleInputs(probes: Probes, settings: Settings, throttleQuery: string | undefined): Promise<void> {
  await checkLoadNames(probes, settings);
  if (!throttleQuery) return;
  await throttleQueryValue(probes, throttleQuery).catch((error: Error) => {
    throw new UserError(`--throttle-query fails: ${error.message}`);
  });
}

/** A misspelt indicator would read as 0 and silently never throttle: refuse names the server does not know. */
async function checkLoadNames(probes: Probes, settings: Settings): Promise<void> {
  const names = [...new Set([...Object.keys(settings.maxLoad), ...Object.keys(settings.criticalLoad)])];
  if (names.length === 0) return;
  const known = await probes.load(names);
  const unknown = names.filter((n) => !(n in known));
  if (unknown.length) throw new UserError(`unknown load indicator(s) ${unknown.join(', ')} for --max-load/--critical-load`);
}

async function loadCheckpoint(engine: EngineServer & EngineMigrations, request: MigrationRequest): Promise<Checkpoint> {
  const text = await engine.loadCheckpoint(request.table);
  if (!text) throw new NoCheckpointError(`there is no checkpoint of an earlier run on ${request.table} to resume; run without --resume`);
  // Sealed, this table's, and not older than what this host knows of its run (openCheckpoint), or refused.
  const checkpoint = openCheckpoint(text, engine, request.table);
  if (isBackfill(checkpoint)) {
    throw new UserError(
      `the interrupted run on ${request.table} was a backfill: continue it with "shadowcut backfill ... --resume", or remove it with "shadowcut cleanup"`,
    );
  }
  if (checkpoint.alter.trim() !== request.alter.trim()) {
    throw new UserError(
      `the interrupted run on ${request.table} was for a different ALTER ("${checkpoint.alter}"); resume it with that --alter, or remove it with "shadowcut cleanup"`,
    );
  }
  return checkpoint;
}
