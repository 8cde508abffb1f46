import { Command, InvalidArgumentError } from 'commander';
import { defaultSettings, type RunServices } from '../core/run/config.js';
import type { UserError } from '../core/engine/errors.js';
import type { Reporter } from '../core/report/reporter.js';
import { parseThresholds, settingsOf, type RunState, type Settings } from '../core/run/run-state.js';
import type { Engine } from '../core/engine/types.js';
import { parseWindow } from '../core/run/throttler.js';
import { checkFlagFiles } from '../core/run/flag-files.js';
import { startControlServer } from '../operator/control-server.js';
import { DEFAULT_HOOK_TIMEOUT_MS, hooksFromDir, validateHooksDir, type HookRun } from '../operator/hooks.js';
import { startMetricsServer } from '../operator/metrics.js';
import { writeReport } from '../operator/report.js';
import { JsonReporter, PlainReporter, TerminalReporter, UntilStarted } from './render.js';

/** The throttling and operator options every command that writes in batches shares (migrate, backfill): one definition. */

/** `--chunk-time-ms`'s help: where it is not given, the engine's default is taken once connected (`Engine.chunkTimeMs`). */
export function chunkTimeHelp(what: string): string {
  return `${what} (default: ${defaultSettings.chunkTimeMs} on PostgreSQL, 50 on MySQL and MariaDB, 25 on a Galera cluster, where every node's writers wait for each chunk)`;
}

/** The run's live settings, `--chunk-time-ms` the engine's where it was not given. */
export function runSettings(opts: Omit<Settings, 'chunkTimeMs'> & { chunkTimeMs?: number }, engine: Engine): Settings {
  return settingsOf({ ...opts, chunkTimeMs: opts.chunkTimeMs ?? engine.chunkTimeMs });
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer');
  return n;
}

