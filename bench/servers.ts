// Which servers the bench talks to: the ones named by SHADOWCUT_MYSQL_URL (and friends), or private
// ones started with scripts/servers.sh in the bench's own state dir, so it never shares (or stops)
// the servers that tests use.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServersUnavailable } from '../scripts/servers-error.js';
import { exec, lastLines, repoRoot } from './exec.js';

export interface Servers {
  mysqlUrl?: string;
  /** A MariaDB Galera cluster's nodes (`--servers galera`): shadowcut and the tools run on the first, the load on the others. */
  galeraUrls?: string[];
  mysqlReplicaUrl?: string;
  pgUrl?: string;
  pgStandbyUrl?: string;
  /** True when the servers are the bench's private ones, which it may reconfigure (purge binlogs). */
  own: boolean;
  stateDir?: string;
  /** Stops them if this run started them; leaves servers it found running (or was given) alone. */
  stop(): Promise<void>;
}

interface ServersJson {
  mysqlUrl: string;
  mysqlReplicaUrl: string;
  pgUrl: string;
  pgStandbyUrl: string;
}

export function benchStateDir(): string {
  if (process.env.SHADOWCUT_SERVERS_DIR) return process.env.SHADOWCUT_SERVERS_DIR;
  // One dir per checkout, outside it (nothing to ignore in git) and short (unix socket paths).
  const tag = createHash('sha1').update(repoRoot()).digest('hex').slice(0, 8);
  return join(tmpdir(), `shadowcut-bench-${tag}`);
}

export async function startServers(log: (msg: string) => void): Promise<Servers> {
  const env = process.env;
  if (env.SHADOWCUT_MYSQL_URL) {
    log('using the servers named by SHADOWCUT_MYSQL_URL / SHADOWCUT_PG_URL (not starting any)');
    return {
      mysqlUrl: env.SHADOWCUT_MYSQL_URL,
      mysqlReplicaUrl: env.SHADOWCUT_MYSQL_REPLICA_URL || undefined,
      pgUrl: env.SHADOWCUT_PG_URL || undefined,
      pgStandbyUrl: env.SHADOWCUT_PG_STANDBY_URL || undefined,
      own: false,
      stop: async () => {},
    };
  }
  const stateDir = benchStateDir();
  const script = join(repoRoot(), 'scripts', 'servers.sh');
  const childEnv = { ...env, SHADOWCUT_SERVERS_DIR: stateDir };
  const already = await exec('bash', [script, 'env'], { env: childEnv });
  if (already.code !== 0) {
    log(`starting private servers in ${stateDir} (scripts/servers.sh up)`);
    const up = await exec('bash', [script, 'up'], { env: childEnv, timeoutMs: 15 * 60_000 });
    if (up.code !== 0) {
      process.stderr.write(lastLines(up.stderr, 30) + '\n');
      throw new ServersUnavailable(`scripts/servers.sh up exited ${up.code}`);
    }
  } else {
    log(`reusing the servers already running in ${stateDir}`);
  }
  const urls = JSON.parse(readFileSync(join(stateDir, 'servers.json'), 'utf8')) as ServersJson;
  return {
    ...urls,
    own: true,
    stateDir,
    stop: async () => {
      if (already.code === 0) {
        log(`leaving the servers in ${stateDir} running (they were up before the bench started)`);
        return;
      }
      log(`stopping the private servers (scripts/servers.sh down)`);
      const down = await exec('bash', [script, 'down'], { env: childEnv, timeoutMs: 5 * 60_000 });
      if (down.code !== 0) log(`scripts/servers.sh down failed: ${lastLines(down.stderr, 5)}`);
    },
  };
}

/**
 * A three-node MariaDB Galera cluster: the one SHADOWCUT_GALERA_URLS names, or one started with
 * scripts/servers.sh galera-up (its own state dir) and stopped afterwards if this run started it.
 */
export async function startGaleraServers(log: (msg: string) => void): Promise<Servers> {
  const given = process.env.SHADOWCUT_GALERA_URLS;
  const script = join(repoRoot(), 'scripts', 'servers.sh');
  let started = false;
  let env = given ? `export SHADOWCUT_GALERA_URLS=${given}` : '';
  if (!given) {
    log('starting a three-node Galera cluster (scripts/servers.sh galera-up)');
    const up = await exec('bash', [script, 'galera-up'], { timeoutMs: 15 * 60_000 });
    if (up.code !== 0) {
      process.stderr.write(lastLines(up.stderr, 30) + '\n');
      throw new ServersUnavailable(`scripts/servers.sh galera-up exited ${up.code}`);
    }
    started = !/already up; reusing it/.test(up.stderr);
    env = up.stdout;
  }
  const line = env.split('\n').find((l) => l.startsWith('export SHADOWCUT_GALERA_URLS='));
  const urls = (line ?? '').replace('export SHADOWCUT_GALERA_URLS=', '').trim().split(',').filter(Boolean);
  if (urls.length < 2) throw new ServersUnavailable('no Galera cluster: SHADOWCUT_GALERA_URLS names fewer than two nodes');
  return {
    mysqlUrl: urls[0],
    galeraUrls: urls,
    own: true,
    stop: async () => {
      if (!started) return log('leaving the Galera cluster running (it was up before the bench started)');
      log('stopping the Galera cluster (scripts/servers.sh galera-down)');
      const down = await exec('bash', [script, 'galera-down'], { timeoutMs: 5 * 60_000 });
      if (down.code !== 0) log(`scripts/servers.sh galera-down failed: ${lastLines(down.stderr, 5)}`);
    },
  };
}

/** The same server and credentials, another database. */
export function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = '/' + db;
  return u.toString();
}

export function databaseOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
}
