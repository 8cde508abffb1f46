// The contenders. Each runs the workload's ALTER (pg_repack: a rewrite) on the freshly seeded table
// and reports its wall time, measured by the bench from start to finish (process start to exit for
// the external tools).
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { exec, cliPath, lastLines, type ExecResult } from './exec.js';
import { mysqlConnect } from './seed.js';
import type { Workload } from './workloads.js';

export type Engine = 'mysql' | 'postgres';

export interface ToolContext {
  /** URL of the bench database. */
  url: string;
  workload: Workload;
  /** Extra command-line arguments for shadowcut (--shadowcut-args), e.g. --chunk-time-ms 500. */
  shadowcutArgs: string[];
  timeoutMs: number;
  log: (msg: string) => void;
}

export interface ToolRun {
  ok: boolean;
  wallMs: number;
  error?: string;
  details: Record<string, unknown>;
}

export interface Tool {
  /** What --tools selects it by. */
  key: string;
  name: string;
  engine: Engine;
  /** How it is invoked, for the report (the workload's ALTER is printed once, separately). */
  describe: string;
  /** False for pg_repack, which rewrites the table but cannot apply an ALTER. */
  alters: boolean;
  /** The table that has the result afterwards, given the workload's table. */
  resultTable(table: string): string;
  /** Untimed step on the freshly seeded database, before the servers settle; what it returns goes into the run's details. */
  prepare?(ctx: ToolContext): Promise<Record<string, unknown> | void>;
  run(ctx: ToolContext): Promise<ToolRun>;
}

const hrMs = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const same = (table: string) => table;
const floorTable = (table: string) => `_${table}_floor`;

/** A finished external process as a ToolRun: exit 0 in time is success. */
function processRun(r: ExecResult, ctx: ToolContext, details: Record<string, unknown> = {}): ToolRun {
  const ok = r.code === 0 && !r.timedOut;
  return {
    ok,
    wallMs: r.wallMs,
    error: ok ? undefined : r.timedOut ? `timed out after ${ctx.timeoutMs / 1000} s` : lastLines(r.stderr || r.stdout, 3),
    details: { clientCpuS: r.cpuS, peakRssMiB: r.peakRssMiB, outputTail: lastLines(r.stdout + '\n' + r.stderr, ok ? 8 : 40), ...details },
  };
}

/** Host, port, user, password and database of a URL, for the tools that take them apart. */
function parts(url: string, defaultPort: string) {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: u.port || defaultPort,
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    db: decodeURIComponent(u.pathname.slice(1)),
  };
}

// ---------------------------------------------------------------------------------------------
// shadowcut (both engines): the built CLI, --json, timed from process start to exit
// ---------------------------------------------------------------------------------------------

/** The change source a shadowcut run is told to use (--capture); the plain `shadowcut` row passes none (auto). */
export type Capture = 'stream' | 'trigger';
/**
 * The capture-cost pair (`--capture-cost`): the same migration under the same load, with the change
 * stream and with triggers. Run only when named: they would double the default bench's time.
 */
export const CAPTURE_TOOLS: Record<string, Capture> = { 'shadowcut-stream': 'stream', 'shadowcut-trigger': 'trigger' };

export const captureToolName = (capture: Capture) => `shadowcut --capture ${capture}`;

const qualified = (engine: Engine, w: Workload) => (engine === 'mysql' ? w.table : `public.${w.table}`);
const alterOf = (engine: Engine, w: Workload) => (engine === 'mysql' ? w.mysql.alter : w.postgres.alter);

