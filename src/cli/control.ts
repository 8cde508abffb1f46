import { Command, Option } from 'commander';
import { sendControl, type ControlAnswer, type ControlRequest, type ControlTarget, type RunningAnswer as Running } from '../operator/control-server.js';
import { controlDirs, defaultSocketPath, socketsIn, usableControlDir } from '../operator/control-dir.js';
import { readToken, tokenPath } from '../operator/control-token.js';
import { UserError, CLOSING, ignoreFailure, failedAs } from '../core/engine/errors.js';
import { createEngine } from '../engines/index.js';
import { positiveInt } from './operator-options.js';
import { eta, fmt } from './render.js';
import { addUrlOptions } from './connection.js';
import { stdout } from './output.js';

/** The commands that steer a running `shadowcut migrate` through its control endpoint. */

interface ControlOptions {
  table?: string;
  socket?: string;
  port?: number;
  tokenFile?: string;
  json: boolean;
}

export function statusCommand(): Command {
  // With a URL (any of the usual three ways): when no run answers, name what a dead run left behind (and the WAL its slot retains).
  return addUrlOptions(controlCommand('status', 'show where a running migration stands'), { required: false }).action(
    async (opts: ControlOptions & { url?: string }) => {
      const answers = await control(opts, { command: 'status' }).catch((error) => deadRun(opts, error));
      for (const answer of answers) {
        if (opts.json) stdout.json(answer);
        else stdout.lines(describe(answer));
      }
    },
  );
}

/** No run answers: with --url, say what a dead run left, which is what the operator must act on. */
async function deadRun(opts: ControlOptions & { url?: string }, error: unknown): Promise<never> {
  if (!(error instanceof UserError) || !opts.url || !opts.table) throw error;
  const engine = await createEngine(opts.url);
  try {
    const left = await engine.cleanupLeftovers(opts.table, { dropOld: false, dryRun: true });
    if (left.length === 0) throw error;
    throw new UserError(
      `${error.message}; a dead run left ${left.join(', ')}: continue it with "shadowcut migrate ... --resume", or remove it with "shadowcut cleanup"`,
    );
  } finally {
    await engine.close().catch(ignoreFailure(CLOSING));
  }
}

export function pauseCommand(): Command {
  return simpleCommand(
    'pause',
    'hold the copy back (changes keep being applied) until "shadowcut resume"',
    (a) => `${a.table}: copy paused before its next chunk; changes keep being applied; "shadowcut resume" goes on`,
  );
}

export function resumeCommand(): Command {
  return simpleCommand('resume', 'let a paused copy go on', (a) => `${a.table}: resumed`);
}

export function cutoverCommand(): Command {
  return simpleCommand('cutover', 'release a postponed cut-over', (a) =>
    a.status.state === 'postponed' ? `${a.table}: cut-over released` : `${a.table}: cut-over requested; it will not be postponed once the shadow is verified`,
  );
}

export function revertCommand(): Command {
  return simpleCommand(
    'revert',
    'in a revert window: swap the tables back, with the same proof as the cut-over (the new table is kept as <name>__new)',
    (a) => `${a.table}: revert requested; the old table is proven level and swapped back`,
  );
}

export function completeCommand(): Command {
  return simpleCommand(
    'complete',
    'in a revert window: end it now; the old table stops following and is kept (as <name>__old, or the name its plan chose)',
    (a) => `${a.table}: the revert window ends; the new table stays`,
  );
}

export function abortCommand(): Command {
  return controlCommand('abort', 'stop a running migration; its helper objects are removed, the table is left as it was')
    .option('--reason <text>', "why, for the run's log and report")
    .action(async (opts: ControlOptions & { reason?: string }) => {
      const answers = await control(opts, { command: 'abort', reason: opts.reason });
      print(opts, answers, (a) => `${a.table}: aborting (${a.abortReason}); the run removes its helper objects and stops`);
    });
}

