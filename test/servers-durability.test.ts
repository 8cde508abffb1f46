// scripts/servers.sh's one switch, read back from the servers themselves: the tests' set keeps its
// commits off the disk, and SHADOWCUT_SERVERS_DURABILITY=durable starts every server of a set (replica,
// standby and the plain ones too) as DBAs run them, which is what the bench asks for.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';

const script = fileURLToPath(new URL('../scripts/servers.sh', import.meta.url));

/** What decides whether a commit waits for the disk, as the server reports it. */
async function durability(url: string | undefined): Promise<string> {
  if (!url) throw new Error('a server has no URL');
  if (url.startsWith('mysql:')) {
    const c = await mysql.createConnection(url);
    const [rows] = await c.query('SELECT @@innodb_flush_log_at_trx_commit AS f, @@sync_binlog AS s, @@log_bin AS b');
    await c.end();
    const r = (rows as Array<Record<string, number>>)[0];
    return `innodb_flush_log_at_trx_commit=${r.f} sync_binlog=${r.s} log_bin=${r.b}`;
  }
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const { rows } = await c.query<{ v: string }>(
    `SELECT format('fsync=%s synchronous_commit=%s full_page_writes=%s',
       current_setting('fsync'), current_setting('synchronous_commit'), current_setting('full_page_writes')) AS v`,
  );
  await c.end();
  return rows[0].v;
}

const run = (command: string, env: Record<string, string>) =>
  new Promise<{ status: number | null; stderr: string }>((resolve) => {
    execFile('bash', [script, command], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 300_000 }, (error, _stdout, stderr) =>
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : null) : 0, stderr }),
    );
  });

describe("scripts/servers.sh's durability", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sc-durable-'));
  const durable = { SHADOWCUT_SERVERS_DIR: dir, SHADOWCUT_SERVERS_DURABILITY: 'durable' };

  afterAll(async () => {
    await run('down', durable);
    rmSync(dir, { recursive: true, force: true });
  });

  it("leaves the tests' servers relaxed", async () => {
    const env = process.env;
    const urls = [env.SHADOWCUT_MYSQL_URL, env.SHADOWCUT_MYSQL_REPLICA_URL, env.SHADOWCUT_PG_URL, env.SHADOWCUT_PG_STANDBY_URL];
    expect(await Promise.all(urls.map(durability))).toEqual([
      'innodb_flush_log_at_trx_commit=2 sync_binlog=0 log_bin=1',
      'innodb_flush_log_at_trx_commit=2 sync_binlog=0 log_bin=1',
      'fsync=off synchronous_commit=off full_page_writes=off',
      'fsync=off synchronous_commit=off full_page_writes=off',
    ]);
  });

  it('starts every server of the set durable when asked, its own settings before (sync_binlog=0 in the topology) and durability last', async () => {
    const up = await run('up', durable);
    expect(up.stderr).not.toMatch(/ERROR/);
    expect(up.status).toBe(0);
    const urls = JSON.parse(readFileSync(path.join(dir, 'servers.json'), 'utf8')) as Record<string, string>;
    // The list's order: mysql, mysqlReplica, mysqlPlain (no binlog), pg, pgStandby, pgPlain.
    expect(await Promise.all(Object.values(urls).map(durability))).toEqual([
      'innodb_flush_log_at_trx_commit=1 sync_binlog=1 log_bin=1',
      'innodb_flush_log_at_trx_commit=1 sync_binlog=1 log_bin=1',
      'innodb_flush_log_at_trx_commit=1 sync_binlog=1 log_bin=0',
      'fsync=on synchronous_commit=on full_page_writes=on',
      'fsync=on synchronous_commit=on full_page_writes=on',
      'fsync=on synchronous_commit=on full_page_writes=on',
    ]);
  });

  it('refuses a durability it does not know, in one line', async () => {
    const r = await run('env', { SHADOWCUT_SERVERS_DIR: dir, SHADOWCUT_SERVERS_DURABILITY: 'fast' });
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe('[servers] ERROR: SHADOWCUT_SERVERS_DURABILITY must be durable or relaxed (got "fast")');
  });
});
