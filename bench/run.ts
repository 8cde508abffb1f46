// npm run bench -- [--workload sbtest] [--rows N] [--engine mysql|postgres|all] [--settings both] [--quick] [...];
// see bench/README.md.
//
// For each engine: seed a fresh table, measure the write load without any migration (baseline),
// then for every round, MariaDB setting (binlog_alter_two_phase OFF / ON), tool and mode (idle on
// the --workload table, under load on the --load-workload table) reseed, let the servers settle,
// run the tool and time it, with the load generator recording write latency in load mode.
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { exitOnServersUnavailable } from '../scripts/servers-error.js';
import { cliPath, killChildren, sleep } from './exec.js';
import { startLoad, type LoadStats } from './load.js';
import { benchPage } from './page.js';
import { formatReport, targetsFor, writeReport, type BenchReport, type EngineReport, type Mode, type RunResult, type Setting } from './report.js';
import {
  BENCH_DB,
  inspectMysql,
  inspectPostgres,
  mysqlConnect,
  seedMysql,
  seedPostgres,
  settleGalera,
  settleMysql,
  settlePostgres,
  type TableState,
} from './seed.js';
import { benchCitus } from './citus.js';
import { DurabilityMismatch, sittingLines, startBytes, takeSitting, type BytesWritten, type Durability, type Sitting } from './durability.js';
import { serversToRead, startGaleraServers, startServers, withDatabase, type Servers } from './servers.js';
import { CAPTURE_TOOLS, PEERS, REFERENCE, shadowcutDryRun, toolsFor, type Engine, type ToolRun } from './tools.js';
import { WORKLOADS, workload, type Workload, type WorkloadName } from './workloads.js';
import pg from 'pg';

const USAGE = `usage: npm run bench -- [options]
  --workload W             table of the idle runs: sbtest (default), orders or wide
  --rows N                 rows in it (default 1000000; 100000 with --quick)
  --load-workload W        table of the load runs and the baseline (default wide: 15 columns, mixed types)
  --load-rows N            rows in it (default 100000)
  --engine E               mysql (default), postgres or all
  --settings S             MariaDB binlog_alter_two_phase for the runs: default (OFF), two-phase (ON) or both (default);
                           set with SET GLOBAL on the primary and put back afterwards
  --quick                  small and short: 100000 rows, 5 s baseline, 1 s settle
  --tools LIST             comma-separated subset of shadowcut,pt-osc,gh-ost,pg_repack,alter,floor (default: all
                           for the engine; gh-ost only with GHOST_BIN=<path to a gh-ost binary>); also
                           shadowcut-stream and shadowcut-trigger (--capture stream / trigger), only when named
  --modes LIST             idle,load (default both)
  --load-rate N            application writes per second, all connections together (default 200)
  --load-connections N     application connections (default 4)
  --baseline-seconds N     how long to measure the load without a migration (default 20)
  --settle-seconds N       pause after seeding and replica catch-up, before each run (default 5)
  --timeout-seconds N      give up on one tool run after this long (default 3600)
  --repeat N               run every tool and mode N times, in rounds; targets use the medians (default 1)
  --shadowcut-args="..."   extra arguments for shadowcut migrate, e.g. --shadowcut-args="--chunk-time-ms 500"
  --capture-cost           trigger capture's cost to the writes instead of the comparison with the other tools:
                           shadowcut with --capture stream and with --capture trigger, under load only
                           (same as --tools shadowcut-stream,shadowcut-trigger --modes load)
  --servers S              normal (default: a primary with a replica) or galera (MariaDB only: a three-node
                           Galera cluster; the tools run on node 1, the load writes on the other nodes)
                           or citus (a Citus cluster of its own, coordinator + 2 workers: shadowcut against
                           Citus's own ALTER TABLE on sbtest distributed over 32 shards, under --load-rate)
  --relaxed                servers whose commits do not wait for the disk (the tests'), in a state dir of their
                           own; every page of the result says so. Default: durable servers, as DBAs run them
Servers: SHADOWCUT_MYSQL_URL / SHADOWCUT_MYSQL_REPLICA_URL / SHADOWCUT_PG_URL / SHADOWCUT_PG_STANDBY_URL
if set, else private ones via scripts/servers.sh (state dir: $SHADOWCUT_SERVERS_DIR or a temp dir), read
back before the runs and refused when they are not as durable as asked;
with --servers galera, SHADOWCUT_GALERA_URLS if set, else scripts/servers.sh galera-up.`;

