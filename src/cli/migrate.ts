import { Command, InvalidArgumentError, Option } from 'commander';
import { HOOK_EVENTS } from '../operator/hooks.js';
import { RunState } from '../core/run/run-state.js';
import { defaultOptions, migrate, type MigrateResult } from '../core/migrate/runner.js';
import { migrateSet } from '../core/migrate/sets/migrate-set.js';
import { OLD_SNAPSHOT_POLICIES, type OldSnapshotPolicy } from '../core/run/config.js';
import { MAX_COPY_THREADS } from '../core/engine/defaults.js';
import { formatDuration, parseDuration } from '../core/run/duration.js';
import { RefusedByChecks } from '../core/preflight/preflight.js';
import { recordStage } from '../core/history/record.js';
import type { DeferIndexes } from '../core/engine/types.js';
import { CLOSING, ignoreFailure, UserError } from '../core/engine/errors.js';
import { migrateFleet } from './fleet.js';
import { engineForTables } from './open-engine.js';
import {
  addOperatorOptions,
  addThrottleOptions,
  checkLocalFiles,
  nonNegativeInt,
  nonNegativeNumber,
  chunkTimeHelp,
  positiveInt,
  reporterFor,
  runSettings,
  startOperation,
} from './operator-options.js';
import type { JsonReporter } from './render.js';
import { optionsOf, requestOf, type Member } from './migrate-options.js';
import { addUrlOptions } from './connection.js';
import { cliCaptureMode } from './capture-option.js';
import { collect, tableAlterPairs } from './table-pairs.js';
import { doneLines, figures, printRefusal, printResult } from './migrate-output.js';
import { stdout } from './output.js';

function oldSnapshotPolicy(value: string): OldSnapshotPolicy {
  const policy = OLD_SNAPSHOT_POLICIES.find((p) => p === value);
  if (policy === undefined) throw new InvalidArgumentError(`must be ${OLD_SNAPSHOT_POLICIES.join(', ')}`);
  return policy;
}

function deferMode(value: string): DeferIndexes {
  if (value === 'auto' || value === 'on' || value === 'off') return value;
  throw new InvalidArgumentError('must be auto, on or off');
}

function copyThreads(value: string): number {
  const n = positiveInt(value);
  if (n > MAX_COPY_THREADS) throw new InvalidArgumentError(`at most ${MAX_COPY_THREADS}`);
  return n;
}

