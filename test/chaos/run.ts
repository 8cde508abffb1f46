/**
 * The randomized differential tester: for each seed a random table, ALTER, concurrent writes and
 * faults, with the server's own ALTER on a mirror as the oracle (see README.md, Testing).
 *
 *   npm run test:chaos -- --engine mysql|postgres|all --path default|copy|both|backfill|revert|queue|set|citus|fleet --seeds N [--seed S] [--from S] [--minutes M] [--rows N] [--json FILE]
 *                         [--capture auto|stream|trigger] [--servers normal|plain|galera|own]
 *
 * --path default runs migrate as users do (in place where the server can), copy with --force-copy,
 * both (the default) each seed one way then the other: the same table, ALTER and writes. --path
 * backfill is the expand/contract stage instead: backfill of a new column under writers and faults,
 * then verify --expect (backfill-scenario.ts). --path revert takes the copy with a revert window and
 * reverts once it is open: the table must then equal the mirror, which never takes the ALTER. --path
 * queue is the copy queued (`queue add`) and run by `queue run`: a drawn kill hits the
 * runner, the next runner takes the entry over after its lease, and the entry must have run once.
 * --path set changes two or three tables in one run (set-scenario.ts): each exact against its
 * mirror, and a reader of all of them never sees the set half swapped. --path citus (PostgreSQL)
 * migrates a distributed table with a co-located child on a Citus cluster of its own, against a twin
 * database given Citus's own ALTER (citus-scenario.ts). --path fleet changes three to five databases
 * with one `migrate --targets --joint-cutover`, one target's table held open in half the seeds
 * (fleet-scenario.ts).
 * --capture is passed to migrate as it is (without it, migrate's default); --servers plain runs on the
 * servers as they come (no binlog, wal_level=replica, no replication privileges: no replica to pause);
 * --servers galera (MySQL) runs shadowcut against node 1 of a three-node Galera cluster
 * (SHADOWCUT_GALERA_URLS, or scripts/servers.sh galera-up) with the writers and the reader on the other two;
 * --servers own starts a MariaDB or PostgreSQL of the tester's own, which it may restart (a drawn fault).
 * A failure prints its seed; `--seed S` replays the same table, ALTER and schedule of operations.
 * Servers: SHADOWCUT_MYSQL_URL and friends, or the repository's private servers (scripts/servers.sh).
 * CHAOS_LOG_DIR=dir keeps shadowcut's JSON log (cli.log), its stderr (cli.stderr.log) and, on PostgreSQL, every write with the
 * rows it touched (writes.log): what a failing seed needs to be understood.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { captureMode } from '../../src/core/engine/capture/capture-choice.js';
import type { CaptureMode } from '../../src/core/engine/ports/capture.js';
import { startCitusCluster, type CitusCluster } from '../support/citus.js';
import { runBackfillSeed } from './backfill-scenario.js';
import { runCitusSeed } from './citus-scenario.js';
import { runFleetSeed } from './fleet-scenario.js';
import { runSetSeed } from './set-scenario.js';
import { mysqlChaos, postgresChaos, type ChaosDb } from './database.js';
import { Outages } from './outage.js';
import { mariadb, postgres } from '../support/faults.js';
import type { EngineKind } from './grammar.js';
import { runSeed, TABLE, MIRROR, type CaptureExpectation, type PathMode, type SeedOutcome } from './scenario.js';

// Run as dist/test/chaos/run.js by npm, or from its source by vitest.
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, here.split(path.sep).includes('dist') ? '../../..' : '../..');
const CLI = path.join(root, 'dist/bin/shadowcut.js');

interface Args {
  engines: EngineKind[];
  paths: PathMode[];
  seeds: number[];
  minutes: number;
  rows: number;
  json: string | null;
  /** migrate's --capture; absent, migrate's own default. */
  capture?: CaptureMode;
  /** The servers with the change stream and a replica (default), the plain ones, as they come, or a Galera cluster. */
  servers?: ServerSet;
}

