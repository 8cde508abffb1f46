import pg from 'pg';
import { MAX_COPY_THREADS } from '../../../core/engine/defaults.js';
import { CLOSING, ignoreFailure } from '../../../core/engine/errors.js';
import type { Session } from '../../../core/engine/types.js';
import { CitusClient } from './citus-client.js';
import { connectFirst, pgConfig, type PgTarget } from './target.js';

declare module 'pg' {
  interface ClientBase {
    /** The server backend's pid, which pg keeps from the connection's BackendKeyData; its types leave it out. Set on every connected client. */
    processID: number;
  }
}

/**
 * Every value comes back as the server's text (bytea as `\x..`, timestamps with all their digits):
 * keys are sent back as parameters exactly as they came (docs/invariants.md, invariant 2), and no JS Date or
 * Number ever holds a value.
 */
const rawText: pg.CustomTypesConfig = { getTypeParser: () => (value: string) => value };

/**
 * shadowcut's own SQL resolves names in pg_catalog only. A function is chosen by the best match of
 * its argument types among every schema on the path, wherever pg_catalog stands: a role that can
 * create in a schema on the user's path (public, often) could otherwise put an exact-type
 * `array_to_string(text[], text)` there and have it run as the migrating role. pg_temp last,
 * explicitly, or it would be searched first.
 */
export const PINNED_SEARCH_PATH = 'pg_catalog, pg_temp';
/** The same as a connection's startup option, for pools that run nothing but shadowcut's own SQL. */
export const PINNED_SEARCH_PATH_OPTION = `-c search_path=${PINNED_SEARCH_PATH.replace(/ /g, '')}`;

/** The search_path each pooled connection would have had; the user's own SQL runs under it (`asUser`). */
const userPaths = new WeakMap<pg.ClientBase, string>();

/** How many of a set's checksum views the pool has room for at once. */
const SET_VIEWS = 4;
/** The pool's size: the copy's threads and four more, and five connections for each view. */
export const POOL_MAX = MAX_COPY_THREADS + 4 + SET_VIEWS * 5;

function openPool(target: PgTarget, userPath: string, citus: boolean, synchronousCommit?: string): pg.Pool {
  const settings = [PINNED_SEARCH_PATH_OPTION];
  if (synchronousCommit) settings.push(`-c synchronous_commit=${synchronousCommit}`);
  // One engine serves every table of a set, and each table's checksum view holds four connections
  // (and takes a fifth to apply between its chunks): room for several at once besides a copy's
  // threads. Connections are opened only as needed, and idle ones close.
  // On a Citus node every statement carries the path to the workers it reaches (citus-client.ts);
  // pools made from this one's options (the heartbeat's, the lock probe's) inherit the client.
  const pool = new pg.Pool(
    pgConfig(target, { types: rawText, max: POOL_MAX, application_name: 'shadowcut', options: settings.join(' '), ...(citus ? { Client: CitusClient } : {}) }),
  );
  // A client losing its connection (a failover, a terminated backend) must not crash the process with
  // an unhandled 'error' event, idle or checked out; the query in flight rejects, and is retried.
  pool.on('error', () => {});
  pool.on('connect', (client) => {
    client.on('error', () => {});
    userPaths.set(client, userPath);
  });
  return pool;
}

/**
 * Our commits never wait for a synchronous standby: before the cut-over they touch only helper
 * tables, which a failover could not carry on with anyway (the slot stays behind), and under a
 * lock a slow or missing standby would hold the lock without bound. They are still flushed
 * locally, unless the server does not even do that (`off` stays `off`). The user's search_path is
 * read once, on a connection of its own that runs nothing else; that first connection also settles
 * how every later one uses TLS.
 */
export async function openEnginePool(targets: PgTarget[]): Promise<{ target: PgTarget; pool: pg.Pool; database: string }> {
  const { target, client: first } = await connectFirst(targets, { application_name: 'shadowcut' });
  let settings: { s: string; path: string; db: string; citus: boolean };
  try {
    settings = (
      await first.query(
        `SELECT pg_catalog.current_setting('synchronous_commit') AS s, pg_catalog.current_setting('search_path') AS path, pg_catalog.current_database() AS db,
                EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus') AS citus`,
      )
    ).rows[0];
  } finally {
    await first.end().catch(ignoreFailure(CLOSING));
  }
  return { target, pool: openPool(target, settings.path, settings.citus, settings.s === 'off' ? undefined : 'local'), database: settings.db };
}

/**
 * Runs the user's own SQL (an ALTER, a USING expression, --set, --where, --expect) under the
 * search_path the user's session would have, as the native statement would; then the pinned one
 * again. A SET inside a transaction that fails is undone by its rollback, so the reset may fail
 * harmlessly there.
 */
export async function asUser<T>(client: Client, fn: () => Promise<T>): Promise<T> {
  const path = userPaths.get(client);
  if (path === undefined) return fn();
  await client.query(`SELECT pg_catalog.set_config('search_path', $1, false)`, [path]);
  try {
    return await fn();
  } finally {
    await client
      .query(`SELECT pg_catalog.set_config('search_path', $1, false)`, [PINNED_SEARCH_PATH])
      .catch(ignoreFailure("a failed transaction's rollback undoes the SET; outside one, it fails only on a broken connection, which is not lent out again"));
  }
}

/**
 * The user's search_path for the rest of the caller's transaction: what its COMMIT fires (deferred
 * triggers of the user's UPDATE) sees the path the user's own statement would have had.
 */
export async function userPathForTransaction(client: Client): Promise<void> {
  const path = userPaths.get(client);
  if (path !== undefined) await client.query(`SELECT pg_catalog.set_config('search_path', $1, true)`, [path]);
}

/** `asUser` on a connection of its own from the pool. */
export async function asUserOn<T>(pool: pg.Pool, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    return await asUser(client, () => fn(client));
  } finally {
    client.release();
  }
}

export type Client = pg.PoolClient;

/** A connection handed to the runner and back; `inTransaction` says whether it holds a lock transaction. */
export class PgSession implements Session {
  readonly id: string;
  constructor(
    readonly client: Client,
    readonly inTransaction: boolean,
  ) {
    this.id = `pg-${client.processID ?? 'session'}`;
  }
}
