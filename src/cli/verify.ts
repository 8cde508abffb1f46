import { Command } from 'commander';
import { parseExpectations } from '../core/engine/compare/expectation.js';
import { defaultVerifyOptions, formatKey, verifyTable } from '../core/compare/verify.js';
import { UserError, CLOSING, ignoreFailure } from '../core/engine/errors.js';
import { recordStage } from '../core/history/record.js';
import { engineForTables } from './open-engine.js';
import { positiveInt } from './operator-options.js';
import { interruptSignal, outputFor } from './render.js';
import { addUrlOptions } from './connection.js';
import { stdout } from './output.js';

/** Exit status when rows differ: 0 is "all matched", 2 a refusal or bad input. */
export const DIFFERENCES_EXIT = 1;

export function verifyCommand(): Command {
  return addUrlOptions(
    new Command('verify').description('check every row of a table against an expectation or another table, in chunks, without blocking writers'),
    { required: true },
  )
    .requiredOption('--table <name>', 'the table to check')
    .option('--expect <list>', 'what every row must satisfy: "col = expr" (compared NULL-safely) or a condition "col IS NOT NULL", comma-separated')
    .option('--against <table>', "or: another table that must hold the same rows, by the table's key")
    .option('--columns <list>', 'with --against: the columns to compare (default: every column both tables have)')
    .option('--where <predicate>', 'only the rows this selects (on both tables with --against)')
    .option('--chunk-rows <n>', 'rows per chunk, each read in a short snapshot of its own', positiveInt, defaultVerifyOptions.chunkRows)
    .option('--max-differences <n>', 'differing keys listed (all are counted)', positiveInt, defaultVerifyOptions.maxDifferences)
    .option('--rechecks <n>', 'times a differing row is read again, pausing longer each time, before it counts', positiveInt, defaultVerifyOptions.rechecks)
    .option('--report-dir <dir>', "append the stage to the table's markdown history in this directory")
    .option('--json', 'progress and the result as JSON lines on stdout', false)
    .action(async (opts) => {
      // Checked before connecting: bad input changes nothing and connects to nothing.
      if (Boolean(opts.expect) === Boolean(opts.against)) throw new UserError('give one of --expect "col = expr" (or a condition) or --against TABLE');
      if (opts.columns && !opts.against) throw new UserError('--columns goes with --against');
      const expect = opts.expect ? parseExpectations(opts.expect) : undefined;
      const columns = opts.columns
        ? String(opts.columns)
            .split(',')
            .map((c) => c.trim())
            .filter(Boolean)
        : undefined;
      const { json, reporter } = outputFor(opts.json);
      const signal = interruptSignal();
      const engine = await engineForTables(opts.url, [opts.table, ...(opts.against ? [opts.against] : [])], 'verify');
      try {
        const run = async () => {
          const result = await verifyTable(
            engine,
            { table: opts.table, expect, against: opts.against, columns, where: opts.where },
            {
              chunkRows: opts.chunkRows,
              maxDifferences: opts.maxDifferences,
              rechecks: opts.rechecks,
              recheckDelayMs: defaultVerifyOptions.recheckDelayMs,
              reporter,
              signal,
            },
          );
          if (json) json.emit({ event: 'result', ...result });
          else stdout.lines([...result.summary, ...result.detail.differingKeys.map((k) => `differs: ${formatKey(k)}`)]);
          return result;
        };
        // Verification changes nothing, but its verdict is a stage of the runbook: the evidence for the switch.
        const result = await recordStage({
          record: true,
          engine,
          table: opts.table,
          command: 'verify',
          stage: opts.expect ? `expect ${opts.expect}` : `against ${opts.against}`,
          reportDir: opts.reportDir,
          reporter,
          run,
          describe: (r) => ({ ...r, outcome: r.outcome === 'matched' ? 'success' : 'differences' }),
          started: () => false,
        });
        if (result.outcome === 'differences') {
          throw new UserError(`${result.detail.differences} row(s) of ${result.detail.table} differ`, DIFFERENCES_EXIT);
        }
      } finally {
        await engine.close().catch(ignoreFailure(CLOSING));
      }
    });
}