export type ServerSet = 'normal' | 'plain' | 'galera' | 'own';

function parseArgs(argv: string[]): Args {
  const value = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const engine = value('engine') ?? 'all';
  if (!['mysql', 'postgres', 'all'].includes(engine)) throw new Error('--engine is mysql, postgres or all');
  const path = value('path') ?? 'both';
  if (!['default', 'copy', 'both', 'backfill', 'revert', 'queue', 'set', 'citus', 'fleet'].includes(path))
    throw new Error('--path is default, copy, both, backfill, revert, queue, set, citus or fleet');
  const from = Number(value('from') ?? 1);
  const seed = value('seed');
  const count = Number(value('seeds') ?? 20);
  const capture = value('capture');
  const servers = value('servers') ?? 'normal';
  if (!['normal', 'plain', 'galera', 'own'].includes(servers)) throw new Error('--servers is normal, plain, galera or own');
  if (servers === 'galera' && engine !== 'mysql') throw new Error('--servers galera is for --engine mysql');
  if (servers === 'plain' && capture === 'stream') throw new Error('--capture stream needs the normal servers: the plain ones have no change stream to read');
  return {
    engines: engine === 'all' ? ['mysql', 'postgres'] : [engine as EngineKind],
    paths: path === 'both' ? ['default', 'copy'] : [path as PathMode],
    seeds: seed !== undefined ? [Number(seed)] : Array.from({ length: count }, (_, i) => from + i),
    minutes: Number(value('minutes') ?? 0),
    rows: Number(value('rows') ?? 2000),
    json: value('json') ?? null,
    capture: capture === undefined ? undefined : chaosCapture(capture),
    servers: servers as ServerSet,
  };
}

function chaosCapture(value: string): CaptureMode {
  try {
    return captureMode(value);
  } catch (error) {
    throw new Error(`--capture ${(error as Error).message}`);
  }
}

function servers(): { urls: Record<string, string>; stop: () => void } {
  const env = process.env;
  if (env.SHADOWCUT_MYSQL_URL && env.SHADOWCUT_PG_URL && env.SHADOWCUT_MYSQL_REPLICA_URL && env.SHADOWCUT_PG_STANDBY_URL) {
    return {
      urls: {
        mysqlUrl: env.SHADOWCUT_MYSQL_URL,
        mysqlReplicaUrl: env.SHADOWCUT_MYSQL_REPLICA_URL,
        pgUrl: env.SHADOWCUT_PG_URL,
        pgStandbyUrl: env.SHADOWCUT_PG_STANDBY_URL,
        ...(env.SHADOWCUT_MYSQL_PLAIN_URL ? { mysqlPlainUrl: env.SHADOWCUT_MYSQL_PLAIN_URL } : {}),
        ...(env.SHADOWCUT_PG_PLAIN_URL ? { pgPlainUrl: env.SHADOWCUT_PG_PLAIN_URL } : {}),
      },
      stop: () => {},
    };
  }
  const script = path.join(root, 'scripts/servers.sh');
  const up = spawnSync('bash', [script, 'env'], { stdio: 'ignore' }).status === 0;
  if (!up && spawnSync('bash', [script, 'up'], { stdio: ['ignore', 'ignore', 'inherit'] }).status !== 0) {
    throw new Error('the private servers did not start (see above)');
  }
  const dir = env.SHADOWCUT_SERVERS_DIR ?? path.join(root, '.servers');
  const urls = JSON.parse(readFileSync(path.join(dir, 'servers.json'), 'utf8')) as Record<string, string>;
  return { urls, stop: () => (up ? undefined : void spawnSync('bash', [script, 'down'], { stdio: 'inherit' })) };
}

