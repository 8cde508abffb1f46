import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startExtraPostgres, startExtraStandby, type ExtraPostgres } from './extra-postgres.js';

/**
 * A Citus cluster of its own for the distributed tables' tests: a coordinator and two workers, each
 * a PostgreSQL of its own (extra-postgres.ts) with `shared_preload_libraries=citus` and
 * `wal_level=logical`, on free loopback ports, as a DBA runs one. Debian has no Citus: when the
 * extension is missing it is built from `../shared/citus/` beside the checkout (install.sh, one build
 * at a time across shards); where neither is there, the tests say they were skipped and why.
 */
export interface CitusCluster extends CitusDatabase {
  /** Another database of the cluster: made on every node with Citus and the same nodes (a twin's, say). */
  database(name: string): Promise<CitusDatabase>;
  /** A streaming standby of worker `index` (0 or 1), stopped with the cluster; its pool is on the cluster's database. */
  standby(index: number): Promise<pg.Pool>;
  /** Node `index` (0 the coordinator) stopped -m immediate and started again, as a crash and its recovery. */
  restart(index: number): Promise<void>;
  stop(): Promise<void>;
}

/** One database of the cluster, on every node: postgres://postgres@127.0.0.1:<port>/<name> of the coordinator, then of each worker. */
export interface CitusDatabase {
  coordinatorUrl: string;
  workerUrls: string[];
  coordinator: pg.Pool;
  workers: pg.Pool[];
  /** Where each node listens, coordinator first. */
  ports: number[];
}

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const installer = path.resolve(repo, '..', 'shared', 'citus', 'install.sh');
const databaseName = 'shadowcut_test';

function pgConfig(): string | null {
  const found = spawnSync('sh', ['-c', 'ls /usr/lib/postgresql/*/bin/pg_config 2>/dev/null | sort -V | tail -1'], { encoding: 'utf8' }).stdout.trim();
  return found || null;
}

function citusInstalled(config: string): boolean {
  const libdir = spawnSync(config, ['--pkglibdir'], { encoding: 'utf8' }).stdout.trim();
  return libdir !== '' && existsSync(path.join(libdir, 'citus.so'));
}

/** Null when a cluster can be had (Citus installed, or its source beside the checkout); else why not. */
export function citusUnavailable(): string | null {
  const config = pgConfig();
  if (!config) return 'no PostgreSQL server binaries on this machine';
  if (citusInstalled(config) || existsSync(installer)) return null;
  return `Citus is not installed and ${installer} is not there to build it`;
}

/** Builds Citus when it is missing (minutes, once per machine); two shards asking at once build it once. */
function ensureCitus(): void {
  const config = pgConfig()!;
  if (citusInstalled(config)) return;
  const run = spawnSync('flock', ['/tmp/shadowcut-citus-install.lock', 'bash', installer, config], { encoding: 'utf8', timeout: 15 * 60_000 });
  if (run.status !== 0 || !citusInstalled(config)) throw new Error(`building Citus failed (exit ${run.status}): ${run.stdout}${run.stderr}`);
}

export interface CitusClusterOptions {
  /**
   * Nodes whose commits wait for the disk (fsync, full_page_writes and synchronous_commit on), as DBAs
   * run them: the bench's. The tests' nodes do not (fsync off, synchronous_commit off).
   */
  durable?: boolean;
}

export async function startCitusCluster(options: CitusClusterOptions = {}): Promise<CitusCluster> {
  ensureCitus();
  const nodes: ExtraPostgres[] = [];
  const pools: pg.Pool[] = [];
  const standbys: ExtraPostgres[] = [];
  const stop = async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => {})));
    for (const node of [...standbys, ...nodes.reverse()]) await node.stop().catch(() => {});
  };
  const standby = async (index: number): Promise<pg.Pool> => {
    const server = await startExtraStandby(nodes[1 + index]);
    standbys.push(server);
    const pool = new pg.Pool({ connectionString: `postgres://postgres@127.0.0.1:${server.port}/${databaseName}`, max: 2 });
    pool.on('error', () => {});
    pools.push(pool);
    return pool;
  };
  const database = async (name: string): Promise<CitusDatabase> => {
    for (const node of nodes) {
      const admin = await node.admin();
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.end();
      const db = await node.admin(name);
      await db.query('CREATE EXTENSION citus');
      await db.end();
    }
    const urls = nodes.map((n) => `postgres://postgres@127.0.0.1:${n.port}/${name}`);
    // A statement that waits two minutes fails naming where: a hung test would only time out.
    const opened = urls.map((connectionString) => new pg.Pool({ connectionString, max: 8, statement_timeout: 120_000 }));
    for (const p of opened) p.on('error', () => {});
    pools.push(...opened);
    await opened[0].query('SELECT pg_catalog.citus_set_coordinator_host($1, $2)', ['127.0.0.1', nodes[0].port]);
    for (const worker of nodes.slice(1)) await opened[0].query('SELECT pg_catalog.citus_add_node($1, $2)', ['127.0.0.1', worker.port]);
    return { coordinatorUrl: urls[0], workerUrls: urls.slice(1), coordinator: opened[0], workers: opened.slice(1), ports: nodes.map((n) => n.port) };
  };
  try {
    for (let i = 0; i < 3; i++) {
      nodes.push(
        await startExtraPostgres({
          settings: [
            "shared_preload_libraries = 'citus'",
            'wal_level = logical',
            'max_replication_slots = 20',
            'max_wal_senders = 20',
            // Last, after extra-postgres.ts's fsync = off, so that they win; a standby takes them with its base backup.
            ...(options.durable ? ['fsync = on', 'full_page_writes = on', 'synchronous_commit = on'] : ['synchronous_commit = off']),
          ],
          hba: ['host all all 127.0.0.1/32 trust', 'host replication all 127.0.0.1/32 trust'],
        }),
      );
    }
    const restart = (index: number) => nodes[index].restart();
    return { ...(await database(databaseName)), database, standby, restart, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
