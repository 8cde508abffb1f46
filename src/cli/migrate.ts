import { Command, InvalidArgumentError } from 'commander';
import { UserError } from '../core/errors.js';
import { DEFAULT_HOOK_TIMEOUT_MS, HOOK_EVENTS, hooksFromDir, validateHooksDir, type HookRun } from '../operator/hooks.js';
import { startControlServer } from '../operator/control-server.js';
import { startMetricsServer } from '../operator/metrics.js';
import { writeReport } from '../operator/report.js';
import { parseThresholds, RunState, settingsOf } from '../core/run-state.js';
import { defaultOptions, migrate, type MigrateResult } from '../core/runner.js';
import { parseWindow } from '../core/throttler.js';
import type { Reporter } from '../core/reporter.js';
import { RefusedByChecks } from '../core/preflight.js';
import type { AlterPart } from '../core/in-place/types.js';
import type { CheckResult, DeferIndexes, Plan } from '../core/types.js';
import { createEngine } from '../engines/index.js';
import { JsonReporter, PlainReporter, TerminalReporter, UntilStarted } from './render.js';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer');
  return n;
}

function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a non-negative number');
  return n;
}

function thresholds(value: string): Record<string, number> {
  try {
    return parseThresholds(value);
  } catch (error) {
    throw new InvalidArgumentError(`${(error as Error).message}; use NAME=NUMBER[,NAME=NUMBER...], e.g. Threads_running=25`);
  }
}

function window(value: string): string {
  try {
    parseWindow(value);
  } catch (error) {
    throw new InvalidArgumentError((error as UserError).message);
  }
  return value;
}

