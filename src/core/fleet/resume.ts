import type { EngineMigrations } from '../engine/ports/migrations.js';
import type { HistoryStore } from '../engine/ports/history.js';

/**
 * What `migrate --targets ... --resume` does with one target, from what the target itself holds: a
 * checkpoint is resumed; a target whose latest migrate of the table was this ALTER and succeeded is
 * done (a run that ends leaves no checkpoint and writes its history); any other was not started, or
 * ended before it made anything a resume could use, and runs from the start.
 */
export type TargetResume = { kind: 'resume' } | { kind: 'fresh' } | { kind: 'done'; finishedAt: string };

export async function targetResume(
  engine: Pick<EngineMigrations, 'loadCheckpoint'>,
  history: HistoryStore,
  table: string,
  alter: string,
): Promise<TargetResume> {
  if (await engine.loadCheckpoint(table)) return { kind: 'resume' };
  const last = (await history.list(table))
    .filter((e) => e.command === 'migrate')
    .sort((a, b) => a.finishedAt.localeCompare(b.finishedAt))
    .at(-1);
  if (last && last.outcome === 'success' && last.stage.trim() === alter.trim()) return { kind: 'done', finishedAt: last.finishedAt };
  return { kind: 'fresh' };
}
