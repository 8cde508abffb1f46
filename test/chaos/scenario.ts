/**
 * One seed: a random table and its mirror, random writes on both for the whole run, shadowcut's CLI
 * migrating the table under random faults, then the oracle: the server's own ALTER on the mirror,
 * and the two compared row for row and column for column.
 */
import { EXIT_NO_CHECKPOINT } from '../../src/core/engine/errors.js';
import { spawn } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { CaptureMode } from '../../src/core/engine/ports/capture.js';
import type { ChaosDb } from './database.js';
import {
  childTables,
  childTablesSql,
  createTableSql,
  defaultsChangedBy,
  makeAlter,
  makeTable,
  parentTable,
  rowValues,
  writable,
  type TableSpec,
} from './grammar.js';
import { dependentsSql, drawDependents, type Dependents } from './dependents.js';
import { Prng } from './prng.js';
import { Reader, type ReaderReport } from './reader.js';
import { tamperedResumeRefused } from './tampered-checkpoint.js';
import { Workload } from './workload.js';

// Named after the process, so two runs on the same servers never touch each other's tables.
export const TABLE = `chaos_t${process.pid}`;
export const MIRROR = `chaos_m${process.pid}`;

export type Verdict = 'pass' | 'refused like the server' | 'refused' | 'FAIL';

/**
 * How migrate is run: its default path (in place where the server can), `--force-copy`, the copy
 * with a revert window that is then taken (`revert`: the mirror never takes the ALTER), or the
 * copy queued and run by `queue run` (`queue`: a kill hits the runner, and the stage with it; the
 * copy, since a stopped copy is what a runner takes over), or several tables in one run (`set`,
 * set-scenario.ts), or a Citus distributed table (`citus`, citus-scenario.ts), or one change over
 * several databases with a joint cut-over (`fleet`, fleet-scenario.ts).
 */
export type PathMode = 'default' | 'copy' | 'backfill' | 'revert' | 'queue' | 'set' | 'citus' | 'fleet';

/** What the tester passes as --lock-timeout-ms. */
export const LOCK_TIMEOUT_MS = 1000;

/** The rate, lock timeout and attempts every seed's migrate gets: a copy long enough for faults to land in. */
export function pacingArgs(rows: number): string[] {
  return ['--max-rows-per-sec', String(Math.max(500, Math.ceil(rows / 2))), '--lock-timeout-ms', String(LOCK_TIMEOUT_MS), '--cutover-attempts', '30'];
}
/**
 * Room for what is not a lock: on a loaded 2-core machine (servers, the CLI and the tester sharing
 * it), a query that waits for nothing has been seen to take a few hundred ms; twice that is noise,
 * not a finding. A scan or rebuild under the lock of a table of a few thousand rows is shorter
 * than this margin, so the bound catches those only on larger tables (--rows).
 */
export const READER_MARGIN_MS = 1000;

/**
 * The longest a reader may wait on one query. In place, a step waits at most the lock timeout for
 * its lock (readers queue behind the waiting request), then holds it for milliseconds: a longer
 * wait means the server worked under the lock. The copy's cut-over waits as long for its lock, then
 * holds it while it catches up and compares (the runner's budget under the lock: 4 lock timeouts,
 * at least 1 s) and swaps; on MySQL the RENAME is queued behind it for at most one more lock
 * timeout (at least 1 s). Each further attempt starts after a backoff that lets the readers through.
 */
export function readerBoundMs(engine: string, took: 'in-place' | 'copy', lockTimeoutMs = LOCK_TIMEOUT_MS): number {
  if (took === 'in-place') return lockTimeoutMs + READER_MARGIN_MS;
  const underLock = Math.max(1000, 4 * lockTimeoutMs);
  const queuedRename = engine === 'mysql' ? Math.max(1000, lockTimeoutMs) : 0;
  return lockTimeoutMs + underLock + queuedRename + READER_MARGIN_MS;
}

