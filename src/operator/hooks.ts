import { spawn } from 'node:child_process';
import type { Stats } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { UserError, failedAs } from '../core/engine/errors.js';
import { redactUrlsIn } from '../core/engine/connect/secrets.js';
import { directoryFault, faultOf, resolvedDir } from '../core/engine/trusted-files.js';
import { shownText } from '../core/report/shown-text.js';
import type { RunState } from '../core/run/run-state.js';
import type { HookEvent } from '../core/run/config.js';
import type { QueueEvent } from '../core/queue/types.js';

/**
 * `--hooks-dir`: the operator's executables, one per event, named exactly after it. A missing file means
 * "no hook for this event". gh-ost's names (`gh-ost-on-before-cut-over`, ...) are not recognised: one
 * naming scheme, so a hook can never be run twice or silently under an unexpected name.
 */
export const HOOK_EVENTS: Record<HookEvent, string> = {
  startup: 'the run starts (after the preflight, before anything is created)',
  'before-copy': 'the shadow table and the change stream are ready, the copy is about to start',
  'copy-complete': 'every row is copied and the shadow has caught up with the stream',
  'before-cutover': 'parity is proven, the tables are about to be swapped; exit non-zero to stop the run',
  'before-revert': 'revert window: the tables are about to be swapped back; exit non-zero to stay on the new table (the window goes on)',
  'after-revert': 'revert window: the tables are swapped back, the table has its old schema again',
  'before-backfill': 'backfill: the checkpoint is in place, the first batch is about to be updated; exit non-zero to stop first',
  success: 'the table has the new schema',
  failure: 'the run failed or was aborted; SHADOWCUT_ERROR says why',
};

export interface HookRun {
  event: HookEvent | QueueEvent;
  file: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  durationMs: number;
  /** The tail of each stream, at most OUTPUT_LIMIT characters. */
  stdout: string;
  stderr: string;
}

export interface HooksOptions {
  /** A hook running longer is killed and counts as failed. */
  timeoutMs?: number;
  /** Receives every hook's outcome and captured output, e.g. to log it through the reporter. */
  onRun?: (run: HookRun) => void;
}

export const DEFAULT_HOOK_TIMEOUT_MS = 60_000;
/** A chatty hook must not grow our memory; the tail is where the reason for a failure is. */
const OUTPUT_LIMIT = 16 * 1024;
const EXIT_GRACE_MS = 1000;

/**
 * `queue run --hooks-dir`: the runner's own events, run by the runner with the entry in their
 * environment; the same directory's other hooks are the stages', which the stages run.
 */
export const QUEUE_HOOK_EVENTS: Record<QueueEvent, string> = {
  'queue-start':
    'queue run: an entry is started (or resumed); SHADOWCUT_QUEUE_ID, SHADOWCUT_TABLE, SHADOWCUT_STAGE name it (an entry shadowcut cannot prove it wrote: its id only)',
  'queue-complete': 'queue run: an entry is complete',
  'queue-failure': 'queue run: an entry failed or was cancelled; SHADOWCUT_ERROR says why',
  'queue-suspend': 'queue run: an entry was stopped to be resumed later (--until, SIGTERM, a lost lease)',
};

/** Checks `--hooks-dir` before the run starts, so a typo never turns into "no hooks ran". Returns the events that have a hook. */
export async function validateHooksDir<E extends string = HookEvent>(dir: string, events: readonly E[] = Object.keys(HOOK_EVENTS) as E[]): Promise<E[]> {
  const info = await stat(dir).catch(failedAs(null, 'a --hooks-dir that cannot be read is refused just below as no directory'));
  if (!info?.isDirectory()) throw new UserError(`--hooks-dir ${dir} is not a directory`);
  const untrusted = strangerCanWrite(info) ?? above(dir);
  if (untrusted) throw new UserError(`--hooks-dir ${dir} ${untrusted}: a hook put there would run as you`);
  const found: E[] = [];
  const names = new Set(await readdir(dir));
  for (const event of events) {
    if (!names.has(event)) continue;
    const file = path.join(dir, event);
    const hook = await stat(file);
    // A before-cutover hook that cannot run would otherwise be found out only at the cut-over, days later.
    if (!hook.isFile() || (hook.mode & 0o111) === 0) throw new UserError(`hook ${file} is not an executable file (chmod +x it)`);
    const changeable = strangerCanWrite(hook);
    if (changeable) throw new UserError(`hook ${file} ${changeable}: it would run as you`);
    found.push(event);
  }
  return found;
}

/**
 * The runner's `hook` option for a hooks directory. The third parameter is the run's error for
 * `failure`; it is optional so the function also fits a runner that does not pass it.
 */
export function hooksFromDir(dir: string, options: HooksOptions = {}): (event: HookEvent, state: RunState, error?: unknown) => Promise<void> {
  return (event, state, error) => runFromDir(dir, event, () => hookEnv(event, state, error), options);
}

/** The runner's hook for its own events: the entry in the environment; a failing hook is the runner's to log, not to act on. */
export function queueHooksFromDir(
  dir: string,
  options: HooksOptions = {},
): (event: QueueEvent, entry: { id: number; table?: string; stage?: string }, error?: string) => Promise<void> {
  return (event, entry, error) =>
    runFromDir(
      dir,
      event,
      () =>
        hookEnvironment({ SHADOWCUT_EVENT: event, SHADOWCUT_QUEUE_ID: String(entry.id), SHADOWCUT_TABLE: entry.table, SHADOWCUT_STAGE: entry.stage }, error),
      options,
    );
}