interface Options {
  workload: WorkloadName;
  rows: number;
  loadWorkload: WorkloadName;
  loadRows: number;
  engines: Engine[];
  settings: Setting[];
  tools: string[] | null;
  modes: Mode[];
  loadRate: number;
  loadConnections: number;
  baselineSeconds: number;
  settleSeconds: number;
  timeoutSeconds: number;
  repeat: number;
  shadowcutArgs: string[];
  servers: 'normal' | 'galera' | 'citus';
  relaxed: boolean;
}

function parseCli(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      workload: { type: 'string', default: 'sbtest' },
      rows: { type: 'string' },
      'load-workload': { type: 'string', default: 'wide' },
      'load-rows': { type: 'string' },
      engine: { type: 'string', default: 'mysql' },
      settings: { type: 'string', default: 'both' },
      quick: { type: 'boolean', default: false },
      tools: { type: 'string' },
      modes: { type: 'string', default: 'idle,load' },
      'load-rate': { type: 'string', default: '200' },
      'load-connections': { type: 'string', default: '4' },
      'baseline-seconds': { type: 'string' },
      'settle-seconds': { type: 'string' },
      'timeout-seconds': { type: 'string', default: '3600' },
      repeat: { type: 'string', default: '1' },
      'shadowcut-args': { type: 'string', default: '' },
      'capture-cost': { type: 'boolean', default: false },
      servers: { type: 'string', default: 'normal' },
      relaxed: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
}

function parseOptions(argv: string[]): Options {
  let parsed;
  try {
    parsed = parseCli(argv);
  } catch (e) {
    usage((e as Error).message.split('\n')[0]);
  }
  const { values } = parsed;
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const num = (name: string, v: string | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v.replace(/_/g, ''));
    if (!Number.isFinite(n) || n <= 0) usage(`--${name} must be a positive number (got "${v}")`);
    return n;
  };
  const quick = values.quick ?? false;
  const engineArg = (values.engine ?? 'mysql').toLowerCase();
  const engines: Engine[] =
    engineArg === 'all'
      ? ['mysql', 'postgres']
      : engineArg === 'mysql' || engineArg === 'mariadb'
        ? ['mysql']
        : engineArg === 'postgres' || engineArg === 'pg'
          ? ['postgres']
          : usage(`--engine must be mysql, postgres or all (got "${engineArg}")`);
  const captureCost = values['capture-cost'] ?? false;
  const modes = captureCost ? ['load'] : (values.modes ?? 'idle,load').split(',').map((m) => m.trim());
  for (const m of modes) if (m !== 'idle' && m !== 'load') usage(`--modes takes idle and/or load (got "${m}")`);
  const workloadArg = (name: string, v: string | undefined): WorkloadName =>
    WORKLOADS.includes(v as WorkloadName) ? (v as WorkloadName) : usage(`--${name} must be one of ${WORKLOADS.join(', ')} (got "${v}")`);
  const settingsArg = values.settings ?? 'both';
  const settings: Setting[] =
    settingsArg === 'both'
      ? ['default', 'two-phase']
      : settingsArg === 'default' || settingsArg === 'two-phase'
        ? [settingsArg]
        : usage(`--settings must be default, two-phase or both (got "${settingsArg}")`);
  const serversArg = values.servers ?? 'normal';
  if (serversArg !== 'normal' && serversArg !== 'galera' && serversArg !== 'citus') usage(`--servers must be normal, galera or citus (got "${serversArg}")`);
  if (serversArg === 'galera' && engines.some((e) => e !== 'mysql')) usage('--servers galera is for --engine mysql');
  return {
    servers: serversArg,
    relaxed: values.relaxed ?? false,
    workload: workloadArg('workload', values.workload),
    rows: Math.round(num('rows', values.rows, quick ? 100_000 : 1_000_000)),
    loadWorkload: workloadArg('load-workload', values['load-workload']),
    loadRows: Math.round(num('load-rows', values['load-rows'], 100_000)),
    engines,
    settings,
    tools: captureCost ? Object.keys(CAPTURE_TOOLS) : values.tools ? values.tools.split(',').map((t) => t.trim().toLowerCase()) : null,
    modes: modes as Mode[],
    loadRate: num('load-rate', values['load-rate'], 200),
    loadConnections: Math.round(num('load-connections', values['load-connections'], 4)),
    baselineSeconds: num('baseline-seconds', values['baseline-seconds'], quick ? 5 : 20),
    settleSeconds: num('settle-seconds', values['settle-seconds'], quick ? 1 : 5),
    timeoutSeconds: num('timeout-seconds', values['timeout-seconds'], 3600),
    repeat: Math.round(num('repeat', values.repeat, 1)),
    shadowcutArgs: (values['shadowcut-args'] ?? '').split(/\s+/).filter(Boolean),
  };
}