export interface SeedOutcome {
  engine: string;
  seed: number;
  /** The path asked for, and the one migrate took (null when it stopped before choosing). */
  path: PathMode;
  took: 'in-place' | 'copy' | null;
  reader: ReaderReport | null;
  /** The writers' longest statement or commit on the table, and when it began (null before they stopped). */
  writer: Wait | null;
  verdict: Verdict;
  /** Why it was refused or failed, or what it passed through. */
  reason: string;
  alter: string;
  faults: string[];
  seconds: number;
  /** The change source the copy used, seen on the table when it started (capture triggers or none); null without a copy. */
  capturedBy: ChangeSource | null;
  /** The table was partitioned (PostgreSQL). */
  partitioned?: boolean;
}

export type ChangeSource = 'stream' | 'trigger';

export interface Wait {
  longestMs: number;
  longestAt: number;
}

/** What migrate is told (--capture, absent: its default) and the source its copy must then use. */
export interface CaptureExpectation {
  flag?: CaptureMode;
  expect: ChangeSource;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `capture.flag`, when given, is passed to migrate as --capture; a copy that used another source than `capture.expect` fails. */
export async function runSeed(
  db: ChaosDb,
  cli: string,
  seed: number,
  rows: number,
  mode: PathMode = 'copy',
  capture: CaptureExpectation = { expect: 'stream' },
): Promise<SeedOutcome> {
  const began = Date.now();
  const root = new Prng(seed);
  const table = makeTable(root.fork(1), db.kind, root.fork(7));
  // From a fork of its own: a seed's table, ALTER, writes and faults are those it had before parents existed.
  table.children = db.kind === 'mysql' && root.fork(7).chance(0.5);
  // The table itself a child, its key to a parent moved at the cut-over; a fork of its own again.
  // (A revert window and Galera refuse such a key: the revert would not move it back, Galera's cut-over cannot.)
  table.parentKey = db.kind === 'mysql' && !db.abortsOnDdl && mode !== 'revert' && root.fork(15).chance(0.35);
  // Now and then the key cascades; triggers see no cascaded change, so only where the binlog is read.
  if (table.parentKey && capture.expect !== 'trigger') table.parentCascade = root.fork(16).pick([undefined, 'CASCADE', 'SET NULL'] as const);
  // PostgreSQL, now and then: a unique NOT NULL key in place of the primary key, followed by triggers
  // (a stream the user asked for is refused there, so those seeds keep theirs).
  table.uniqueKey = db.kind === 'postgres' && !table.partition && capture.flag !== 'stream' && mode !== 'backfill' && root.fork(13).chance(0.2);
  // The key replaced or dropped, on the copy path (no revert window takes it), outside Galera.
  const keyed = mode === 'copy' && !db.abortsOnDdl ? { r: root.fork(18), table: TABLE } : undefined;
  const alter = makeAlter(root.fork(2), table, root.fork(6), keyed);
  // A fork of its own too: what is bound to the table, made on both, compared by the catalog oracle.
  const dependents = drawDependents(root.fork(9), table);
  // Under REPLICA IDENTITY FULL the stream names rows by their whole old image: it follows such a table still.
  if (table.uniqueKey && !dependents.replicaIdentity) capture = { ...capture, expect: 'trigger' };
  const faults = root.fork(3);
  let took: SeedOutcome['took'] = null;
  let reader: ReaderReport | null = null;
  let writer: Wait | null = null;
  let capturedBy: ChangeSource | null = null;
  const outcome = (verdict: Verdict, reason: string, applied: string[]): SeedOutcome => ({
    engine: db.kind,
    seed,
    path: mode,
    took,
    reader,
    writer,
    verdict,
    reason,
    alter,
    faults: applied,
    seconds: (Date.now() - began) / 1000,
    capturedBy,
    partitioned: table.partition !== undefined,
  });

  const failedSetup = await createAndFill(db, table, rows, root.fork(4), dependents);
  if (failedSetup) return outcome('FAIL', failedSetup, []);

  const plan = {
    kill: faults.chance(0.4) ? faults.int(100, 2500) : null,
    killSession: faults.chance(0.3) ? faults.int(100, 3000) : null,
    pauseReplica: faults.chance(0.2) ? faults.int(100, 2000) : null,
  };
  // Drawn all the same, so a seed's other faults stay those it has on the servers with a replica.
  if (db.replicaUrl === null) plan.pauseReplica = null;
  // The server restarted (killed, and started again on its data), on a server of the tester's own
  // only: from a fork of its own, so a seed's other draws stay what they were.
  const restarting = root.fork(17);
  const restartAt = db.own && (mode === 'copy' || mode === 'default') && restarting.chance(0.5) ? restarting.int(100, 2500) : null;
  let restarted = false;
  const applied: string[] = [];
  // Faults belong to this seed: none may fire, or leave the replica paused, during the next one.
  const timers: NodeJS.Timeout[] = [];
  const pending: Promise<unknown>[] = [];
  // In place, the table keeps its identity and the writers go on writing through the change: they
  // never ask for a default the ALTER changes (README.md, the in-place rule).
  const load = new Workload(db, table, [TABLE, MIRROR], rows, mode === 'default' ? defaultsChangedBy(table, alter) : new Set());
  await load.start(root.fork(5));
  const watch = new Reader(db, TABLE);
  await watch.start();
  const reverting = mode === 'revert';
  // A fork of its own, so the draws above (table, ALTER, faults) stay each seed's as they were.
  const copying = root.fork(8);
  const copy = { threads: copying.int(1, 4), checksumWhileCopying: copying.chance(0.4), writerSlowdown: copying.chance(0.25) };
  const args = [
    'migrate',
    ...(mode === 'copy' || mode === 'queue' || reverting ? ['--force-copy'] : []),
    ...(capture.flag ? ['--capture', capture.flag] : []),
    '--url',
    db.url,
    '--table',
    TABLE,
    '--alter',
    alter,
    '--execute',
    '--json',
    // A revert keeps the new table as <table>__new; a window cannot drop the old table it follows.
    ...(reverting ? ['--revert-window', '10m'] : ['--drop-old']),
    '--chunk-time-ms',
    '30',
    '--threads',
    String(copy.threads),
    ...(copy.checksumWhileCopying ? ['--checksum-while-copying'] : []),
    // Paced by the writers: the heartbeat is written with no replica, and the copy rests while it is slow.
    ...(copy.writerSlowdown ? ['--max-writer-slowdown', '2'] : []),
    ...pacingArgs(rows),
    ...(plan.pauseReplica !== null && db.replicaUrl !== null ? ['--replica', db.replicaUrl, '--max-lag-ms', '1000'] : []),
  ];
  const entry = mode === 'queue' ? await queueEntry(db, cli, args) : null;
  // Refused at `queue add` (its dry run), in one line: judged as migrate's refusal would be.
  const refusedAtAdd = entry !== null && typeof entry !== 'number' ? entry : null;
  const queued = typeof entry === 'number' ? entry : null;
  // The runner: a short lease, so the next one takes over a killed one's entry soon.
  const runArgs = queued === null ? args : ['queue', 'run', '--url', db.url, '--json', '--lease-seconds', String(QUEUE_LEASE_S), ...replicaArgs(args)];
  let first: Exit;
  let last: Exit;
  // Trigger capture's triggers are on the table from before the copy until the cut-over; the stream leaves none.
  let seen: Promise<ChangeSource | Error> | null = null;
  try {
    const taken = (phase: string) => {
      if (phase === 'in-place') took = 'in-place';
      if (phase === 'setup' || phase === 'copy') took = 'copy';
    };
    // The way back: the revert asked for once the window is open (the kill, if drawn, lands in the window instead).
    const revertAt = faults.int(0, 1500);
    const askRevert = (phase: string) => {
      if (reverting && phase === 'revert window') timers.push(setTimeout(() => pending.push(revertRun(cli)), revertAt));
    };
    const run = (onPhase: (phase: string, pid: number) => number | null) =>
      refusedAtAdd ? Promise.resolve({ ...refusedAtAdd, killed: false, stdout: '', parts: [] }) : cliRun(cli, runArgs, onPhase);
    first = await run((phase, pid) => {
      taken(phase);
      if (reverting && phase === 'revert window') {
        if (plan.kill === null) askRevert(phase);
        return plan.kill;
      }
      if (phase !== 'copy') return null;
      seen ??= db.triggers(TABLE).then(
        (found) => (found.length ? 'trigger' : 'stream'),
        (error: Error) => error,
      );
      if (plan.killSession !== null) {
        timers.push(
          setTimeout(
            () => pending.push(db.killSession(pid, () => faults.int(0, 1000)).then((done) => done && applied.push('killed a server session'))),
            plan.killSession,
          ),
        );
      }
      if (restartAt !== null && db.own) {
        const own = db.own;
        timers.push(
          setTimeout(() => {
            const back = own.outages.begin();
            restarted = true;
            pending.push(own.restart().finally(back));
          }, restartAt),
        );
      }
      if (plan.pauseReplica !== null) {
        timers.push(
          setTimeout(() => {
            pending.push(
              db.pauseReplica().then(async (resume) => {
                applied.push('paused the replica');
                await sleep(1500);
                await resume();
              }),
            );
          }, plan.pauseReplica),
        );
      }
      return reverting ? null : plan.kill;
    });
    last = first;
    if (restartAt !== null) {
      // The restart belongs to the first run: none may come during a resume.
      timers.forEach(clearTimeout);
      await Promise.allSettled(pending);
    }
    if (first.killed && queued !== null) {
      // Half the time the next runner starts at once, as systemd's Restart= would: it finds the dead
      // runner's lease still in force, waits until it lapses and takes the entry over.
      const atOnce = root.fork(12).chance(0.5);
      applied.push(`SIGKILL of the queue's runner ${plan.kill} ms into the copy, then "queue run" again ${atOnce ? 'at once, inside' : 'after'} its lease`);
      await sleep(atOnce ? 300 : QUEUE_LEASE_S * 1000 + 500);
      last = await cliRun(cli, runArgs, (phase) => (taken(phase), null));
    } else if (first.killed) {
      applied.push(`SIGKILL ${plan.kill} ms into the ${reverting ? 'revert window' : 'copy'}, then --resume`);
      // Now and then the checkpoint is rewritten first, as an account without the state key would: refused, never run.
      if (root.fork(11).chance(0.3)) {
        applied.push('a resume from a rewritten checkpoint first');
        const tampered = await tamperedResumeRefused(db, TABLE, () => cliRun(cli, [...args, '--resume'], () => null));
        if (tampered) return outcome('FAIL', tampered, applied);
      }
      last = await cliRun(cli, [...args, '--resume'], (phase) => (taken(phase), askRevert(phase), null));
      // Killed after its cleanup removed the checkpoint: the migration was complete, as the oracle will tell.
      if (last.code === EXIT_NO_CHECKPOINT) last = { ...last, code: 0 };
    }
    if (restarted) applied.push(`the server restarted ${restartAt} ms into the copy`);
    if (restarted && !first.killed && first.code !== 0) {
      // The run may stop for a restart it could not ride out, in one line, and --resume ends it.
      const line = first.stderr.trim().split('\n').at(-1) ?? '';
      if (!line.startsWith('shadowcut: ') || /^\s+at /m.test(first.stderr))
        return outcome('FAIL', `stopped after the restart without one clear line: ${line}`, applied);
      applied.push('then --resume');
      const again = await cliRun(cli, [...args, '--resume'], (phase) => (taken(phase), null));
      // No checkpoint: the run had ended as a refusal does, cleaned up, and is judged as one.
      if (again.code !== EXIT_NO_CHECKPOINT) last = again;
    }
    await sleep(300); // writes go on, into the new table when it was swapped
  } finally {
    timers.forEach(clearTimeout);
    await Promise.allSettled(pending);
    await load.stop();
    reader = await watch.stop();
    writer = { longestMs: load.longestMs, longestAt: load.longestAt };
  }
  if (load.transactions === 0) applied.push('no write transaction succeeded');
  if (queued !== null) {
    const ran = await queueOutcome(cli, db.url, queued, first.killed);
    if (typeof ran === 'string') return outcome('FAIL', ran, applied);
    last = { ...last, ...ran };
  }
  const source = seen ? await (seen as Promise<ChangeSource | Error>) : null;
  if (source instanceof Error) return outcome('FAIL', `tester: could not see the copy's change source: ${source.message}`, applied);
  capturedBy = source;
  const wrongSource =
    source !== null && source !== capture.expect
      ? `the copy used the ${source === 'trigger' ? 'triggers' : 'stream'}, not the ${capture.expect === 'trigger' ? 'triggers' : 'stream'}`
      : null;
  if (wrongSource) return outcome('FAIL', wrongSource, applied);
  const blocked = reader.errors
    ? `a reader got ${reader.errors} error(s): ${reader.firstError}`
    : (waitedTooLong(db.kind, took, 'a reader', reader, last.parts) ?? waitedTooLong(db.kind, took, 'a writer', writer, last.parts));

  if (last.code === 0) {
    // Reverted: the table is the original again, with every write; the mirror never took the ALTER.
    const native = reverting ? null : await nativeAlter(db, alter);
    if (native !== null) return outcome('FAIL', `shadowcut migrated, but the server's own ALTER fails: ${native}`, applied);
    if (reverting && revertOutcome(last.stdout) !== 'reverted')
      return outcome('FAIL', `the run ended without reverting (${revertOutcome(last.stdout)})`, applied);
    const left = (await db.leftovers(TABLE)).filter((t) => !reverting || t !== `${TABLE}__new`);
    if (left.length) return outcome('FAIL', `left behind: ${left.join(', ')}`, applied);
    const [ours, theirs] = [await db.definition(TABLE), await db.definition(MIRROR)];
    if (ours !== theirs) return outcome('FAIL', `definitions differ: ${firstDifference(ours, theirs)}`, applied);
    const catalog = await catalogDiffers(db);
    if (catalog) return outcome('FAIL', catalog, applied);
    const differing = await db.rowDifferences(TABLE, MIRROR);
    if (differing) return outcome('FAIL', `${differing} row(s) differ from the mirror: ${(await db.sampleDifferences(TABLE, MIRROR)).join(' / ')}`, applied);
    const children = await childrenDiffer(db, table);
    if (children) return outcome('FAIL', children, applied);
    const parents = await parentDiffers(db, table);
    if (parents) return outcome('FAIL', parents, applied);
    if (blocked) return outcome('FAIL', blocked, applied);
    const parent =
      (table.children ? ', a foreign key parent (its children written too)' : '') +
      (table.parentKey ? `, a foreign key child${table.parentCascade ? ` (ON DELETE ${table.parentCascade})` : ''} (its parent written too)` : '');
    return outcome(
      'pass',
      `${took ?? 'no path'}${reverting ? ' and reverted' : ''}${parent}, ${load.transactions} transactions during the run, a reader waited at most ${reader.longestMs} ms, a writer ${writer.longestMs} ms`,
      applied,
    );
  }
  const lines = last.stderr.trim().split('\n').filter(Boolean);
  const reason = lines.find((l) => l.startsWith('shadowcut: ')) ?? lines.pop() ?? `exit ${last.code}`;
  if (/^\s+at /m.test(last.stderr)) {
    writeFileSync(path.join(os.tmpdir(), `chaos-${db.kind}-${seed}.stderr`), last.stderr);
    return outcome('FAIL', `a stack trace: ${reason} (all of it in ${path.join(os.tmpdir(), `chaos-${db.kind}-${seed}.stderr`)})`, applied);
  }
  if (last.code === null) return outcome('FAIL', `timed out: ${reason}`, applied);
  const left = await db.leftovers(TABLE);
  if (left.length) return outcome('FAIL', `refused (${reason}) but left behind: ${left.join(', ')}`, applied);
  const [ours, theirs] = [await db.definition(TABLE), await db.definition(MIRROR)];
  if (ours !== theirs) return outcome('FAIL', `refused (${reason}) but the original changed: ${firstDifference(ours, theirs)}`, applied);
  const catalog = await catalogDiffers(db);
  if (catalog) return outcome('FAIL', `refused (${reason}) but ${catalog}`, applied);
  if (await db.rowDifferences(TABLE, MIRROR)) return outcome('FAIL', `refused (${reason}) but the original's rows differ from the mirror`, applied);
  const children = await childrenDiffer(db, table);
  if (children) return outcome('FAIL', `refused (${reason}) but ${children}`, applied);
  const parents = await parentDiffers(db, table);
  if (parents) return outcome('FAIL', `refused (${reason}) but ${parents}`, applied);
  if (blocked) return outcome('FAIL', `refused (${reason}), and ${blocked}`, applied);
  const native = await nativeAlter(db, alter);
  return outcome(native !== null ? 'refused like the server' : 'refused', `${reason}${native !== null ? ` / server: ${native}` : ''}`, applied);
}

/** The catalog oracle: everything bound to the table against what is bound to the mirror. */
export async function catalogDiffers(db: ChaosDb, table = TABLE, mirror = MIRROR): Promise<string | null> {
  const [ours, native] = [await db.catalog(table), await db.catalog(mirror)];
  return ours === native ? null : `what is bound to the table differs: ${firstDifference(ours, native)}`;
}

/**
 * A parent's children against the mirror's: their rows, and their definitions with the parent's name
 * taken out, so a key left on the old table (or on the shadow) is a difference.
 */
export async function childrenDiffer(db: ChaosDb, table: TableSpec, name = TABLE, mirror = MIRROR): Promise<string | null> {
  if (!table.children) return null;
  const [mine, theirs] = [childTables(name), childTables(mirror)];
  for (let i = 0; i < mine.length; i++) {
    const differing = await db.rowDifferences(mine[i], theirs[i]);
    if (differing) return `${differing} row(s) of child ${mine[i]} differ from the mirror's: ${(await db.sampleDifferences(mine[i], theirs[i])).join(' / ')}`;
    const [ours, native] = [(await db.definition(mine[i])).replaceAll(TABLE, 'P'), (await db.definition(theirs[i])).replaceAll(MIRROR, 'P')];
    if (ours !== native) return `child ${mine[i]}'s definition differs: ${firstDifference(ours, native)}`;
  }
  return null;
}

/** A child's parent against the mirror's: the rows the writers added and deleted (the key is in the definition compared). */
async function parentDiffers(db: ChaosDb, table: TableSpec): Promise<string | null> {
  if (!table.parentKey) return null;
  const differing = await db.rowDifferences(parentTable(TABLE), parentTable(MIRROR));
  return differing ? `${differing} row(s) of the parent ${parentTable(TABLE)} differ from the mirror's` : null;
}

/** The table and its mirror, with the same rows; a message when the server refused them. */
export async function createAndFill(
  db: ChaosDb,
  table: TableSpec,
  rows: number,
  fill: Prng,
  dependents?: Dependents,
  names: [string, string] = [TABLE, MIRROR],
): Promise<string | null> {
  await db.drop(...names);
  const setup = await db.session();
  try {
    for (const name of names)
      for (const sql of [...createTableSql(table, name), ...(table.children ? childTablesSql(table, name) : [])]) await setup.query(sql);
    const columns = writable(table)
      .map((c) => (db.kind === 'mysql' ? `\`${c.name}\`` : `"${c.name}"`))
      .join(', ');
    for (let from = 1; from <= rows; from += 200) {
      const values = Array.from({ length: Math.min(200, rows - from + 1) }, (_, i) => `(${rowValues(fill, table, from + i).join(', ')})`).join(', ');
      for (const name of names) await setup.query(`INSERT INTO ${name} (${columns}) VALUES ${values}`);
    }
    if (dependents) for (const name of names) for (const sql of dependentsSql(dependents, table, name)) await setup.query(sql);
    return null;
  } catch (error) {
    // The grammar made a table or row the server does not take: the tester's fault, reported as such.
    return `tester: setup failed: ${(error as Error).message.split('\n')[0]}`;
  } finally {
    await setup.close();
  }
}

export interface Exit {
  code: number | null;
  killed: boolean;
  stderr: string;
  /** The JSON result line, for the revert window's outcome. */
  stdout: string;
  /** Each part's class and clause, from the JSON result line (a run that stopped has none). */
  parts: { class: string; clause: string }[];
}

/**
 * Why a reader's or a writer's longest wait fails the seed, or null. A writer queues behind the same
 * locks a reader does (the cut-over's, the in-place step's), so both are held to one bound.
 */
export function waitedTooLong(engine: string, took: SeedOutcome['took'], who: string, wait: Wait, parts: Exit['parts']): string | null {
  if (took === null) return null;
  const bound = readerBoundMs(engine, took);
  if (wait.longestMs <= bound) return null;
  const classes = parts.length ? `; parts: ${parts.map((p) => `${p.class} "${p.clause}"`).join(', ')}` : '';
  return took === 'in-place'
    ? `in place, ${who} waited ${wait.longestMs} ms, more than the lock timeout (${LOCK_TIMEOUT_MS} ms) + ${READER_MARGIN_MS} ms, ${wait.longestAt} ms into the run${classes}`
    : `the copy's cut-over made ${who} wait ${wait.longestMs} ms, more than its bound of ${bound} ms, ${wait.longestAt} ms into the run`;
}

/** The longest one shadowcut run of a seed may take: a few thousand rows take seconds. */
const CLI_BOUND_MS = 180_000;

/** Runs the CLI; `onPhase` may return a delay after which the process is killed with SIGKILL. */
export function cliRun(cli: string, args: string[], onPhase: (phase: string, pid: number) => number | null): Promise<Exit> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let killed = false;
  let stderr = '';
  let stdout = '';
  let parts: Exit['parts'] = [];
  // A run that never ends is a finding: said in its stderr, with the phase it was last in.
  let lastPhase = 'none yet';
  const logDir = process.env.CHAOS_LOG_DIR;
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
    if (logDir) appendFileSync(path.join(logDir, 'cli.stderr.log'), d);
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (logDir) appendFileSync(path.join(logDir, 'cli.log'), `${new Date().toISOString()} ${line}\n`);
    let event: { event?: string; phase?: string; parts?: Exit['parts'] };
    try {
      event = JSON.parse(line);
    } catch {
      return;
    }
    if (event.event === 'result' && event.parts) parts = event.parts;
    if (event.event === 'result') stdout = line;
    if (event.event !== 'phase' || !event.phase) return;
    lastPhase = event.phase;
    const delay = onPhase(event.phase, child.pid!);
    if (delay !== null && !killed) {
      setTimeout(() => {
        if (child.exitCode === null) {
          killed = true;
          child.kill('SIGKILL');
        }
      }, delay);
    }
  });
  let hung = false;
  const timeout = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, CLI_BOUND_MS);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timeout);
      // Its last lines say what it was waiting on (a throttle, a lock, a round of checksums): the failure's first clue.
      const tail = stderr.trim().split('\n').slice(-3).join(' | ').slice(-600);
      if (hung)
        stderr += `\nchaos: shadowcut did not end within ${CLI_BOUND_MS / 1000} s and was killed; its last phase: ${lastPhase}; its last lines: ${tail}`;
      resolve({ code: killed ? null : code, killed, stderr, stdout, parts });
    }),
  );
}

