import { defaultOptions, type MigrateConfig, type MigrateResult, type RunServices } from '../run/config.js';
import { AbortedError, UserError, FAILURE_HOOK, ignoreFailure } from '../engine/errors.js';
import type { RunState } from '../run/run-state.js';
import type { Engine, MigrationRequest } from '../engine/types.js';
import { runInPlace, type InPlaceContext } from './run.js';
import type { AlterClassification } from '../engine/ports/in-place.js';

/**
 * migrate's in-place path: no shadow, no stream, no copy, so none of the copy's checks apply. Only a
 * dead copy's checkpoint stops it: that run's --resume would meet this DDL in the change stream.
 */
export async function inPlace(
  engine: Engine,
  request: MigrationRequest,
  classified: AlterClassification,
  config: Readonly<MigrateConfig>,
  services: RunServices,
  state: RunState,
  started: number,
): Promise<MigrateResult> {
  const table = engine.qualify(request.table);
  if (await engine.loadCheckpoint(request.table)) {
    throw new UserError(
      `an interrupted run on ${table} left its checkpoint: finish it with --resume, or remove it with "shadowcut cleanup", before changing the table again`,
    );
  }
  const result: MigrateResult = {
    plan: null,
    path: 'in-place',
    parts: classified.parts,
    pathReason: classified.why,
    inPlaceStatements: classified.steps.flatMap((s) => s.sql),
    checks: [],
    executed: false,
    resumed: false,
    rowsCopied: 0,
    changesApplied: 0,
    cutoverAttempts: 0,
    cutoverLockedMs: 0,
    cutoverWriterWaitMs: null,
    checksumRounds: 0,
    copyTimeProof: null,
    revert: null,
    revertWindow: null,
    mappingProofs: [],
    keysCompared: 0,
    keysComparedAtCutover: 0,
    durationMs: 0,
    state,
  };
  if (!config.execute) return result;
  const report = services.reporter;
  const ctx: InPlaceContext = {
    isTransient: (error) => engine.isTransient(error),
    report,
    checkAbort() {
      if (services.signal?.aborted) throw new AbortedError(String(services.signal.reason ?? 'interrupted'));
      if (state.abortReason) throw new AbortedError(state.abortReason);
    },
  };
  state.mark('start');
  state.status.phase = 'in-place';
  report.phase('in-place');
  try {
    await services.hook?.('startup', state).catch((e: Error) => {
      throw new UserError(`hook startup failed, stopping before the change: ${e.message}`);
    });
    result.inPlaceStatements = await runInPlace(
      engine,
      classified.steps,
      { lockTimeoutMs: config.lockTimeoutMs, attempts: config.cutoverAttempts, snapshotWaitMs: config.snapshotWaitMs ?? defaultOptions.snapshotWaitMs! },
      ctx,
    );
  } catch (error) {
    state.status.state = 'failed';
    state.mark('failed');
    await services.hook?.('failure', state, error).catch(ignoreFailure(FAILURE_HOOK));
    throw error;
  } finally {
    report.close();
  }
  state.status.state = 'done';
  state.status.phase = 'done';
  state.mark('in place');
  state.mark('end');
  result.executed = true;
  result.durationMs = Date.now() - started;
  await services.hook?.('success', state).catch((e: Error) => report.warn(`hook success failed: ${e.message}`));
  return result;
}
