import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { Command } from 'commander';
import { UserError, CLOSING, ignoreFailure } from '../core/engine/errors.js';
import { redactUrlsIn } from '../core/engine/connect/secrets.js';
import { QueueRunner } from '../core/queue/runner.js';
import { SealedQueue } from '../core/queue/sealed-queue.js';
import { entryTables, optionValue, optionValues, parseAdd, specProblem } from '../core/queue/spec.js';
import { bounded, cliLauncher, type Launcher } from '../core/queue/stage-process.js';
import { QUEUE_EVENTS } from '../core/queue/types.js';
import type { QueueRequest, QueueRow, QueueSpec } from '../core/engine/ports/queue.js';
import { queueHooksFromDir, validateHooksDir } from '../operator/hooks.js';
import { untilTime } from '../core/queue/window.js';
import type { Engine } from '../core/engine/types.js';
import { createEngine } from '../engines/index.js';
import { addUrlOptions, requiredUrl } from './connection.js';
import { positiveInt } from './operator-options.js';
import { entryHistory, ranBefore, succeededSince } from './queue-history.js';
import { describeEntry, entryLines } from './queue-render.js';
import { interruptSignal } from './render.js';
import { historyOf } from '../core/history/store.js';
import { HelperQueueTable } from '../core/queue/queue-table.js';
import { stderr, stdout } from './output.js';

/**
 * `shadowcut queue`: migrations waiting for their window, run by `queue run` from cron or a timer.
 * `cli` is the file each stage is started with: the one this process runs.
 */
export function queueCommand(cli: string): Command {
  const launch = cliLauncher(cli);
  return new Command('queue')
    .description('a queue of migrations, kept in the database, that "queue run" works through in their windows')
    .addCommand(addCommand(launch))
    .addCommand(listCommand())
    .addCommand(showCommand())
    .addCommand(stateCommand('cancel', 'stop an entry: a queued one never starts, a running one stops and removes what it made'))
    .addCommand(stateCommand('retry', 'queue a failed or cancelled entry again (it resumes where it can), or release a postponed one'))
    .addCommand(stateCommand('postpone', 'keep a queued entry from starting until "queue retry"'))
    .addCommand(stateCommand('cutover', 'release the postponed cut-over of a migrate entry'))
    .addCommand(stateCommand('revert', 'in the revert window of a running migrate entry: swap the tables back'))
    .addCommand(runCommand(launch));
}

function addCommand(launch: Launcher): Command {
  return new Command('add')
    .description("queue a stage (migrate by default) with the command's own options")
    .usage('--table <name> [--stage migrate|backfill|verify|contract] [stage options] [queue options]')
    .addHelpText(
      'after',
      `
Queue options:
  --url <url>                     the database (else --url-file or SHADOWCUT_URL); the queue lives there
  --url-file <path>               read the URL from this file (chmod 600)
  --stage <stage>                 migrate (default), backfill, verify or contract
  --window <HH:MM-HH:MM>          run (and cut over) only inside this daily window
  --tz <zone>                     the window's time zone, e.g. Europe/Berlin (default: the runner's)
  --after <id>                    start only once entry <id> is complete
  --postpone                      do not start it until "queue retry <id>"
  --postpone-cutover              migrate: after verification, keep in sync until "queue cutover <id>"
  --json                          print the new entry as JSON
Every other option is the stage's own (e.g. --alter, --revert-window, --set, --where), checked by
its dry run before the entry is added (with --after, only the table is checked).`,
    )
    .helpOption('-h, --help', 'display help for command')
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[options...]')
    .action(async (argv: string[]) => {
      const request = parseAdd(argv);
      const url = requiredUrl(request, process.env);
      await withEngine(url, async (engine, queue) => {
        // A fleet's change (--targets) names its table as each target does: qualified by this
        // database's name (MySQL), it would name another database on every other target.
        const fleet = optionValue(request.spec.args, '--targets') !== undefined;
        const [table, ...set] = entryTables(request.spec).map((t) => (fleet ? t : engine.qualify(t)));
        const spec: QueueSpec = { ...request.spec, table, ...(set.length ? { set } : {}) };
        // Again as the engine names them: `t` and `public.t` are one table.
        const wrong = specProblem(spec);
        if (wrong) throw new UserError(`queue add: ${wrong}`);
        await queue.check();
        await validate(launch, engine, queue, url, spec);
        const id = await queue.add(spec);
        if (request.json) stdout.json({ id, ...spec });
        else stdout.line(`queued #${id}: ${spec.stage} ${entryTables(spec).join(', ')}`);
      });
    });
}

