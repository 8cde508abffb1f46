// npm run bench -- [--rows N] [--engine mysql|postgres|all] [--quick] [...]; see bench/README.md.
//
// For each engine: seed a fresh table, measure the write load without any migration (baseline),
// then for every tool and mode (idle, under load) reseed, let the servers settle, run the tool and
// time it, with the load generator recording write latency in load mode.
import { existsSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { exitOnServersUnavailable } from '../scripts/servers-error.js';
import { cliPath, killChildren, sleep } from './exec.js';
import { startLoad, type LoadStats } from './load.js';
import { formatReport, targetsFor, writeReport, type BenchReport, type EngineReport, type Mode, type RunResult } from './report.js';
import { BENCH_DB, TABLE, inspectMysql, inspectPostgres, mysqlConnect, seedMysql, seedPostgres, settleMysql, settlePostgres } from './seed.js';
import { startServers, withDatabase, type Servers } from './servers.js';
import { ensurePtOsc, shadowcutDryRun, toolsFor, type Engine, type Tool } from './tools.js';
import pg from 'pg';

const USAGE = `usage: npm run bench -- [options]
  --rows N                 rows in the seeded table (default 1000000; 100000 with --quick)
  --engine E               mysql (default), postgres or all
  --quick                  small and short: 100000 rows, 5 s baseline, 1 s settle
  --tools LIST             comma-separated subset of shadowcut,pt-osc,alter,floor (default: all for the engine)
  --modes LIST             idle,load (default both)
  --load-rate N            application writes per second, all connections together (default 200)
  --load-connections N     application connections (default 4)
  --baseline-seconds N     how long to measure the load without a migration (default 20)
  --settle-seconds N       pause after seeding and replica catch-up, before each run (default 5)
  --timeout-seconds N      give up on one tool run after this long (default 3600)
  --repeat N               run every tool and mode N times, in rounds; targets use the medians (default 1)
  --shadowcut-args="..."   extra arguments for shadowcut migrate, e.g. --shadowcut-args="--chunk-time-ms 500"
Servers: SHADOWCUT_MYSQL_URL / SHADOWCUT_MYSQL_REPLICA_URL / SHADOWCUT_PG_URL / SHADOWCUT_PG_STANDBY_URL
if set, else private ones via scripts/servers.sh (state dir: $SHADOWCUT_SERVERS_DIR or a temp dir).`;

interface Options {
  rows: number;
  engines: Engine[];
  tools: string[] | null;
  modes: Mode[];
  loadRate: number;
  loadConnections: number;
  baselineSeconds: number;
  settleSeconds: number;
  timeoutSeconds: number;
  repeat: number;
  shadowcutArgs: string[];
}

function parseCli(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      rows: { type: 'string' },
      engine: { type: 'string', default: 'mysql' },
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
    engineArg === 'all' ? ['mysql', 'postgres'] : engineArg === 'mysql' || engineArg === 'mariadb' ? ['mysql'] : engineArg === 'postgres' || engineArg === 'pg' ? ['postgres'] : usage(`--engine must be mysql, postgres or all (got "${engineArg}")`);
  const modes = (values.modes ?? 'idle,load').split(',').map((m) => m.trim());
  for (const m of modes) if (m !== 'idle' && m !== 'load') usage(`--modes takes idle and/or load (got "${m}")`);
  return {
    rows: Math.round(num('rows', values.rows, quick ? 100_000 : 1_000_000)),
    engines,
    tools: values.tools ? values.tools.split(',').map((t) => t.trim().toLowerCase()) : null,
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
  reference: string;
  version(): Promise<string>;
  seed(): Promise<void>;
  settle(): Promise<void>;
  inspect(table: string): ReturnType<typeof inspectMysql>;
}

function driverFor(engine: Engine, servers: Servers, opts: Options): Driver | string {
  const settleMs = opts.settleSeconds * 1000;
  if (engine === 'mysql') {
    const serverUrl = servers.mysqlUrl;
    if (!serverUrl) return 'no MariaDB/MySQL server (set SHADOWCUT_MYSQL_URL)';
    const url = withDatabase(serverUrl, BENCH_DB);
    return {
      title: 'mariadb',
      url,
      reference: 'pt-osc',
      version: async () => {
        const c = await mysqlConnect(serverUrl);
        try {
          const [r] = await c.query('SELECT VERSION() AS v');
          return String((r as Array<{ v: string }>)[0].v);
        } finally {
          await c.end();
        }
      },
      seed: () => seedMysql(serverUrl, opts.rows),
      settle: () => settleMysql(serverUrl, servers.mysqlReplicaUrl, servers.own, settleMs, log),
      inspect: (table) => inspectMysql(url, table),
    };
  }
  const serverUrl = servers.pgUrl;
  if (!serverUrl) return 'no PostgreSQL server (set SHADOWCUT_PG_URL)';
  const url = withDatabase(serverUrl, BENCH_DB);
  return {
    title: 'postgres',
    url,
    reference: 'ALTER',
    version: async () => {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      try {
        return 'PostgreSQL ' + (await c.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0].v;
      } finally {
        await c.end();
      }
    },
    seed: () => seedPostgres(serverUrl, opts.rows),
    settle: () => settlePostgres(serverUrl, servers.pgStandbyUrl, settleMs, log),
    inspect: (table) => inspectPostgres(url, table),
  };
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function benchEngine(engine: Engine, servers: Servers, opts: Options): Promise<EngineReport> {
  const d = driverFor(engine, servers, opts);
  const report: EngineReport = { engine, server: '?', rows: opts.rows, reference: engine === 'mysql' ? 'pt-osc' : 'ALTER', tools: [], runs: [] };
  if (typeof d === 'string') {
    log(`${engine}: skipped: ${d}`);
    return { ...report, skipped: d };
  }
  report.server = await d.version();
  let tools: Tool[] = toolsFor(engine).filter((t) => !opts.tools || opts.tools.includes(t.key));
  if (tools.some((t) => t.name === 'pt-osc')) {
    const pt = await ensurePtOsc(log);
    if (!pt.ok) tools = tools.filter((t) => t.name !== 'pt-osc');
    else log(pt.version);
  }
  report.tools = tools.map((t) => ({ name: t.name, describe: t.describe }));

  // First seed: shadowcut's dry run on it decides whether this engine can be benched at all; the
  // baseline then runs on the same still-fresh table.
  log(`${d.title}: seeding ${opts.rows} rows`);
  const seedS = await timed(() => d.seed());
  log(`${d.title}: seeded in ${seedS.toFixed(1)} s`);
  const dry = tools.some((t) => t.key === 'shadowcut') ? await shadowcutDryRun(engine, d.url) : { ok: true, message: '' };
  if (!dry.ok) {
    const msg = `shadowcut refused the ${engine} dry run: ${dry.message}`;
    log(`${d.title}: skipped: ${msg}`);
    return { ...report, skipped: msg };
  }
  await d.settle();

  const loadOpts = { connections: opts.loadConnections, rate: opts.loadRate, maxId: opts.rows };
  if (opts.modes.includes('load')) {
    log(`${d.title}: baseline: ${opts.baselineSeconds} s of load without a migration`);
    const load = await startLoad(engine, d.url, { ...loadOpts, maxSeconds: opts.baselineSeconds });
    await sleep(opts.baselineSeconds * 1000);
    report.baseline = await load.stop();
    log(`${d.title}: baseline ${describeLoad(report.baseline)}`);
  }

  for (let round = 1; round <= opts.repeat; round++) {
    for (const tool of tools) {
      for (const mode of opts.modes) {
        const label = `${d.title} ${tool.name}/${mode}${opts.repeat > 1 ? ` #${round}` : ''}`;
        log(`${label}: seeding ${opts.rows} rows`);
        const seedS = await timed(() => d.seed());
        await d.settle();
        const loadavg = os.loadavg().map((l) => l.toFixed(2)).join('/');
        log(`${label}: running (loadavg ${loadavg})`);
        const load = mode === 'load' ? await startLoad(engine, d.url, { ...loadOpts, maxSeconds: opts.timeoutSeconds }) : undefined;
        const run = await tool.run({ url: d.url, shadowcutArgs: opts.shadowcutArgs, timeoutMs: opts.timeoutSeconds * 1000, log });
        const stats = load ? await load.stop() : undefined;
        const after = await d.inspect(tool.resultTable).catch(() => undefined);
        const wallS = run.wallMs / 1000;
        const result: RunResult = {
          tool: tool.name,
          mode,
          round,
          ok: run.ok,
          error: run.error,
          wallS,
          rowsPerS: opts.rows / wallS,
          seedS,
          loadavg,
          load: stats,
          after,
          details: run.details,
        };
        report.runs.push(result);
        log(
          `${label}: ${run.ok ? 'done' : 'FAILED'} in ${wallS.toFixed(1)} s` +
            (run.ok ? ` (${Math.round(result.rowsPerS)} rows/s)` : `: ${run.error ?? ''}`) +
            (stats ? `; writes ${describeLoad(stats)}` : '') +
            (after && !after.altered ? `; ${tool.resultTable} was NOT altered` : ''),
        );
      }
    }
  }
  return report;
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
    loadavg: os.loadavg().map((l) => l.toFixed(2)).join('/'),
    node: process.version,
  };
  const servers = await startServers(log);
  let stopping = false;
  const onSignal = (sig: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    log(`${sig}: stopping the tools and the servers`);
    killChildren();
    void servers.stop().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);

  const engines: EngineReport[] = [];
  try {
    for (const engine of opts.engines) engines.push(await benchEngine(engine, servers, opts));
  } finally {
    await servers.stop();
  }
  const report: BenchReport = {
    startedAt,
    finishedAt: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    options: { ...opts, table: TABLE },
    machine,
    engines,
    targets: Object.fromEntries(engines.map((e) => [e.engine, e.skipped ? [] : targetsFor(e)])),
  };
  const text = formatReport(report);
  process.stdout.write('\n' + text);
  const files = writeReport(report);
  log(`wrote ${files.md} and ${files.json}`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    exitOnServersUnavailable('bench', e);
    process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