/** The runner's lease in the queue path: a killed runner's entry is taken over this long after. */
const QUEUE_LEASE_S = 3;

/** The migrate arguments as `queue add` takes them (replicas go to the runner); the entry's id, or add's refusal. */
async function queueEntry(db: ChaosDb, cli: string, migrate: string[]): Promise<number | Pick<Exit, 'code' | 'stderr'>> {
  // A fresh queue: an earlier seed's entry on the same table name must not be taken over.
  const session = await db.session();
  try {
    await session.query('DROP TABLE IF EXISTS shadowcut_queue');
  } finally {
    await session.close();
  }
  const stage: string[] = [];
  for (let i = 1; i < migrate.length; i++) {
    const a = migrate[i];
    if (a === '--execute' || a === '--json') continue;
    if (a === '--url' || a === '--replica') {
      i++;
      continue;
    }
    stage.push(a);
  }
  // Not spawnSync: this process's writers must go on meanwhile, or add's dry run waits for their locks.
  const added = await cliOutput(cli, ['queue', 'add', '--url', db.url, '--json', ...stage]);
  if (added.status !== 0) return { code: added.status, stderr: added.stderr };
  return (JSON.parse(added.stdout) as { id: number }).id;
}

/** A short CLI command's exit and output, without blocking this process. */
function cliOutput(cli: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let [stdout, stderr] = ['', ''];
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timeout = setTimeout(() => child.kill('SIGKILL'), 120_000);
  return new Promise((resolve) =>
    child.on('close', (status) => {
      clearTimeout(timeout);
      resolve({ status, stdout, stderr });
    }),
  );
}

