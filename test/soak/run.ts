/**
 * The parity issue's scenario, repeated: a 100k-row, 15-column table under ~200 write transactions
 * a second (inserts, updates, deletes, some multi-row, some rolled back), migrated by the CLI, half
 * of the runs killed with SIGKILL at a random moment and resumed; after each run the new table must
 * equal a mirror that took the same writes in the same transactions and the native ALTER.
 *
 *   npm run test:soak -- [--engine mysql|postgres|all] [--runs N] [--rows N] [--rate N] [--servers normal|plain]
 *                        [--shape plain|fk-parent|partitioned] [--revert]
 *
 * `--shape fk-parent` (MySQL): the table is the parent of two children's foreign keys (one ON DELETE
 * CASCADE, one RESTRICT), the writers touch the children too, and the children are compared as well.
 *
 * Servers: SHADOWCUT_MYSQL_URL / SHADOWCUT_PG_URL, or the repository's private servers
 * (scripts/servers.sh), started and stopped here when they are not up. `--servers plain` runs on the
 * servers as they come (SHADOWCUT_MYSQL_PLAIN_URL / SHADOWCUT_PG_PLAIN_URL: no binlog,
 * wal_level=replica, no replication privileges) with the same command line, no --capture: migrate's
 * `auto` must choose triggers there, and each run fails unless its plan says triggers and the
 * triggers are on the table during the copy (the stream on the normal servers), so a silent fallback
 * is caught. `--shape partitioned` (PostgreSQL): the table is range-partitioned with a default
 * partition, and writers move rows between partitions; each row must be in the mirror's partition.
 *
 * `--revert`: each run takes a revert window (the ALTER without its DROP COLUMN, which could not come
 * back), lets the writers write to the new table for a moment once the window is open, and reverts;
 * the mirror never takes the ALTER, and the table must equal it. The killed runs are killed in the
 * way back instead: alternately in the window and in the revert's swap, then resumed and reverted.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { MIRROR, mysqlSoak, postgresSoak, TABLE, transaction, type Shape, type SoakDb } from './tables.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const CLI = path.join(root, 'dist/bin/shadowcut.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Args {
  engines: ('mysql' | 'postgres')[];
  runs: number;
  rows: number;
  rate: number;
  servers: 'normal' | 'plain';
  shape: Shape;
  revert: boolean;
}

type Capture = 'stream' | 'trigger';

function parseArgs(argv: string[]): Args {
  const value = (name: string, fallback: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] ? argv[i + 1] : fallback;
  };
  const engine = value('engine', 'all');
  if (!['mysql', 'postgres', 'all'].includes(engine)) throw new Error('--engine is mysql, postgres or all');
  const servers = value('servers', 'normal');
  if (servers !== 'normal' && servers !== 'plain') throw new Error('--servers is normal or plain');
  const shape = value('shape', 'plain');
  if (shape !== 'plain' && shape !== 'fk-parent' && shape !== 'partitioned') throw new Error('--shape is plain, fk-parent or partitioned');
  if (shape === 'fk-parent' && engine !== 'mysql') throw new Error('--shape fk-parent is for --engine mysql');
  if (shape === 'partitioned' && engine !== 'postgres') throw new Error('--shape partitioned is for --engine postgres');
  return {
    engines: engine === 'all' ? ['mysql', 'postgres'] : [engine as 'mysql' | 'postgres'],
    runs: Number(value('runs', '20')),
    rows: Number(value('rows', '100000')),
    rate: Number(value('rate', '200')),
    servers,
    shape,
    revert: argv.includes('--revert'),
  };
}

/** Writers at a paced total rate; every transaction goes to the table and the mirror alike. */
class Workload {
  private running = true;
  private loops: Promise<void>[] = [];
  private next: number;
  transactions = 0;
  errors = 0;
  lastError = '';

  constructor(
    private readonly db: SoakDb,
    rows: number,
    private readonly rate: number,
    private readonly shape: Shape,
    private readonly writers = 4,
  ) {
    this.next = rows + 1;
  }

  start(): void {
    for (let w = 0; w < this.writers; w++) this.loops.push(this.loop());
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async loop(): Promise<void> {
    const writer = await this.db.writer();
    const interval = (1000 * this.writers) / this.rate;
    try {
      while (this.running) {
        const began = Date.now();
        const statements = transaction(
          () => this.next++,
          () => this.next - 1,
          Math.random,
          this.shape,
        );
        // One transaction in twenty rolls back: neither table may keep any of it.
        await writer.run(statements, Math.random() < 0.05).then(
          () => this.transactions++,
          (error: Error) => {
            this.errors++;
            this.lastError = error.message;
          },
        );
        await sleep(Math.max(0, interval - (Date.now() - began)));
      }
    } finally {
      await writer.close();
    }
  }
}

/**
 * Runs the CLI; with `kill`, SIGKILLs it that long after it enters that phase; `onPhase` is called
 * at each phase it enters. Resolves with the exit code and the last stderr lines.
 */
function migrate(
  url: string,
  alter: string,
  extra: string[],
  kill: { phase: string; afterMs: number } | null,
  onPhase: (phase: string) => void = () => {},
): Promise<{ code: number | null; killed: boolean; stderr: string; window: string | null }> {
  const child = spawn(process.execPath, [CLI, 'migrate', '--force-copy', '--url', url, '--table', TABLE, '--alter', alter, '--execute', '--json', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let killed = false;
  let stderr = '';
  // How the run's revert window ended, from its result line.
  let window: string | null = null;
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      const event = JSON.parse(line) as { event?: string; phase?: string; revertWindow?: { outcome: string } | null };
      if (event.event === 'result') window = event.revertWindow?.outcome ?? null;
      if (event.event !== 'phase' || !event.phase) return;
      onPhase(event.phase);
      if (kill?.phase === event.phase && !killed) {
        killed = true;
        setTimeout(() => child.kill('SIGKILL'), kill.afterMs);
      }
    } catch {
      // not JSON
    }
  });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, killed, stderr, window })));
}

