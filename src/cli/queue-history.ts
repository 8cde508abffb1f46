import type { Engine } from '../core/engine/types.js';
import type { HistoryEntry } from '../core/engine/ports/history.js';
import type { QueueRow, QueueSpec } from '../core/engine/ports/queue.js';
import { entryTables, optionValue, optionValues } from '../core/queue/spec.js';
import { historyOf } from '../core/history/store.js';

// What the queue's commands read of its tables' history: an entry's timeline for `queue show`, and
// whether a dead runner's stage had finished, for `queue run`.

/** The timelines of every table of the entry, oldest first. */
export async function entryHistory(engine: Engine, spec: QueueSpec): Promise<HistoryEntry[]> {
  const lists = await Promise.all(entryTables(spec).map((table) => historyOf(engine).list(table)));
  return lists.flat().sort((a, b) => a.startedAt.localeCompare(b.startedAt));
}

/**
 * Whether every table of the entry has its stage succeeding since `since` (by a run whose `by` ends
 * in `by`, when given): a set's run records each table with its own ALTER.
 */
export async function succeededSince(engine: Engine, spec: QueueSpec, since: string, by?: string): Promise<boolean> {
  // A set's tables each have their own ALTER, the n-th --alter the n-th table's.
  const alters = spec.set ? optionValues(spec.args, '--alter') : null;
  for (const [i, table] of entryTables(spec).entries()) {
    const value = alters ? alters[i] : stageValue(spec);
    const found = (await historyOf(engine).list(table)).some(
      (h) => h.command === spec.stage && h.outcome === 'success' && h.startedAt >= since && sameStage(spec.stage, value, h.stage) && (!by || h.by.endsWith(by)),
    );
    if (!found) return false;
  }
  return true;
}

/** What tells this entry's stage from another change of the same table: the ALTER, the SET, the expectation, the thing dropped. */
function stageValue(spec: QueueSpec): string | undefined {
  const key = { migrate: '--alter', backfill: '--set', verify: '--expect', contract: '--drop-column' }[spec.stage];
  return optionValue(spec.args, key) ?? optionValue(spec.args, '--against') ?? optionValue(spec.args, '--drop-index');
}

/** Whether a history entry's stage is the one `value` tells (a migrate's names its ALTER whole; the others include theirs). */
function sameStage(stage: QueueSpec['stage'], value: string | undefined, recorded: string): boolean {
  return value === undefined || (stage === 'migrate' ? recorded === value : recorded.includes(value));
}

/** Whether the entry's own stage (its history entries end in `(queue #N)`) succeeded since the entry was added. */
export function ranBefore(engine: Engine, row: QueueRow): Promise<boolean> {
  return succeededSince(engine, row.spec, row.createdAt, `(queue #${row.id})`);
}