function replicaArgs(migrate: string[]): string[] {
  const i = migrate.indexOf('--replica');
  return i >= 0 ? ['--replica', migrate[i + 1]] : [];
}

/**
 * The entry as the queue ended it, as migrate's own exit would say it: complete (0), or failed with
 * the stage's one-line refusal. Ran once: one attempt, or the killed runner's lost one and its resumption.
 */
async function queueOutcome(cli: string, url: string, id: number, killed: boolean): Promise<Pick<Exit, 'code' | 'stderr'> | string> {
  const listed = await cliOutput(cli, ['queue', 'list', '--url', url, '--json']);
  if (listed.status !== 0) return `queue list failed: ${listed.stderr.trim()}`;
  const entry = (JSON.parse(listed.stdout) as { id: number; state: string; status: { attempts: { outcome?: string }[]; lastError?: string } }[]).find(
    (e) => e.id === id,
  );
  if (!entry) return `the queue lost entry #${id}`;
  const outcomes = entry.status.attempts.map((a) => a.outcome ?? 'none').join(', ');
  const once = killed ? ['lost, complete', 'lost, failed', 'complete', 'failed'] : ['complete', 'failed'];
  if (!once.includes(outcomes)) return `entry #${id} ended ${entry.state} with attempts [${outcomes}]: not once`;
  if (entry.state === 'complete') return { code: 0, stderr: '' };
  if (entry.state !== 'failed') return `entry #${id} is ${entry.state} after its runner ended`;
  const error = entry.status.lastError ?? '';
  return { code: 2, stderr: error.slice(error.indexOf('shadowcut: ') >= 0 ? error.indexOf('shadowcut: ') : 0) };
}

