// The contenders. Each runs the same ALTER on the freshly seeded table and reports its wall time,
// measured by the bench from start to finish (process start to exit for the external tools).
import { exec, cliPath, lastLines } from './exec.js';
import { COLUMNS, TABLE, mysqlConnect } from './seed.js';
import pg from 'pg';

export type Engine = 'mysql' | 'postgres';

export const MYSQL_ALTER = 'ADD COLUMN note2 VARCHAR(200) NULL, MODIFY qty BIGINT NOT NULL, ADD INDEX (created_at)';
export const PG_ALTER = 'ALTER COLUMN qty TYPE bigint, ADD COLUMN note2 text';
const FLOOR_TABLE = `_${TABLE}_floor`;

export interface ToolContext {
  /** URL of the bench database. */
  url: string;
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
  /** How it is invoked, for the report. */
  describe: string;
  /** The table that has the new schema afterwards. */
  resultTable: string;
  run(ctx: ToolContext): Promise<ToolRun>;
}

const hrMs = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

// ---------------------------------------------------------------------------------------------
// shadowcut (both engines): the built CLI, --json, timed from process start to exit
// ---------------------------------------------------------------------------------------------

function shadowcut(engine: Engine): Tool {
  const table = engine === 'mysql' ? TABLE : `public.${TABLE}`;
  const alter = engine === 'mysql' ? MYSQL_ALTER : PG_ALTER;
  return {
    key: 'shadowcut',
    name: 'shadowcut',
    engine,
    describe: `shadowcut migrate --table ${table} --alter "${alter}" --execute --json (default options)`,
    resultTable: TABLE,
    async run(ctx) {
      const phases: Array<{ phase: string; atS: number }> = [];
      let result: Record<string, unknown> | undefined;
      const t0 = Date.now();
      const r = await exec(process.execPath, [cliPath(), 'migrate', '--url', ctx.url, '--table', table, '--alter', alter, '--execute', '--json', ...ctx.shadowcutArgs], {
        timeoutMs: ctx.timeoutMs,
        onStdoutLine: (line) => {
          if (!line.startsWith('{')) return;
          try {
            const ev = JSON.parse(line) as Record<string, unknown>;
            if (ev.event === 'phase') phases.push({ phase: String(ev.phase), atS: (Date.now() - t0) / 1000 });
            if (ev.event === 'result') result = ev;
          } catch {
            // not one of ours
          }
        },
      });
      const ok = r.code === 0 && !r.timedOut;
      return {
        ok,
        wallMs: r.wallMs,
        error: ok ? undefined : r.timedOut ? `timed out after ${ctx.timeoutMs / 1000} s` : lastLines(r.stderr || r.stdout, 3),
        details: {
          clientCpuS: r.cpuS,
          phases,
          durationMs: result?.durationMs,
          rowsCopied: result?.rowsCopied,
          changesApplied: result?.changesApplied,
          cutoverAttempts: result?.cutoverAttempts,
          cutoverLockedMs: result?.cutoverLockedMs,
          checksumRounds: result?.checksumRounds,
          stderrTail: ok ? undefined : lastLines(r.stderr, 30),
        },
      };
    },
  };
}

/** Dry run (no --execute): exit 0 means shadowcut accepts this URL and table. */
export async function shadowcutDryRun(engine: Engine, url: string): Promise<{ ok: boolean; message: string }> {
  const table = engine === 'mysql' ? TABLE : `public.${TABLE}`;
  const alter = engine === 'mysql' ? MYSQL_ALTER : PG_ALTER;
  const r = await exec(process.execPath, [cliPath(), 'migrate', '--url', url, '--table', table, '--alter', alter], { timeoutMs: 120_000 });
  const firstLine = (r.stderr.trim() || r.stdout.trim()).split('\n')[0] ?? '';
  return { ok: r.code === 0, message: r.code === 0 ? 'ok' : firstLine || `exit ${r.code}` };
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
    `${PT_OSC} --alter "${MYSQL_ALTER}" --execute --no-drop-old-table --recursion-method=none ` +
    `--no-check-replication-filters --no-version-check (defaults otherwise: --chunk-time 0.5, --chunk-size 1000, ` +
    `--max-load Threads_running=25, --critical-load Threads_running=50)`,
  resultTable: TABLE,
  async run(ctx) {
    const u = new URL(ctx.url);
    const db = decodeURIComponent(u.pathname.slice(1));
    const args = [
      '--alter',
      MYSQL_ALTER,
      '--execute',
      // shadowcut keeps the original as _orders_old by default; so does pt-osc with this flag.
      '--no-drop-old-table',
      // The replica exists, but shadowcut is not told about it either: no lag throttling on either side.
      '--recursion-method=none',
      '--no-check-replication-filters',
      '--no-version-check',
      // Everything in the DSN: pt-osc 3.2.1 drops a --port given as an option when it connects.
      `h=${u.hostname},P=${u.port || '3306'},u=${decodeURIComponent(u.username)},p=${decodeURIComponent(u.password)},D=${db},t=${TABLE}`,
    ];
    const r = await exec(PT_OSC, args, { timeoutMs: ctx.timeoutMs });
    const ok = r.code === 0 && !r.timedOut;
    return {
      ok,
      wallMs: r.wallMs,
      error: ok ? undefined : r.timedOut ? `timed out after ${ctx.timeoutMs / 1000} s` : lastLines(r.stderr || r.stdout, 3),
      details: { clientCpuS: r.cpuS, outputTail: lastLines(r.stdout + '\n' + r.stderr, ok ? 8 : 40) },
    };
  },
};

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
  describe: `ALTER TABLE ${TABLE} ${MYSQL_ALTER}, ALGORITHM=COPY (blocks writes for its whole duration)`,
  resultTable: TABLE,
  run: (ctx) => timedMysql(ctx.url, [`ALTER TABLE ${TABLE} ${MYSQL_ALTER}, ALGORITHM=COPY`]),
};

