// `npm test`: the suite as SHADOWCUT_TEST_SHARDS (default 3) vitest runs at once, each on a set of
// private servers of its own, since one set takes one test file at a time (vitest.config.ts). Most
// files spend their time waiting (lock timeouts, polls, replica catch-up), not computing, so two runs
// share two cores well. Each shard's lines carry its number; the last line adds up their counts.
// Arguments (`npm test -- test/x.test.ts`), servers given by URL, or SHADOWCUT_TEST_SHARDS=1: one
// plain vitest run, as before.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { exitOnServersUnavailable } from './servers-error.js';
import { defaultStateDir, repoRoot, serversDown, serversUp, urlVars, type ServerSet } from './test-servers.js';

const vitest = path.join(repoRoot, 'node_modules', 'vitest', 'vitest.mjs');
const SUMMARY = /^tests: (\d+) passed, (\d+) failed, (\d+) skipped$/;

interface Shard {
  index: number;
  stateDir: string;
  /** Control sockets are named after the table: another shard's test of the same table must not answer. */
  controlDir: string;
  set?: ServerSet;
}

interface Outcome {
  code: number;
  counts: number[] | null;
  seconds: number;
  /** The lines that name a failure, with a few lines after each: repeated at the end, where a log's tail shows them. */
  failures: string[];
}

// vitest's marks of a failed test or file, once the colours are stripped.
const FAILED = /^\s*(×|FAIL\b|❯ .*\(\d+ tests? \| \d+ failed)/;
// eslint-disable-next-line no-control-regex -- the escape that starts a colour is what it removes
const COLOURS = /\x1b\[[0-9;]*m/g;
const AFTER_FAILURE = 6;
// A run a timed-out test left going prints its last output to stderr when it is killed
// (test/support/children.ts): what a hang last said is the one trace of where it hung.
const KILLED_RUN = /^killing a run the failed test left going/;
const AFTER_KILLED_RUN = 22;
const MAX_FAILURE_LINES = 100;

const children = new Set<ChildProcess>();
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    interrupted = true;
    for (const child of children) child.kill(signal);
  });
}

function vitestRun(args: string[], env: NodeJS.ProcessEnv, stdio: 'inherit' | 'pipe'): ChildProcess {
  const child = spawn(process.execPath, [vitest, 'run', ...args], { cwd: repoRoot, env, stdio: ['ignore', stdio, stdio] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function exitCode(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => child.once('close', (code) => resolve(code ?? 1)));
}

function runShard(shard: Shard, count: number): Promise<Outcome> {
  const env = { ...process.env, ...shard.set?.urls, SHADOWCUT_CONTROL_DIR: shard.controlDir };
  // The files that need no server ran before the shards: only the server ones here.
  return runTagged(`[${shard.index}/${count}] `, [`--shard=${shard.index}/${count}`, '--project', 'servers'], env);
}

/** A vitest run whose every line carries `tag`; its counts, and the lines naming a failure, kept. */
function runTagged(tag: string, args: string[], env: NodeJS.ProcessEnv): Promise<Outcome> {
  const started = Date.now();
  const child = vitestRun(args, env, 'pipe');
  let counts: number[] | null = null;
  const failures: string[] = [];
  /** Keeps the line that matches `start` and the `after` lines that follow it, up to MAX_FAILURE_LINES in all. */
  const keeper = (start: RegExp, after: number) => {
    let following = 0;
    return (plain: string) => {
      if (start.test(plain)) following = after + 1;
      if (following > 0 && failures.length < MAX_FAILURE_LINES && plain.trim() !== '') failures.push(tag + plain);
      if (following > 0) following--;
    };
  };
  const keepFailure = keeper(FAILED, AFTER_FAILURE);
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const summary = SUMMARY.exec(line);
    if (summary) counts = summary.slice(1).map(Number);
    process.stdout.write(tag + line + '\n');
    keepFailure(line.replace(COLOURS, ''));
  });
  const keepKilledRun = keeper(KILLED_RUN, AFTER_KILLED_RUN);
  createInterface({ input: child.stderr! }).on('line', (line) => {
    process.stderr.write(tag + line + '\n');
    keepKilledRun(line.replace(COLOURS, ''));
  });
  return exitCode(child).then((code) => ({ code, counts, failures, seconds: Math.round((Date.now() - started) / 1000) }));
}

async function sharded(count: number): Promise<number> {
  // The files that need no server first: seconds, and a broken core is told before any server starts.
  // These files share nothing, unlike the server ones (vitest.config.ts): two at once, which a
  // project's own settings cannot say in vitest 3.
  const unit = await runTagged('[unit] ', ['--project', 'no-servers', '--fileParallelism', '--maxWorkers', '2'], process.env);
  if (unit.code !== 0 || interrupted) {
    if (unit.failures.length) process.stdout.write(`what failed, again:\n${unit.failures.join('\n')}\n`);
    return unit.code || 1;
  }
  const base = defaultStateDir();
  const shards: Shard[] = Array.from({ length: count }, (_, i) => ({
    index: i + 1,
    stateDir: `${base}-${i + 1}`,
    controlDir: mkdtempSync(path.join(os.tmpdir(), `shadowcut-shard${i + 1}-`)),
  }));
  const running: Promise<Outcome>[] = [];
  let unavailable: unknown;
  try {
    // One set after another: the first `up` may have to apt-get the packages (one caller at a
    // time), and each set picks its free ports once the one before listens on its own.
    for (const shard of shards) {
      if (interrupted) break;
      shard.set = await serversUp(shard.stateDir);
      running.push(runShard(shard, count));
    }
  } catch (error) {
    unavailable = error;
    for (const child of children) child.kill('SIGTERM');
  }
  const outcomes = await Promise.all(running);
  await Promise.all(shards.filter((s) => s.set).map((s) => serversDown(s.stateDir, s.set!)));
  for (const shard of shards) rmSync(shard.controlDir, { recursive: true, force: true });
  if (unavailable) {
    exitOnServersUnavailable('npm test', unavailable);
    throw unavailable;
  }

  const failed = outcomes.flatMap((o) => o.failures);
  if (failed.length) process.stdout.write(`what failed, again:\n${failed.join('\n')}\n`);
  const total = [0, 0, 0];
  unit.counts?.forEach((n, k) => (total[k] += n));
  outcomes.forEach((o, i) => {
    process.stdout.write(`shard ${i + 1}/${count}: exit ${o.code} after ${o.seconds} s${o.counts ? '' : ', no test count (it did not finish)'}\n`);
    o.counts?.forEach((n, k) => (total[k] += n));
  });
  process.stdout.write(`tests: ${total[0]} passed, ${total[1]} failed, ${total[2]} skipped\n`);
  const complete = outcomes.length === count && outcomes.every((o) => o.counts);
  return complete && outcomes.every((o) => o.code === 0) ? 0 : 1;
}

function shardCount(): number {
  const given = process.env.SHADOWCUT_TEST_SHARDS ?? '3';
  if (!/^[1-9]\d*$/.test(given)) throw new Error(`SHADOWCUT_TEST_SHARDS must be a positive whole number, not ${given}`);
  return Number(given);
}

const args = process.argv.slice(2);
const count = shardCount();
const serversGiven = urlVars.every((v) => process.env[v]);
process.exitCode = args.length > 0 || serversGiven || count === 1 ? await exitCode(vitestRun(args, process.env, 'inherit')) : await sharded(count);