export function nonNegativeNumber(value: string): number {
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

const collect = (value: string, previous: string[]) => [...previous, value];

/** What holds the work back (replica lag, load, rate, nice ratio, flag file, query, window) and the panic flag file. */
export function addThrottleOptions(command: Command, defaults: { maxLagMs: number }): Command {
  return command
    .option('--replica <url>', 'a replica (MySQL) or standby (PostgreSQL) whose lag holds the work back; repeatable', collect, [])
    .option('--max-lag-ms <ms>', 'replica lag above which the work holds back', nonNegativeInt, defaults.maxLagMs)
    .option('--max-load <list>', 'hold back at or above these, e.g. Threads_running=25 (PostgreSQL: active_backends=40)', thresholds, {})
    .option('--critical-load <list>', 'abort cleanly at or above these, e.g. Threads_running=200', thresholds, {})
    .option('--critical-load-hibernate-seconds <s>', 'at critical load, hold back this long and look again instead of aborting (0: abort)', nonNegativeInt, 0)
    .option('--max-rows-per-sec <n>', 'write at most this many rows per second (0: unlimited)', nonNegativeInt, 0)
    .option('--nice-ratio <r>', 'after each chunk, rest r times as long as the chunk took (0.5: a third of the time resting)', nonNegativeNumber, 0)
    .option(
      '--max-redo-fill <percent>',
      "MariaDB: hold back at this fill of InnoDB's redo log (checkpoint age against its maximum, where every writer waits) until it is 10 points lower (0: never)",
      nonNegativeInt,
      defaultSettings.maxRedoFill,
    )
    .option('--throttle-flag-file <path>', 'hold back while this file exists')
    .option('--throttle-query <sql>', 'hold back while this query (one row, one number, run on the primary) returns more than 0')
    .option('--window <HH:MM-HH:MM>', 'work only inside this daily window of local time (several: comma-separated)', window)
    .option('--panic-flag-file <path>', 'when this file appears, stop at the next safe point (exit 3)');
}

/** Hooks, report, metrics, control endpoint and JSON output. */
export function addOperatorOptions(command: Command, events: string): Command {
  return command
    .option('--hooks-dir <dir>', `run the executables named after events in this directory (${events})`)
    .option('--hook-timeout-ms <ms>', 'kill a hook running longer than this; it then counts as failed', positiveInt, DEFAULT_HOOK_TIMEOUT_MS)
    .option('--report-dir <dir>', 'write a markdown and a JSON report of the run into this directory')
    .option('--metrics-port <port>', 'serve Prometheus metrics on http://127.0.0.1:<port>/metrics (0: any free port)', nonNegativeInt)
    .option(
      '--control-socket <path>',
      'unix socket for status/pause/resume/abort/set, in a directory only you can write (default: shadowcut-<db.table>.sock in $SHADOWCUT_CONTROL_DIR, else in $XDG_RUNTIME_DIR/shadowcut or ~/.shadowcut/control, made 0700)',
    )
    .option(
      '--control-port <port>',
      'also listen for control commands on 127.0.0.1:<port> (0: any free port); each request must carry the token the run writes to <control socket>.token',
      nonNegativeInt,
    )
    .option('--json', 'log one JSON object per line on stdout', false);
}

/** The parsed options both sets above give. */
export interface OperatorOpts {
  execute: boolean;
  json: boolean;
  hooksDir?: string;
  hookTimeoutMs: number;
  reportDir?: string;
  metricsPort?: number;
  controlSocket?: string;
  controlPort?: number;
}

/** What the throttle and panic options ask of a run, as the core's options name it. */
export function throttleConfig(opts: {
  replica: string[];
  throttleFlagFile?: string;
  throttleQuery?: string;
  criticalLoadHibernateSeconds: number;
  window?: string;
  panicFlagFile?: string;
}) {
  return {
    replicas: opts.replica,
    flagFile: opts.throttleFlagFile,
    throttleQuery: opts.throttleQuery,
    criticalLoadHibernateSeconds: opts.criticalLoadHibernateSeconds,
    window: opts.window,
    panicFlagFile: opts.panicFlagFile,
  };
}

/** The reporter for the output chosen, holding informational lines back until the run starts. */
export function reporterFor(json: boolean): { output: Reporter; reporter: UntilStarted } {
  const output: Reporter = json ? new JsonReporter() : process.stderr.isTTY ? new TerminalReporter() : new PlainReporter();
  return { output, reporter: new UntilStarted(output) };
}

/**
 * Checked before connecting, so that bad input changes nothing and connects to nothing: the hooks
 * directory, and the flag files, whose path may hold another OS user's file already.
 */
export async function checkLocalFiles(
  opts: OperatorOpts & { throttleFlagFile?: string; panicFlagFile?: string; postponeCutoverFlagFile?: string },
  reporter: Reporter,
): Promise<void> {
  checkFlagFiles({
    '--throttle-flag-file': opts.throttleFlagFile,
    '--panic-flag-file': opts.panicFlagFile,
    '--postpone-cutover-flag-file': opts.postponeCutoverFlagFile,
  });
  if (!opts.hooksDir) return;
  const found = await validateHooksDir(opts.hooksDir);
  reporter.info(`hooks in ${opts.hooksDir}: ${found.join(', ') || 'none'}`, { hooks: found });
}

export interface Operation extends Pick<RunServices, 'hook' | 'signal'> {
  /** Writes the report (with --report-dir, for a run that started). */
  report(outcome: 'success' | 'failure', result?: Parameters<typeof writeReport>[1]['result'], error?: unknown): Promise<void>;
  close(): Promise<void>;
}

/**
 * For an executing run: the control endpoint (which also refuses a second run's socket), metrics,
 * Ctrl-C as an abort signal (twice exits at once), hooks and the report.
 */
export async function startOperation(opts: OperatorOpts, state: RunState, reporter: Reporter, table: string): Promise<Operation> {
  const control = opts.execute ? await startControlServer(state, { table, socketPath: opts.controlSocket, port: opts.controlPort }) : null;
  if (control) {
    const port = control.port === undefined ? '' : `, port ${control.port} with the token in ${control.tokenFile}`;
    reporter.info(`control: shadowcut status --table ${table} (socket ${control.socketPath}${port})`, {
      controlSocket: control.socketPath,
      controlPort: control.port,
      controlTokenFile: control.tokenFile,
    });
  }
  const metrics = opts.metricsPort === undefined || !opts.execute ? null : await startMetricsServer(state, opts.metricsPort);
  if (metrics) reporter.info(`metrics on http://127.0.0.1:${metrics.port}/metrics`, { metricsPort: metrics.port });
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: string) => {
    if (++interrupts > 1) process.exit(130);
    reporter.warn(`${signal} received: stopping at the next safe point (again to exit at once)`);
    controller.abort(signal);
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  // The charts' points, one a second (RunSamples keeps the period); the run itself never waits on it.
  const sampler = setInterval(() => state.samples.take(state.status), 250);
  sampler.unref();
  return {
    signal: controller.signal,
    hook: opts.hooksDir ? hooksFromDir(opts.hooksDir, { timeoutMs: opts.hookTimeoutMs, onRun: (run) => logHook(reporter, run) }) : undefined,
    async report(outcome, result, error) {
      // A run refused before it started has nothing to report but its one-line refusal.
      if (!opts.reportDir || !opts.execute || state.status.timeline.length === 0) return;
      state.samples.take(state.status, Date.now(), true);
      const files = await writeReport(opts.reportDir, { state, result }, outcome, error === undefined ? undefined : (error as Error).message);
      reporter.info(`report: ${files.html} (also ${files.markdown} and ${files.json})`, { report: files });
    },
    async close() {
      clearInterval(sampler);
      await metrics?.close();
      await control?.close();
    },
  };
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