/** Refused now rather than at 01:00: a missing predecessor or table, or a stage its dry run refuses. */
async function validate(launch: Launcher, engine: Engine, queue: SealedQueue, url: string, spec: QueueSpec): Promise<void> {
  if (spec.after !== undefined && (await queue.get(spec.after)) === null) throw new UserError(`queue add: --after ${spec.after}: no such entry`);
  if (spec.after !== undefined || spec.stage === 'verify') {
    // The stage's options may name what an earlier entry makes; the tables themselves must be there.
    for (const table of entryTables(spec)) await engine.tableSize(table);
    return;
  }
  const dry = await launch([spec.stage, ...tableArgs(spec), ...spec.args], { SHADOWCUT_URL: url }).exit;
  if (dry.code !== 0)
    throw new UserError(`queue add: ${dry.lastError.replace(/^shadowcut: /, '') || `the dry run of ${spec.stage} failed (exit ${dry.code})`}`);
}

function listCommand(): Command {
  return addUrlOptions(new Command('list').description('every entry: state, progress, ETA, window, why it waits, its last error'), { required: true })
    .option('--json', 'one JSON array of the entries', false)
    .action(async (opts: { url: string; json: boolean }) => {
      await withEngine(opts.url, async (_engine, queue) => {
        const rows = await queue.list();
        if (opts.json) stdout.json(rows);
        else stdout.lines(rows.length ? rows.map(describeEntry) : ['the queue is empty']);
      });
    });
}

function showCommand(): Command {
  return addUrlOptions(new Command('show').description('one entry: what was queued, every attempt, and the history of its table since'), { required: true })
    .argument('<id>', 'the entry', positiveInt)
    .option('--json', 'the entry and its history entries as one JSON object', false)
    .action(async (id: number, opts: { url: string; json: boolean }) => {
      await withEngine(opts.url, async (engine, queue) => {
        const row = await queue.get(id);
        if (!row) throw new UserError(`queue: no entry #${id}`);
        const history = (await entryHistory(engine, row.spec)).filter((h) => h.startedAt >= row.createdAt);
        if (opts.json) stdout.json({ ...row, history });
        else stdout.lines(entryLines(row, history));
      });
    });
}

type Verb = 'cancel' | 'retry' | 'postpone' | 'cutover' | 'revert';

function stateCommand(verb: Verb, description: string): Command {
  return addUrlOptions(new Command(verb).description(description), { required: true })
    .argument('<id>', 'the entry', positiveInt)
    .action(async (id: number, opts: { url: string }) => {
      await withEngine(opts.url, async (_engine, queue) => {
        const row = await queue.get(id);
        if (!row) throw new UserError(`queue: no entry #${id}`);
        stdout.line(`#${id}: ${await apply(queue, verb, row)}`);
      });
    });
}

