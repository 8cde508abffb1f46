import { UserError } from '../engine/errors.js';
import { PROOF_ROWS, showValue } from './mapping-proof.js';
import type { CheckResult, Key } from '../engine/contract-values.js';
import type { MigrationRevert } from '../engine/ports/revert.js';
import type { RevertVerdict } from '../run/proofs.js';

export type { RevertVerdict };

/**
 * What the plan alone says about the way back, as a check: failed only when a window was asked
 * for; otherwise the dry run still names a change that could not be reverted.
 */
export function revertCheck(migration: MigrationRevert, windowAsked: boolean): CheckResult {
  const reasons = migration.revertRefusals();
  if (reasons.length === 0)
    return { name: 'revert window', ok: true, message: windowAsked ? 'the change can be reverted' : 'not asked for; the change can be reverted' };
  const why = reasons.join('; ');
  if (!windowAsked) return { name: 'revert window', ok: true, message: `not asked for; the change could not be reverted: ${why}` };
  return { name: 'revert window', ok: false, message: `--revert-window: the change could not be reverted (${why}); run without a revert window` };
}

/**
 * The reverse mapping proven before it is promised: sampled rows go through the change and back
 * on the server, and every value must come back as it was. Refusals from the plan come first: a
 * change that drops data needs no sample to be known lossy.
 */
export async function proveRevert(migration: MigrationRevert, anchors: (Key | null)[] | null): Promise<RevertVerdict> {
  const reasons = migration.revertRefusals();
  if (reasons.length > 0) return { revertible: false, reasons, provenRows: 0 };
  const result = await migration.proveReverse(anchors, PROOF_ROWS);
  if (result.unmatched > 0) reasons.push(`${result.unmatched} of ${result.rows} sampled rows do not come back`);
  for (const c of result.columns) {
    if (c.differing === 0 || c.generatedByServer) continue;
    const e = c.example;
    const example = e ? ` (key ${e.key}: ${showValue(e.alter)} comes back as ${showValue(e.copy)})` : '';
    reasons.push(`column ${c.name} does not come back in ${c.differing} of ${result.rows} sampled rows${example}`);
  }
  return { revertible: reasons.length === 0, reasons, provenRows: result.rows };
}

/** A run with a revert window cuts over only onto a way back the server has just proven. */
export async function requireRevertible(migration: MigrationRevert, anchors: (Key | null)[] | null): Promise<RevertVerdict> {
  const verdict = await proveRevert(migration, anchors);
  if (!verdict.revertible) {
    throw new UserError(`--revert-window: the change could not be reverted (${verdict.reasons.join('; ')}); nothing was swapped`);
  }
  return verdict;
}
