import { Command } from 'commander';
import { contract, defaultContractOptions, RefusedContract, type ContractResult } from '../core/contract/contract.js';
import type { DropTarget } from '../core/engine/ports/contract.js';
import { parseDuration } from '../core/run/duration.js';
import { UserError, CLOSING, ignoreFailure } from '../core/engine/errors.js';
import { recordStage } from '../core/history/record.js';
import { engineForTables } from './open-engine.js';
import { positiveInt } from './operator-options.js';
import { interruptSignal, outputFor, type JsonReporter } from './render.js';
import { addUrlOptions } from './connection.js';
import { stdout } from './output.js';

export function contractCommand(): Command {
  return addUrlOptions(
    new Command('contract').description(
      'drop a column, an index or a table no longer used: checked first, optionally kept in a backup, with a short lock timeout',
    ),
    { required: true },
  )
    .requiredOption('--table <name>', 'the table')
    .option('--drop-column <list>', 'column(s) to drop, comma-separated')
    .option('--drop-index <name>', 'index to drop (PostgreSQL: DROP INDEX CONCURRENTLY)')
    .option('--drop-table', 'drop the table itself', false)
    .option('--backup-to <table>', 'keep what goes: the key and the dropped columns copied here first; with --drop-table, the table is renamed to it')
    .option('--no-backup', 'drop a column or the table without keeping a copy (without it, --backup-to is required)')
    .option(
      '--min-soak <duration>',
      'refuse while the stage this contract retires (in the history) is younger than this: 90s, 30m, 12h, 7d, 2w; 0 goes ahead now, recorded',
      (v: string) => parseDuration(v, '--min-soak'),
      defaultContractOptions.minSoakMs,
    )
    .option('--execute', 'make the change; without it, list what would go and every check', false)
    .option(
      '--force',
      'go ahead although query statistics or text searches saw it used (never past a view, foreign key, generated column, constraint or trigger)',
      false,
    )
    .option(
      '--drop-unique',
      'with --drop-index: drop a UNIQUE index although duplicates are then accepted (it drops an integrity guarantee; --force does not)',
      false,
    )
    .option('--lock-timeout-ms <ms>', "longest wait for the table's lock per attempt", positiveInt, defaultContractOptions.lockTimeoutMs)
    .option('--attempts <n>', 'attempts at the DROP before giving up (backoff between)', positiveInt, defaultContractOptions.attempts)
    .option('--chunk-rows <n>', 'rows per committed chunk of the backup copy', positiveInt, defaultContractOptions.chunkRows)
    .option('--json', 'the result as one JSON line on stdout', false)
    .option('--report-dir <dir>', "append the stage to the table's markdown history in this directory")
    .action(async (opts) => {
      // Checked before connecting: bad input changes nothing and connects to nothing.
      const drop = dropTarget(opts);
      const { json, reporter } = outputFor(opts.json);
      const signal = interruptSignal();
      const engine = await engineForTables(opts.url, [opts.table], 'contract');
      try {
        const run = () =>
          contract(
            engine,
            { table: opts.table, drop, backupTo: opts.backupTo, noBackup: opts.backup === false },
            {
              execute: opts.execute,
              force: opts.force,
              dropUnique: opts.dropUnique,
              lockTimeoutMs: opts.lockTimeoutMs,
              attempts: opts.attempts,
              chunkRows: opts.chunkRows,
              minSoakMs: opts.minSoak,
              reporter,
              signal,
            },
          );
        const result = await recordStage({
          record: opts.execute,
          engine,
          table: opts.table,
          command: 'contract',
          stage: describeDrop(drop, opts.backupTo),
          reportDir: opts.reportDir,
          reporter,
          run,
          describe: (r) => ({ ...r, outcome: 'success' }),
          // A refusal, or a lock never had (the backup it made is removed again), left the table as it was.
          started: (error) => !(error instanceof UserError),
        });
        print(result, json);
      } catch (error) {
        // The refusal is the one line on stderr; every check, passed or not, goes to stdout first.
        if (error instanceof RefusedContract) print(error.result, json);
        throw error;
      } finally {
        await engine.close().catch(ignoreFailure(CLOSING));
      }
    });
}

function describeDrop(drop: DropTarget, backupTo: string | undefined): string {
  const what = drop.kind === 'table' ? 'DROP TABLE' : drop.kind === 'index' ? `DROP INDEX ${drop.index}` : `DROP COLUMN ${drop.columns.join(', ')}`;
  if (backupTo) return `${what} (backup in ${backupTo})`;
  return drop.kind === 'index' ? what : `${what} (no backup)`;
}

function dropTarget(opts: { dropColumn?: string; dropIndex?: string; dropTable: boolean }): DropTarget {
  const given = [opts.dropColumn !== undefined, opts.dropIndex !== undefined, opts.dropTable].filter(Boolean).length;
  if (given !== 1) throw new UserError('give one of --drop-column C[,C2], --drop-index I or --drop-table');
  if (opts.dropTable) return { kind: 'table' };
  if (opts.dropIndex !== undefined) {
    if (!opts.dropIndex.trim()) throw new UserError('--drop-index needs an index name');
    return { kind: 'index', index: opts.dropIndex.trim() };
  }
  const columns = opts.dropColumn!.split(',').map((c) => c.trim());
  if (columns.some((c) => !c)) throw new UserError(`--drop-column ${opts.dropColumn} has an empty column name`);
  return { kind: 'column', columns };
}

function print(r: ContractResult, json: JsonReporter | null): void {
  if (json) {
    json.emit({ event: r.outcome === 'refused' ? 'refused' : 'result', ...r });
    return;
  }
  // The summary's last line is the outcome: after the checks.
  const lines = [...r.summary.slice(0, -1), 'checks:', ...r.checks.map((c) => `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.message}`)];
  lines.push(r.summary[r.summary.length - 1]);
  stdout.lines(lines);
}