export function setCommand(): Command {
  return controlCommand('set', 'change a setting of a running migration')
    .argument(
      '<name>',
      'chunk-time-ms, max-lag-ms, max-rows-per-sec (0 = unlimited), nice-ratio, max-redo-fill (0 = never), max-writer-slowdown (0 = off), max-load or critical-load',
    )
    .argument('<value>', 'a number, or NAME=N[,NAME=N...] for max-load and critical-load')
    .action(async (name: string, value: string, opts: ControlOptions) => {
      const answers = await control(opts, { command: 'set', name, value });
      print(opts, answers, (a) => `${a.table}: ${name} set to ${value}`);
    });
}

function controlCommand(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .option('--table <name>', 'the table being changed: db.table or schema.table, or just the name if only one such run is going')
    .addOption(new Option('--socket <path>', "the run's control socket (default: found from --table)").conflicts('port'))
    .addOption(new Option('--port <n>', "the run's control TCP port on 127.0.0.1").argParser(positiveInt))
    .option(
      '--token-file <path>',
      "with --port: the file holding the run's control token (default: found beside the run's socket; or $SHADOWCUT_CONTROL_TOKEN)",
    )
    .option('--json', 'print the answer as JSON', false);
}

function simpleCommand(name: 'pause' | 'resume' | 'cutover' | 'revert' | 'complete', description: string, done: (answer: Running) => string): Command {
  return controlCommand(name, description).action(async (opts: ControlOptions) => {
    const answers = await control(opts, { command: name });
    print(opts, answers, done);
  });
}

function print(opts: ControlOptions, answers: Running[], message: (answer: Running) => string): void {
  for (const answer of answers) {
    if (opts.json) stdout.json(answer);
    else stdout.line(message(answer));
  }
}

/**
 * The request sent to the run named, or to every target of the fleet named (`migrate --targets`: each
 * target's run answers as `<table>@<n>`), which then acts as one: a fleet's joint cut-over weighs
 * `shadowcut cutover` for all its targets. Each target is asked, whatever another answers.
 */
async function control(opts: ControlOptions, request: ControlRequest): Promise<Running[]> {
  const located = await locate(opts);
  if (opts.table && (opts.socket || opts.port)) {
    // Checked before a command is sent: a pause must not land on some other run.
    const { target, where } = located[0];
    const running = await ask(target, where, { command: 'status' });
    if (!names(running.table, opts.table)) throw new UserError(`${where} is the migration of ${running.table}, not of ${opts.table}`);
  }
  const answers = await Promise.all(located.map(({ target, where }) => ask(target, where, request).catch((error: Error) => error)));
  const failed = answers.filter((a): a is Error => a instanceof Error);
  if (failed.length === answers.length) throw failed[0];
  const running = answers.filter((a): a is Running => !(a instanceof Error));
  if (failed.length) {
    print(opts, running, () => `${request.command} sent to ${running.map((a) => a.table).join(', ')}`);
    throw new UserError(`${request.command} reached ${running.length} of the fleet's ${answers.length} targets: ${failed.map((e) => e.message).join('; ')}`);
  }
  return running;
}

async function ask(target: ControlTarget, where: string, request: ControlRequest): Promise<Running> {
  let answer: ControlAnswer;
  try {
    answer = await sendControl(target, request);
  } catch (error) {
    // Refusals of a socket that is not this user's, or of an answer that is not a run's, are already one line.
    if (error instanceof UserError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`no migration is running (no control socket at ${where})`);
    if (code === 'ECONNREFUSED') throw new UserError(`no migration is running at ${where} (nothing answers; a dead run may have left it)`);
    throw new UserError(`${where}: ${(error as Error).message}`);
  }
  if (!answer.ok) throw new UserError(answer.error);
  return answer;
}

/**
 * A qualified name has a fixed socket path. A short name is looked up among the runs that answer,
 * since `orders` may be `shop.orders` on MySQL as well as `public.orders` on PostgreSQL.
 */
