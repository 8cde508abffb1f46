import { Command } from 'commander';
import { backfillDefaults } from '../core/backfill/config.js';
import { UserError, CLOSING, ignoreFailure } from '../core/engine/errors.js';
import { recordStage } from '../core/history/record.js';
import { defaultRestoreOptions, indexNotRestorable, restore, type RestoreResult } from '../core/restore/restore.js';
import { RunState } from '../core/run/run-state.js';
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
import { stdout } from './output.js';

const EVENTS =
  'startup, before-backfill, success, failure (the fill is a backfill and fires its events); a failing startup or before-backfill hook stops it before the first batch';

export function restoreCommand(): Command {
  const command = addUrlOptions(
    new Command('restore').description(
      'put back what contract --backup-to kept: the columns added again and filled from the backup by key in throttled, resumable batches, or the table renamed back',
    ),
    { required: true },
  )
    .requiredOption('--table <name>', 'the table the contract changed (PostgreSQL: schema.name, default schema public)')
    .option('--from <backup>', "the backup the contract's --backup-to named, as its history records it")
    .option('--index <name>', 'a dropped index: prints the definition its contract recorded (an index keeps no data to restore)')
    .option('--execute', 'restore; without it, check the backup and say what would be done, changing nothing', false)
    .option('--resume', 'continue a killed restore of columns: they exist already, and are filled where still NULL', false)
    .option(
      '--lock-timeout-ms <ms>',
      "longest wait for the table's lock per attempt at the ADD COLUMN or the rename",
      positiveInt,
      defaultRestoreOptions.lockTimeoutMs,
    )
    .option('--attempts <n>', 'attempts at the ADD COLUMN or the rename before giving up (backoff between)', positiveInt, defaultRestoreOptions.attempts)
    .option('--batch-rows <n>', 'rows per batch of the fill, fixed (default: adapt to --chunk-time-ms)', positiveInt)
    .option('--chunk-time-ms <ms>', chunkTimeHelp('target duration of one batch of the fill'), positiveInt);
  addThrottleOptions(command, { maxLagMs: backfillDefaults.maxLagMs });
  addOperatorOptions(command, EVENTS);
  return command.action(async (opts) => {
    // Checked before connecting: bad input changes nothing and connects to nothing.
    if ((opts.from === undefined) === (opts.index === undefined)) throw new UserError('give --from <backup> (a column or table contract) or --index <name>');
    const { output, reporter } = reporterFor(opts.json);
    await checkLocalFiles(opts, reporter);
    const engine = await engineForTables(opts.url, [opts.table], 'restore');
    try {
      if (opts.index !== undefined) await indexNotRestorable(engine, opts.table, opts.index);
      const table = engine.qualify(opts.table);
      const state = new RunState(runSettings(opts, engine), {
        table,
        alter: `restore from ${opts.from}`,
        engine: engine.kind,
        command: 'backfill',
      });
      const operation = await startOperation(opts, state, reporter, table);
      const json = opts.json ? (output as JsonReporter) : null;
      let changed = false;
      try {
        const result = await recordStage({
          record: opts.execute,
          engine,
          table: opts.table,
          command: 'restore',
          stage: `restore from ${opts.from}`,
          reportDir: opts.reportDir,
          reporter,
          run: () =>
            restore(
              engine,
              { table: opts.table, from: opts.from, resume: opts.resume },
              {
                execute: opts.execute,
                batchRows: opts.batchRows,
                lockTimeoutMs: opts.lockTimeoutMs,
                attempts: opts.attempts,
                ...throttleConfig(opts),
                reporter,
                state,
                hook: operation.hook,
                signal: operation.signal,
                changed: () => (changed = true),
              },
            ),
          describe: (r) => ({ ...r, outcome: 'success' }),
          // A refusal leaves the table as it was; a failure after the first change is history.
          started: (error) => changed || !(error instanceof UserError),
        });
        await operation.report('success');
        print(result, json);
      } catch (error) {
        await operation.report('failure', undefined, error).catch((e) => reporter.warn(`could not write the report: ${(e as Error).message}`));
        throw error;
      } finally {
        await operation.close();
      }
    } finally {
      await engine.close().catch(ignoreFailure(CLOSING));
    }
  });
}

function print(r: RestoreResult, json: JsonReporter | null): void {
  if (json) return json.emit({ event: 'result', ...r });
  stdout.lines(r.summary);
}