const mysqlFloor: Tool = {
  key: 'floor',
  name: 'floor',
  engine: 'mysql',
  describe:
    `CREATE TABLE ${FLOOR_TABLE} LIKE ${TABLE}; ALTER TABLE ${FLOOR_TABLE} ...; INSERT INTO ${FLOOR_TABLE} SELECT ... FROM ${TABLE} ` +
    `(READ COMMITTED, so it reads without locking; not a migration: it neither follows writes nor swaps tables)`,
  resultTable: FLOOR_TABLE,
  run: (ctx) =>
    timedMysql(ctx.url, [
      'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED',
      `CREATE TABLE ${FLOOR_TABLE} LIKE ${TABLE}`,
      `ALTER TABLE ${FLOOR_TABLE} ${MYSQL_ALTER}`,
      `INSERT INTO ${FLOOR_TABLE} (${COLUMNS.join(', ')}) SELECT ${COLUMNS.join(', ')} FROM ${TABLE}`,
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

const pgBlocking: Tool = {
  key: 'alter',
  name: 'ALTER',
  engine: 'postgres',
  describe: `ALTER TABLE ${TABLE} ${PG_ALTER} (rewrites the table under ACCESS EXCLUSIVE)`,
  resultTable: TABLE,
  run: (ctx) => timedPg(ctx.url, [`ALTER TABLE ${TABLE} ${PG_ALTER}`]),
};

const pgFloor: Tool = {
  key: 'floor',
  name: 'floor',
  engine: 'postgres',
  describe:
    `CREATE TABLE ${FLOOR_TABLE} (LIKE ${TABLE} INCLUDING ALL); ALTER TABLE ${FLOOR_TABLE} ...; INSERT INTO ${FLOOR_TABLE} SELECT ... FROM ${TABLE} ` +
    `(not a migration: it neither follows writes nor swaps tables)`,
  resultTable: FLOOR_TABLE,
  run: (ctx) =>
    timedPg(ctx.url, [
      `CREATE TABLE ${FLOOR_TABLE} (LIKE ${TABLE} INCLUDING ALL)`,
      `ALTER TABLE ${FLOOR_TABLE} ${PG_ALTER}`,
      `INSERT INTO ${FLOOR_TABLE} (${COLUMNS.join(', ')}) SELECT ${COLUMNS.join(', ')} FROM ${TABLE}`,
    ]),
};

export function toolsFor(engine: Engine): Tool[] {
  return engine === 'mysql' ? [shadowcut('mysql'), ptOsc, mysqlBlocking, mysqlFloor] : [shadowcut('postgres'), pgBlocking, pgFloor];
}

/** pt-online-schema-change, installed from the Debian package percona-toolkit when missing. */
export async function ensurePtOsc(log: (msg: string) => void): Promise<{ ok: boolean; version: string }> {
  const probe = async () => {
    try {
      const r = await exec(PT_OSC, ['--version']);
      return r.code === 0 ? r.stdout.trim() : '';
    } catch {
      return '';
    }
  };
  let version = await probe();
  if (version) return { ok: true, version };
  if (process.getuid?.() !== 0) {
    log(`${PT_OSC} is missing and installing percona-toolkit needs root: skipping pt-osc`);
    return { ok: false, version: '' };
  }
  log(`${PT_OSC} is missing: apt-get install -y percona-toolkit`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = await exec('apt-get', ['install', '-y', 'percona-toolkit'], { env, timeoutMs: 15 * 60_000 });
  if (r.code !== 0) {
    await exec('apt-get', ['update'], { env, timeoutMs: 15 * 60_000 });
    r = await exec('apt-get', ['install', '-y', 'percona-toolkit'], { env, timeoutMs: 15 * 60_000 });
  }
  version = await probe();
  if (!version) log(`installing percona-toolkit failed: ${lastLines(r.stderr, 3)}; skipping pt-osc`);
  return { ok: Boolean(version), version };
}
