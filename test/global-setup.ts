// Vitest globalSetup: gives the test run a private MariaDB primary+replica and PostgreSQL
// primary+standby, and a MariaDB and a PostgreSQL as they come (no binlog, wal_level=replica)
// (scripts/servers.sh), and hands their URLs to test workers through
// process.env. Vitest builds each worker's env from the main process's process.env when it
// starts running tests, which is after this setup has run, so plain assignment reaches them.
//
// - All six SHADOWCUT_*_URL already set: nothing is started (CI, a developer pointing tests at
//   their own servers, or a shard of `npm test`, whose runner started its set: scripts/test-shards.ts).
// - Servers of this checkout already up (e.g. `scripts/servers.sh up` by hand, or another
//   run): reused, and left running afterwards because we didn't start them.
// - Otherwise started here, and stopped in teardown unless SHADOWCUT_KEEP_SERVERS is set.
import { exitOnServersUnavailable } from '../scripts/servers-error.js';
import { defaultStateDir, serversDown, serversUp, urlVars, type ServerSet } from '../scripts/test-servers.js';

const stateDir = defaultStateDir();
let started: ServerSet | undefined;

export async function setup(): Promise<void> {
  const missing = urlVars.filter((v) => !process.env[v]);
  if (missing.length === 0) return;
  try {
    started = await serversUp(stateDir);
  } catch (error) {
    exitOnServersUnavailable('npm test', error);
    throw error;
  }
  // Only fill in what the caller didn't set, so a single URL can still be overridden.
  for (const v of missing) process.env[v] = started.urls[v];
}

export async function teardown(): Promise<void> {
  if (started) await serversDown(stateDir, started);
}
