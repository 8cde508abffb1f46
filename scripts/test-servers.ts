// One set of private servers for a test run (scripts/servers.sh), as test/global-setup.ts and the
// sharded runner (test-shards.ts) both start them: reused when the state dir's servers already
// answer, started otherwise, and the URLs read back as the SHADOWCUT_*_URL the tests read.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServersUnavailable } from './servers-error.js';

// Compiled into dist/scripts as well as read from source by vitest: find the repository either way.
const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, path.basename(path.dirname(here)) === 'dist' ? '../..' : '..');
const script = path.join(repoRoot, 'scripts', 'servers.sh');

/** env var -> key in <state dir>/servers.json */
const URL_VARS = {
  SHADOWCUT_MYSQL_URL: 'mysqlUrl',
  SHADOWCUT_MYSQL_REPLICA_URL: 'mysqlReplicaUrl',
  SHADOWCUT_PG_URL: 'pgUrl',
  SHADOWCUT_PG_STANDBY_URL: 'pgStandbyUrl',
  SHADOWCUT_MYSQL_PLAIN_URL: 'mysqlPlainUrl',
  SHADOWCUT_PG_PLAIN_URL: 'pgPlainUrl',
} as const;
export type UrlVar = keyof typeof URL_VARS;
export const urlVars = Object.keys(URL_VARS) as UrlVar[];

/** The state dir a run uses: $SHADOWCUT_SERVERS_DIR (relative to the checkout) or <repo>/.servers. */
export function defaultStateDir(): string {
  const given = process.env.SHADOWCUT_SERVERS_DIR;
  return given ? path.resolve(repoRoot, given) : path.join(repoRoot, '.servers');
}

/**
 * Async, so a runner can keep reading its other children's output meanwhile. The script's progress
 * and errors (with server log tails) go to stderr; its stdout is the env listing, read from
 * servers.json instead.
 */
function servers(stateDir: string, command: 'up' | 'down' | 'env', showProgress: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script, command], {
      cwd: repoRoot,
      stdio: ['ignore', 'ignore', showProgress ? 'inherit' : 'ignore'],
      env: { ...process.env, SHADOWCUT_SERVERS_DIR: stateDir },
      timeout: 5 * 60_000,
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve(code ?? 1));
  });
}

export interface ServerSet {
  urls: Record<UrlVar, string>;
  /** False when they were already up: then whoever started them stops them. */
  startedHere: boolean;
}

export async function serversUp(stateDir: string): Promise<ServerSet> {
  const alreadyUp = (await servers(stateDir, 'env', false)) === 0;
  const code = await servers(stateDir, 'up', true);
  if (code !== 0) throw new ServersUnavailable(`scripts/servers.sh up exited ${code}`);
  const json = JSON.parse(readFileSync(path.join(stateDir, 'servers.json'), 'utf8')) as Record<string, unknown>;
  const urls = {} as Record<UrlVar, string>;
  for (const v of urlVars) {
    const url = json[URL_VARS[v]];
    if (typeof url !== 'string' || url === '') throw new Error(`servers.json in ${stateDir} has no ${URL_VARS[v]}`);
    urls[v] = url;
  }
  return { urls, startedHere: !alreadyUp };
}

/** Stops a set this run started, unless SHADOWCUT_KEEP_SERVERS asks to keep it for the next run. */
export async function serversDown(stateDir: string, set: ServerSet): Promise<void> {
  if (!set.startedHere || process.env.SHADOWCUT_KEEP_SERVERS) return;
  await servers(stateDir, 'down', true);
}
