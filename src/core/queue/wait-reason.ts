import { formatDuration } from '../run/duration.js';
import type { RunnerOptions } from './runner-types.js';
import { entryTables } from './spec.js';
import type { QueueRow } from '../engine/ports/queue.js';
import { QueueWindow } from './window.js';

/** What a look at the queue sees at once: every entry, the running ones, the server's time, the plans' estimates. */
export interface WaitContext {
  rows: QueueRow[];
  busy: QueueRow[];
  now: Date;
  options: RunnerOptions;
  estimates: Map<number, number | null>;
  /** Fails `row`, which comes after an entry that failed, was cancelled or is gone. */
  fail(row: QueueRow, why: string): Promise<void>;
}

/** Why `row` may not start now, null when it may, false when its predecessor failed (so it failed too). */
export async function whyWait(row: QueueRow, { rows, busy, now, options, estimates, fail }: WaitContext): Promise<string | null | false> {
  const { spec } = row;
  if (spec.after !== undefined) {
    const before = rows.find((r) => r.id === spec.after);
    // A predecessor nothing of which is proven is neither complete nor failed: what it says is anyone's.
    if (before?.refused) return `waits for #${spec.after}, which shadowcut cannot prove it wrote`;
    if (!before || before.state === 'failed' || before.state === 'cancelled') {
      await fail(row, `#${spec.after} ${before ? before.state : 'is gone'}, and this entry comes after it`);
      return false;
    }
    if (before.state !== 'complete') return `waits for #${spec.after} (${before.state})`;
  }
  const window = spec.window ? new QueueWindow(spec.window, spec.tz) : null;
  const windowLeft = window ? window.msLeft(now) : Infinity;
  if (windowLeft === 0) return `outside its window ${window!.describe()}`;
  const tables = entryTables(spec);
  for (const other of busy) {
    const shared = other.id !== row.id && entryTables(other.spec).find((t) => tables.includes(t));
    if (shared) return `#${other.id} is running on ${shared}`;
  }
  const slots = busy.filter((r) => r.id !== row.id).length;
  if (slots >= options.maxConcurrent) return `${slots} of ${options.maxConcurrent} running (--max-concurrent)`;
  const room = Math.max(0, Math.min(windowLeft, options.until ? options.until.getTime() - Date.now() : Infinity));
  const needs = estimates.get(row.id);
  if (needs != null && row.status.attempts.length === 0 && needs > room) {
    return `needs about ${formatDuration(roundUp(needs))}, ${formatDuration(roundUp(room))} left`;
  }
  return null;
}

/** Up to the next whole second, or minute from ten minutes on, so a plan's estimate reads as what it is. */
function roundUp(ms: number): number {
  const unit = ms < 600_000 ? 1000 : 60_000;
  return Math.ceil(ms / unit) * unit;
}
