import { refusals, verdict } from '../engine/checks/check.js';
import { checkpointLeftOver, isBackfill, openCheckpoint, type CheckpointScope } from '../engine/state/checkpoint.js';
import { NoCheckpointError, UserError } from '../engine/errors.js';
import { checkedProbes } from '../preflight/preflight.js';
import type { Settings } from '../run/run-state.js';
import type { CheckResult, Probes } from '../engine/types.js';
import type { BackfillConfig } from './config.js';
import type { BackfillCheckpoint } from '../engine/state/backfill-checkpoint.js';
import type { Backfill, BackfillRequest, EngineBackfill } from '../engine/ports/backfill.js';

/** Every failed check's message on one line; all results, for a dry run to list. */
export class BackfillRefused extends UserError {
  constructor(readonly checks: CheckResult[]) {
    super(refusals(checks));
  }
}

export interface BackfillPreflight {
  target: Backfill;
  checks: CheckResult[];
  /** The killed run's checkpoint, when resuming. */
  checkpoint: BackfillCheckpoint | null;
  estimatedMatching: number;
  /** Open only for a run that executes; the caller closes them. */
  probes: Probes | null;
}

/**
 * Everything that can refuse a backfill, before anything is created: the table and its key, the
 * SET and WHERE as the server reads them, a checkpoint left on the table, load names and the
 * throttle query. Nothing is written, so a refusal leaves nothing behind.
 */
export async function backfillPreflight(
  engine: EngineBackfill & CheckpointScope,
  request: BackfillRequest,
  config: Readonly<BackfillConfig>,
  settings: Settings,
): Promise<BackfillPreflight> {
  const target = await engine.prepareBackfill(request);
  const checks = await target.checks();
  const saved = await target.savedCheckpoint();
  // Nothing to resume is said by its own exit code (the queue's runner reads it), whatever else failed.
  if (saved === null && config.resume)
    throw new NoCheckpointError(`there is no checkpoint of an earlier backfill on ${target.table} to resume; run without --resume`);
  const { check, checkpoint } = judgeCheckpoint(saved, request, config.resume, target.table, engine);
  checks.push(check);
  if (checks.some((c) => !c.ok)) throw new BackfillRefused(checks);
  const estimatedMatching = await target.estimateMatching();
  const probes = await checkedProbes((replicas) => target.openProbes(replicas), config, settings);
  return { target, checks, checkpoint, estimatedMatching, probes };
}

/** `<table>__state` is migrate's or a backfill's; only a backfill's with the same SET and WHERE is ours to resume. */
function judgeCheckpoint(
  saved: string | null,
  request: BackfillRequest,
  resume: boolean,
  table: string,
  scope: CheckpointScope,
): { check: CheckResult; checkpoint: BackfillCheckpoint | null } {
  const name = 'checkpoint';
  // A resume with none was refused before.
  if (saved === null) return { check: verdict(name, true, 'no checkpoint of an earlier run', ''), checkpoint: null };
  // Sealed, this table's, and not older than what this host knows of its run, or refused: the same
  // --set and --where alone would resume past rows another table's or an earlier run's batches reached.
  const checkpoint = openCheckpoint(saved, scope, request.table);
  if (!isBackfill(checkpoint)) {
    const message = `an interrupted migrate of ${table} left a checkpoint: finish it with "shadowcut migrate ... --resume", or remove it with "shadowcut cleanup --url ... --table ${table}"`;
    return { check: verdict(name, false, '', message), checkpoint: null };
  }
  if (!resume) return { check: verdict(name, false, '', checkpointLeftOver(table)), checkpoint: null };
  const same = checkpoint.set.trim() === request.set.trim() && (checkpoint.where ?? '').trim() === (request.where ?? '').trim();
  const was = `--set "${checkpoint.set}"${checkpoint.where === null ? ' without --where' : ` --where "${checkpoint.where}"`}`;
  return {
    check: verdict(
      name,
      same,
      `resuming after ${checkpoint.batches} committed batch(es), ${checkpoint.rowsUpdated} row(s) updated`,
      `the interrupted backfill of ${table} was for ${was}; resume it with those, or remove it with "shadowcut cleanup"`,
    ),
    checkpoint: same ? checkpoint : null,
  };
}