function deferMode(value: string): DeferIndexes {
  if (value === 'auto' || value === 'on' || value === 'off') return value;
  throw new InvalidArgumentError('must be auto, on or off');
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function migrateCommand(): Command {
  return new Command('migrate')
    .description('change a table online: shadow table, copy, follow changes, verify, cut over')
    .requiredOption('--url <url>', 'mysql://user:pass@host:port/db or postgres://user:pass@host:port/db')
    .requiredOption('--table <name>', 'table to change (PostgreSQL: schema.name, default schema public)')
    .requiredOption('--alter <clause>', 'what follows ALTER TABLE <name>, in the engine\'s own syntax')
    .option('--execute', 'make the change; without it, print the plan and preflight results only', false)
    .option('--chunk-time-ms <ms>', 'target duration of one copy chunk', positiveInt, defaultOptions.chunkTimeMs)
    .option('--lock-timeout-ms <ms>', 'longest wait for the cut-over lock per attempt', positiveInt, defaultOptions.lockTimeoutMs)
    .option('--cutover-attempts <n>', 'cut-over attempts before giving up (backoff between)', positiveInt, defaultOptions.cutoverAttempts)
    .option('--checksum-chunk-rows <n>', 'rows per checksum chunk', positiveInt, defaultOptions.checksumChunkRows)
    .option('--drop-old', 'drop the original table after the cut-over instead of keeping it as <name>__old', false)
    .option('--discard-foreign-keys', 'MySQL: migrate a table with foreign keys to other tables; the new table has none (as gh-ost)', false)
    .option('--include-triggers', "MySQL: move the table's triggers to the new table at the cut-over (renamed with --trigger-suffix)", false)
    .option('--trigger-suffix <suffix>', 'suffix for the triggers of the new table (trigger names are unique per database)', '_sc')
    .option('--remove-trigger-suffix-if-exists', 'a trigger already ending with the suffix loses it instead, so names alternate across migrations', false)
    .option('--defer-indexes <mode>', 'build non-unique secondary indexes after the copy: auto, on or off (see README)', deferMode, 'auto')
    .option('--force-copy', 'take the copy even when the server could make every part of the ALTER in place', false)
    .option('--attempt-instant-ddl', 'deprecated, does nothing: the change is made in place whenever the server can (see --force-copy)', false)
    .option('--resume', 'continue an interrupted run from its checkpoint (same --table and --alter)', false)
    .option('--replica <url>', 'a replica (MySQL) or standby (PostgreSQL) whose lag holds the copy back; repeatable', collect, [])
    .option('--max-lag-ms <ms>', 'replica lag above which the copy holds back', nonNegativeInt, defaultOptions.maxLagMs)
    .option('--max-load <list>', 'hold back at or above these, e.g. Threads_running=25 (PostgreSQL: active_backends=40)', thresholds, {})
    .option('--critical-load <list>', 'abort cleanly at or above these, e.g. Threads_running=200', thresholds, {})
    .option('--critical-load-hibernate-seconds <s>', 'at critical load, hold back this long and look again instead of aborting (0: abort)', nonNegativeInt, 0)
    .option('--max-rows-per-sec <n>', 'copy at most this many rows per second (0: unlimited)', nonNegativeInt, 0)
    .option('--nice-ratio <r>', 'after each chunk, rest r times as long as the chunk took (0.5: a third of the time resting)', nonNegativeNumber, 0)
    .option('--throttle-flag-file <path>', 'hold the copy back while this file exists')
    .option('--throttle-query <sql>', 'hold the copy back while this query (one row, one number, run on the primary) returns more than 0')
    .option('--window <HH:MM-HH:MM>', 'copy only inside this daily window of local time; outside it changes are still followed', window)
    .option('--panic-flag-file <path>', 'when this file appears, stop at once and remove the helper objects (exit 3)')
    .option('--postpone-cutover', 'after verification, keep the shadow in sync until "shadowcut cutover"', false)
    .option('--postpone-cutover-flag-file <path>', 'postpone the cut-over while this file exists')
    .option('--hooks-dir <dir>', `run the executables named after events in this directory (${Object.keys(HOOK_EVENTS).join(', ')}); a failing one stops the run before the cut-over`)
    .option('--hook-timeout-ms <ms>', 'kill a hook running longer than this; it then counts as failed', positiveInt, DEFAULT_HOOK_TIMEOUT_MS)
    .option('--report-dir <dir>', 'write a markdown and a JSON report of the run into this directory')
    .option('--metrics-port <port>', 'serve Prometheus metrics on http://127.0.0.1:<port>/metrics (0: any free port)', nonNegativeInt)
    .option('--control-socket <path>', 'unix socket for status/pause/resume/cutover/abort/set (default: <tmpdir>/shadowcut-<db.table>.sock)')
    .option('--control-port <port>', 'also listen for control commands on 127.0.0.1:<port> (0: any free port)', nonNegativeInt)
    .option('--json', 'log one JSON object per line on stdout', false)
    .action(async (opts) => {
      const output: Reporter = opts.json ? new JsonReporter() : process.stderr.isTTY ? new TerminalReporter() : new PlainReporter();
      const reporter = new UntilStarted(output);
      // Checked before connecting: bad input changes nothing and connects to nothing.
      if (opts.hooksDir) {
        const found = await validateHooksDir(opts.hooksDir);
        reporter.info(`hooks in ${opts.hooksDir}: ${found.join(', ') || 'none'}`, { hooks: found });
      }
      if (opts.attemptInstantDdl) reporter.warn('--attempt-instant-ddl is deprecated and does nothing: the change is made in place whenever the server can (--force-copy to copy)');
      const engine = await createEngine(opts.url);
      // Made here, not by the runner, so the metrics endpoint and a failure report can read it; the
      // run's live settings are this state's.
      const table = engine.qualify(opts.table);
      const state = new RunState(
        settingsOf(opts),
        { table, alter: opts.alter, engine: engine.kind },
      );
      // A second run on the same table is refused here, before anything is touched.
      const control = opts.execute ? await startControlServer(state, { table, socketPath: opts.controlSocket, port: opts.controlPort }) : null;
      if (control) {
        const port = control.port === undefined ? '' : `, port ${control.port}`;
        reporter.info(`control: shadowcut status --table ${table} (socket ${control.socketPath}${port})`, { controlSocket: control.socketPath, controlPort: control.port });
      }
      const metrics = opts.metricsPort === undefined || !opts.execute ? null : await startMetricsServer(state, opts.metricsPort);
      if (metrics) reporter.info(`metrics on http://127.0.0.1:${metrics.port}/metrics`, { metricsPort: metrics.port });
      const report = async (outcome: 'success' | 'failure', result?: MigrateResult, error?: unknown) => {
        // A run refused before it started has nothing to report but its one-line refusal.
        if (!opts.reportDir || !opts.execute || state.status.timeline.length === 0) return;
        const files = await writeReport(opts.reportDir, { state, result }, outcome, error === undefined ? undefined : (error as Error).message);
        reporter.info(`report: ${files.markdown} (JSON: ${files.json})`, { report: files });
      };
      const controller = new AbortController();
      let interrupts = 0;
      const onSignal = (signal: string) => {
        if (++interrupts > 1) process.exit(130);
        reporter.warn(`${signal} received: stopping and removing helper objects (again to exit at once)`);
        controller.abort(signal);
      };
      process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
      try {
        const result = await migrate(
          engine,
          {
            url: opts.url,
            table: opts.table,
            alter: opts.alter,
            discardForeignKeys: opts.discardForeignKeys,
            deferIndexes: opts.deferIndexes,
            triggers: opts.includeTriggers ? { suffix: opts.triggerSuffix, removeSuffixIfExists: opts.removeTriggerSuffixIfExists } : undefined,
          },
          {
            execute: opts.execute,
            forceCopy: opts.forceCopy,
            panicFlagFile: opts.panicFlagFile,
            lockTimeoutMs: opts.lockTimeoutMs,
            cutoverAttempts: opts.cutoverAttempts,
            checksumChunkRows: opts.checksumChunkRows,
            dropOld: opts.dropOld,
            resume: opts.resume,
            replicas: opts.replica,
            flagFile: opts.throttleFlagFile,
            throttleQuery: opts.throttleQuery,
            criticalLoadHibernateSeconds: opts.criticalLoadHibernateSeconds,
            window: opts.window,
            postponeCutover: opts.postponeCutover,
            postponeFlagFile: opts.postponeCutoverFlagFile,
            reporter,
            state,
            hook: opts.hooksDir ? hooksFromDir(opts.hooksDir, { timeoutMs: opts.hookTimeoutMs, onRun: (run) => logHook(reporter, run) }) : undefined,
            signal: controller.signal,
          },
        );
        await report('success', result);
        printResult(result, opts.json ? (output as JsonReporter) : null);
      } catch (error) {
        // The dry run lists every check, failed or not; the refusal itself is the one line on stderr.
        if (error instanceof RefusedByChecks && !opts.execute) printRefusal(error, opts.json ? (output as JsonReporter) : null);
        await report('failure', undefined, error).catch((e) => reporter.warn(`could not write the report: ${(e as Error).message}`));
        throw error;
      } finally {
        await metrics?.close();
        await control?.close();
        await engine.close().catch(() => {});
      }
    });
}

function logHook(reporter: Reporter, run: HookRun): void {
  const outcome = run.timedOut ? 'timed out' : (run.signal ?? `exit ${run.exitCode}`);
  reporter.info(`hook ${run.event}: ${outcome} after ${run.durationMs} ms`, {
    hook: run.event,
    exitCode: run.exitCode,
    signal: run.signal,
    stdout: run.stdout,
    stderr: run.stderr,
  });
}

function checkLines(plan: Plan, checks: CheckResult[]): string[] {
  return [`table: ${plan.table}`, `alter: ${plan.alter}`, ...plan.summary, 'preflight:', ...checks.map((c) => `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.message}`)];
}

function printRefusal(refusal: RefusedByChecks, json: JsonReporter | null): void {
  if (json) {
    json.emit({ event: 'refused', table: refusal.plan.table, checks: refusal.checks });
    return;
  }
  process.stdout.write([...checkLines(refusal.plan, refusal.checks), 'dry run: refused by the failed check(s) above; nothing was changed'].join('\n') + '\n');
}

function printResult(r: MigrateResult, json: JsonReporter | null): void {
  if (json) {
    json.emit({
      event: 'result',
      executed: r.executed,
      table: r.state.status.table,
      path: r.path,
      pathReason: r.pathReason,
      parts: r.parts,
      inPlaceStatements: r.inPlaceStatements,
      checks: r.checks,
      rowsCopied: r.rowsCopied,
      changesApplied: r.changesApplied,
      cutoverAttempts: r.cutoverAttempts,
      cutoverLockedMs: r.cutoverLockedMs,
      checksumRounds: r.checksumRounds,
      mappingProofRows: r.mappingProofs.map((p) => p.rows),
      keysCompared: r.keysCompared,
      keysComparedAtCutover: r.keysComparedAtCutover,
      durationMs: r.durationMs,
    });
    return;
  }
  const path = [`path: ${r.path} (${r.pathReason})`, ...partLines(r.parts)];
  if (!r.plan) {
    const out = [`table: ${r.state.status.table}`, `alter: ${r.state.status.alter}`, ...path, 'in-place statements:', ...r.inPlaceStatements.map((s) => `  ${s}`)];
    out.push(
      r.executed
        ? `done: made in place in ${(r.durationMs / 1000).toFixed(1)} s; nothing was copied, and there is no old table`
        : 'dry run: nothing was changed; add --execute to make the change in place',
    );
    process.stdout.write(out.join('\n') + '\n');
    return;
  }
  const out = [...checkLines(r.plan, r.checks), ...path];
  const proofs = r.mappingProofs.map((p) => p.rows).join(' + ');
  if (r.mappingProofs.length) out.push(`column mapping: proven by the server's own ALTER on ${proofs} sampled row(s)`);
  if (!r.executed) {
    out.push('dry run: nothing was changed; add --execute to run the migration');
  } else {
    out.push(
      `done: ${r.rowsCopied} rows copied, ${r.changesApplied} changes applied, parity proven in ${r.checksumRounds} checksum round(s) ` +
        `and row by row for ${r.keysCompared} changed row(s) since (${r.keysComparedAtCutover} under the cut-over lock), ` +
        `cut-over in ${r.cutoverAttempts} attempt(s) blocking writers ${r.cutoverLockedMs} ms, ${(r.durationMs / 1000).toFixed(1)} s in all`,
      `the original table is kept as ${r.plan.oldTable} unless --drop-old was given`,
    );
  }
  process.stdout.write(out.join('\n') + '\n');
}

/** One line a part: its class, the clause, and why. */
export function partLines(parts: AlterPart[]): string[] {
  return parts.map((p) => `  ${p.class.padEnd(14)} ${p.clause}: ${p.reason}`);
}