/** The cluster of SHADOWCUT_GALERA_URLS, or one started here (and stopped after). */
function galeraCluster(): { urls: Record<string, string>; stop: () => void } {
  if (process.env.SHADOWCUT_GALERA_URLS) return { urls: { galeraUrls: process.env.SHADOWCUT_GALERA_URLS }, stop: () => {} };
  const script = path.join(root, 'scripts/servers.sh');
  const started = spawnSync('bash', [script, 'galera-up'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const line = started.stdout.split('\n').find((l) => l.startsWith('export SHADOWCUT_GALERA_URLS='));
  if (started.status !== 0 || !line) throw new Error('the Galera cluster did not start (see above)');
  return {
    urls: { galeraUrls: line.replace('export SHADOWCUT_GALERA_URLS=', '').trim() },
    stop: () => void spawnSync('bash', [script, 'galera-down'], { stdio: 'inherit' }),
  };
}

export async function chaos(args: Args, urls: Record<string, string>, log: (line: string) => void): Promise<SeedOutcome[]> {
  const outcomes: SeedOutcome[] = [];
  const deadline = args.minutes > 0 ? Date.now() + args.minutes * 60_000 : Infinity;
  // A Citus cluster of the tester's own, started for the first Citus seed and stopped at the end.
  let cluster: Promise<CitusCluster> | null = null;
  // The Citus path runs on its cluster alone: the one-server paths' servers are not needed for it.
  const onServers = args.paths.some((p) => p !== 'citus');
  for (const kind of args.engines) {
    const own = onServers && args.servers === 'own' ? await ownServer(kind) : null;
    const db = own?.db ?? (onServers ? chaosDb(kind, args.servers ?? 'normal', urls) : null);
    try {
      for (const seed of args.seeds) {
        for (const path of args.paths) {
          if (Date.now() > deadline) break;
          if (path === 'citus' && kind !== 'postgres') continue;
          const o =
            path === 'citus'
              ? await runCitusSeed(await (cluster ??= startCitusCluster()), CLI, seed, args.rows)
              : path === 'backfill'
                ? await runBackfillSeed(db!, CLI, seed, args.rows)
                : path === 'set'
                  ? await runSetSeed(db!, CLI, seed, args.rows)
                  : path === 'fleet'
                    ? await runFleetSeed(kind, db!.url, CLI, seed, args.rows)
                    : await runSeed(db!, CLI, seed, args.rows, path, captureOf(args));
          outcomes.push(o);
          log(
            `${kind} seed ${seed} (${path} path${o.took ? `, ${o.took}` : ''}${o.partitioned ? ', partitioned' : ''}): ${o.verdict} in ${o.seconds.toFixed(1)} s${o.faults.length ? ` [${o.faults.join('; ')}]` : ''} - ${o.reason}${o.verdict === 'FAIL' ? `\n    ALTER TABLE ... ${o.alter}\n    replay: npm run test:chaos -- --engine ${kind} --path ${path} --seed ${seed} --rows ${args.rows}${replayFlags(args)}` : ''}`,
          );
        }
      }
      await db?.drop(TABLE, MIRROR);
    } finally {
      await db?.close();
      await own?.stop();
    }
  }
  if (cluster) await (await cluster).stop();
  return outcomes;
}

/**
 * A server of the tester's own (`--servers own`: test/support/faults.ts's, with the change stream and
 * no replica), which the "server restarted" fault kills and starts again on its data.
 */
async function ownServer(kind: EngineKind): Promise<{ db: ChaosDb; stop(): Promise<void> }> {
  const server = kind === 'mysql' ? await mariadb() : await postgres();
  const own = { restart: () => server.restart(), outages: new Outages() };
  return { db: kind === 'mysql' ? mysqlChaos(server.url, null, [], own) : postgresChaos(server.url, null, own), stop: () => server.stop() };
}

/** The engine's servers of the set asked for; the plain ones have no replica (null: that fault is not drawn). */
function chaosDb(kind: EngineKind, servers: ServerSet, urls: Record<string, string>) {
  if (servers === 'galera') {
    const nodes = (urls.galeraUrls ?? '').split(',').filter(Boolean);
    if (nodes.length < 2) throw new Error('no Galera cluster: set SHADOWCUT_GALERA_URLS or use scripts/servers.sh galera-up');
    return mysqlChaos(nodes[0], null, nodes.slice(1));
  }
  if (servers === 'normal') return kind === 'mysql' ? mysqlChaos(urls.mysqlUrl, urls.mysqlReplicaUrl) : postgresChaos(urls.pgUrl, urls.pgStandbyUrl);
  const url = kind === 'mysql' ? urls.mysqlPlainUrl : urls.pgPlainUrl;
  if (!url) throw new Error(`no plain ${kind} server: set SHADOWCUT_${kind === 'mysql' ? 'MYSQL' : 'PG'}_PLAIN_URL or use scripts/servers.sh`);
  return kind === 'mysql' ? mysqlChaos(url, null) : postgresChaos(url, null);
}

/** Triggers where asked for, or where `auto` finds no stream (the plain servers); the stream otherwise. */
function captureOf(args: Args): CaptureExpectation {
  const triggers = args.capture === 'trigger' || (args.capture !== 'stream' && args.servers === 'plain');
  return { flag: args.capture, expect: triggers ? 'trigger' : 'stream' };
}

function replayFlags(args: Args): string {
  return `${args.capture ? ` --capture ${args.capture}` : ''}${args.servers && args.servers !== 'normal' ? ` --servers ${args.servers}` : ''}`;
}

export function summary(outcomes: SeedOutcome[]): string {
  const lines = [
    "| engine | path | runs | partitioned | made in place | copied with triggers | pass | refused like the server | refused (server accepts) | FAIL | with faults | median s | reader's longest wait, ms | writers' longest wait, ms |",
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const engine of [...new Set(outcomes.map((o) => o.engine))]) {
    for (const path of [...new Set(outcomes.map((o) => o.path))]) {
      const mine = outcomes.filter((o) => o.engine === engine && o.path === path);
      if (!mine.length) continue;
      const count = (v: string) => mine.filter((o) => o.verdict === v).length;
      const times = mine.map((o) => o.seconds).sort((a, b) => a - b);
      const waits = mine.map((o) => o.reader?.longestMs ?? 0);
      const writes = mine.map((o) => o.writer?.longestMs ?? 0);
      lines.push(
        `| ${engine} | ${path} | ${mine.length} | ${mine.filter((o) => o.partitioned).length} | ${mine.filter((o) => o.took === 'in-place').length} | ${mine.filter((o) => o.capturedBy === 'trigger').length} | ${count('pass')} | ${count('refused like the server')} | ${count('refused')} | ${count('FAIL')} | ` +
          `${mine.filter((o) => o.faults.length).length} | ${times[Math.floor(times.length / 2)]?.toFixed(1) ?? '-'} | ${Math.max(...waits)} | ${Math.max(...writes)} |`,
      );
    }
  }
  const label = (o: SeedOutcome) => `${o.engine} seed ${o.seed} (${o.path} path${o.took ? `, ${o.took}` : ''})`;
  const refusals = outcomes.filter((o) => o.verdict.startsWith('refused'));
  if (refusals.length) lines.push('', 'Refusals:', ...refusals.map((o) => `- ${label(o)} ${o.verdict}: ${o.reason}`));
  const failures = outcomes.filter((o) => o.verdict === 'FAIL');
  if (failures.length) lines.push('', 'Failures:', ...failures.map((o) => `- ${label(o)}: ${o.reason} (ALTER: ${o.alter})`));
  return lines.join('\n');
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const { urls, stop } =
    args.servers === 'galera' ? galeraCluster() : args.servers === 'own' || args.paths.every((p) => p === 'citus') ? { urls: {}, stop: () => {} } : servers();
  try {
    const outcomes = await chaos(args, urls, (line) => console.log(line));
    console.log(`\n${summary(outcomes)}`);
    if (args.json) writeFileSync(args.json, JSON.stringify(outcomes, null, 2));
    return outcomes.some((o) => o.verdict === 'FAIL') ? 1 : 0;
  } finally {
    stop();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().then(
    (code) => process.exit(code),
    (error: Error) => {
      console.error(`chaos: ${error.message}`);
      process.exit(2);
    },
  );
}
