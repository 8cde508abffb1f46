import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { freePort } from './free-port.js';

/**
 * A MariaDB of its own for a test that needs server settings the shared servers cannot have (such
 * as lower_case_table_names, fixed when the data directory is made). Binlog in ROW format, as
 * scripts/servers.sh configures the shared primary; a directory and a port of its own, removed by
 * `stop`.
 */
export interface ExtraMariadb {
  url(database: string): string;
  root(): Promise<mysql.Connection>;
  /** Killed with SIGKILL, as a crash or the OOM killer would, and started again on its data: crash recovery. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const sbin = (name: string) => spawnSync('sh', ['-c', `command -v ${name} || echo /usr/sbin/${name}`], { encoding: 'utf8' }).stdout.trim();

export async function startExtraMariadb(options: string[]): Promise<ExtraMariadb> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'shadowcut-extra-mariadb-'));
  const data = path.join(dir, 'data');
  const sock = path.join(dir, 'mysqld.sock');
  const port = await freePort();
  // As root the server runs as root (as scripts/servers.sh runs it); as anyone else, as that user.
  const user = process.getuid?.() === 0 ? ['--user=root'] : [];
  const install = spawnSync(
    sbin('mariadb-install-db'),
    ['--no-defaults', ...user, `--datadir=${data}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...options],
    { encoding: 'utf8' },
  );
  if (install.status !== 0) throw new Error(`mariadb-install-db failed: ${install.stderr}`);
  const launch = () =>
    spawn(
      sbin('mariadbd'),
      [
        '--no-defaults',
        ...user,
        `--datadir=${data}`,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        `--socket=${sock}`,
        `--tmpdir=${dir}`,
        `--log-error=${path.join(dir, 'error.log')}`,
        '--skip-name-resolve',
        '--innodb-buffer-pool-size=64M',
        '--server-id=7',
        '--log-bin=extra-bin',
        '--binlog-format=ROW',
        '--binlog-row-image=FULL',
        '--binlog-row-metadata=FULL',
        ...options,
      ],
      { stdio: 'ignore', detached: true },
    );
  let server = launch();
  const ended = (child: ReturnType<typeof launch>) =>
    new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve)));
  const stop = async () => {
    server.kill('SIGTERM');
    await ended(server);
    rmSync(dir, { recursive: true, force: true });
  };
  const root = () => mysql.createConnection({ socketPath: sock, user: 'root', multipleStatements: true });
  /** Until the server takes connections; it has then recovered whatever a crash left. */
  const ready = async () => {
    for (let i = 0; ; i++) {
      try {
        const conn = await root();
        await conn.query(`CREATE USER IF NOT EXISTS 'shadowcut'@'%' IDENTIFIED BY 'shadowcut'; GRANT ALL PRIVILEGES ON *.* TO 'shadowcut'@'%'`);
        await conn.end();
        return;
      } catch (error) {
        if (i > 600 || server.exitCode !== null) {
          await stop();
          throw new Error(`the extra MariaDB did not start: ${(error as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  await ready();
  const restart = async () => {
    server.kill('SIGKILL');
    await ended(server);
    server = launch();
    await ready();
  };
  return { url: (database) => `mysql://shadowcut:shadowcut@127.0.0.1:${port}/${database}`, root, restart, stop };
}