async function locate(opts: ControlOptions): Promise<{ target: ControlTarget; where: string }[]> {
  if (opts.socket) return [{ target: { socketPath: opts.socket }, where: opts.socket }];
  if (opts.port) return [{ target: { port: opts.port, token: await portToken(opts.port, opts.tokenFile) }, where: `127.0.0.1:${opts.port}` }];
  const table = opts.table;
  if (!table) throw new UserError('--table is required (or --socket or --port)');
  const exact = new Set(controlDirs().map((dir) => defaultSocketPath(table, dir)));
  const { runs, refused } = await runningMigrations();
  const named = runs.filter((r) => exact.has(r.socketPath));
  const found = named.length ? named.map((r) => ({ ...r, table })) : runs.filter((r) => names(r.table, table));
  if (found.length === 1 || (found.length > 1 && oneFleet(found.map((r) => r.table)))) {
    return found.map((r) => ({ target: { socketPath: r.socketPath }, where: r.socketPath }));
  }
  if (found.length > 1) {
    throw new UserError(`several migrations match ${table}: ${found.map((r) => r.table).join(', ')}; give --table one of these`);
  }
  // A control directory someone else made could hold the run sought: say why it was not looked in.
  if (refused) throw refused;
  throw new UserError(`no migration of ${table} is running (no control socket at ${defaultSocketPath(table)})`);
}

/**
 * The port obeys only requests that carry the run's token. It comes from --token-file, else from
 * SHADOWCUT_CONTROL_TOKEN (tooling that was handed the token), else from the file beside the socket
 * of the run that says it listens on this port: only a run of this OS user can be found so.
 */
async function portToken(port: number, tokenFile: string | undefined): Promise<string> {
  if (tokenFile) return readToken(tokenFile);
  const given = process.env.SHADOWCUT_CONTROL_TOKEN?.trim();
  if (given) return given;
  const run = (await runningMigrations()).runs.find((r) => r.port === port);
  if (run) return readToken(tokenPath(run.socketPath));
  throw new UserError(
    `no control token for 127.0.0.1:${port}: no run in the control directory listens there; give --token-file (the run writes <control socket>.token) or set SHADOWCUT_CONTROL_TOKEN`,
  );
}

type Run = { table: string; socketPath: string; port: number | null };

/**
 * Every run of this OS user with a live control socket in the control directories (a directory not
 * made yet holds none). Stale sockets, and sockets that are not this user's, are skipped; a directory
 * another user could write is not looked in, and `refused` says why.
 */
async function runningMigrations(): Promise<{ runs: Run[]; refused: UserError | null }> {
  let refused: UserError | null = null;
  const sockets: string[] = [];
  for (const dir of controlDirs()) {
    try {
      if (usableControlDir(dir)) sockets.push(...socketsIn(dir));
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      refused ??= error;
    }
  }
  const answers = await Promise.all(
    sockets.map(async (socketPath) => {
      // Not answering, or not ours (sendControl refuses it): not a run this command can steer.
      const answer = await sendControl({ socketPath }, { command: 'status' }, 1000).catch(
        failedAs(null, 'a socket that does not answer, or is not ours, is no run to steer'),
      );
      // A run of an older version says nothing of its port.
      return answer?.ok ? { table: answer.table, socketPath, port: answer.port ?? null } : null;
    }),
  );
  return { runs: answers.filter((a) => a !== null), refused };
}

/** `orders` names `shop.orders`; `shop.orders` names only itself; either names a fleet's `shop.orders@2`. */
function names(qualified: string, given: string): boolean {
  const table = FLEET_MEMBER.exec(qualified)?.[1] ?? qualified;
  return [qualified, table].some((t) => t === given || t.endsWith(`.${given}`));
}

/** How a fleet's target answers (cli/fleet.ts): its table, `@`, its place in the targets file. */
const FLEET_MEMBER = /^(.*)@(\d+)$/;

/** Runs that are the targets of one fleet: each one's place, none twice. */
function oneFleet(tables: string[]): boolean {
  const places = tables.map((t) => FLEET_MEMBER.exec(t)?.[2]);
  return places.every((p) => p !== undefined) && new Set(places).size === places.length;
}