/** Why a run failed: shadowcut's own line, or (a crash) the first lines of its stack. */
function failure(stderr: string): string {
  const lines = stderr.trim().split('\n');
  const own = lines.find((l) => l.startsWith('shadowcut: '));
  const stack = lines.findIndex((l) => /^\s+at /.test(l));
  const where =
    stack >= 0
      ? lines
          .slice(stack, stack + 4)
          .map((l) => l.trim())
          .join(' | ')
      : '';
  return [own ?? (stack > 0 ? lines[stack - 1] : lines.pop()), where].filter(Boolean).join(' | ');
}

interface Outcome {
  run: number;
  killed: boolean;
  /** The change source seen when the copy started: capture triggers on the table, or none (the stream); null when not seen. */
  captured: Capture | null;
  exit: number | null;
  differences: number;
  note: string;
  seconds: number;
}

/** Asks the run in its revert window to swap back, once the writers have written to the new table for a while. */
function revertSoon(phase: string): void {
  if (phase !== 'revert window') return;
  setTimeout(() => spawn(process.execPath, [CLI, 'revert', '--table', TABLE], { stdio: 'ignore' }), 1500);
}

/** Where a killed run dies: in the copy, or with --revert in the way back (the window, or the revert's swap). */
function killPoint(args: Args, run: number): { phase: string; afterMs: number } | null {
  if (run % 2 === 0) return null;
  if (!args.revert) return { phase: 'copy', afterMs: 50 + Math.floor(Math.random() * 750) };
  return run % 4 === 1 ? { phase: 'revert window', afterMs: Math.floor(Math.random() * 2500) } : { phase: 'revert', afterMs: Math.floor(Math.random() * 200) };
}

async function soakRun(db: SoakDb, url: string, args: Args, run: number): Promise<Outcome> {
  await db.seed(args.rows);
  let seen: Promise<Capture | null> | null = null;
  // Trigger capture creates its triggers before the copy and removes them at the cut-over.
  const look = (phase: string) => {
    if (phase !== 'copy') return;
    seen ??= db.triggers(TABLE).then(
      (n) => (n > 0 ? 'trigger' : 'stream'),
      () => null,
    );
  };
  const alter = args.revert ? db.revertibleAlter : db.alter;
  const window = args.revert ? ['--revert-window', '10m'] : [];
  const load = new Workload(db, args.rows, args.rate, args.shape);
  load.start();
  const began = Date.now();
  const kill = killPoint(args, run);
  let note = '';
  let exit: number | null;
  let killed = false;
  try {
    await sleep(500);
    // Killed somewhere in the copy, the catch-up or the verification: a 100k-row run takes about a
    // second on PostgreSQL and a few on MariaDB, so the kill comes early enough to land in it.
    const first = await migrate(url, alter, window, kill, (phase) => {
      look(phase);
      // A run killed in the window is killed before its revert; one killed in the revert must be asked for it.
      if (args.revert && kill?.phase !== 'revert window') revertSoon(phase);
    });
    exit = first.code;
    killed = first.killed && first.code === null;
    let last = first;
    if (killed) {
      last = await migrate(url, alter, ['--resume', ...window], null, args.revert ? revertSoon : () => {});
      exit = last.code;
    }
    if (exit !== 0) note = failure(last.stderr);
    else if (args.revert && last.window !== 'reverted') [exit, note] = [-1, `the run ended without reverting (${last.window ?? 'no window'})`];
    await sleep(500); // writes go on into the new table
  } finally {
    await load.stop();
  }
  const seconds = (Date.now() - began) / 1000;
  const captured = seen ? await (seen as Promise<Capture | null>) : null;
  if (exit !== 0) return { run, killed, captured, exit, differences: -1, note, seconds };
  // Reverted: the table is back to the mirror's schema, with every write made to the new table meanwhile.
  if (!args.revert) await db.alterMirror();
  const differences = await db.differences(TABLE, MIRROR);
  if (differences)
    note = `extra ids in the new table: ${(await db.extraIds(TABLE, MIRROR)).join(', ') || 'none'}; missing: ${(await db.extraIds(MIRROR, TABLE)).join(', ') || 'none'}`;
  note ||= `${load.transactions} transactions during the run (${load.errors} failed${load.lastError ? `: ${load.lastError}` : ''})`;
  return { run, killed, captured, exit, differences, note, seconds };
}

