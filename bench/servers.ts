// Which servers the bench talks to: the ones named by SHADOWCUT_MYSQL_URL (and friends), or private
// ones started with scripts/servers.sh in the bench's own state dir, so it never shares (or stops)
// the servers that tests use. Durable servers and relaxed ones (--relaxed) each have a state dir of
// their own, so a set left running is never reused as the other kind.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServersUnavailable } from '../scripts/servers-error.js';
import { exec, lastLines, repoRoot } from './exec.js';

/** Servers whose commits wait for the disk, as DBAs run them, or the tests' relaxed ones (durability.ts). */
export type Durability = 'durable' | 'relaxed';

/** A server whose settings the bench reads back, named for the page: "MariaDB primary", "Citus worker 1". */
export interface ServerToRead {
  label: string;
  engine: 'mysql' | 'postgres';
  url: string;
}

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
  /** What to do when they are not as durable as asked: the refusal's second half. */
  refuseHint: string;
  /** Stops them if this run started them; leaves servers it found running (or was given) alone. */
  stop(): Promise<void>;
}

interface ServersJson {
  mysqlUrl: string;
  mysqlReplicaUrl: string;
  pgUrl: string;
  pgStandbyUrl: string;
}

/** One dir per checkout and durability, outside it (nothing to ignore in git) and short (unix socket paths). */
function ownDir(kind: string, durability: Durability): string {
  const tag = createHash('sha1').update(repoRoot()).digest('hex').slice(0, 8);
  return join(tmpdir(), `shadowcut-bench-${kind}${durability}-${tag}`);
}

export function benchStateDir(durability: Durability): string {
  return process.env.SHADOWCUT_SERVERS_DIR || ownDir('', durability);
}

const other = (d: Durability) => (d === 'durable' ? '--relaxed' : 'no --relaxed');

export async function startServers(log: (msg: string) => void, durability: Durability): Promise<Servers> {
  const env = process.env;
  if (env.SHADOWCUT_MYSQL_URL) {
    log('using the servers named by SHADOWCUT_MYSQL_URL / SHADOWCUT_PG_URL (not starting any)');
    return {
      mysqlUrl: env.SHADOWCUT_MYSQL_URL,
      mysqlReplicaUrl: env.SHADOWCUT_MYSQL_REPLICA_URL || undefined,
      pgUrl: env.SHADOWCUT_PG_URL || undefined,
      pgStandbyUrl: env.SHADOWCUT_PG_STANDBY_URL || undefined,
      own: false,
      refuseHint: `SHADOWCUT_MYSQL_URL / SHADOWCUT_PG_URL name them; bench them as they are with ${other(durability)}`,
      stop: async () => {},
    };
  }
  const stateDir = benchStateDir(durability);
  const script = join(repoRoot(), 'scripts', 'servers.sh');
  const childEnv = { ...env, SHADOWCUT_SERVERS_DIR: stateDir, SHADOWCUT_SERVERS_DURABILITY: durability };
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
    refuseHint: `stop them (SHADOWCUT_SERVERS_DIR=${stateDir} bash scripts/servers.sh down) and run again`,
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
 * scripts/servers.sh galera-up (a state dir of the bench's own, per durability) and stopped afterwards
 * if this run started it.
 */
export async function startGaleraServers(log: (msg: string) => void, durability: Durability): Promise<Servers> {
  const given = process.env.SHADOWCUT_GALERA_URLS;
  const script = join(repoRoot(), 'scripts', 'servers.sh');
  const galeraDir = process.env.SHADOWCUT_GALERA_DIR || ownDir('galera-', durability);
  const childEnv = { ...process.env, SHADOWCUT_GALERA_DIR: galeraDir, SHADOWCUT_SERVERS_DURABILITY: durability };
  let started = false;
  let env = given ? `export SHADOWCUT_GALERA_URLS=${given}` : '';
  if (!given) {
    log(`starting a three-node Galera cluster in ${galeraDir} (scripts/servers.sh galera-up)`);
    const up = await exec('bash', [script, 'galera-up'], { env: childEnv, timeoutMs: 15 * 60_000 });
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
    refuseHint: given
      ? `SHADOWCUT_GALERA_URLS names them; bench them as they are with ${other(durability)}`
      : `stop them (SHADOWCUT_GALERA_DIR=${galeraDir} bash scripts/servers.sh galera-down) and run again`,
    stop: async () => {
      if (!started) return log('leaving the Galera cluster running (it was up before the bench started)');
      log('stopping the Galera cluster (scripts/servers.sh galera-down)');
      const down = await exec('bash', [script, 'galera-down'], { env: childEnv, timeoutMs: 5 * 60_000 });
      if (down.code !== 0) log(`scripts/servers.sh galera-down failed: ${lastLines(down.stderr, 5)}`);
    },
  };
}

/** The servers the bench uses for `engines`, named for the page, to read their settings back. */
export function serversToRead(s: Servers, engines: Array<'mysql' | 'postgres'>): ServerToRead[] {
  const out: ServerToRead[] = [];
  const add = (label: string, engine: 'mysql' | 'postgres', url: string | undefined) => url && out.push({ label, engine, url });
  if (engines.includes('mysql') && s.galeraUrls) s.galeraUrls.forEach((u, i) => add(`Galera node ${i + 1}`, 'mysql', u));
  else if (engines.includes('mysql')) {
    add('MariaDB primary', 'mysql', s.mysqlUrl);
    add('MariaDB replica', 'mysql', s.mysqlReplicaUrl);
  }
  if (engines.includes('postgres')) {
    add('PostgreSQL primary', 'postgres', s.pgUrl);
    add('PostgreSQL standby', 'postgres', s.pgStandbyUrl);
  }
  return out;
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