/** Transactions the cut-over waits for (or waited for, or cut over under), by server session. */
function oldSnapshotsLine(records: Running['status']['oldSnapshots']): string {
  return records.map((r) => `${r.session} (${[r.user, r.since && `since ${r.since}`, r.outcome].filter(Boolean).join(', ')})`).join('; ');
}

function describe(a: Running): string[] {
  const s = a.status;
  const settings = a.settings;
  const thresholds = (t: Record<string, number>) =>
    Object.entries(t)
      .map(([k, v]) => `${k}=${v}`)
      .join(',') || 'none';
  let state: string = s.state;
  if (a.abortReason) state += `, aborting: ${a.abortReason}`;
  else if (a.paused && s.state !== 'paused') state += ', pause requested';
  const cutover =
    s.cutoverLockedMs !== null
      ? `done in ${s.cutoverAttempts} attempt(s), writers blocked ${s.cutoverLockedMs} ms`
      : s.cutoverAttempts > 0
        ? `${s.cutoverAttempts} attempt(s) so far`
        : s.state === 'postponed'
          ? 'postponed: waiting for "shadowcut cutover"'
          : a.cutoverRequested
            ? 'requested'
            : 'not yet';
  const rows = [
    ['table', `${a.table} (${s.engine})`],
    [s.command === 'backfill' ? 'backfill' : 'alter', s.alter],
    ...(s.set ? [['set', `${s.set.join(', ')}: one cut-over for all (each has its own status)`]] : []),
    ['state', state],
    ['phase', s.phase],
    ...(s.command === 'backfill'
      ? [
          ['rows', `${fmt(s.rowsCopied)} / ${fmt(s.rowsEstimated)} scanned (${s.percent.toFixed(1)}%), ${fmt(s.rowsUpdated)} updated`],
          ['speed', `${fmt(s.rowsPerSec)} rows/s, ETA ${eta(s.etaSeconds)}`],
        ]
      : [
          ['rows', `${fmt(s.rowsCopied)} / ${fmt(s.rowsEstimated)} copied (${s.percent.toFixed(1)}%)`],
          ['speed', `${fmt(s.rowsPerSec)} rows/s, ETA ${eta(s.etaSeconds)}`],
          ['changes', `${fmt(s.changesApplied)} applied, ${fmt(s.backlog)} in backlog`],
        ]),
    ['lag', s.lagMs === null ? 'no replica watched' : `${fmt(s.lagMs)} ms (max seen ${fmt(s.maxLagSeenMs)} ms)`],
    ['held back', a.paused ? 'paused by operator' : (s.throttleReason ?? 'no')],
    ...(s.retrying ? [['connection', s.retrying]] : []),
    ...(s.command === 'backfill' ? [] : [['cut-over', cutover]]),
    ...(s.revertWindowUntil
      ? [['revert', `the old table follows the new one until ${s.revertWindowUntil}: "shadowcut revert" swaps back, "shadowcut complete" ends the window`]]
      : []),
    // A run from before the field has none.
    ...((s.oldSnapshots ?? []).length ? [['older snapshots', oldSnapshotsLine(s.oldSnapshots)]] : []),
    ...Object.values(s.untrustedFlags ?? {}).map((warning) => ['warning', warning]),
    [
      'settings',
      `chunk-time-ms ${settings.chunkTimeMs}, max-lag-ms ${settings.maxLagMs}, max-rows-per-sec ${settings.maxRowsPerSec || 'unlimited'}, nice-ratio ${settings.niceRatio}, max-redo-fill ${settings.maxRedoFill || 'never'}, ` +
        `max-writer-slowdown ${settings.maxWriterSlowdown || 'off'}, ` +
        `max-load ${thresholds(settings.maxLoad)}, critical-load ${thresholds(settings.criticalLoad)}`,
    ],
  ];
  return rows.map(([label, value]) => `${label.padEnd(10)} ${value}`);
}