export function migrateCommand(): Command {
  // The URL is required unless --targets names the databases (cli/fleet.ts); the action says so.
  const command = addUrlOptions(new Command('migrate').description('change a table online: shadow table, copy, follow changes, verify, cut over'), {
    required: false,
  })
    .requiredOption(
      '--table <name>',
      'table to change (PostgreSQL: schema.name, default schema public); repeated with --alter, several tables change in one cut-over',
      collect,
    )
    .requiredOption('--alter <clause>', "what follows ALTER TABLE <name>, in the engine's own syntax; one for each --table, in order", collect)
    .option('--execute', 'make the change; without it, print the plan and preflight results only', false)
    .option('--chunk-time-ms <ms>', chunkTimeHelp('target duration of one copy chunk'), positiveInt)
    .option('--threads <n>', 'copy chunks run at once, each on its own session (1-8)', copyThreads, defaultOptions.copyThreads)
    .option('--lock-timeout-ms <ms>', 'longest wait for the cut-over lock per attempt', positiveInt, defaultOptions.lockTimeoutMs)
    .option('--cutover-attempts <n>', 'cut-over attempts before giving up (backoff between)', positiveInt, defaultOptions.cutoverAttempts)
    .option(
      '--snapshot-wait-ms <ms>',
      'in place: longest wait of an online index build for older transactions to end',
      positiveInt,
      defaultOptions.snapshotWaitMs,
    )
    .addOption(
      new Option('--old-snapshot-wait <duration>', 'longest wait of the cut-over for transactions holding a snapshot older than it (90s, 5m; 0: none)')
        .argParser((v: string) => parseDuration(v, '--old-snapshot-wait'))
        .default(defaultOptions.oldSnapshotWaitMs, formatDuration(defaultOptions.oldSnapshotWaitMs)),
    )
    .option(
      '--old-snapshots <policy>',
      `when that wait is up: fail (nothing swapped), postpone (until "shadowcut cutover") or proceed (they read the new table wrongly)`,
      oldSnapshotPolicy,
      defaultOptions.oldSnapshots,
    )
    .option('--checksum-chunk-rows <n>', 'rows per checksum chunk', positiveInt, defaultOptions.checksumChunkRows)
    .option(
      '--checksum-while-copying',
      'checksum each chunk as it is copied and only what changed since at verification (faster on tables larger than memory; see docs/how-it-works.md)',
      false,
    )
    .addOption(
      new Option('--drop-old', 'drop the original table after the cut-over instead of keeping it as <name>__old (or the first free <name>__old_N)')
        .default(false)
        .conflicts('revertWindow'),
    )
    .option(
      '--revert-window <duration>',
      'after the cut-over, keep the old table following the new one this long (90s, 30m, 12h, 7d) so "shadowcut revert" can swap back',
    )
    .option('--discard-foreign-keys', 'MySQL: migrate a table with foreign keys to other tables; the new table has none (as gh-ost)', false)
    .option('--include-triggers', "MySQL: move the table's triggers to the new table at the cut-over (renamed with --trigger-suffix)", false)
    .option('--trigger-suffix <suffix>', 'suffix for the triggers of the new table (trigger names are unique per database)', '_sc')
    .option('--remove-trigger-suffix-if-exists', 'a trigger already ending with the suffix loses it instead, so names alternate across migrations', false)
    .option(
      '--capture <mode>',
      'how changes are followed during the copy: auto (the change stream where available, else triggers), stream or trigger',
      cliCaptureMode,
      'auto',
    )
    .option('--defer-indexes <mode>', 'build non-unique secondary indexes after the copy: auto, on or off (see docs/migrate.md)', deferMode, 'auto')
    .option('--force-copy', 'take the copy even when the server could make every part of the ALTER in place', false)
    .option('--attempt-instant-ddl', 'deprecated, does nothing: the change is made in place whenever the server can (see --force-copy)', false)
    .option('--resume', 'continue an interrupted run from its checkpoint (same --table and --alter)', false)
    .option('--targets <file>', 'run the change on every database this file names, one URL a line (kept private as --url-file): a fleet (docs/fleets.md)')
    .option('--parallel <n>', 'with --targets: targets at work at once', positiveInt, 1)
    .option('--canary <n>', 'with --targets: the first n targets alone, through, before the rest start', nonNegativeInt, 0)
    .option(
      '--joint-cutover',
      'with --targets: no target swaps before every target is verified; then all swap, and if one cannot, none keeps the new table',
      false,
    );
  addThrottleOptions(command, { maxLagMs: defaultOptions.maxLagMs });
  command
    .option(
      '--max-writer-slowdown <x>',
      "keep a stand-in writer's latency on the table within x times its latency before the copy, resting and shortening chunks as needed (2: the writers' p99 within twice their own; 0: off)",
      nonNegativeNumber,
      defaultOptions.maxWriterSlowdown,
    )
    .option('--postpone-cutover', 'after verification, keep the shadow in sync until "shadowcut cutover"', false)
    .option('--postpone-cutover-flag-file <path>', 'postpone the cut-over while this file exists');
  addOperatorOptions(
    command,
    `${Object.keys(HOOK_EVENTS)
      .filter((e) => e !== 'before-backfill')
      .join(', ')}; a failing one stops the run before the cut-over`,
  );
  return command.action(async (opts) => {
    const { output, reporter } = reporterFor(opts.json);
    const pairs = tableAlterPairs(opts.table, opts.alter);
    await checkLocalFiles(opts, reporter);
    if (opts.attemptInstantDdl)
      reporter.warn('--attempt-instant-ddl is deprecated and does nothing: the change is made in place whenever the server can (--force-copy to copy)');
    if (opts.targets !== undefined) {
      if (pairs.length > 1) throw new UserError('--targets changes one table on every target: give one --table and one --alter');
      // SHADOWCUT_URL in the environment is not a --url given with the targets.
      const given = opts.urlFile !== undefined || (opts.url !== undefined && opts.url !== process.env.SHADOWCUT_URL);
      return migrateFleet({ ...opts, url: given ? opts.url : undefined }, pairs[0].table, pairs[0].alter, output, reporter);
    }
    for (const flag of ['parallel', 'canary'] as const) {
      if (opts[flag] !== (flag === 'parallel' ? 1 : 0)) throw new UserError(`--${flag} goes with --targets`);
    }
    if (opts.jointCutover) throw new UserError('--joint-cutover goes with --targets');
    if (opts.url === undefined) throw new UserError('no database URL: give --url, --url-file or set SHADOWCUT_URL');
    const engine = await engineForTables(
      opts.url,
      pairs.map((p) => p.table),
      'migrate',
    );
    const members: Member[] = [];
    try {
      const qualified = pairs.map((p) => engine.qualify(p.table));
      for (const [i, { table: name, alter }] of pairs.entries()) {
        // Made here, not by the runner, so the metrics endpoint and a failure report can read it; the
        // run's live settings are this state's.
        const table = qualified[i];
        const state = new RunState(runSettings(opts, engine), { table, alter, engine: engine.kind });
        if (pairs.length > 1) state.status.set = qualified;
        // A set's endpoints given by number or path are its first table's; the others take their default sockets.
        const own = i === 0 ? opts : { ...opts, controlSocket: undefined, controlPort: undefined, metricsPort: undefined };
        // A second run on the same table is refused here (its control socket answers), before anything is touched.
        members.push({ name, alter, state, operation: await startOperation(own, state, reporter, table) });
      }
      const staged = (member: Member, run: () => Promise<MigrateResult>) =>
        recordStage({
          record: opts.execute,
          engine,
          table: member.name,
          command: 'migrate',
          stage: member.alter,
          reportDir: opts.reportDir,
          reporter,
          run,
          describe: (r) => ({ outcome: 'success', rowsTouched: r.rowsCopied, checks: r.checks, summary: doneLines(r), detail: figures(r) }),
          started: () => member.state.status.timeline.length > 0,
        });
      const results =
        members.length === 1
          ? [await staged(members[0], () => migrate(engine, requestOf(opts, members[0]), optionsOf(opts, engine, members[0], reporter, false)))]
          : await migrateSet(
              engine,
              members.map((m) => requestOf(opts, m)),
              members.map((m) => optionsOf(opts, engine, m, reporter, true)),
              (i, run) => staged(members[i], run),
            );
      for (const [i, result] of results.entries()) {
        if (result === null) {
          reporter.info(`${members[i].state.status.table}: swapped with the set and cleaned up by the interrupted run; nothing left to do`);
          continue;
        }
        await members[i].operation.report('success', result);
        printResult(result, opts.json ? (output as JsonReporter) : null);
      }
      const swapped = results.find((r) => r?.executed);
      if (results.length > 1 && swapped && !opts.json) {
        stdout.line(`set: ${results.length} tables swapped in one cut-over, writers blocked ${swapped.cutoverLockedMs} ms`);
      }
    } catch (error) {
      // The dry run lists every check, failed or not; the refusal itself is the one line on stderr.
      if (error instanceof RefusedByChecks && !opts.execute) printRefusal(error, opts.json ? (output as JsonReporter) : null);
      for (const m of members) {
        await m.operation.report('failure', undefined, error).catch((e) => reporter.warn(`could not write the report: ${(e as Error).message}`));
      }
      throw error;
    } finally {
      for (const m of members) await m.operation.close();
      await engine.close().catch(ignoreFailure(CLOSING));
    }
  });
}
