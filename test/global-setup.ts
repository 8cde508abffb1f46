// Vitest globalSetup: gives the test run a private MariaDB primary+replica and PostgreSQL
// primary+standby, and a MariaDB and a PostgreSQL as they come (no binlog, wal_level=replica)
// (scripts/servers.sh), and hands their URLs to test workers through
// process.env. Vitest builds each worker's env from the main process's process.env when it
// starts running tests, which is after this setup has run, so plain assignment reaches them.
//
// - All six SHADOWCUT_*_URL already set: nothing is started (CI or a developer pointing
//   tests at their own servers).
// - Servers of this checkout already up (e.g. `scripts/servers.sh up` by hand, or another
//   run): reused, and left running afterwards because we didn't start them.
// - Otherwise started here, and stopped in teardown unless SHADOWCUT_KEEP_SERVERS is set.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exitOnServersUnavailable, ServersUnavailable } from '../scripts/servers-error.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const script = path.join(repoRoot, 'scripts', 'servers.sh');
const stateDir = process.env.SHADOWCUT_SERVERS_DIR ? path.resolve(repoRoot, process.env.SHADOWCUT_SERVERS_DIR) : path.join(repoRoot, '.servers');

/** env var -> key in <state dir>/servers.json */
const URL_VARS = {
  SHADOWCUT_MYSQL_URL: 'mysqlUrl',
  SHADOWCUT_MYSQL_REPLICA_URL: 'mysqlReplicaUrl',
  SHADOWCUT_PG_URL: 'pgUrl',
  SHADOWCUT_PG_STANDBY_URL: 'pgStandbyUrl',
  SHADOWCUT_MYSQL_PLAIN_URL: 'mysqlPlainUrl',
  SHADOWCUT_PG_PLAIN_URL: 'pgPlainUrl',
} as const;
type UrlVar = keyof typeof URL_VARS;

let startedHere = false;

function servers(command: 'up' | 'down' | 'env', stdio: 'inherit' | 'ignore'): void {
  execFileSync('bash', [script, command], {
    cwd: repoRoot,
    // The script's progress and errors (with server log tails) go to stderr; stdout is the
    // env listing, which we read from servers.json instead.
    stdio: ['ignore', 'ignore', stdio],
    env: { ...process.env, SHADOWCUT_SERVERS_DIR: stateDir },
    timeout: 5 * 60_000,
  });
}

export function setup(): void {
  const vars = Object.keys(URL_VARS) as UrlVar[];
  const missing = vars.filter((v) => !process.env[v]);
  if (missing.length === 0) return;

  let alreadyUp = true;
  try {
    servers('env', 'ignore');
  } catch {
    alreadyUp = false;
  }
  try {
    servers('up', 'inherit');
  } catch (error) {
    exitOnServersUnavailable('npm test', new ServersUnavailable(`scripts/servers.sh up exited ${(error as { status?: number }).status ?? 'abnormally'}`));
  }
  startedHere = !alreadyUp;

  const urls = JSON.parse(readFileSync(path.join(stateDir, 'servers.json'), 'utf8')) as Record<string, unknown>;
  // Only fill in what the caller didn't set, so a single URL can still be overridden.
  for (const v of missing) {
    const url = urls[URL_VARS[v]];
    if (typeof url !== 'string' || url === '') {
      throw new Error(`servers.json in ${stateDir} has no ${URL_VARS[v]}`);
    }
    process.env[v] = url;
  }
}

export function teardown(): void {
  if (!startedHere || process.env.SHADOWCUT_KEEP_SERVERS) return;
  servers('down', 'inherit');
}
