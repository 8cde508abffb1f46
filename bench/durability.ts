// What the bench's figures were measured on, read from the servers themselves rather than assumed:
// their durability settings (a commit that waits for the disk or not), the disk's own figures in the
// filesystem of their data, and the bytes each run made them write (redo, binlog, WAL). Durable servers
// are what DBAs run; relaxed ones are for the tests, and a relaxed result says so on every page.
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import pg from 'pg';
import { describeDisk, measureDisk, type DiskFigures } from './disk.js';
import { mysqlConnect } from './seed.js';
import type { Durability, ServerToRead } from './servers.js';

export type { Durability, ServerToRead };
export type ServerEngine = ServerToRead['engine'];

export interface ServerSettings {
  label: string;
  engine: ServerEngine;
  /** As the server reports them: innodb_flush_log_at_trx_commit, sync_binlog, binlog; fsync, synchronous_commit, full_page_writes, wal_level. */
  settings: Record<string, string>;
  /** Its data directory, where the server tells it (a PostgreSQL login without the right to read it does not). */
  dataDir?: string;
  durability: Durability;
}

/** The sitting's conditions, on every result page. */
export interface Sitting {
  asked: Durability;
  servers: ServerSettings[];
  disks: Array<DiskFigures | { dir: string; error: string }>;
}

/** The servers are not what was asked for: one line, no stack. */
export class DurabilityMismatch extends Error {}

/** Bytes a run made the server write; a kind the server does not have (a binlog, say) is absent. */
export interface BytesWritten {
  redo?: number;
  binlog?: number;
  wal?: number;
}

async function readMysql(url: string): Promise<{ settings: Record<string, string>; dataDir: string }> {
  const c = await mysqlConnect(url);
  try {
    const [rows] = await c.query('SELECT @@innodb_flush_log_at_trx_commit AS f, @@sync_binlog AS s, @@log_bin AS b, @@datadir AS d');
    const r = (rows as Array<Record<string, unknown>>)[0];
    return {
      settings: { innodb_flush_log_at_trx_commit: String(r.f), sync_binlog: String(r.s), binlog: Number(r.b) === 1 ? 'ON' : 'OFF' },
      dataDir: String(r.d),
    };
  } finally {
    await c.end();
  }
}

const PG_SETTINGS = ['fsync', 'synchronous_commit', 'full_page_writes', 'wal_level'];

async function readPg(url: string): Promise<{ settings: Record<string, string>; dataDir?: string }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ name: string; setting: string }>('SELECT name, setting FROM pg_settings WHERE name = ANY($1)', [
      [...PG_SETTINGS, 'data_directory'],
    ]);
    const by = new Map(rows.map((r) => [r.name, r.setting]));
    return { settings: Object.fromEntries(PG_SETTINGS.map((n) => [n, by.get(n) ?? '?'])), dataDir: by.get('data_directory') };
  } finally {
    await c.end();
  }
}

/**
 * Durable as the servers ship: MariaDB flushes its redo log at each commit and, with a binlog, syncs
 * it too (MySQL 8's defaults); PostgreSQL syncs, writes full pages and waits for its WAL at commit.
 */
export function durabilityOf(engine: ServerEngine, s: Record<string, string>): Durability {
  const durable =
    engine === 'mysql'
      ? s.innodb_flush_log_at_trx_commit === '1' && (s.binlog === 'OFF' || s.sync_binlog === '1')
      : s.fsync === 'on' && s.full_page_writes === 'on' && s.synchronous_commit !== 'off';
  return durable ? 'durable' : 'relaxed';
}

export async function readSettings(servers: ServerToRead[]): Promise<ServerSettings[]> {
  const out: ServerSettings[] = [];
  for (const s of servers) {
    const read = s.engine === 'mysql' ? await readMysql(s.url) : await readPg(s.url);
    out.push({ label: s.label, engine: s.engine, settings: read.settings, dataDir: read.dataDir, durability: durabilityOf(s.engine, read.settings) });
  }
  return out;
}

export const settingsText = (s: ServerSettings) =>
  Object.entries(s.settings)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');

/** Refuses servers that are not what was asked, naming the first and what it reads; `hint` says what to do. */
export function checkDurability(servers: ServerSettings[], asked: Durability, hint: string): void {
  const off = servers.find((s) => s.durability !== asked);
  if (off) throw new DurabilityMismatch(`asked for ${asked} servers, but the ${off.label} is ${off.durability} (${settingsText(off)}): ${hint}`);
}

/**
 * The disk's figures in the filesystem of each data directory on this machine, once per filesystem,
 * beside the data (not in it); servers elsewhere leave a line saying so.
 */
