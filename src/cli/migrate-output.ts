import type { RevertWindowOutcome } from '../core/run/config.js';
import type { AlterPart } from '../core/engine/ports/in-place.js';
import type { RevertVerdict } from '../core/preflight/revert-verdict.js';
import type { MigrateResult } from '../core/migrate/runner.js';
import type { RefusedByChecks } from '../core/preflight/preflight.js';
import type { CheckResult, Plan } from '../core/engine/types.js';
import type { JsonReporter } from './render.js';
import { stdout } from './output.js';

// What `migrate` prints: the plan and its checks, the result and its figures (also the history's),
// as lines for the terminal or one JSON event. Other tools parse it, so it changes only on purpose.

function checkLines(plan: Plan, checks: CheckResult[]): string[] {
  return [
    `table: ${plan.table}`,
    `alter: ${plan.alter}`,
    ...plan.summary,
    'preflight:',
    ...checks.map((c) => `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.message}`),
  ];
}

export function printRefusal(refusal: RefusedByChecks, json: JsonReporter | null): void {
  if (json) {
    json.emit({ event: 'refused', table: refusal.plan.table, checks: refusal.checks });
    return;
  }
  stdout.lines([...checkLines(refusal.plan, refusal.checks), 'dry run: refused by the failed check(s) above; nothing was changed']);
}

export function printResult(r: MigrateResult, json: JsonReporter | null): void {
  if (json) {
    json.emit({ event: 'result', executed: r.executed, table: r.state.status.table, checks: r.checks, ...figures(r) });
    return;
  }
  const path = [`path: ${r.path} (${r.pathReason})`, ...partLines(r.parts)];
  if (!r.plan) {
    const out = [
      `table: ${r.state.status.table}`,
      `alter: ${r.state.status.alter}`,
      ...path,
      'in-place statements:',
      ...r.inPlaceStatements.map((s) => `  ${s}`),
    ];
    stdout.lines([...out, ...doneLines(r)]);
    return;
  }
  const out = [...checkLines(r.plan, r.checks), ...path];
  const proofs = r.mappingProofs.map((p) => p.rows).join(' + ');
  if (r.mappingProofs.length) out.push(`column mapping: proven by the server's own ALTER on ${proofs} sampled row(s)`);
  if (r.revert) out.push(revertLine(r.revert));
  out.push(...doneLines(r));
  stdout.lines(out);
}

export function doneLines(r: MigrateResult): string[] {
  if (!r.plan) {
    return [
      r.executed
        ? `done: made in place in ${(r.durationMs / 1000).toFixed(1)} s; nothing was copied, and there is no old table`
        : 'dry run: nothing was changed; add --execute to make the change in place',
    ];
  }
  if (!r.executed) return ['dry run: nothing was changed; add --execute to run the migration'];
  const w = r.revertWindow;
  const window = w ? [windowLine(w, r.plan)] : [];
  return [
    `done: ${r.rowsCopied} rows copied, ${r.changesApplied} changes applied, parity proven ${parityHow(r)} ` +
      `and row by row for ${r.keysCompared} changed row(s) since (${r.keysComparedAtCutover} under the cut-over lock), ` +
      `cut-over in ${r.cutoverAttempts} attempt(s) blocking writers ${r.cutoverLockedMs} ms (a write waited up to ${r.cutoverWriterWaitMs ?? 0} ms), ${(r.durationMs / 1000).toFixed(1)} s in all`,
    ...(w?.outcome === 'reverted' ? [] : [`the original table is kept as ${r.plan.oldTable} unless --drop-old was given`]),
    ...window,
    ...oldSnapshotLines(r),
  ];
}

/** Which proof it was: a whole-table checksum, or the copy's own chunk digests with only the rest checked again. */
function parityHow(r: MigrateResult): string {
  const p = r.copyTimeProof;
  if (!p) return `in ${r.checksumRounds} checksum round(s) over the whole table`;
  return (
    `by each chunk's digests taken as it was copied (--checksum-while-copying; ${p.chunksRechecked} chunk(s) checksummed again, ` +
    `${p.keysCompared} row(s) changed since compared) in ${r.checksumRounds} round(s)`
  );
}

function revertLine(v: RevertVerdict): string {
  if (v.revertible) return `revert: the change can be reverted (the way back proven by the server on ${v.provenRows} sampled row(s))`;
  return `revert: not revertible: ${v.reasons.join('; ')}`;
}

function windowLine(w: RevertWindowOutcome, plan: Plan): string {
  const applied = `${w.changesApplied} change(s) to the new table followed back`;
  switch (w.outcome) {
    case 'reverted':
      return `revert window: reverted, writers blocked ${w.lockedMs} ms; ${applied}; ${plan.table} has its old schema, the new table is kept as ${plan.table}__new`;
    case 'completed':
      return `revert window: completed by the operator; ${applied}`;
    case 'aborted':
      return `revert window: ended by an abort; ${applied}`;
    case 'ended':
      return `revert window: over at ${w.until}; ${applied}`;
    case 'failed':
      return `revert window: ENDED, the way back is gone: ${w.reason ?? 'failed'}; ${applied}`;
  }
}

/** Transactions older than the cut-over: how many it waited for, and under how many it cut over. */
function oldSnapshotLines(r: MigrateResult): string[] {
  const records = r.state.status.oldSnapshots;
  const ended = records.filter((o) => o.outcome === 'ended').length;
  const under = records.filter((o) => o.outcome === 'cut over under it').map((o) => o.session);
  const lines = ended ? [`the cut-over waited for ${ended} transaction(s) holding a snapshot older than it to end`] : [];
  if (under.length) lines.push(`the cut-over went ahead under ${under.length} transaction(s) older than it (${under.join(', ')}), as --old-snapshots allowed`);
  return lines;
}

/** The run's figures, for the JSON result line and the table's history. */
export function figures(r: MigrateResult): Record<string, unknown> {
  return {
    path: r.path,
    pathReason: r.pathReason,
    parts: r.parts,
    inPlaceStatements: r.inPlaceStatements,
    rowsCopied: r.rowsCopied,
    changesApplied: r.changesApplied,
    cutoverAttempts: r.cutoverAttempts,
    cutoverLockedMs: r.cutoverLockedMs,
    cutoverWriterWaitMs: r.cutoverWriterWaitMs,
    checksumRounds: r.checksumRounds,
    copyTimeProof: r.copyTimeProof,
    mappingProofRows: r.mappingProofs.map((p) => p.rows),
    keysCompared: r.keysCompared,
    keysComparedAtCutover: r.keysComparedAtCutover,
    oldSnapshots: r.state.status.oldSnapshots,
    durationMs: r.durationMs,
    revert: r.revert,
    revertWindow: r.revertWindow,
  };
}

/** One line a part: its class, the clause, and why. */
export function partLines(parts: AlterPart[]): string[] {
  return parts.map((p) => `  ${p.class.padEnd(14)} ${p.clause}: ${p.reason}`);
}
