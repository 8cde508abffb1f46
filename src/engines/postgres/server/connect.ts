import pg from 'pg';
import { MAX_COPY_THREADS } from '../../../core/engine/defaults.js';
import { createHash } from 'node:crypto';
import { LockTimeoutError, UserError, ALWAYS_ROLLED_BACK, CLOSING, ROLLBACK_AFTER_FAILURE, ignoreFailure } from '../../../core/engine/errors.js';
import { oldTableName } from '../../../core/engine/old-table.js';
import type { Dialect } from '../../../core/engine/keyset.js';
import type { Position, Session } from '../../../core/engine/types.js';
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

function openPool(target: PgTarget, userPath: string, synchronousCommit?: string): pg.Pool {
  const settings = [PINNED_SEARCH_PATH_OPTION];
  if (synchronousCommit) settings.push(`-c synchronous_commit=${synchronousCommit}`);
  // One engine serves every table of a set, and each table's checksum view holds four connections
  // (and takes a fifth to apply between its chunks): room for several at once besides a copy's
  // threads. Connections are opened only as needed, and idle ones close.
  const pool = new pg.Pool(pgConfig(target, { types: rawText, max: POOL_MAX, application_name: 'shadowcut', options: settings.join(' ') }));
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
  let settings: { s: string; path: string; db: string };
  try {
    settings = (
      await first.query(
        `SELECT pg_catalog.current_setting('synchronous_commit') AS s, pg_catalog.current_setting('search_path') AS path, pg_catalog.current_database() AS db`,
      )
    ).rows[0];
  } finally {
    await first.end().catch(ignoreFailure(CLOSING));
  }
  return { target, pool: openPool(target, settings.path, settings.s === 'off' ? undefined : 'local'), database: settings.db };
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

export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function qualified(schema: string, name: string): string {
  return `${ident(schema)}.${ident(name)}`;
}

export const dialect: Dialect = { ident, param: (n, type) => (type === undefined ? `$${n}` : `$${n}::${type}`) };

/** Catalog booleans arrive as the server's text. */
export const isTrue = (v: unknown) => v === 't' || v === true;

/** LSNs `X/Y` compared as 64-bit numbers; string comparison gets `9/0` vs `10/0` wrong. */
export function lsnValue(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

export function formatLsn(value: bigint): string {
  return `${(value >> 32n).toString(16).toUpperCase()}/${(value & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function comparePositions(a: Position, b: Position): number {
  const x = lsnValue(String(a.lsn));
  const y = lsnValue(String(b.lsn));
  return x < y ? -1 : x > y ? 1 : 0;
}

export function errorCode(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}

/** 55P03 lock_not_available: what `lock_timeout` raises, and what a retry may get past. */
export function isLockNotAvailable(error: unknown): boolean {
  return errorCode(error) === '55P03';
}

/** A lock not had in time, as the runner retries it. */
export function asLockTimeout(error: unknown, what: string): unknown {
  if (isLockNotAvailable(error)) return new LockTimeoutError(`${what}: lock not granted in time`);
  return error;
}

/** Runs `fn` in one transaction on a pooled connection (READ COMMITTED: each statement sees the latest commits). */
/**
 * `fn` in a transaction that is always rolled back (probes: nothing of it may stay), its lock waits
 * bounded. The client is discarded after any failure but a UserError, which is a verdict on the
 * input, not on the connection.
 */
export async function inRolledBackTransaction<T>(pool: pg.Pool, lockTimeoutMs: number, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    await client.query(`SET LOCAL lock_timeout = ${lockTimeoutMs}`);
    return await fn(client);
  } catch (error) {
    broken = error instanceof UserError ? undefined : (error as Error);
    throw error;
  } finally {
    await client.query('ROLLBACK').catch(ignoreFailure(ALWAYS_ROLLED_BACK));
    client.release(broken);
  }
}

export async function inTransaction<T>(pool: pg.Pool, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let failure: Error | undefined;
  try {
    await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    failure = error as Error;
    await client.query('ROLLBACK').catch(ignoreFailure(ROLLBACK_AFTER_FAILURE));
    throw error;
  } finally {
    // Released with its error, the client is discarded: one whose connection broke must never be lent out again.
    client.release(failure);
  }
}

/**
 * Helper object names, derived from the table so that leftovers of an earlier run are found again.
 * Slot names allow only [a-z0-9_]; a hash of the qualified name keeps different tables apart.
 */
export function helperNames(schema: string, name: string) {
  // The same suffix style as the MySQL engine (where it matters for lock order), so operators see one convention.
  const shadow = `${name}__new`;
  const old = oldTableName(name);
  if (Buffer.byteLength(shadow) > 63) {
    throw new UserError(`table name ${name} is too long for helper tables (at most 58 bytes); rename it first`);
  }
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 32);
  const hash = createHash('md5').update(`${schema}.${name}`).digest('hex').slice(0, 8);
  const stream = `shadowcut_${slug}_${hash}`;
  return {
    shadow,
    old,
    state: `${name}__state`,
    heartbeat: `${name}__hb`,
    log: `${name}__log`,
    slot: stream,
    publication: stream,
    // Trigger capture: the function shares the stream's name (functions have a namespace of their own);
    // the triggers are named as MySQL's, one per event (TRUNCATE's is a statement trigger).
    captureFunction: stream,
    captureTriggers: [`${name}__ti`, `${name}__tu`, `${name}__td`, `${name}__tt`],
    // A revert window's capture on the new table: named apart from the forward run's, which a run in
    // trigger mode still has on the original when these are installed on the shadow.
    reverseCapture: {
      log: `${name}__rlog`,
      captureFunction: `${stream}_r`,
      captureTriggers: [`${name}__rti`, `${name}__rtu`, `${name}__rtd`, `${name}__rtt`],
    },
  };
}

/**
 * A stream's replication slot: slots are the server's, not a database's, so the same table in two
 * databases of one server (a fleet of tenants, two runs at once) would meet in one slot. The
 * database's hash keeps them apart; the publication, a database's own, keeps the stream's name.
 */
export function slotName(stream: string, database: string): string {
  return `${stream}_${createHash('md5').update(database).digest('hex').slice(0, 6)}`;
}

/** `slotName` for the database `db` is connected to. */
export async function slotOn(db: { query(sql: string): Promise<{ rows: Record<string, unknown>[] }> }, stream: string): Promise<string> {
  const { rows } = await db.query('SELECT pg_catalog.current_database() AS d');
  return slotName(stream, String(rows[0].d));
}

/** Splits `schema.name` (either part may be double-quoted; unquoted parts fold to lower case as in SQL). */
export function parseTableName(input: string): { schema: string; name: string } {
  const bad = () => new UserError(`cannot read table name "${input}"; use name or schema.name`);
  const text = input.trim();
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    let part = '';
    if (text[i] === '"') {
      let j = i + 1;
      for (;;) {
        const close = text.indexOf('"', j);
        if (close < 0) throw bad();
        part += text.slice(j, close);
        if (text[close + 1] !== '"') {
          i = close + 1;
          break;
        }
        part += '"';
        j = close + 2;
      }
    } else {
      const dot = text.indexOf('.', i);
      const end = dot < 0 ? text.length : dot;
      part = text.slice(i, end).toLowerCase();
      if (/["\s]/.test(part)) throw bad();
      i = end;
    }
    if (!part) throw bad();
    parts.push(part);
    if (i === text.length) break;
    if (text[i] !== '.' || parts.length === 2) throw bad();
    i++;
  }
  return parts.length === 2 ? { schema: parts[0], name: parts[1] } : { schema: 'public', name: parts[0] };
}

/** Connection lost, server shutting down or refusing connections for now: worth retrying. */
// 55006: a replication slot still held by a walsender that is going away (after a lost connection).
const TRANSIENT_SQLSTATES = new Set(['57P01', '57P02', '57P03', '08000', '08001', '08003', '08006', '53300', '40001', '40P01', '55006']);

/** A serialization failure or a deadlock: the server answered that the transaction was rolled back. */
export function isRolledBack(error: unknown): boolean {
  return ['40001', '40P01'].includes((error as { code?: string }).code ?? '');
}

export function isTransientPgError(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  if (TRANSIENT_SQLSTATES.has(e.code ?? '') || ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT'].includes(e.code ?? '')) return true;
  return /Connection terminated|connection (was )?closed|connection error and is not queryable/i.test(e.message ?? '');
}