export function measureDisks(servers: ServerSettings[]): Sitting['disks'] {
  const seen = new Set<number>();
  const out: Sitting['disks'] = [];
  for (const s of servers) {
    if (!s.dataDir || !existsSync(s.dataDir)) continue;
    const dir = dirname(s.dataDir.replace(/\/+$/, ''));
    const dev = statSync(dir).dev;
    if (seen.has(dev)) continue;
    seen.add(dev);
    try {
      out.push(measureDisk(dir));
    } catch (e) {
      out.push({ dir, error: (e as Error).message });
    }
  }
  if (out.length === 0) out.push({ dir: '-', error: "none of the servers' data directories is on this machine (or readable by this login)" });
  return out;
}

/** Reads the servers, refuses them if they are not what was asked, then measures the disk: before any run. */
export async function takeSitting(servers: ServerToRead[], asked: Durability, hint: string): Promise<Sitting> {
  const read = await readSettings(servers);
  checkDurability(read, asked, hint);
  return { asked, servers: read, disks: measureDisks(read) };
}

/** The sitting as lines, for the .md pages and the terminal. */
export function sittingLines(s: Sitting): string[] {
  const mark =
    s.asked === 'durable'
      ? 'servers: durable (commits wait for the disk), as read from each server:'
      : 'servers: RELAXED (--relaxed: commits do not wait for the disk; not figures of servers as DBAs run them), as read from each server:';
  return [
    mark,
    ...s.servers.map((x) => `- ${x.label}: ${settingsText(x)}`),
    ...s.disks.map((d) => ('error' in d ? `- disk: not measured (${d.error})` : `- ${describeDisk(d)}`)),
  ];
}

/** The title's mark on a relaxed result: no page of one can be taken for a durable figure. */
export const relaxedMark = (asked: Durability | undefined) => (asked === 'relaxed' ? ' [RELAXED servers: not durable figures]' : '');

/**
 * Where the server's logs stand, in bytes written since it began: MariaDB's redo from
 * Innodb_os_log_written, its binlog from the binlog files' sizes (the bench purges only between runs),
 * PostgreSQL's WAL from its insert position (pg_wal_lsn_diff from 0/0), summed over `urls` (a Citus
 * cluster's nodes). Two readings subtracted are what a run wrote.
 */
export async function readCounters(engine: ServerEngine, urls: string[]): Promise<BytesWritten> {
  if (engine === 'postgres') {
    const at = await Promise.all(urls.map((u) => pgQuery(u, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text AS v`)));
    return { wal: at.reduce((n, v) => n + Number(v), 0) };
  }
  const c = await mysqlConnect(urls[0]);
  try {
    const [status] = await c.query(`SHOW GLOBAL STATUS LIKE 'Innodb_os_log_written'`);
    const redo = Number((status as Array<{ Value: string }>)[0]?.Value);
    // An error here means no binlog (or no right to list it): the run has no binlog figure then.
    const binlog = await c.query('SHOW BINARY LOGS').then(
      ([rows]) => (rows as Array<{ File_size: string | number }>).reduce((n, r) => n + Number(r.File_size), 0),
      () => undefined,
    );
    return binlog === undefined ? { redo } : { redo, binlog };
  } finally {
    await c.end();
  }
}

export function bytesBetween(before: BytesWritten, after: BytesWritten): BytesWritten {
  const out: BytesWritten = {};
  for (const k of Object.keys(BYTES_LABELS) as Array<keyof BytesWritten>) {
    const [a, b] = [before[k], after[k]];
    if (a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b)) out[k] = b - a;
  }
  return out;
}

/** Counts what a run writes: call it before the run, and the function it returns after. */
export async function startBytes(engine: ServerEngine, urls: string[]): Promise<() => Promise<BytesWritten>> {
  const before = await readCounters(engine, urls);
  return async () => bytesBetween(before, await readCounters(engine, urls));
}

async function pgQuery(url: string, sql: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<{ v: string }>(sql)).rows[0].v;
  } finally {
    await c.end();
  }
}

export const BYTES_LABELS: Record<keyof BytesWritten, string> = { redo: 'redo', binlog: 'binlog', wal: 'WAL' };

export const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

/** "redo 12.3 MiB, binlog 4.5 MiB", with each kind's ratio to `ref`'s when given. */
export function bytesText(b: BytesWritten | undefined, ref?: BytesWritten): string {
  if (!b) return '-';
  const parts = (Object.keys(BYTES_LABELS) as Array<keyof BytesWritten>).flatMap((k) => {
    const v = b[k];
    if (v === undefined) return [];
    const r = ref?.[k];
    return [`${BYTES_LABELS[k]} ${mib(v)} MiB${r ? ` (${(v / r).toFixed(2)}x)` : ''}`];
  });
  return parts.join(', ') || '-';
}