/** One operator request, as a conditional change of the entry; says what happened, or refuses in one line. */
async function apply(queue: SealedQueue, verb: Verb, row: QueueRow): Promise<string> {
  const { id, state, spec } = row;
  const refuse = (why: string) => new UserError(`queue ${verb} #${id}: ${why}`);
  if (row.refused) {
    // Nothing in it is proven: it can only be ended. What it says it is, or was queued with, is anyone's.
    if (verb !== 'cancel') throw refuse(`${row.refused}; "queue cancel ${id}" ends it`);
    const ended = await queue.refuse(id, 'cancelled', `cancelled by its operator: ${row.refused}`, false);
    if (!ended) throw refuse('it changed meanwhile: look again with "queue show"');
    return ended === 'complete' ? 'complete, as this host saw it end; it stays so' : 'cancelled';
  }
  const ask = async (request: QueueRequest, said: string) => {
    if (!(await queue.request(id, request))) throw refuse(`it is ${state}`);
    return said;
  };
  if (verb === 'cancel') {
    if (state === 'queued' && (await queue.transition(id, ['queued'], 'cancelled'))) return 'cancelled';
    if (state === 'running') return ask('cancel', 'cancel asked: its runner stops the stage at the next safe point, and it removes what it made');
    throw refuse(`it is ${state}`);
  }
  if (verb === 'retry') {
    const released = { ...spec, postponed: undefined };
    if (await queue.transition(id, ['failed', 'cancelled'], 'queued', undefined, released))
      return 'queued again; the next "queue run" takes it (resuming where it can)';
    if (state === 'queued' && spec.postponed && (await queue.transition(id, ['queued'], 'queued', undefined, released))) return 'released';
    throw refuse(`it is ${state}${state === 'queued' ? ' already' : ''}`);
  }
  if (verb === 'postpone') {
    if (await queue.transition(id, ['queued'], 'queued', undefined, { ...spec, postponed: true })) return 'postponed: it starts only after "queue retry"';
    throw refuse(`it is ${state}; only a queued entry can be postponed`);
  }
  if (verb === 'cutover') {
    if (!spec.postponeCutover) throw refuse('it was not queued with --postpone-cutover');
    return ask('cutover', 'cut-over asked: its runner passes it on when the copy is verified');
  }
  if (state !== 'running' || spec.stage !== 'migrate') throw refuse(`it is a ${state} ${spec.stage} entry; only a running migration can go back`);
  return ask('revert', 'revert asked: its runner passes it on to the run');
}

function runCommand(launch: Launcher): Command {
  return addUrlOptions(new Command('run').description('work through the queue: for cron, a systemd timer, or as a daemon'), { required: true })
    .option('--until <HH:MM>', 'stop at this local time; a copy still going stops as a crash would, to resume from its checkpoint next time')
    .option('--max-concurrent <n>', 'entries running at once on the server, by all runners together', positiveInt, 1)
    .option('--once', 'start what is due now, wait for it, and exit', false)
    .option('--daemon', 'keep running, starting entries as they become due', false)
    .option(
      '--lease-seconds <n>',
      "how long an entry stays claimed by a runner that stopped renewing (a dead runner's entries are taken over after it)",
      positiveInt,
      60,
    )
    .option('--replica <url>', 'given to every stage (repeatable): their lag holds the work back', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--hooks-dir <dir>', "hook programs: the runner's own queue-start, queue-complete, queue-failure, queue-suspend, and every stage's events")
    .option('--report-dir <dir>', "given to every stage: its report and the table's markdown history")
    .option('--json', 'print each stage\'s JSON lines on stdout, each with its entry\'s number ("entry")', false)
    .action(async (opts: RunOptions) => {
      if (opts.once && opts.daemon) throw new UserError('queue run: --once or --daemon, not both');
      const until = opts.until === undefined ? undefined : untilTime(opts.until, new Date());
      // The stages check the same directory for their own events; the runner checks it for its own.
      if (opts.hooksDir) await validateHooksDir(opts.hooksDir, QUEUE_EVENTS);
      const log = (line: string) => stderr.line(`${new Date().toISOString()} queue: ${line}`);
      await withEngine(
        opts.url,
        async (engine, entries) => {
          await entries.check();
          const env = { SHADOWCUT_URL: opts.url };
          // The nonce: containers share a host name and a pid.
          const runner = `${os.userInfo().username}@${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
          const queue = new QueueRunner(
            {
              store: entries,
              launch,
              env,
              log,
              hook: opts.hooksDir
                ? queueHooksFromDir(opts.hooksDir, { onRun: (run) => log(`hook ${run.event}: exit ${run.exitCode ?? run.signal}`) })
                : undefined,
              succeededSince: (spec, since) => succeededSince(engine, spec, since),
              ranBefore: (row) => ranBefore(engine, row),
              estimateMs: (spec) => estimate(launch, spec, env),
              stageOutput: opts.json ? relayJson : undefined,
              record: async (row, outcome, line) => {
                // An entry written by hand without a readable table has no timeline to go in.
                if (typeof row.spec.table !== 'string' || row.spec.unproven) return;
                const at = new Date().toISOString();
                for (const table of entryTables(row.spec)) {
                  if (typeof table !== 'string') continue;
                  await historyOf(engine).append({
                    table,
                    command: 'queue',
                    stage: `#${row.id} ${row.spec.stage}`,
                    startedAt: at,
                    finishedAt: at,
                    outcome,
                    rowsTouched: 0,
                    checks: [],
                    summary: [redactUrlsIn(line)],
                    detail: { entry: row.id, stage: row.spec.stage },
                    by: runner,
                  });
                }
              },
            },
            {
              runner,
              maxConcurrent: opts.maxConcurrent,
              mode: opts.once ? 'once' : opts.daemon ? 'daemon' : 'drain',
              until,
              leaseSeconds: opts.leaseSeconds,
              pollMs: 2000,
              stageArgs: [
                ...opts.replica.flatMap((r) => ['--replica', r]),
                ...(opts.hooksDir ? ['--hooks-dir', opts.hooksDir] : []),
                ...(opts.reportDir ? ['--report-dir', opts.reportDir] : []),
              ],
            },
          );
          interruptSignal().addEventListener('abort', () => queue.stop());
          const failed = await queue.run();
          if (failed > 0) throw new UserError(`queue run: ${failed} entr${failed === 1 ? 'y' : 'ies'} failed ("queue list" says why)`, 4);
        },
        log,
      );
    });
}

