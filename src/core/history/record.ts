import { HelperRefusedError } from '../engine/helper-objects.js';
import { redactUrlsIn } from '../engine/connect/secrets.js';
import type { Reporter } from '../report/reporter.js';
import type { CheckResult } from '../engine/types.js';
import type { EngineServer } from '../engine/ports/server.js';
import { checkLines, runBy } from './entry.js';
import type { Command, HistoryEntry, StageOutcome } from '../engine/ports/history.js';
import type { EngineHelperTables } from '../engine/ports/helper-table.js';
import { appendMarkdown } from './markdown.js';
import { historyOf } from './store.js';

/** A command's result as the timeline keeps it, its outcome in the history's words. */
export interface RecordedStage {
  outcome: StageOutcome;
  rowsTouched: number;
  checks: CheckResult[];
  summary: string[];
  detail: object;
}

export interface StageRun<R> {
  engine: EngineServer & EngineHelperTables;
  table: string;
  command: Command;
  stage: string;
  reportDir?: string;
  reporter: Reporter;
  run: () => Promise<R>;
  /** False for a dry run: it changes nothing, so it only runs and enters no timeline. */
  record: boolean;
  /** The stage as the timeline keeps it. */
  describe: (result: R) => RecordedStage;
  /** Whether a failure happened after the stage began changing things (else it is a refusal, not history). */
  started: (error: unknown) => boolean;
}

/**
 * Runs one stage and appends it to the table's timeline, failed or not. A history that cannot be
 * written is a warning: the runbook must never be why a finished change reports failure. A stage
 * that was refused before it started (bad input, a failed check) is not recorded: nothing happened.
 */
export async function recordStage<R>(s: StageRun<R>): Promise<R> {
  // Before anything runs, dry runs included: a stage reads its checkpoint, and writes its timeline.
  await historyOf(s.engine).check(s.table);
  if (!s.record) return s.run();
  const startedAt = new Date().toISOString();
  const entry = (outcome: StageOutcome, result: Partial<RecordedStage>): HistoryEntry => ({
    table: s.engine.qualify(s.table),
    command: s.command,
    stage: s.stage,
    startedAt,
    finishedAt: new Date().toISOString(),
    outcome,
    rowsTouched: result.rowsTouched ?? 0,
    checks: checkLines(result.checks ?? []),
    summary: result.summary ?? [],
    detail: result.detail ?? {},
    by: runBy(),
  });
  let result: R;
  try {
    result = await s.run();
  } catch (error) {
    if (s.started(error)) await write(s, entry('failure', { summary: [(error as Error).message] }));
    throw error;
  }
  const stage = s.describe(result);
  await write(s, entry(stage.outcome, stage));
  return result;
}

/**
 * A moment of a stage still under way, entered in the timeline as it happens (a revert window opened
 * after the cut-over: the stage's own entry comes when the window ends, maybe days later).
 */
export async function recordMoment(
  s: Pick<StageRun<unknown>, 'engine' | 'table' | 'command' | 'stage' | 'reportDir' | 'reporter'>,
  startedAt: string,
  summary: string[],
  detail: object,
): Promise<void> {
  await write(s, {
    table: s.engine.qualify(s.table),
    command: s.command,
    stage: s.stage,
    startedAt,
    finishedAt: new Date().toISOString(),
    outcome: 'success',
    rowsTouched: 0,
    checks: [],
    summary,
    detail,
    by: runBy(),
  });
}

async function write(s: Pick<StageRun<unknown>, 'engine' | 'reportDir' | 'reporter'>, stage: HistoryEntry): Promise<void> {
  // As stderr shows them: an error kept in the history (the table and its markdown) may quote a URL, password and all.
  const entry = { ...stage, checks: stage.checks.map(redactUrlsIn), summary: stage.summary.map(redactUrlsIn) };
  try {
    await historyOf(s.engine).append(entry);
    if (s.reportDir) s.reporter.info(`history: ${await appendMarkdown(s.reportDir, entry)}`);
  } catch (error) {
    // Not a mere warning: the table appeared since the stage began, and is not ours to write into.
    if (error instanceof HelperRefusedError) throw error;
    s.reporter.warn(`could not record the stage in the history: ${(error as Error).message}`);
  }
}