interface Urls {
  mysql: string;
  postgres: string;
  mysqlPlain?: string;
  postgresPlain?: string;
}

function serverUrls(): Urls & { stop: () => void } {
  const env = process.env;
  if (env.SHADOWCUT_MYSQL_URL && env.SHADOWCUT_PG_URL) {
    return {
      mysql: env.SHADOWCUT_MYSQL_URL,
      postgres: env.SHADOWCUT_PG_URL,
      mysqlPlain: env.SHADOWCUT_MYSQL_PLAIN_URL,
      postgresPlain: env.SHADOWCUT_PG_PLAIN_URL,
      stop: () => {},
    };
  }
  const script = path.join(root, 'scripts/servers.sh');
  const up = spawnSync('bash', [script, 'env'], { stdio: 'ignore' }).status === 0;
  if (!up && spawnSync('bash', [script, 'up'], { stdio: ['ignore', 'ignore', 'inherit'] }).status !== 0) {
    throw new Error('the private servers did not start (see above)');
  }
  const dir = process.env.SHADOWCUT_SERVERS_DIR ?? path.join(root, '.servers');
  const urls = JSON.parse(readFileSync(path.join(dir, 'servers.json'), 'utf8')) as Record<string, string>;
  return {
    mysql: urls.mysqlUrl,
    postgres: urls.pgUrl,
    mysqlPlain: urls.mysqlPlainUrl,
    postgresPlain: urls.pgPlainUrl,
    stop: () => (up ? undefined : void spawnSync('bash', [script, 'down'], { stdio: 'inherit' })),
  };
}

function urlOf(urls: Urls, kind: 'mysql' | 'postgres', servers: Args['servers']): string {
  if (servers === 'normal') return urls[kind];
  const url = kind === 'mysql' ? urls.mysqlPlain : urls.postgresPlain;
  if (!url) throw new Error(`no plain ${kind} server: set SHADOWCUT_${kind === 'mysql' ? 'MYSQL' : 'PG'}_PLAIN_URL or use scripts/servers.sh`);
  return url;
}

/** The change source migrate's plan chooses with no --capture, and why. */
function plannedCapture(url: string, alter: string): { kind: Capture | null; why: string } {
  const out = spawnSync(process.execPath, [CLI, 'plan', '--url', url, '--table', TABLE, '--alter', alter, '--json'], { encoding: 'utf8' });
  try {
    const plan = JSON.parse(out.stdout) as { detail?: { capture?: { kind: Capture; why: string } | null } };
    return plan.detail?.capture ?? { kind: null, why: 'the plan names no change source' };
  } catch {
    return { kind: null, why: `plan failed: ${out.stderr.trim().split('\n').pop() ?? `exit ${out.status}`}` };
  }
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const servers = serverUrls();
  let failures = 0;
  try {
    for (const kind of args.engines) {
      const url = urlOf(servers, kind, args.servers);
      // Where the stream is (the normal servers), auto must take it; where it is not, triggers.
      const expected: Capture = args.servers === 'plain' ? 'trigger' : 'stream';
      const db = kind === 'mysql' ? mysqlSoak(url, args.shape) : postgresSoak(url, args.shape);
      const outcomes: Outcome[] = [];
      try {
        await db.seed(1000);
        const planned = plannedCapture(url, db.alter);
        console.log(`${kind} (${args.servers} servers): the plan's change source: ${planned.kind ?? 'none'} (${planned.why})`);
        if (planned.kind !== expected) throw new Error(`on the ${args.servers} servers the plan must choose ${expected}, not ${planned.kind ?? 'none'}`);
        for (let run = 1; run <= args.runs; run++) {
          const o = await soakRun(db, url, args, run);
          outcomes.push(o);
          console.log(
            `${kind} run ${run}${o.killed ? ' (killed, resumed)' : ''}: ${verdict(o, expected)} in ${o.seconds.toFixed(1)} s, captured by ${o.captured ?? '?'}; ${o.note}`,
          );
        }
        await db.drop(TABLE, MIRROR);
      } finally {
        await db.close();
      }
      const equal = outcomes.filter((o) => verdict(o, expected) === 'equal');
      const killed = outcomes.filter((o) => o.killed);
      failures += outcomes.length - equal.length;
      console.log(
        `${kind}: ${equal.length} of ${outcomes.length} runs equal to the mirror, captured by ${expected} (${killed.filter((o) => equal.includes(o)).length} of ${killed.length} killed and resumed)`,
      );
    }
  } finally {
    servers.stop();
  }
  return failures ? 1 : 0;
}

function verdict(o: Outcome, expected: Capture): string {
  if (o.captured !== expected) return `WRONG SOURCE (${o.captured ?? 'not seen: no copy, or the query failed'}, not ${expected})`;
  if (o.exit !== 0) return `FAILED (exit ${o.exit})`;
  return o.differences ? `DIFFERS (${o.differences} rows)` : 'equal';
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(`soak: ${error.message}`);
    process.exit(2);
  },
);
