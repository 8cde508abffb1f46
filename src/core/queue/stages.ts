import { entryTables } from './spec.js';
import type { Attempt, QueueSpec, Stage } from '../engine/ports/queue.js';

// What the runner knows of each kind of stage: which resume, which take --execute and --window, in which
// phases a killed one had changed nothing, and the command line each gets.

/** Stages that keep a checkpoint: a run stopped midway goes on with --resume. */
export const RESUMABLE: ReadonlySet<Stage> = new Set(['migrate', 'backfill']);
/** Stages with a dry run: without --execute they change nothing. */
export const EXECUTED: ReadonlySet<Stage> = new Set(['migrate', 'backfill', 'contract']);
/** Stages that hold back outside `--window` by themselves; the others are only started inside it. */
const WINDOWED: ReadonlySet<Stage> = new Set(['migrate', 'backfill']);
/**
 * The phases in which a stage killed before its first checkpoint had changed nothing. A migration's
 * setup makes the shadow and its capture before that checkpoint; a backfill's setup saves it first.
 */
export const BEFORE_CHANGES: Record<Stage, ReadonlySet<string>> = {
  migrate: new Set(['']),
  backfill: new Set(['', 'setup']),
  verify: new Set(),
  contract: new Set(),
};
/** Phases a stop at `--until` waits out: a swap and its cleanup are not cut short. */
export const UNINTERRUPTED: ReadonlySet<string> = new Set(['cutover', 'cleanup', 'revert']);

/**
 * The stage's argv: the runner's own options first, the queued ones last, so a queued option left
 * without its value fails the stage instead of swallowing --execute.
 */
export function stageArgs(spec: QueueSpec, resume: boolean, runnerArgs: string[]): string[] {
  return [
    spec.stage,
    ...(EXECUTED.has(spec.stage) ? ['--execute'] : []),
    '--json',
    ...(resume ? ['--resume'] : []),
    ...(spec.window && WINDOWED.has(spec.stage) ? ['--window', spec.window] : []),
    ...(spec.postponeCutover ? ['--postpone-cutover'] : []),
    ...runnerArgs,
    ...entryTables(spec).flatMap((table) => ['--table', table]),
    ...spec.args,
  ];
}

/** Attempts whose runner died before writing their end: lost. */
export function markLost(attempts: Attempt[]): Attempt[] {
  return attempts.map((a) => (a.outcome ? a : { ...a, outcome: 'lost' }));
}
