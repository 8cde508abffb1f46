/**
 * One seed: a random table and its mirror, random writes on both for the whole run, shadowcut's CLI
 * migrating the table under random faults, then the oracle: the server's own ALTER on the mirror,
 * and the two compared row for row and column for column.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { ChaosDb } from './database.js';
import { createTableSql, makeAlter, makeTable, rowValues, writable } from './grammar.js';
import { Prng } from './prng.js';
import { Workload } from './workload.js';

// Named after the process, so two runs on the same servers never touch each other's tables.
export const TABLE = `chaos_t${process.pid}`;
export const MIRROR = `chaos_m${process.pid}`;

export type Verdict = 'pass' | 'refused like the server' | 'refused' | 'FAIL';

export interface SeedOutcome {
  engine: string;
  seed: number;
  verdict: Verdict;
  /** Why it was refused or failed, or what it passed through. */
  reason: string;
  alter: string;
  faults: string[];
  seconds: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runSeed(db: ChaosDb, cli: string, seed: number, rows: number): Promise<SeedOutcome> {
  const began = Date.now();
  const root = new Prng(seed);
  const table = makeTable(root.fork(1), db.kind);
  const alter = makeAlter(root.fork(2), table);
  const faults = root.fork(3);
  const outcome = (verdict: Verdict, reason: string, applied: string[]): SeedOutcome => ({
    engine: db.kind,
    seed,
    verdict,
    reason,
    alter,
    faults: applied,
    seconds: (Date.now() - began) / 1000,
  });

  await db.drop(TABLE, MIRROR);
  const setup = await db.session();
  try {
    for (const name of [TABLE, MIRROR]) for (const sql of createTableSql(table, name)) await setup.query(sql);
    const fill = root.fork(4);
    const columns = writable(table).map((c) => (db.kind === 'mysql' ? `\`${c.name}\`` : `"${c.name}"`)).join(', ');
    for (let from = 1; from <= rows; from += 200) {
      const values = Array.from({ length: Math.min(200, rows - from + 1) }, (_, i) => `(${rowValues(fill, table, from + i).join(', ')})`).join(', ');
      for (const name of [TABLE, MIRROR]) await setup.query(`INSERT INTO ${name} (${columns}) VALUES ${values}`);
    }
  } catch (error) {
    // The grammar made a table or row the server does not take: the tester's fault, reported as such.
    await setup.close();
    return outcome('FAIL', `tester: setup failed: ${(error as Error).message.split('\n')[0]}`, []);
  }
  await setup.close();

  const plan = {
    kill: faults.chance(0.4) ? faults.int(100, 2500) : null,
    killSession: faults.chance(0.3) ? faults.int(100, 3000) : null,
    pauseReplica: faults.chance(0.2) ? faults.int(100, 2000) : null,
  };
  const applied: string[] = [];
  // Faults belong to this seed: none may fire, or leave the replica paused, during the next one.
  const timers: NodeJS.Timeout[] = [];
  const pending: Promise<unknown>[] = [];
  const load = new Workload(db, table, [TABLE, MIRROR], rows);
  await load.start(root.fork(5));
  const args = [
    'migrate', '--force-copy', '--url', db.url, '--table', TABLE, '--alter', alter, '--execute', '--json', '--drop-old',
    '--chunk-time-ms', '30', '--max-rows-per-sec', String(Math.max(500, Math.ceil(rows / 2))),
    '--lock-timeout-ms', '1000', '--cutover-attempts', '30',
    ...(plan.pauseReplica !== null ? ['--replica', db.replicaUrl, '--max-lag-ms', '1000'] : []),
  ];
  let first: Exit;
  let last: Exit;
  try {
    first = await cliRun(cli, args, (phase, pid) => {
      if (phase !== 'copy') return null;
      if (plan.killSession !== null) {
        timers.push(setTimeout(() => pending.push(db.killSession(pid, () => faults.int(0, 1000)).then((done) => done && applied.push('killed a server session'))), plan.killSession));
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
      return plan.kill;
    });
    last = first;
    if (first.killed) {
      applied.push(`SIGKILL ${plan.kill} ms into the copy, then --resume`);
      last = await cliRun(cli, [...args, '--resume'], () => null);
      // Killed after its cleanup removed the checkpoint: the migration was complete, as the oracle will tell.
      if (last.code === 2 && /there is no checkpoint of an earlier run/.test(last.stderr)) last = { ...last, code: 0 };
    }
    await sleep(300); // writes go on, into the new table when it was swapped
  } finally {
    timers.forEach(clearTimeout);
    await Promise.allSettled(pending);
    await load.stop();
  }
  if (load.transactions === 0) applied.push('no write transaction succeeded');

  if (last.code === 0) {
    const native = await nativeAlter(db, alter);
    if (native !== null) return outcome('FAIL', `shadowcut migrated, but the server's own ALTER fails: ${native}`, applied);
    const left = await db.leftovers(TABLE);
    if (left.length) return outcome('FAIL', `left behind: ${left.join(', ')}`, applied);
    const [ours, theirs] = [await db.definition(TABLE), await db.definition(MIRROR)];
    if (ours !== theirs) return outcome('FAIL', `definitions differ: ${firstDifference(ours, theirs)}`, applied);
    const differing = await db.rowDifferences(TABLE, MIRROR);
    if (differing) return outcome('FAIL', `${differing} row(s) differ from the mirror: ${(await db.sampleDifferences(TABLE, MIRROR)).join(' / ')}`, applied);
    return outcome('pass', `${load.transactions} transactions during the run`, applied);
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
  if (await db.rowDifferences(TABLE, MIRROR)) return outcome('FAIL', `refused (${reason}) but the original's rows differ from the mirror`, applied);
  const native = await nativeAlter(db, alter);
  return outcome(native !== null ? 'refused like the server' : 'refused', `${reason}${native !== null ? ` / server: ${native}` : ''}`, applied);
}

interface Exit {
  code: number | null;
  killed: boolean;
  stderr: string;
}

/** Runs the CLI; `onPhase` may return a delay after which the process is killed with SIGKILL. */
function cliRun(cli: string, args: string[], onPhase: (phase: string, pid: number) => number | null): Promise<Exit> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let killed = false;
  let stderr = '';
  const logDir = process.env.CHAOS_LOG_DIR;
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
    if (logDir) appendFileSync(path.join(logDir, 'cli.stderr.log'), d);
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (logDir) appendFileSync(path.join(logDir, 'cli.log'), `${new Date().toISOString()} ${line}\n`);
    let event: { event?: string; phase?: string };
    try {
      event = JSON.parse(line);
    } catch {
      return;
    }
    if (event.event !== 'phase' || !event.phase) return;
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
  const timeout = setTimeout(() => child.kill('SIGKILL'), 180_000);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timeout);
      resolve({ code: killed ? null : code, killed, stderr });
    }),
  );
}

async function nativeAlter(db: ChaosDb, alter: string): Promise<string | null> {
  const session = await db.session();
  try {
    await session.query(`ALTER TABLE ${db.kind === 'mysql' ? `\`${MIRROR}\`` : `"${MIRROR}"`} ${alter}`);
    return null;
  } catch (error) {
    return (error as Error).message.split('\n')[0];
  } finally {
    await session.close();
  }
}

function firstDifference(a: string, b: string): string {
  const x = a.split('\n');
  const y = b.split('\n');
  const i = x.findIndex((line, n) => line !== y[n]);
  const at = i === -1 ? x.length : i;
  return `shadowcut: ${x[at] ?? '(nothing)'} / native: ${y[at] ?? '(nothing)'}`;
}
