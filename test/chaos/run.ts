/**
 * The randomized differential tester: for each seed a random table, ALTER, concurrent writes and
 * faults, with the server's own ALTER on a mirror as the oracle (see README.md, Testing).
 *
 *   npm run test:chaos -- --engine mysql|postgres|all --seeds N [--seed S] [--from S] [--minutes M] [--rows N] [--json FILE]
 *
 * A failure prints its seed; `--seed S` replays the same table, ALTER and schedule of operations.
 * Servers: SHADOWCUT_MYSQL_URL and friends, or the repository's private servers (scripts/servers.sh).
 * CHAOS_LOG_DIR=dir keeps shadowcut's JSON log (cli.log), its stderr (cli.stderr.log) and, on PostgreSQL, every write with the
 * rows it touched (writes.log): what a failing seed needs to be understood.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mysqlChaos, postgresChaos } from './database.js';
import type { EngineKind } from './grammar.js';
import { runSeed, TABLE, MIRROR, type SeedOutcome } from './scenario.js';

// Run as dist/test/chaos/run.js by npm, or from its source by vitest.
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, here.split(path.sep).includes('dist') ? '../../..' : '../..');
const CLI = path.join(root, 'dist/src/cli/main.js');

interface Args {
  engines: EngineKind[];
  seeds: number[];
  minutes: number;
  rows: number;
  json: string | null;
}

function parseArgs(argv: string[]): Args {
  const value = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const engine = value('engine') ?? 'all';
  if (!['mysql', 'postgres', 'all'].includes(engine)) throw new Error('--engine is mysql, postgres or all');
  const from = Number(value('from') ?? 1);
  const seed = value('seed');
  const count = Number(value('seeds') ?? 20);
  return {
    engines: engine === 'all' ? ['mysql', 'postgres'] : [engine as EngineKind],
    seeds: seed !== undefined ? [Number(seed)] : Array.from({ length: count }, (_, i) => from + i),
    minutes: Number(value('minutes') ?? 0),
    rows: Number(value('rows') ?? 2000),
    json: value('json') ?? null,
  };
}

function servers(): { urls: Record<string, string>; stop: () => void } {
  const env = process.env;
  if (env.SHADOWCUT_MYSQL_URL && env.SHADOWCUT_PG_URL && env.SHADOWCUT_MYSQL_REPLICA_URL && env.SHADOWCUT_PG_STANDBY_URL) {
    return { urls: { mysqlUrl: env.SHADOWCUT_MYSQL_URL, mysqlReplicaUrl: env.SHADOWCUT_MYSQL_REPLICA_URL, pgUrl: env.SHADOWCUT_PG_URL, pgStandbyUrl: env.SHADOWCUT_PG_STANDBY_URL }, stop: () => {} };
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

export async function chaos(args: Args, urls: Record<string, string>, log: (line: string) => void): Promise<SeedOutcome[]> {
  const outcomes: SeedOutcome[] = [];
  const deadline = args.minutes > 0 ? Date.now() + args.minutes * 60_000 : Infinity;
  for (const kind of args.engines) {
    const db = kind === 'mysql' ? mysqlChaos(urls.mysqlUrl, urls.mysqlReplicaUrl) : postgresChaos(urls.pgUrl, urls.pgStandbyUrl);
    try {
      for (const seed of args.seeds) {
        if (Date.now() > deadline) break;
        const o = await runSeed(db, CLI, seed, args.rows);
        outcomes.push(o);
        log(`${kind} seed ${seed}: ${o.verdict} in ${o.seconds.toFixed(1)} s${o.faults.length ? ` [${o.faults.join('; ')}]` : ''} - ${o.reason}${o.verdict === 'FAIL' ? `\n    ALTER TABLE ... ${o.alter}\n    replay: npm run test:chaos -- --engine ${kind} --seed ${seed} --rows ${args.rows}` : ''}`);
      }
      await db.drop(TABLE, MIRROR);
    } finally {
      await db.close();
    }
  }
  return outcomes;
}

export function summary(outcomes: SeedOutcome[]): string {
  const lines = ['| engine | runs | pass | refused like the server | refused (server accepts) | FAIL | with faults | median s |', '|---|---|---|---|---|---|---|---|'];
  for (const engine of [...new Set(outcomes.map((o) => o.engine))]) {
    const mine = outcomes.filter((o) => o.engine === engine);
    const count = (v: string) => mine.filter((o) => o.verdict === v).length;
    const times = mine.map((o) => o.seconds).sort((a, b) => a - b);
    lines.push(`| ${engine} | ${mine.length} | ${count('pass')} | ${count('refused like the server')} | ${count('refused')} | ${count('FAIL')} | ${mine.filter((o) => o.faults.length).length} | ${times[Math.floor(times.length / 2)]?.toFixed(1) ?? '-'} |`);
  }
  const refusals = outcomes.filter((o) => o.verdict.startsWith('refused'));
  if (refusals.length) lines.push('', 'Refusals:', ...refusals.map((o) => `- ${o.engine} seed ${o.seed} (${o.verdict}): ${o.reason}`));
  const failures = outcomes.filter((o) => o.verdict === 'FAIL');
  if (failures.length) lines.push('', 'Failures:', ...failures.map((o) => `- ${o.engine} seed ${o.seed}: ${o.reason} (ALTER: ${o.alter})`));
  return lines.join('\n');
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const { urls, stop } = servers();
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