/**
 * Why another OS user could change what a hook runs, or null: owned by someone other than the
 * running user or root, or writable by group or others (as sshd's StrictModes judges a home).
 */
function strangerCanWrite(info: Stats): string | null {
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid && info.uid !== 0) return `belongs to another OS user (uid ${info.uid})`;
  if ((info.mode & 0o022) !== 0) return 'can be written by other OS users (chmod go-w it)';
  return null;
}

/** Why another OS user could swap the hooks directory for one of theirs, from above it (trusted-files.ts), or null. */
function above(dir: string): string | null {
  const real = resolvedDir(dir);
  const fault = real === null ? null : directoryFault(path.dirname(real), true);
  return fault && faultOf(fault, real!);
}

/** Runs `dir/<event>` if there is one; throws, with the hook's last word, when it did not exit 0. */
async function runFromDir(dir: string, event: HookEvent | QueueEvent, env: () => NodeJS.ProcessEnv, options: HooksOptions): Promise<void> {
  const file = path.join(dir, event);
  if (!(await present(file))) return;
  // Looked at again at each event: the run may last days, and the directory or the hook can change meanwhile.
  for (const [what, info] of [
    [`--hooks-dir ${dir}`, await stat(dir)],
    [`hook ${file}`, await stat(file)],
  ] as const) {
    const untrusted = strangerCanWrite(info) ?? (info.isDirectory() ? above(dir) : null);
    if (untrusted) throw new Error(`${what} ${untrusted}: not run`);
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;
  const run = await runHook(event, file, env(), timeoutMs);
  options.onRun?.(run);
  if (run.timedOut) throw new Error(`${file} ran longer than ${timeoutMs} ms and was killed${lastLine(run)}`);
  if (run.signal) throw new Error(`${file} was killed by ${run.signal}${lastLine(run)}`);
  if (run.exitCode !== 0) throw new Error(`${file} exited with code ${run.exitCode}${lastLine(run)}`);
}

/** Only "no such file" means "no hook": any other failure to look is the operator's to know about. */
function present(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false;
      throw error;
    },
  );
}

function hookEnv(event: HookEvent, state: RunState, error: unknown): NodeJS.ProcessEnv {
  const s = state.status;
  return hookEnvironment(
    {
      SHADOWCUT_EVENT: event,
      SHADOWCUT_TABLE: s.table,
      SHADOWCUT_ALTER: s.alter,
      SHADOWCUT_ENGINE: s.engine,
      SHADOWCUT_PHASE: s.phase,
      SHADOWCUT_STATE: s.state,
      SHADOWCUT_ROWS_COPIED: String(s.rowsCopied),
      SHADOWCUT_ROWS_ESTIMATED: String(s.rowsEstimated),
      SHADOWCUT_CHANGES_APPLIED: String(s.changesApplied),
      // Whole seconds: hooks are shell scripts, and $(( )) only does integers.
      SHADOWCUT_ELAPSED_SECONDS: String(Math.floor((Date.now() - Date.parse(s.startedAt)) / 1000)),
    },
    error,
  );
}

/**
 * Every hook's environment: the inherited one, without what a hook must not get, and shadowcut's
 * variables, each through core/report/shown-text.ts: a table name, an ALTER or an error is others'
 * text, and a hook logs it, mails it or puts it in a chat, where control characters and bidi
 * overrides would act. A variable left undefined is not set (nor inherited).
 */
function hookEnvironment(fields: Record<string, string | undefined>, error: unknown): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The URL is shadowcut's input, password and all; a hook that logs its environment must not get it.
  delete env.SHADOWCUT_URL;
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) delete env[name];
    else env[name] = shownText(value);
  }
  // Set only for a failure, whatever we inherited (shadowcut run from another run's hook), so a hook can test for it.
  if (error === undefined) delete env.SHADOWCUT_ERROR;
  // Whatever was thrown, as the user's hook would print it.
  // eslint-disable-next-line @typescript-eslint/no-base-to-string
  else env.SHADOWCUT_ERROR = shownText(redactUrlsIn(error instanceof Error ? error.message : String(error)));
  return env;
}

function runHook(event: HookEvent | QueueEvent, file: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<HookRun> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    // Its own process group, so a timeout kills what the script started too.
    const child = spawn(file, [], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const stdout = tail(child.stdout);
    const stderr = tail(child.stderr);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // the group is already gone
      }
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${error.message}`));
    });
    // A process the hook left in the background (`daemon &`) may hold our pipes open for ever: once the
    // hook itself has exited, stop waiting for its output after a moment.
    child.on('exit', () => {
      clearTimeout(timer);
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, EXIT_GRACE_MS).unref();
    });
    child.on('close', (exitCode, signal) => {
      resolve({ event, file, exitCode, signal, timedOut, durationMs: Date.now() - started, stdout: stdout(), stderr: stderr() });
    });
  });
}

function tail(stream: NodeJS.ReadableStream): () => string {
  let text = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    text = (text + chunk).slice(-OUTPUT_LIMIT);
  });
  return () => text;
}

/** The hook's own last word on why it failed: stderr, or stdout for scripts that echo their errors. */
function lastLine(run: HookRun): string {
  const line = (run.stderr.trim() || run.stdout.trim()).split('\n').pop();
  return line ? `: ${line}` : '';
}