function shadowcut(engine: Engine, capture?: Capture): Tool {
  const flag = capture ? ['--capture', capture] : [];
  return {
    key: capture ? `shadowcut-${capture}` : 'shadowcut',
    name: capture ? captureToolName(capture) : 'shadowcut',
    engine,
    describe: `shadowcut migrate --force-copy${capture ? ` --capture ${capture}` : ''} --table ${engine === 'mysql' ? '<table>' : 'public.<table>'} --alter "<ALTER>" --execute --json (default options, verification included)`,
    alters: true,
    resultTable: same,
    async prepare(ctx) {
      // The dry run's plan says whether the secondary indexes are built after the copy, which
      // MariaDB's binlog_alter_two_phase decides: the setting's effect on shadowcut, in the report.
      const dry = await shadowcutDryRun(engine, ctx.url, ctx.workload, flag);
      if (!dry.ok) throw new Error(`dry run: ${dry.message}`);
      // What `shadowcut plan` says the run will take, to hold against what it took (report.ts).
      return { plan: dry.plan, planEstimate: await shadowcutPlanEstimate(engine, ctx, flag) };
    },
    async run(ctx) {
      const phases: Array<{ phase: string; atS: number }> = [];
      // Its warnings and notes, timed like the writes' stalls, so a stall can be matched with what the run was doing.
      const events: Array<{ atS: number; event: string; message: string }> = [];
      let result: Record<string, unknown> | undefined;
      let logReads: unknown;
      // What the run really used: capture triggers exist from before the copy to the cut-over (the table has none of its own).
      let capturedBy: Promise<Capture | 'unknown'> | undefined;
      const t0 = Date.now();
      const args = [
        cliPath(),
        'migrate',
        '--force-copy',
        '--url',
        ctx.url,
        '--table',
        qualified(engine, ctx.workload),
        '--alter',
        alterOf(engine, ctx.workload),
        '--execute',
        '--json',
        ...flag,
      ];
      const r = await exec(process.execPath, [...args, ...ctx.shadowcutArgs], {
        timeoutMs: ctx.timeoutMs,
        onStdoutLine: (line) => {
          if (!line.startsWith('{')) return;
          try {
            const ev = JSON.parse(line) as Record<string, unknown>;
            if (ev.event === 'phase') phases.push({ phase: String(ev.phase), atS: (Date.now() - t0) / 1000 });
            if (ev.event === 'warning' || ev.event === 'info')
              events.push({ atS: (Date.now() - t0) / 1000, event: ev.event, message: String(ev.message).slice(0, 200) });
            if (ev.event === 'phase' && ev.phase === 'copy')
              capturedBy ??= captureTriggers(engine, ctx.url, ctx.workload.table).then(
                (n) => (n > 0 ? 'trigger' : 'stream'),
                () => 'unknown' as const,
              );
            if (ev.event === 'result') result = ev;
            // Trigger capture's reads of its log (issue 32): flat over the run, or growing with what a verification keeps.
            if (ev.event === 'info' && ev.logReads) logReads = ev.logReads;
          } catch {
            // not one of ours
          }
        },
      });
      const run = processRun(r, ctx, {
        phases,
        events,
        durationMs: result?.durationMs,
        rowsCopied: result?.rowsCopied,
        changesApplied: result?.changesApplied,
        cutoverAttempts: result?.cutoverAttempts,
        cutoverLockedMs: result?.cutoverLockedMs,
        checksumRounds: result?.checksumRounds,
        captureAsked: capture,
        capturedBy: capturedBy ? await capturedBy : undefined,
        logReads,
      });
      // Its own JSON lines say more than a tail of them.
      run.details.outputTail = run.ok ? undefined : lastLines(r.stderr, 30);
      return run;
    },
  };
}

/** Dry run (no --execute): exit 0 means shadowcut accepts this URL and table; `plan` has its index decision. */
export async function shadowcutDryRun(
  engine: Engine,
  url: string,
  w: Workload,
  extra: string[] = [],
): Promise<{ ok: boolean; message: string; plan: string[] }> {
  const r = await exec(
    process.execPath,
    [cliPath(), 'migrate', '--force-copy', '--url', url, '--table', qualified(engine, w), '--alter', alterOf(engine, w), ...extra],
    {
      timeoutMs: 120_000,
    },
  );
  const firstLine = (r.stderr.trim() || r.stdout.trim()).split('\n')[0] ?? '';
  const plan = r.stdout.split('\n').filter((l) => l.startsWith('secondary indexes') || l.startsWith('changes:'));
  return { ok: r.code === 0, message: r.code === 0 ? 'ok' : firstLine || `exit ${r.code}`, plan };
}

/** The duration `shadowcut plan --force-copy` gives for the run, in ms by part, or why there is none. */
export async function shadowcutPlanEstimate(engine: Engine, ctx: ToolContext, extra: string[]): Promise<Record<string, number> | { error: string }> {
  // The plan copies its sample in chunks of the run's size: the one run option it takes.
  const chunk = ctx.shadowcutArgs.indexOf('--chunk-time-ms');
  const chunkArgs = chunk >= 0 ? ctx.shadowcutArgs.slice(chunk, chunk + 2) : [];
  const args = ['plan', '--force-copy', '--json', '--url', ctx.url, '--table', qualified(engine, ctx.workload), '--alter', alterOf(engine, ctx.workload)];
  const r = await exec(process.execPath, [cliPath(), ...args, ...extra, ...chunkArgs], { timeoutMs: 600_000 });
  const estimate =
    r.code === 0 ? (JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { detail?: { estimate?: Record<string, unknown> } }).detail?.estimate : null;
  if (!estimate) return { error: (r.stderr.trim() || `exit ${r.code}`).split('\n')[0] };
  const { totalMs, copyMs, indexMs, verifyMs, fixedMs, sample } = estimate as Record<string, number> & { sample: { rows: number } };
  return { totalMs, copyMs, indexMs, verifyMs, fixedMs, sampleRows: sample.rows };
}