function usage(msg: string): never {
  process.stderr.write(`bench: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

/** The engine-specific steps, so the loop below reads the same for both. */
interface Driver {
  title: string;
  url: string;
  /** Where the load writes: the tools' server, or a cluster's other nodes. */
  loadUrls: string[];
  replica: boolean;
  /** What the server is part of, for the report's title (a Galera cluster). */
  cluster?: string;
  version(): Promise<{ text: string; major: number }>;
  seed(w: Workload, rows: number): Promise<void>;
  settle(): Promise<void>;
  inspect(w: Workload, table: string): Promise<TableState>;
  /** MariaDB: the primary's global binlog_alter_two_phase; undefined where the server has none. */
  twoPhase?: { get(): Promise<boolean | undefined>; set(on: boolean): Promise<void> };
}

function driverFor(engine: Engine, servers: Servers, opts: Options): Driver | string {
  const settleMs = opts.settleSeconds * 1000;
  if (engine === 'mysql' && servers.galeraUrls) return galeraDriver(servers.galeraUrls, servers.own, settleMs);
  if (engine === 'mysql') {
    const serverUrl = servers.mysqlUrl;
    if (!serverUrl) return 'no MariaDB/MySQL server (set SHADOWCUT_MYSQL_URL)';
    const url = withDatabase(serverUrl, BENCH_DB);
    const query = async (sql: string) => {
      const c = await mysqlConnect(serverUrl);
      try {
        const [r] = await c.query(sql);
        return r as Array<Record<string, unknown>>;
      } finally {
        await c.end();
      }
    };
    return {
      title: 'mariadb',
      url,
      loadUrls: [url],
      replica: Boolean(servers.mysqlReplicaUrl),
      version: async () => {
        const v = String((await query('SELECT VERSION() AS v'))[0].v);
        return { text: v, major: parseInt(v, 10) };
      },
      seed: (w, rows) => seedMysql(serverUrl, w, rows),
      settle: () => settleMysql(serverUrl, servers.mysqlReplicaUrl, servers.own, settleMs, log),
      inspect: (w, table) => inspectMysql(url, w, table),
      twoPhase: {
        get: async () => {
          const rows = await query(`SHOW GLOBAL VARIABLES LIKE 'binlog_alter_two_phase'`);
          return rows.length === 0 ? undefined : String(rows[0].Value).toUpperCase() === 'ON';
        },
        // Dynamic on MariaDB 10.11; every tool run opens new sessions, which take the global value.
        set: async (on) => void (await query(`SET GLOBAL binlog_alter_two_phase = ${on ? 'ON' : 'OFF'}`)),
      },
    };
  }
  const serverUrl = servers.pgUrl;
  if (!serverUrl) return 'no PostgreSQL server (set SHADOWCUT_PG_URL)';
  const url = withDatabase(serverUrl, BENCH_DB);
  return {
    title: 'postgres',
    url,
    loadUrls: [url],
    replica: Boolean(servers.pgStandbyUrl),
    version: async () => {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      try {
        const r = await c.query<{ v: string; n: string }>(`SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n`);
        return { text: 'PostgreSQL ' + r.rows[0].v, major: Math.floor(Number(r.rows[0].n) / 10000) };
      } finally {
        await c.end();
      }
    },
    seed: (w, rows) => seedPostgres(serverUrl, w, rows),
    settle: () => settlePostgres(serverUrl, servers.pgStandbyUrl, settleMs, log),
    inspect: (w, table) => inspectPostgres(url, w, table),
  };
}

/**
 * A MariaDB Galera cluster: the tools on node 1, the application's writes on the other nodes (as an
 * application behind a proxy spreads them), each node settled before a run. The blocking ALTER is
 * the cluster's own, in total order: it holds every node's writers for its length.
 */
function galeraDriver(nodes: string[], own: boolean, settleMs: number): Driver {
  const [serverUrl, ...others] = nodes;
  const url = withDatabase(serverUrl, BENCH_DB);
  return {
    title: 'mariadb galera',
    url,
    loadUrls: others.map((u) => withDatabase(u, BENCH_DB)),
    replica: false,
    cluster: `a ${nodes.length}-node Galera cluster; the tools run on node 1, the load writes on nodes 2-${nodes.length}`,
    version: async () => {
      const conn = await mysqlConnect(serverUrl);
      try {
        const [[row]] = (await conn.query('SELECT VERSION() AS v')) as unknown as [Array<{ v: string }>];
        return { text: String(row.v), major: parseInt(String(row.v), 10) };
      } finally {
        await conn.end();
      }
    },
    seed: async (w, rows) => {
      await seedMysql(serverUrl, w, rows);
      await settleGalera(nodes, false, 0); // the load's nodes have the database and the rows before it writes
    },
    settle: () => settleGalera(nodes, own, settleMs),
    inspect: (w, table) => inspectMysql(url, w, table),
  };
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Undo steps (the setting the bench changed) that Ctrl-C must run too, before the servers stop. */
const cleanups = new Set<() => Promise<void>>();

const tableInfo = (engine: Engine, w: Workload, rows: number) => ({
  workload: w.name,
  table: w.table,
  rows,
  columns: w.columns.length,
  alter: engine === 'mysql' ? w.mysql.alter : w.postgres.alter,
});

async function benchEngine(engine: Engine, servers: Servers, opts: Options): Promise<EngineReport> {
  const d = driverFor(engine, servers, opts);
  const idleW = workload(opts.workload);
  const loadW = workload(opts.loadWorkload);
  const report: EngineReport = {
    engine,
    server: '?',
    replica: typeof d !== 'string' && d.replica,
    ...(typeof d !== 'string' && d.cluster ? { cluster: d.cluster } : {}),
    tables: { idle: tableInfo(engine, idleW, opts.rows), load: tableInfo(engine, loadW, opts.loadRows) },
    settings: [''],
    reference: REFERENCE[engine],
    peers: PEERS[engine],
    tools: [],
    runs: [],
  };
  if (typeof d === 'string') {
    log(`${engine}: skipped: ${d}`);
    return { ...report, skipped: d };
  }
  const version = await d.version();
  report.server = version.text;
  const tools = await toolsFor(engine, opts.tools, version.major, log);
  report.tools = tools.map((t) => ({ name: t.name, describe: t.describe }));

  // First seed: shadowcut's dry run on it decides whether this engine can be benched at all.
  const firstW = opts.modes.includes('idle') ? idleW : loadW;
  const firstRows = opts.modes.includes('idle') ? opts.rows : opts.loadRows;
  log(`${d.title}: seeding ${firstRows} rows of ${firstW.name}`);
  const seedS = await timed(() => d.seed(firstW, firstRows));
  log(`${d.title}: seeded in ${seedS.toFixed(1)} s`);
  const dry = tools.some((t) => t.key === 'shadowcut') ? await shadowcutDryRun(engine, d.url, firstW) : { ok: true, message: '' };
  if (!dry.ok) {
    const msg = `shadowcut refused the ${engine} dry run: ${dry.message}`;
    log(`${d.title}: skipped: ${msg}`);
    return { ...report, skipped: msg };
  }

  // MariaDB: run under each setting asked for, and put the server's own value back afterwards.
  const original = d.twoPhase ? await d.twoPhase.get() : undefined;
  if (d.twoPhase && original === undefined) log(`${d.title}: the server has no binlog_alter_two_phase; running with its settings as they are`);
  if (original !== undefined) report.settings = opts.settings;
  const restore = async () => {
    if (original === undefined || !d.twoPhase) return;
    await d.twoPhase.set(original);
    log(`${d.title}: binlog_alter_two_phase back to ${original ? 'ON' : 'OFF'}`);
  };
  const apply = async (setting: Setting) => {
    if (!setting || !d.twoPhase) return;
    await d.twoPhase.set(setting === 'two-phase');
    const now = await d.twoPhase.get();
    if (now !== (setting === 'two-phase')) throw new Error(`SET GLOBAL binlog_alter_two_phase did not take (reads ${String(now)})`);
  };
  cleanups.add(restore);
  try {
    await apply(report.settings[0]);
    const loadOpts = { connections: opts.loadConnections, rate: opts.loadRate, maxId: opts.loadRows };
    if (opts.modes.includes('load')) {
      await d.seed(loadW, opts.loadRows);
      await d.settle();
      log(`${d.title}: baseline: ${opts.baselineSeconds} s of load on ${loadW.name} without a migration`);
      const written = await bytesFrom(engine, d.url);
      const load = await startLoad(engine, d.loadUrls, loadW, { ...loadOpts, maxSeconds: opts.baselineSeconds });
      await sleep(opts.baselineSeconds * 1000);
      report.baseline = await load.stop();
      report.baselineBytes = await written();
      log(`${d.title}: baseline ${describeLoad(report.baseline)}`);
    }

    for (let round = 1; round <= opts.repeat; round++) {
      for (const setting of report.settings) {
        await apply(setting);
        for (const tool of tools) {
          for (const mode of opts.modes) {
            const w = mode === 'idle' ? idleW : loadW;
            const rows = mode === 'idle' ? opts.rows : opts.loadRows;
            const label = `${d.title} ${tool.name}/${mode}${setting ? ` [${setting}]` : ''}${opts.repeat > 1 ? ` #${round}` : ''}`;
            log(`${label}: seeding ${rows} rows of ${w.name}`);
            const seedS = await timed(() => d.seed(w, rows));
            const ctx = { url: d.url, workload: w, shadowcutArgs: opts.shadowcutArgs, timeoutMs: opts.timeoutSeconds * 1000, log };
            let prepared: string | undefined; // why the tool's own preparation failed
            let preparedDetails: Record<string, unknown> = {};
            // The plan times a sample: not while the replica still replays the seeding, or it times that.
            await d.settle();
            // Under load the plan is asked under the same load, as a DBA asks it of the live table.
            const planLoad = mode === 'load' ? await startLoad(engine, d.loadUrls, w, { ...loadOpts, maxSeconds: opts.timeoutSeconds }) : undefined;
            try {
              preparedDetails = (await tool.prepare?.(ctx)) ?? {};
            } catch (e) {
              prepared = (e as Error).message;
            } finally {
              await planLoad?.stop();
            }
            await d.settle();
            const loadavg = os
              .loadavg()
              .map((l) => l.toFixed(2))
              .join('/');
            log(`${label}: running (loadavg ${loadavg})`);
            const written = await bytesFrom(engine, d.url);
            const load = mode === 'load' && !prepared ? await startLoad(engine, d.loadUrls, w, { ...loadOpts, maxSeconds: opts.timeoutSeconds }) : undefined;
            const run: ToolRun = prepared ? { ok: false, wallMs: 0, error: prepared, details: {} } : await tool.run(ctx);
            const stats = load ? await load.stop() : undefined;
            const bytes = await written();
            const after = await d.inspect(w, tool.resultTable(w.table)).catch(() => undefined);
            const wallS = run.wallMs / 1000;
            const result: RunResult = {
              tool: tool.name,
              setting,
              mode,
              round,
              workload: w.name,
              rows,
              alters: tool.alters,
              ok: run.ok,
              error: run.error,
              wallS,
              rowsPerS: rows / wallS,
              seedS,
              loadavg,
              load: stats,
              bytes,
              after,
              details: { ...preparedDetails, ...run.details },
            };
            report.runs.push(result);
            log(
              `${label}: ${run.ok ? 'done' : 'FAILED'} in ${wallS.toFixed(1)} s` +
                (run.ok ? ` (${Math.round(result.rowsPerS)} rows/s)` : `: ${run.error ?? ''}`) +
                (typeof run.details.peakRssMiB === 'number' ? `, peak RSS ${run.details.peakRssMiB.toFixed(0)} MiB` : '') +
                (stats ? `; writes ${describeLoad(stats)}` : '') +
                (after && tool.alters && !after.altered ? `; ${tool.resultTable(w.table)} was NOT altered` : ''),
            );
          }
        }
      }
    }
  } finally {
    cleanups.delete(restore);
    await restore().catch((e: unknown) => log(`${d.title}: could not put binlog_alter_two_phase back: ${(e as Error).message}`));
  }
  return report;
}

/**
 * What the server writes from now until the function it returns is called: the run's bytes (redo,
 * binlog, WAL). A server that will not tell (a login without the right) leaves the run without them.
 */
async function bytesFrom(engine: Engine, url: string): Promise<() => Promise<BytesWritten | undefined>> {
  const unread = (e: unknown) => {
    log(`cannot read what the server wrote (${(e as Error).message}); the run has no bytes figure`);
    return undefined;
  };
  const done = await startBytes(engine, [url]).catch(unread);
  return async () => (done ? done().catch(unread) : undefined);
}

function describeLoad(s: LoadStats): string {
  return `p50 ${s.p50Ms.toFixed(2)} ms, p99 ${s.p99Ms.toFixed(2)} ms, max ${s.maxMs.toFixed(1)} ms, ${s.ops} ops, ${s.errors} errors`;
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (!existsSync(cliPath())) usage(`the CLI is not built (${cliPath()} missing): run it as npm run bench, which builds first`);
  const startedAt = new Date().toISOString();
  const machine = {
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? '?',
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    loadavg: os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join('/'),
    node: process.version,
  };
  const durability: Durability = opts.relaxed ? 'relaxed' : 'durable';
  if (opts.servers === 'citus') return benchCitus({ ...opts, durability }, log);
  const servers = opts.servers === 'galera' ? await startGaleraServers(log, durability) : await startServers(log, durability);
  let stopping = false;
  const onSignal = (sig: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    log(`${sig}: stopping the tools and the servers`);
    killChildren();
    void Promise.allSettled([...cleanups].map((undo) => undo()))
      .then(() => servers.stop())
      .finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);

  const engines: EngineReport[] = [];
  let sitting: Sitting;
  try {
    // Read back before any run, as found (servers reused may have been started otherwise), then the disk.
    sitting = await takeSitting(serversToRead(servers, opts.engines), durability, servers.refuseHint);
    for (const line of sittingLines(sitting)) log(line);
    for (const engine of opts.engines) engines.push(await benchEngine(engine, servers, opts));
  } finally {
    await servers.stop();
  }
  const report: BenchReport = {
    startedAt,
    finishedAt: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    options: { ...opts },
    machine,
    sitting,
    engines,
    targets: Object.fromEntries(engines.map((e) => [e.engine, e.skipped ? [] : targetsFor(e)])),
  };
  const text = formatReport(report);
  process.stdout.write('\n' + text);
  const files = writeReport(report);
  const page = files.json.replace(/\.json$/, '.html');
  writeFileSync(page, benchPage(report));
  log(`wrote ${page}, ${files.md} and ${files.json}`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    exitOnServersUnavailable('bench', e);
    if (e instanceof DurabilityMismatch) {
      process.stderr.write(`bench: ${e.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
