import { Command } from 'commander';
import { backfill, statementOf } from '../core/backfill/run.js';
import { backfillDefaults, type BackfillResult } from '../core/backfill/config.js';
import { BackfillRefused } from '../core/backfill/preflight.js';
import { recordStage } from '../core/history/record.js';
import { RunState } from '../core/run/run-state.js';
import type { CheckResult } from '../core/engine/types.js';
import { engineForTables } from './open-engine.js';
import {
  addOperatorOptions,
  addThrottleOptions,
  checkLocalFiles,
  chunkTimeHelp,
  positiveInt,
  reporterFor,
  runSettings,
  startOperation,
  throttleConfig,
} from './operator-options.js';
import type { JsonReporter } from './render.js';
import { addUrlOptions } from './connection.js';
import { CLOSING, ignoreFailure } from '../core/engine/errors.js';
import { stdout } from './output.js';

const EVENTS = 'startup, before-backfill, success, failure; a failing startup or before-backfill hook stops the run before any row is updated';

export function backfillCommand(): Command {
  const command = addUrlOptions(
    new Command('backfill').description('fill a column in small committed keyset batches: UPDATE <table> SET ... [WHERE ...], throttled, resumable'),
    { required: true },
  )
    .requiredOption('--table <name>', 'the table (PostgreSQL: schema.name, default schema public)')
    .requiredOption('--set <assignments>', '"col = expr[, col2 = expr2]", in the engine\'s own SQL, as after UPDATE ... SET')
    .option('--where <predicate>', 'update only rows matching this (e.g. "email_new IS NULL"): makes a rerun find nothing left to do')
    .option('--execute', 'update the rows; without it, check the statement on the server and estimate, changing nothing', false)
    .option('--resume', 'continue a killed backfill after its last committed batch (same --set and --where)', false)
    .option('--batch-rows <n>', 'rows per batch, fixed (default: adapt to --chunk-time-ms)', positiveInt)
    .option('--chunk-time-ms <ms>', chunkTimeHelp('target duration of one batch (its row locks are held this long)'), positiveInt);
  addThrottleOptions(command, { maxLagMs: backfillDefaults.maxLagMs });
  addOperatorOptions(command, EVENTS);
  return command.action(async (opts) => {
    const { output, reporter } = reporterFor(opts.json);
    await checkLocalFiles(opts, reporter);
    const engine = await engineForTables(opts.url, [opts.table], 'backfill');
    const request = { table: opts.table, set: opts.set, where: opts.where };
    const table = engine.qualify(opts.table);
    const state = new RunState(runSettings(opts, engine), {
      table,
      alter: statementOf(request),
      engine: engine.kind,
      command: 'backfill',
    });
    // A second run on the table is refused here (its control socket answers), before anything is touched.
    const operation = await startOperation(opts, state, reporter, table);
    const json = opts.json ? (output as JsonReporter) : null;
    try {
      const run = () =>
        backfill(engine, request, {
          execute: opts.execute,
          resume: opts.resume,
          batchRows: opts.batchRows,
          ...throttleConfig(opts),
          reporter,
          state,
          hook: operation.hook,
          signal: operation.signal,
        });
      const result = await recordStage({
        record: opts.execute,
        engine,
        table: opts.table,
        command: 'backfill',
        stage: statementOf(request),
        reportDir: opts.reportDir,
        reporter,
        run,
        describe: (r) => ({ ...r, outcome: 'success' }),
        started: () => state.status.timeline.length > 0,
      });
      await operation.report('success');
      printResult(result, json);
    } catch (error) {
      // The dry run lists every check, failed or not; the refusal itself is the one line on stderr.
      if (error instanceof BackfillRefused && !opts.execute)
        printChecks(error.checks, json, 'dry run: refused by the failed check(s) above; nothing was changed');
      await operation.report('failure', undefined, error).catch((e) => reporter.warn(`could not write the report: ${(e as Error).message}`));
      throw error;
    } finally {
      await operation.close();
      await engine.close().catch(ignoreFailure(CLOSING));
    }
  });
}

function checkLines(checks: CheckResult[]): string[] {
  return ['checks:', ...checks.map((c) => `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.message}`)];
}

function printChecks(checks: CheckResult[], json: JsonReporter | null, last: string): void {
  if (json) return json.emit({ event: 'refused', checks });
  stdout.lines([...checkLines(checks), last]);
}

function printResult(r: BackfillResult, json: JsonReporter | null): void {
  if (json) {
    const { state: _state, ...plain } = r;
    json.emit({ event: 'result', ...plain });
    return;
  }
  const last = r.outcome === 'dry-run' ? ['dry run: nothing was changed; add --execute to run the backfill'] : [];
  stdout.lines([...checkLines(r.checks), ...r.summary, ...last]);
}