/** Triggers on the bench's table, all of them shadowcut's: the workloads' tables have none of their own. */
async function captureTriggers(engine: Engine, url: string, table: string): Promise<number> {
  if (engine === 'mysql') {
    const c = await mysqlConnect(url);
    try {
      const [rows] = await c.query('SELECT COUNT(*) AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = ?', [
        table,
      ]);
      return Number((rows as Array<{ n: number }>)[0].n);
    } finally {
      await c.end();
    }
  }
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ n: string }>('SELECT count(*) AS n FROM pg_trigger WHERE tgrelid = to_regclass($1) AND NOT tgisinternal', [`public.${table}`]);
    return Number(r.rows[0].n);
  } finally {
    await c.end();
  }
}

// ---------------------------------------------------------------------------------------------
// MariaDB/MySQL
// ---------------------------------------------------------------------------------------------

export const PT_OSC = 'pt-online-schema-change';

const ptOsc: Tool = {
  key: 'pt-osc',
  name: 'pt-osc',
  engine: 'mysql',
  describe:
    `${PT_OSC} --alter "<ALTER>" --execute --no-drop-old-table --recursion-method=none ` +
    `--no-check-replication-filters --no-version-check (defaults otherwise: --chunk-time 0.5, --chunk-size 1000, ` +
    `--max-load Threads_running=25, --critical-load Threads_running=50)`,
  alters: true,
  resultTable: same,
  async run(ctx) {
    const c = parts(ctx.url, '3306');
    const args = [
      '--alter',
      ctx.workload.mysql.alter,
      '--execute',
      // shadowcut keeps the original by default; so does pt-osc with this flag.
      '--no-drop-old-table',
      // The replica exists, but shadowcut is not told about it either: no lag throttling on either side.
      '--recursion-method=none',
      '--no-check-replication-filters',
      '--no-version-check',
      // Everything in the DSN: pt-osc 3.2.1 drops a --port given as an option when it connects.
      `h=${c.host},P=${c.port},u=${c.user},p=${c.password},D=${c.db},t=${ctx.workload.table}`,
    ];
    return processRun(await exec(PT_OSC, args, { timeoutMs: ctx.timeoutMs }), ctx);
  },
};

// gh-ost is not packaged for Debian: it is benched only when GHOST_BIN names a binary.
function ghOst(bin: string): Tool {
  const flags = [
    // Reads the primary's binlog itself, as shadowcut does (the replica is not asked about lag).
    '--allow-on-master',
    // The servers already log ROW with FULL images: no need to switch the format.
    '--assume-rbr',
    // Keep the original (_<table>_del), as shadowcut and pt-osc here; a leftover from a failed run goes.
    '--ok-to-drop-table=false',
    '--initially-drop-ghost-table',
    '--initially-drop-old-table',
    '--initially-drop-socket-file',
  ];
  return {
    key: 'gh-ost',
    name: 'gh-ost',
    engine: 'mysql',
    describe: `${bin} --alter "<ALTER>" ${flags.join(' ')} --execute (defaults otherwise: --chunk-size 1000, no --max-load)`,
    alters: true,
    resultTable: same,
    async run(ctx) {
      const c = parts(ctx.url, '3306');
      const args = [
        `--host=${c.host}`,
        `--port=${c.port}`,
        `--user=${c.user}`,
        `--password=${c.password}`,
        `--database=${c.db}`,
        `--table=${ctx.workload.table}`,
        `--alter=${ctx.workload.mysql.alter}`,
        ...flags,
        // Its own socket, not /tmp/gh-ost.<db>.<table>.sock shared with any other gh-ost on the machine.
        `--serve-socket-file=${join(tmpdir(), `shadowcut-bench-gh-ost-${process.pid}.sock`)}`,
        '--execute',
      ];
      return processRun(await exec(bin, args, { timeoutMs: ctx.timeoutMs }), ctx);
    },
  };
}

