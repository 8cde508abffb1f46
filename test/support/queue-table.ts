// What the queue's tests share: a plain `(id, v)` table, writes to it and its mirror, and the
// queue as its CLI lists and adds entries.
import { expect } from 'vitest';
import type { QueueRow } from '../../src/core/engine/ports/queue.js';
import { entryColumns, type EntryDocument } from '../../src/core/queue/entry-document.js';
import { unseal } from '../../src/core/engine/state/state-seal.js';
import type { Database } from './database.js';
import type { Statement } from './workload.js';
import { HelperQueueTable } from '../../src/core/queue/queue-table.js';

/** `name (id, v)` with `rows` rows, made again from nothing. */
export async function plainTable(db: Database, name: string, rows: number): Promise<void> {
  await db.drop(name);
  await db.query(`CREATE TABLE ${name} (id INT PRIMARY KEY, v INT)`);
  await db.query(`INSERT INTO ${name} SELECT g, g * 7 FROM (${db.series(rows)}) s`);
}

/** Writes to rows of the worker's own (ids congruent to it mod 3), and fresh ones: the table and its mirror alike. */
export function plainTableWrites(db: Database, rows: number): (worker: number) => Statement {
  const p = (n: number) => db.param(n);
  const fresh = [0, 0, 0];
  return (worker) => {
    const n = 3 * Math.floor(Math.random() * (rows / 3)) + worker + 1;
    const r = Math.random();
    if (r < 0.6) return { sql: `UPDATE {t} SET v = ${p(1)} WHERE id = ${p(2)}`, values: [Math.floor(Math.random() * 1e6), n] };
    if (r < 0.8) return { sql: `DELETE FROM {t} WHERE id = ${p(1)}`, values: [n] };
    const id = rows + 10 + worker + 3 * fresh[worker]++;
    return { sql: `INSERT INTO {t} (id, v) VALUES (${p(1)}, ${p(2)})`, values: [id, id] };
  };
}

/** `queue add` with `args`, which must pass: the new entry's id. */
export function added(db: Database, args: string[]): number {
  const r = db.cli(['queue', 'add', '--url', '$URL', '--json', ...args]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as { id: number }).id;
}

/**
 * The phase an entry's stage last reported, read from the queue's table: a wait polls this rather
 * than `queue list`, whose process takes a second or more on a loaded machine, long enough to miss
 * a short copy, and whose synchronous run stalls the test's writers meanwhile.
 */
export async function phaseOf(db: Database, id: number): Promise<string | undefined> {
  const rows = await db.query(`SELECT status FROM shadowcut_queue WHERE id = ${db.param(1)}`, [id]);
  if (!rows.length) return undefined;
  const status = rows[0][0];
  return (typeof status === 'string' ? (JSON.parse(status) as { phase?: string }) : (status as { phase?: string })).phase;
}

/** Every entry, as `queue list --json` gives them. */
export function entries(db: Database): QueueRow[] {
  const listed = db.cli(['queue', 'list', '--url', '$URL', '--json']);
  expect(listed.stderr).toBe('');
  return JSON.parse(listed.stdout) as QueueRow[];
}

/**
 * Writes entry `id` again as shadowcut would (sealed with this host's key, the next generation),
 * changed by `change`: what only a holder of the state key can do, so what a runner then refuses is
 * refused for what the entry says, not for its seal.
 */
export async function rewriteEntry(db: Database, id: number, change: (doc: EntryDocument) => void): Promise<void> {
  const engine = await db.engine();
  try {
    const stored = await new HelperQueueTable(engine.helperTables).get(id);
    if (!stored) throw new Error(`no entry #${id}`);
    const doc = JSON.parse(unseal('queue-entry', stored.sealed, `queue entry ${id}`)) as EntryDocument;
    change(doc);
    doc.generation += 1;
    expect(await new HelperQueueTable(engine.helperTables).write(id, stored.sealed, entryColumns(doc))).toBe(true);
  } finally {
    await engine.close();
  }
}
