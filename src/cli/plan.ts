import { Command } from 'commander';
import { UserError } from '../core/errors.js';
import { planAlter } from '../core/plan/plan.js';
import { defaultOptions } from '../core/migrate/runner.js';
import { createEngine } from '../engines/index.js';
import { nonNegativeInt, nonNegativeNumber, positiveInt, reporterFor } from './operator-options.js';
import { recordStage } from '../core/history/record.js';
import { writePlanPage } from '../operator/report.js';
import { addUrlOptions } from './connection.js';
import { cliCaptureMode } from './capture-option.js';

export function planCommand(): Command {
  return addUrlOptions(
    new Command('plan').description('explain what migrate would do with an ALTER, before anything is done: in place or copy, size, time, locks, safer stages'),
    { required: true },
  )
    .requiredOption('--table <name>', 'table to change (PostgreSQL: schema.name, default schema public)')
    .requiredOption('--alter <clause>', "what follows ALTER TABLE <name>, in the engine's own syntax")
    .option('--force-copy', 'plan the copy even where the change could be made in place', false)
    .option('--lock-timeout-ms <ms>', "migrate's longest wait for a lock per attempt", positiveInt, defaultOptions.lockTimeoutMs)
    .option('--cutover-attempts <n>', "migrate's lock attempts", positiveInt, defaultOptions.cutoverAttempts)
    .option('--capture <mode>', "migrate's change capture: auto, stream or trigger (see docs/migrate.md)", cliCaptureMode, 'auto')
    .option('--sample-rows <n>', 'rows copied into a probe table to time the run on (default: 2% of the table, 50,000 to 500,000)', positiveInt)
    .option('--chunk-time-ms <ms>', "migrate's chunk time: the sample is copied in chunks of that size", positiveInt, defaultOptions.chunkTimeMs)
    .option('--max-rows-per-sec <n>', "migrate's copy rate limit, which the estimate counts (0: unlimited)", nonNegativeInt, 0)
    .option('--nice-ratio <r>', "migrate's rest after each chunk, which the estimate counts", nonNegativeNumber, 0)
    .option('--report-dir <dir>', "also append the plan to the table's markdown history in this directory, and draw it as a page")
    .option('--json', 'print the plan as one JSON object', false)
    .action(async (opts) => {
      const engine = await createEngine(opts.url);
      const run = async () => {
        const result = await planAlter(
          engine,
          { url: opts.url, table: opts.table, alter: opts.alter, capture: opts.capture },
          {
            lockTimeoutMs: opts.lockTimeoutMs,
            cutoverAttempts: opts.cutoverAttempts,
            sampleRows: opts.sampleRows,
            chunkTimeMs: opts.chunkTimeMs,
            pacing: { maxRowsPerSec: opts.maxRowsPerSec, niceRatio: opts.niceRatio },
            forceCopy: opts.forceCopy,
          },
        );
        process.stdout.write(opts.json ? JSON.stringify({ event: 'plan', ...result }) + '\n' : result.summary.join('\n') + '\n');
        if (opts.reportDir) process.stderr.write(`plan page: ${await writePlanPage(opts.reportDir, result.detail, result.summary)}\n`);
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
        // The plan is the runbook's first entry; a plan that would be refused is a refusal, not history.
        await recordStage({
          record: true,
          engine,
          table: opts.table,
          command: 'plan',
          stage: opts.alter,
          reportDir: opts.reportDir,
          reporter: reporterFor(false).reporter,
          run,
          describe: (r) => ({ ...r, outcome: 'success' }),
          started: () => false,
        });
      } finally {
        await engine.close().catch(() => {});
      }
    });
}
