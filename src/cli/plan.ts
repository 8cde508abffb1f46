import { Command } from 'commander';
import { UserError, CLEANUP_AFTER_FAILURE, CLOSING, ignoreFailure } from '../core/engine/errors.js';
import { planAlter, type PlanResult } from '../core/plan/plan.js';
import { whyCopied } from '../core/migrate/sets/migrate-set.js';
import { formatDuration } from '../core/run/duration.js';
import { defaultOptions } from '../core/migrate/runner.js';
import { engineForTables } from './open-engine.js';
import { chunkTimeHelp, nonNegativeInt, nonNegativeNumber, positiveInt, reporterFor } from './operator-options.js';
import { recordStage } from '../core/history/record.js';
import { writePlanPage } from '../operator/report.js';
import { addUrlOptions } from './connection.js';
import { cliCaptureMode } from './capture-option.js';
import { collect, tableAlterPairs } from './table-pairs.js';
import { readTargets, targetLabel } from './fleet.js';
import { stderr, stdout } from './output.js';

export function planCommand(): Command {
  return addUrlOptions(
    new Command('plan').description('explain what migrate would do with an ALTER, before anything is done: in place or copy, size, time, locks, safer stages'),
    { required: false },
  )
    .requiredOption('--table <name>', 'table to change (PostgreSQL: schema.name, default schema public); repeated with --alter, a set in one cut-over', collect)
    .requiredOption('--alter <clause>', "what follows ALTER TABLE <name>, in the engine's own syntax; one for each --table, in order", collect)
    .option('--force-copy', 'plan the copy even where the change could be made in place', false)
    .option('--lock-timeout-ms <ms>', "migrate's longest wait for a lock per attempt", positiveInt, defaultOptions.lockTimeoutMs)
    .option('--cutover-attempts <n>', "migrate's lock attempts", positiveInt, defaultOptions.cutoverAttempts)
    .option('--capture <mode>', "migrate's change capture: auto, stream or trigger (see docs/migrate.md)", cliCaptureMode, 'auto')
    .option('--sample-rows <n>', 'rows copied into a probe table to time the run on (default: 2% of the table, 50,000 to 500,000)', positiveInt)
    .option('--chunk-time-ms <ms>', chunkTimeHelp("migrate's chunk time: the sample is copied in chunks of that size"), positiveInt)
    .option('--max-rows-per-sec <n>', "migrate's copy rate limit, which the estimate counts (0: unlimited)", nonNegativeInt, 0)
    .option('--nice-ratio <r>', "migrate's rest after each chunk, which the estimate counts", nonNegativeNumber, 0)
    .option('--report-dir <dir>', "also append the plan to the table's markdown history in this directory, and draw it as a page")
    .option('--json', 'print the plan as one JSON object', false)
    .option('--targets <file>', 'plan the change on every database this file names, one URL a line (as migrate --targets)')
    .action(async (opts) => {
      if (opts.targets === undefined) {
        if (opts.url === undefined) throw new UserError('no database URL: give --url, --url-file or set SHADOWCUT_URL');
        return planOn(opts.url, opts);
      }
      if (tableAlterPairs(opts.table, opts.alter).length > 1)
        throw new UserError('--targets changes one table on every target: give one --table and one --alter');
      // Every target planned, a refused one as well, so one run names every target's problems.
      const refused: string[] = [];
      for (const url of readTargets(String(opts.targets))) {
        if (!opts.json) stdout.line(`target ${targetLabel(url)}:`);
        await planOn(url, opts).catch((error: Error) => {
          if (!(error instanceof UserError)) throw error;
          refused.push(`${targetLabel(url)}: ${error.message}`);
        });
      }
      if (refused.length) throw new UserError(`${refused.length} target(s) would be refused: ${refused.join('; ')}`);
    });
}

/** One database's plan (a table, or a set of tables in one cut-over), with commander's parsed options. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function planOn(url: string, opts: Record<string, any>): Promise<void> {
  const requests = tableAlterPairs(opts.table, opts.alter).map((p) => ({ url, ...p, capture: opts.capture }));
  const engine = await engineForTables(
    url,
    requests.map((r) => r.table),
    'plan',
  );
  // A set is copied whole unless every table can be changed in place by metadata alone (migrate's rule).
  const tables = requests.map((r) => engine.qualify(r.table));
  const why = requests.length > 1 ? await whyCopied(engine, requests, tables).catch(closing(engine)) : null;
  const planOne = async (i: number) => {
    // As migrate plans a member: knowing the rest of its set (the keys among them, the streams it takes).
    const set = requests.length > 1 ? { set: tables.filter((t) => t !== tables[i]) } : {};
    const result = await planAlter(
      engine,
      { ...requests[i], ...set },
      {
        lockTimeoutMs: opts.lockTimeoutMs,
        cutoverAttempts: opts.cutoverAttempts,
        sampleRows: opts.sampleRows,
        chunkTimeMs: opts.chunkTimeMs,
        pacing: { maxRowsPerSec: opts.maxRowsPerSec, niceRatio: opts.niceRatio },
        forceCopy: opts.forceCopy || why !== null,
      },
    );
    if (why !== null) result.detail.pathReason = why;
    if (opts.json) stdout.json({ event: 'plan', ...result });
    else stdout.lines(result.summary);
    if (opts.reportDir) stderr.line(`plan page: ${await writePlanPage(opts.reportDir, result.detail, result.summary)}`);
    if (result.outcome === 'refused') {
      throw new UserError(
        `the copy would be refused: ${result.checks
          .filter((c) => !c.ok)
          .map((c) => c.message)
          .join('; ')}`,
      );
    }
    return result;
  };
  try {
    const results = [];
    // Each plan is its table's runbook entry; a plan that would be refused is a refusal, not history.
    for (const [i, { table, alter }] of requests.entries()) {
      results.push(
        await recordStage({
          record: true,
          engine,
          table,
          command: 'plan',
          stage: alter,
          reportDir: opts.reportDir,
          reporter: reporterFor(false).reporter,
          run: () => planOne(i),
          describe: (r) => ({ ...r, outcome: 'success' }),
          started: () => false,
        }),
      );
    }
    if (results.length > 1) printSet(results, why, opts.json);
  } finally {
    await engine.close().catch(ignoreFailure(CLOSING));
  }
}

/** Closes the engine when what follows its opening fails. */
function closing(engine: { close(): Promise<void> }): (error: unknown) => Promise<never> {
  return async (error) => {
    await engine.close().catch(ignoreFailure(CLEANUP_AFTER_FAILURE));
    throw error;
  };
}

/** The set as a whole: its path, and its time, the copies running at once. */
function printSet(results: PlanResult[], why: string | null, json: boolean): void {
  const longest = Math.max(...results.map((r) => r.detail.estimate?.totalMs ?? 0));
  const set = {
    tables: results.map((r) => r.detail.table),
    path: why === null ? 'in-place' : 'copy',
    pathReason: why ?? 'every table can be changed in place by metadata alone: each is, one after another',
    estimatedMs: why === null ? null : longest,
  };
  if (json) {
    stdout.json({ event: 'set', ...set });
    return;
  }
  const time = set.estimatedMs === null ? '' : `; the copies run at once, so about ${formatDuration(set.estimatedMs)} for the set, its longest table's time`;
  stdout.line(`set: ${set.tables.length} tables, one cut-over: ${set.path} (${set.pathReason})${time}`);
}
