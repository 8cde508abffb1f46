import type { HistoryEntry } from '../core/engine/ports/history.js';
import { entryTables } from '../core/queue/spec.js';
import type { QueueRow } from '../core/engine/ports/queue.js';
import { eta } from './render.js';

/** One line of `queue list`: id, state, stage and table, then progress, window and why it waits or failed. */
export function describeEntry(row: QueueRow): string {
  const { spec, status } = row;
  const parts = [`#${row.id}`, row.state.padEnd(9), `${spec.stage} ${entryTables(spec).join(', ')}`];
  if (row.state === 'running') {
    const at = [status.phase, status.percent === undefined ? undefined : `${status.percent}%`, status.etaSeconds ? `ETA ${eta(status.etaSeconds)}` : undefined];
    parts.push(at.filter(Boolean).join(' ') || 'starting');
  }
  if (spec.window) parts.push(`window ${spec.window}${spec.tz ? ` ${spec.tz}` : ''}`);
  if (spec.after !== undefined) parts.push(`after #${spec.after}`);
  if (spec.postponed) parts.push('postponed');
  if (spec.postponeCutover) parts.push('cut-over postponed');
  if (row.state === 'queued' && status.waiting) parts.push(`waits: ${status.waiting}`);
  if (row.state === 'failed' && status.lastError) parts.push(`error: ${status.lastError}`);
  // What the row says is then anyone's: shown as it stands, and never acted on.
  if (row.refused) parts.push(`refused: ${row.refused}`);
  if (row.changed) parts.push(`changed by another account: ${row.changed.join(', ')} (shown and obeyed as shadowcut sealed them)`);
  return parts.join('  ');
}

/** `queue show`: what was queued, each attempt, and the table's history since the entry was added. */
export function entryLines(row: QueueRow, history: HistoryEntry[]): string[] {
  const { spec, status } = row;
  const lines = [
    describeEntry(row),
    `  queued ${row.createdAt} by ${spec.addedBy}: shadowcut ${spec.stage} ${entryTables(spec)
      .map((t) => `--table ${t}`)
      .join(' ')} ${Array.isArray(spec.args) ? spec.args.join(' ') : ''}`.trimEnd(),
  ];
  if (row.claimedBy) lines.push(`  claimed by ${row.claimedBy}${row.leaseUntil ? ` until ${row.leaseUntil}` : ''}`);
  if (row.request) lines.push(`  asked: ${row.request}`);
  lines.push(status.attempts.length ? '  attempts:' : '  no attempt yet');
  for (const a of status.attempts) {
    lines.push(`    ${a.startedAt} - ${a.endedAt ?? 'running'} ${a.runner}: ${a.outcome ?? 'running'}${a.error ? ` (${a.error})` : ''}`);
  }
  if (history.length) lines.push(`  history of the table${spec.set ? 's' : ''} since:`);
  for (const h of history) lines.push(`    ${h.startedAt} ${spec.set ? `${h.table} ` : ''}${h.command} ${h.outcome}: ${h.stage}`);
  return lines;
}