async function timedMysql(url: string, statements: string[]): Promise<ToolRun> {
  const conn = await mysqlConnect(url);
  const t0 = process.hrtime.bigint();
  try {
    for (const sql of statements) await conn.query(sql);
    return { ok: true, wallMs: hrMs(t0), details: {} };
  } catch (e) {
    return { ok: false, wallMs: hrMs(t0), error: (e as Error).message, details: {} };
  } finally {
    await conn.end().catch(() => {});
  }
}

const mysqlBlocking: Tool = {
  key: 'alter',
  name: 'ALTER COPY',
  engine: 'mysql',
  describe: `ALTER TABLE <table> <ALTER>, ALGORITHM=COPY (blocks writes for its whole duration)`,
  alters: true,
  resultTable: same,
  run: (ctx) => timedMysql(ctx.url, [`ALTER TABLE ${ctx.workload.table} ${ctx.workload.mysql.alter}, ALGORITHM=COPY`]),
};

const mysqlFloor: Tool = {
  key: 'floor',
  name: 'floor',
  engine: 'mysql',
  describe:
    `CREATE TABLE _<table>_floor LIKE <table>; ALTER TABLE _<table>_floor <ALTER>; INSERT INTO _<table>_floor SELECT ... FROM <table> ` +
    `(READ COMMITTED, so it reads without locking; not a migration: it neither follows writes nor swaps tables)`,
  alters: true,
  resultTable: floorTable,
  run: ({ url, workload: w }) =>
    timedMysql(url, [
      'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED',
      `CREATE TABLE ${floorTable(w.table)} LIKE ${w.table}`,
      `ALTER TABLE ${floorTable(w.table)} ${w.mysql.alter}`,
      `INSERT INTO ${floorTable(w.table)} (${w.columns.join(', ')}) SELECT ${w.columns.join(', ')} FROM ${w.table}`,
    ]),
};

// ---------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------

async function timedPg(url: string, statements: string[]): Promise<ToolRun> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const t0 = process.hrtime.bigint();
  try {
    for (const sql of statements) await client.query(sql);
    return { ok: true, wallMs: hrMs(t0), details: {} };
  } catch (e) {
    return { ok: false, wallMs: hrMs(t0), error: (e as Error).message, details: {} };
  } finally {
    await client.end().catch(() => {});
  }
}

// pg_repack cannot apply an ALTER: its figure is the online rewrite of the same table (log table
// and trigger, copy, index build, replay of the log, catalog swap), which is the part of
// shadowcut's work that costs time. --no-order: no sort, the default for a table without a
// clustered index anyway (online VACUUM FULL rather than online CLUSTER).
function pgRepack(bin: string): Tool {
  return {
    key: 'pg_repack',
    name: 'pg_repack',
    engine: 'postgres',
    describe: `${bin} --table public.<table> --no-order (rewrites the table online; the ALTER is not applied; drops the original at the end; ANALYZE after)`,
    alters: false,
    resultTable: same,
    async prepare(ctx) {
      // Dropped with the bench database before every seed; the extension's functions do the work.
      const r = await timedPg(ctx.url, ['CREATE EXTENSION IF NOT EXISTS pg_repack']);
      if (!r.ok) throw new Error(`CREATE EXTENSION pg_repack: ${r.error}`);
    },
    async run(ctx) {
      const c = parts(ctx.url, '5432');
      const args = [
        '--host',
        c.host,
        '--port',
        c.port,
        '--username',
        c.user || 'postgres',
        '--dbname',
        c.db,
        '--table',
        `public.${ctx.workload.table}`,
        '--no-order',
      ];
      const env = c.password ? { ...process.env, PGPASSWORD: c.password } : process.env;
      return processRun(await exec(bin, args, { env, timeoutMs: ctx.timeoutMs }), ctx);
    },
  };
}

const pgBlocking: Tool = {
  key: 'alter',
  name: 'ALTER',
  engine: 'postgres',
  describe: `ALTER TABLE <table> <ALTER> (rewrites the table under ACCESS EXCLUSIVE)`,
  alters: true,
  resultTable: same,
  run: (ctx) => timedPg(ctx.url, [`ALTER TABLE ${ctx.workload.table} ${ctx.workload.postgres.alter}`]),
};