/** A stage's JSON line on the runner's stdout, with the entry it belongs to; anything else it printed stays its own. */
function relayJson(entry: number, line: string): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return;
  }
  if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) stdout.json({ entry, ...parsed });
}

interface RunOptions {
  json: boolean;
  url: string;
  until?: string;
  maxConcurrent: number;
  once: boolean;
  daemon: boolean;
  leaseSeconds: number;
  replica: string[];
  hooksDir?: string;
  reportDir?: string;
}

/** `shadowcut plan`'s total for a migrate entry, with the options of the entry that shape it; null when it cannot say. */
async function estimate(launch: Launcher, spec: QueueSpec, env: Record<string, string>): Promise<number | null> {
  const shaping = ['--capture', '--chunk-time-ms', '--lock-timeout-ms', '--cutover-attempts', '--max-rows-per-sec', '--nice-ratio'].flatMap((name) => {
    const value = optionValue(spec.args, name);
    return value === undefined ? [] : [name, value];
  });
  const force = spec.args.includes('--force-copy') ? ['--force-copy'] : [];
  // A plan copies a sample; one that has not answered in ten minutes does not hold the queue up.
  const alters = optionValues(spec.args, '--alter').flatMap((alter) => ['--alter', alter]);
  const planned = await bounded(launch(['plan', '--json', ...shaping, ...force, ...tableArgs(spec), ...alters], env), 600_000);
  if (planned.code !== 0) return null;
  // A set's plan prints each table's; its copies run at once, so the set takes about its longest.
  let longest: number | null = null;
  for (const line of planned.stdout) {
    try {
      const total = (JSON.parse(line) as { detail?: { estimate?: { totalMs?: unknown } } }).detail?.estimate?.totalMs;
      if (typeof total === 'number') longest = Math.max(longest ?? 0, total);
    } catch {
      // not the plan's JSON line
    }
  }
  return longest;
}

/** `--table` for each of the entry's tables, in order: the n-th pairs with the n-th `--alter`. */
function tableArgs(spec: QueueSpec): string[] {
  return entryTables(spec).flatMap((table) => ['--table', table]);
}

/** The engine and its queue, as far as the queue's seals prove it; `warn` hears what a runner writes back over a document put back. */
async function withEngine(url: string, fn: (engine: Engine, queue: SealedQueue) => Promise<void>, warn?: (line: string) => void): Promise<void> {
  const engine = await createEngine(url);
  try {
    await fn(engine, new SealedQueue(new HelperQueueTable(engine.helperTables), undefined, warn));
  } finally {
    await engine.close().catch(ignoreFailure(CLOSING));
  }
}