/** How the run's revert window ended, from its JSON result line. */
export function revertOutcome(resultLine: string): string {
  try {
    return (JSON.parse(resultLine) as { revertWindow?: { outcome: string } | null }).revertWindow?.outcome ?? 'no window';
  } catch {
    return 'no result line';
  }
}

/** `shadowcut revert` for the tester's table; its refusal (no window yet, or the run is gone) is the run's to show. */
function revertRun(cli: string): Promise<void> {
  return revertRequest(cli, TABLE).then(() => {});
}

/** `shadowcut revert --table`, resolving to its exit code (non-zero while the table's window is not open). */
export function revertRequest(cli: string, table: string): Promise<number | null> {
  return new Promise((resolve) => spawn(process.execPath, [cli, 'revert', '--table', table], { stdio: 'ignore' }).on('exit', (code) => resolve(code)));
}

export async function nativeAlter(db: ChaosDb, alter: string, mirror = MIRROR): Promise<string | null> {
  const session = await db.session();
  try {
    // A PostgreSQL constraint named after the table (its primary key's) is the mirror's own there.
    await session.query(`ALTER TABLE ${db.kind === 'mysql' ? `\`${mirror}\`` : `"${mirror}"`} ${alter.replaceAll(TABLE, mirror)}`);
    return null;
  } catch (error) {
    return (error as Error).message.split('\n')[0];
  } finally {
    await session.close();
  }
}

export function firstDifference(a: string, b: string): string {
  const x = a.split('\n');
  const y = b.split('\n');
  const i = x.findIndex((line, n) => line !== y[n]);
  const at = i === -1 ? x.length : i;
  return `shadowcut: ${x[at] ?? '(nothing)'} / native: ${y[at] ?? '(nothing)'}`;
}