const pgFloor: Tool = {
  key: 'floor',
  name: 'floor',
  engine: 'postgres',
  describe:
    `CREATE TABLE _<table>_floor (LIKE <table> INCLUDING ALL); ALTER TABLE _<table>_floor <ALTER>; INSERT INTO _<table>_floor SELECT ... FROM <table> ` +
    `(not a migration: it neither follows writes nor swaps tables)`,
  alters: true,
  resultTable: floorTable,
  run: ({ url, workload: w }) =>
    timedPg(url, [
      `CREATE TABLE ${floorTable(w.table)} (LIKE ${w.table} INCLUDING ALL)`,
      `ALTER TABLE ${floorTable(w.table)} ${w.postgres.alter}`,
      `INSERT INTO ${floorTable(w.table)} (${w.columns.join(', ')}) SELECT ${w.columns.join(', ')} FROM ${w.table}`,
    ]),
};

// ---------------------------------------------------------------------------------------------
// Which tools run
// ---------------------------------------------------------------------------------------------

/** The peers the ratio column and the targets compare shadowcut with. */
export const PEERS: Record<Engine, string[]> = { mysql: ['pt-osc', 'gh-ost'], postgres: ['pg_repack'] };
export const REFERENCE: Record<Engine, string> = { mysql: 'pt-osc', postgres: 'pg_repack' };

/**
 * The tools for an engine, as selected by --tools (null: all), with the external ones installed
 * or skipped with one line. `pgMajor`: the PostgreSQL server's major version (pg_repack's package).
 */
export async function toolsFor(engine: Engine, selected: string[] | null, pgMajor: number | undefined, log: (msg: string) => void): Promise<Tool[]> {
  const want = (key: string) => !selected || selected.includes(key);
  const out: Tool[] = [shadowcut(engine), ...Object.values(CAPTURE_TOOLS).map((c) => shadowcut(engine, c))];
  if (engine === 'mysql') {
    if (want('pt-osc')) {
      const version = await ensureInstalled(PT_OSC, 'percona-toolkit', 'pt-osc', log);
      if (version) out.push(ptOsc);
    }
    if (want('gh-ost')) {
      const bin = process.env.GHOST_BIN;
      if (!bin) log('gh-ost: skipped (set GHOST_BIN to a gh-ost binary to bench it)');
      else if (!(await versionOf(bin))) log(`gh-ost: skipped (${bin} --version failed)`);
      else out.push(ghOst(bin));
    }
    out.push(mysqlBlocking, mysqlFloor);
  } else {
    if (want('pg_repack')) {
      // The client must match the server's major version, and the extension its own version.
      const versioned = `/usr/lib/postgresql/${pgMajor ?? 0}/bin/pg_repack`;
      const bin = existsSync(versioned) ? versioned : 'pg_repack';
      const version = await ensureInstalled(bin, `postgresql-${pgMajor ?? 15}-repack`, 'pg_repack', log);
      if (version) out.push(pgRepack(existsSync(versioned) ? versioned : bin));
    }
    out.push(pgBlocking, pgFloor);
  }
  return out.filter((t) => (t.key in CAPTURE_TOOLS ? selected?.includes(t.key) : want(t.key)));
}

async function versionOf(cmd: string): Promise<string> {
  try {
    const r = await exec(cmd, ['--version']);
    return r.code === 0 ? (r.stdout.trim() || r.stderr.trim()).split('\n')[0] : '';
  } catch {
    return ''; // not there at all
  }
}

/** `cmd --version`, after apt-get install of `pkg` when it is missing (as root); '' if still missing. */
async function ensureInstalled(cmd: string, pkg: string, name: string, log: (msg: string) => void): Promise<string> {
  let version = await versionOf(cmd);
  if (!version) {
    if (process.getuid?.() !== 0) {
      log(`${cmd} is missing and installing ${pkg} needs root: skipping ${name}`);
      return '';
    }
    log(`${cmd} is missing: apt-get install -y ${pkg}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let r = await exec('apt-get', ['install', '-y', pkg], { env, timeoutMs: 15 * 60_000 });
    if (r.code !== 0) {
      await exec('apt-get', ['update'], { env, timeoutMs: 15 * 60_000 });
      r = await exec('apt-get', ['install', '-y', pkg], { env, timeoutMs: 15 * 60_000 });
    }
    version = await versionOf(cmd);
    if (!version) log(`installing ${pkg} failed: ${lastLines(r.stderr, 3)}; skipping ${name}`);
  }
  if (version) log(version);
  return version;
}
