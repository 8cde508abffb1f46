import type { Checkpoint } from '../engine/state/checkpoint.js';
import { MAX_COPY_THREADS } from '../engine/defaults.js';
import { configure, definedOnly, type MigrateConfig, type MigrateOptions, type MigrateResult, type RunServices } from '../run/config.js';
import { UserError } from '../engine/errors.js';
import { checkStateKey } from '../engine/state/state-seal.js';
import { preflight } from '../preflight/preflight.js';
import { inPlace } from '../in-place/migrate.js';
import type { Engine, Migration, MigrationRequest, Probes } from '../engine/types.js';
import type { JointCutover } from './sets/set-cutover.js';

/** A run ready to make things: its settings, its migration, the checkpoint it goes on from, and the result it fills in. */
export interface Started {
  config: Readonly<MigrateConfig>;
  services: RunServices;
  migration: Migration;
  checkpoint: Checkpoint | null;
  probes: Probes;
  result: MigrateResult;
}

/**
 * Everything before the first thing is made: the options checked, the path chosen (in place when
 * the server can, run to its end here), the preflight (plan, checks, mapping proof, probes) and the
 * result the run fills in. `finished` when nothing more is to run: the in-place path, or a dry run.
 */
export async function startRun(
  engine: Engine,
  request: MigrationRequest,
  options: Partial<MigrateOptions>,
  jointCutover: JointCutover | undefined,
  started: number,
): Promise<Started | { finished: MigrateResult }> {
  // A key that cannot seal the checkpoints is refused before anything is made.
  checkStateKey();
  const { config, services, settings, makeState } = configure({ chunkTimeMs: engine.chunkTimeMs, ...definedOnly(options) });
  if (!Number.isInteger(config.copyThreads) || config.copyThreads < 1 || config.copyThreads > MAX_COPY_THREADS) {
    throw new UserError(`copy threads must be a whole number from 1 to ${MAX_COPY_THREADS}, not ${config.copyThreads}`);
  }
  if (config.dropOld && config.revertWindowMs !== undefined) {
    throw new UserError('--drop-old cannot be combined with --revert-window: the window keeps the old table level to go back to it');
  }
  // A resumed run is a copy by definition; otherwise in place whenever the server can.
  const classified = config.resume || config.forceCopy || jointCutover ? null : await engine.classifyAlter(request.table, request.alter);
  // A revert window needs the copy: the old table it keeps is what follows the new one back.
  const window = config.revertWindowMs !== undefined;
  if (classified?.path === 'in-place' && !window) {
    return {
      finished: await inPlace(engine, request, classified, config, services, makeState(engine.qualify(request.table), request.alter, engine.kind), started),
    };
  }
  const { migration, checks, checkpoint, proof, revert, probes } = await preflight(engine, request, config, settings);
  const plan = migration.plan;
  const result: MigrateResult = {
    plan,
    path: 'copy',
    parts: classified?.parts ?? [],
    pathReason:
      classified?.path === 'in-place'
        ? 'a revert window needs the copy path: the old table it keeps is what follows the new one back'
        : (jointCutover?.why ?? classified?.why ?? (config.resume ? 'resuming an interrupted copy' : '--force-copy')),
    inPlaceStatements: [],
    checks,
    executed: false,
    resumed: checkpoint !== null,
    rowsCopied: checkpoint?.rowsCopied ?? 0,
    changesApplied: checkpoint?.changesApplied ?? 0,
    cutoverAttempts: 0,
    cutoverLockedMs: 0,
    cutoverWriterWaitMs: null,
    checksumRounds: 0,
    copyTimeProof: null,
    mappingProofs: proof ? [proof] : [],
    revert,
    revertWindow: null,
    keysCompared: 0,
    keysComparedAtCutover: 0,
    durationMs: 0,
    state: makeState(plan.table, plan.alter, engine.kind),
  };
  result.state.status.capture = plan.capture?.kind ?? 'stream';
  if (!probes) return { finished: result };
  return { config, services, migration, checkpoint, probes, result };
}
