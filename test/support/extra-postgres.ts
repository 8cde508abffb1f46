import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './free-port.js';

/**
 * A PostgreSQL of its own for a test that needs server settings the shared servers cannot have
 * (TLS only, say): initdb in a directory of its own, on a free loopback port, stopped and removed
 * by `stop`. As root it runs as the postgres OS user, as scripts/servers.sh runs it (initdb and
 * postgres refuse root). `admin` connects over the server's unix socket as the superuser.
 */
export interface ExtraPostgres {
  port: number;
  dir: string;
  admin(database?: string): Promise<pg.Client>;
  /** Stopped with `-m immediate` (no checkpoint: as a crash leaves it), down `downMs`, and started again: crash recovery. */
  restart(downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface ExtraPostgresOptions {
  /** postgresql.conf lines, appended after initdb's. */
  settings: string[];
  /** pg_hba.conf lines for TCP; the unix socket is always trusted, for `admin`. */
  hba: string[];
  /** Files copied into the data directory, readable by the server only (a TLS key must be). */
  files?: string[];
}

const asRoot = process.getuid?.() === 0;

function binary(name: string): string {
  const found = spawnSync('sh', ['-c', `command -v ${name} || ls /usr/lib/postgresql/*/bin/${name} 2>/dev/null | tail -1`], { encoding: 'utf8' }).stdout.trim();
  if (!found) throw new Error(`${name} not found`);
  return found;
}

/** A PostgreSQL tool, as the postgres OS user when root, from the server's directory (which that user can read). */
function pgTool(dir: string, name: string, args: string[]): void {
  const [command, ...rest] = asRoot ? ['runuser', '-u', 'postgres', '--', binary(name), ...args] : [binary(name), ...args];
  const run = spawnSync(command, rest, { cwd: dir, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`${name} failed: ${run.stderr}${run.stdout}`);
}

/** A directory of its own for a server, owned by the OS user the server runs as. */
function serverDir(): { dir: string; data: string; owner: number; group: number } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'shadowcut-extra-pg-'));
  const owner = asRoot ? Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout) : process.getuid!();
  const group = asRoot ? Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout) : process.getgid!();
  chownSync(dir, owner, group);
  return { dir, data: path.join(dir, 'data'), owner, group };
}

export async function startExtraPostgres(options: ExtraPostgresOptions): Promise<ExtraPostgres> {
  const { dir, data, owner, group } = serverDir();
  const port = await freePort();
  pgTool(dir, 'initdb', ['-D', data, '--auth=trust', '-U', 'postgres', '--encoding=UTF8', '--locale=C', '--no-sync']);
  for (const file of options.files ?? []) {
    const copy = path.join(data, path.basename(file));
    copyFileSync(file, copy);
    chownSync(copy, owner, group);
    chmodSync(copy, 0o600);
  }
  appendFileSync(
    path.join(data, 'postgresql.conf'),
    [`port = ${port}`, `listen_addresses = '127.0.0.1'`, `unix_socket_directories = '${dir}'`, 'fsync = off', ...options.settings, ''].join('\n'),
  );
  writeFileSync(path.join(data, 'pg_hba.conf'), ['local all all trust', ...options.hba, ''].join('\n'));
  return run(dir, data, port);
}

/**
 * A streaming standby of `primary` (whose pg_hba.conf must let replication in over TCP), as a DBA
 * makes one: pg_basebackup with -R, then started on a port of its own.
 */
export async function startExtraStandby(primary: ExtraPostgres): Promise<ExtraPostgres> {
  const { dir, data } = serverDir();
  const port = await freePort();
  pgTool(dir, 'pg_basebackup', ['-D', data, '-R', '-X', 'stream', '-c', 'fast', '-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres']);
  appendFileSync(path.join(data, 'postgresql.conf'), [`port = ${port}`, `unix_socket_directories = '${dir}'`, ''].join('\n'));
  return run(dir, data, port);
}

/** Starts the server in `data` and hands it out; on failure its directory goes. */
function run(dir: string, data: string, port: number): ExtraPostgres {
  const stop = async () => {
    try {
      pgTool(dir, 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const start = () => pgTool(dir, 'pg_ctl', ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', 'start']);
  const restart = async (downMs = 0) => {
    pgTool(dir, 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    start();
  };
  try {
    start();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const admin = async (database = 'postgres') => {
    const client = new pg.Client({ host: dir, port, user: 'postgres', database });
    await client.connect();
    return client;
  };
  return { port, dir, admin, restart, stop };
}
