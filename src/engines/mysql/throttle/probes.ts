import type { Pool, RowDataPacket } from 'mysql2/promise';
import { describeError, UserError, CLOSING, ROLLBACK_AFTER_FAILURE, ignoreFailure, failedAs } from '../../../core/engine/errors.js';
import { HeartbeatHeldError, startHeartbeat, type Heartbeat } from '../../../core/engine/heartbeat.js';
import type { Probes } from '../../../core/engine/types.js';
import { redactUrl } from '../../../core/engine/connect/secrets.js';
import { createPool } from '../server/connect.js';
import { parseMysqlUrl, settleMysqlTarget, type MysqlTarget } from '../server/target.js';
import { dropOwnHelper, ensureHelperTable } from '../server/helper-tables.js';
import { helperNames, type MysqlPlan } from '../schema/plan.js';
import { qualified } from '../server/sql.js';
import { galeraPressure } from '../galera/flow-control.js';
import type { GaleraMember } from '../galera/cluster.js';

/** A replica slower than this to answer counts as unreachable, so a dead host cannot stall the copy loop. */
const REPLICA_TIMEOUT_MS = 2000;

type LagReading = Awaited<ReturnType<Probes['replicaLag']>>[number];

interface Replica {
  name: string;
  pool: Pool;
  /** The replication status statement this server understands; null once it proved unreadable (privileges). */
  statusSql: string | null;
}

/**
 * Server load from SHOW GLOBAL STATUS, and replica lag from a heartbeat: a row on the primary
 * rewritten with the primary's UTC time every 100 ms, read on each replica against the replica's
 * UTC time. Unlike Seconds_Behind_Master this is sub-second, and right on any topology (chained
 * replicas, a stopped SQL thread, an idle primary).
 */
export async function openMysqlProbes(
  target: MysqlTarget,
  pool: Pool,
  plan: Pick<MysqlPlan, 'database' | 'table'>,
  replicas: string[],
  galera: GaleraMember[] | null,
  heartbeatWanted = false,
): Promise<Probes> {
  const load = (names: string[]) => statusValues(pool, names);
  const rows = async (sql: string) => (await pool.query({ sql, rowsAsArray: true }))[0] as unknown[][];
  const redoFill = () => innodbRedoFill(pool);
  const cluster = galera && galeraPressure(galera);
  const clusterPressure = cluster ? { clusterPressure: () => cluster.pressure() } : {};
  const closeCluster = async () => cluster?.close();
  if (replicas.length === 0 && !heartbeatWanted) return { replicaLag: async () => [], load, rows, redoFill, ...clusterPressure, close: closeCluster };

  // Parsed before anything is created, so a bad URL leaves nothing behind.
  const parsed = replicas.map((url) => ({ name: redactUrl(url), targets: replicaTargets(url, plan.database) }));
  const settled = await Promise.all(parsed.map(async (r) => ({ name: r.name, target: await settleReplicaTarget(r.targets) })));
  const { heartbeat, stop } = await mysqlHeartbeat(target, pool, plan.database, helperNames(plan.table).heartbeat);
  const watched: Replica[] = settled.map((r) => ({
    name: r.name,
    pool: createPool(r.target, 1),
    statusSql: 'SHOW REPLICA STATUS',
  }));
  return {
    replicaLag: () => Promise.all(watched.map((r) => readLag(r, heartbeat))),
    timeWrites: (listener) => heartbeat.timeWrites(listener),
    load,
    rows,
    redoFill,
    ...clusterPressure,
    close: async () => {
      await Promise.all(watched.map((r) => r.pool.end().catch(ignoreFailure(CLOSING))));
      await closeCluster();
      await stop();
    },
  };
}

/**
 * The heartbeat's session waits at most a second for any lock (a metadata lock included: LOCK TABLES
 * on the heartbeat by an account that may), so a held table fails a beat instead of stalling it.
 */
const BOUNDED_WAITS = 'SET SESSION lock_wait_timeout = 1, innodb_lock_wait_timeout = 1';

/** The heartbeat on its own one-connection pool, so a busy copy pool never delays a beat. */
function mysqlHeartbeat(target: MysqlTarget, primary: Pool, database: string, name: string) {
  const pool = createPool(target, 1, [BOUNDED_WAITS]);
  const table = qualified(database, name);
  return startHeartbeat(table, {
    // A resumed run finds the table of the run it continues; it is checked as shadowcut's own either way.
    create: () => ensureHelperTable(pool, database, name, 'id TINYINT PRIMARY KEY, ts DATETIME(6) NOT NULL', 'the heartbeat replicas measure their lag by'),
    write: () => beat(pool, table, `${database}.${name}`),
    end: () => pool.end(),
    drop: () => dropOwnHelper(primary, database, name),
  });
}

/**
 * One beat: the row locked first, without waiting, then the write and its commit, timed (what an
 * application's one-row commit costs). The application's accounts can write this table (grants are per
 * database): a session holding the row would otherwise stretch the timed write by its wait, raising
 * the baseline the copy is paced by, or hiding the slowdown it measures. Held, the beat is not made.
 */
async function beat(pool: Pool, table: string, named: string): Promise<number> {
  const conn = await pool.getConnection();
  try {
    await conn.query('START TRANSACTION');
    await conn.query(`SELECT id FROM ${table} WHERE id = 1 FOR UPDATE NOWAIT`);
    const began = performance.now();
    await conn.query(`REPLACE INTO ${table} (id, ts) VALUES (1, UTC_TIMESTAMP(6))`);
    await conn.query('COMMIT');
    return performance.now() - began;
  } catch (error) {
    await conn.query('ROLLBACK').catch(ignoreFailure(ROLLBACK_AFTER_FAILURE));
    const code = (error as { code?: string }).code;
    if (code === 'ER_LOCK_WAIT_TIMEOUT' || code === 'ER_LOCK_NOWAIT') throw new HeartbeatHeldError(`another session holds the row or the table ${named}`);
    throw error;
  } finally {
    conn.release();
  }
}

async function readLag(replica: Replica, heartbeat: Heartbeat): Promise<LagReading> {
  const unknown = (error: string): LagReading => ({ replica: replica.name, lagMs: null, error });
  // A stale heartbeat would only overstate the lag; say what is really wrong.
  if (heartbeat.failure) return unknown(`the heartbeat cannot be written on the primary: ${heartbeat.failure}`);
  try {
    const broken = await replicationFailure(replica);
    if (broken) return unknown(broken);
    const [rows] = await replica.pool.query<RowDataPacket[]>({
      sql: `SELECT TIMESTAMPDIFF(MICROSECOND, ts, UTC_TIMESTAMP(6)) AS us FROM ${heartbeat.table} WHERE id = 1`,
      timeout: REPLICA_TIMEOUT_MS,
    });
    // A replica clock slightly behind the primary's must not read as negative lag.
    if (rows.length) return { replica: replica.name, lagMs: Math.max(0, Math.round(Number(rows[0].us) / 1000)) };
  } catch (error) {
    if ((error as { code?: string }).code !== 'ER_NO_SUCH_TABLE') return unknown(describeError(error));
  }
  // Neither the table nor the first beat has arrived: the replica is behind by at least their age.
  // Counting that as lag, rather than as unmeasurable, spares a healthy replica a throttle at
  // start-up, and still holds the copy back once the age passes --max-lag-ms.
  return { replica: replica.name, lagMs: Date.now() - heartbeat.since };
}

/**
 * Why replication on this replica is broken (a thread stopped by an error), or null. A stopped
 * thread without an error is maintenance, not breakage: the heartbeat shows it as growing lag.
 * Reading the status needs a privilege (REPLICATION CLIENT, SLAVE MONITOR) the replica user may
 * lack; then the heartbeat alone speaks.
 */
async function replicationFailure(replica: Replica): Promise<string | null> {
  if (!replica.statusSql) return null;
  let rows: RowDataPacket[];
  try {
    [rows] = await replica.pool.query<RowDataPacket[]>({ sql: replica.statusSql, timeout: REPLICA_TIMEOUT_MS });
  } catch (error) {
    const code = (error as { code?: string }).code;
    // SHOW REPLICA STATUS is MySQL 8.0.22+ and MariaDB 10.5+; MySQL 8.4 no longer has SHOW SLAVE STATUS.
    if (code === 'ER_PARSE_ERROR' && replica.statusSql === 'SHOW REPLICA STATUS') replica.statusSql = 'SHOW SLAVE STATUS';
    else if (code === 'ER_SPECIFIC_ACCESS_DENIED_ERROR') replica.statusSql = null;
    else throw error;
    return replicationFailure(replica);
  }
  for (const row of rows) {
    const io = row.Replica_IO_Running ?? row.Slave_IO_Running;
    const sql = row.Replica_SQL_Running ?? row.Slave_SQL_Running;
    if (sql !== 'Yes' && Number(row.Last_SQL_Errno) !== 0) return `replication stopped on an error: ${row.Last_SQL_Error}`;
    if (io !== 'Yes' && Number(row.Last_IO_Errno) !== 0) return `replication cannot read from its primary: ${row.Last_IO_Error}`;
  }
  return null;
}

/** A replica URL may leave out the database: a replica holds the primary's. */
function replicaTargets(url: string, database: string): MysqlTarget[] {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(`--replica is not a valid URL: ${redactUrl(url)}`);
  }
  if (u.pathname === '' || u.pathname === '/') u.pathname = `/${encodeURIComponent(database)}`;
  return parseMysqlUrl(u.toString(), `--replica ${redactUrl(url)}:`).map((t) => ({ ...t, config: { ...t.config, connectTimeout: REPLICA_TIMEOUT_MS } }));
}

/** A replica unreachable now is not a refusal: it reads as unmeasured lag, and with ssl-mode=PREFERRED is tried with TLS. */
function settleReplicaTarget(targets: MysqlTarget[]): Promise<MysqlTarget> {
  return settleMysqlTarget(targets).catch(failedAs(targets[0], 'a replica unreachable now reads as unmeasured lag, not a refusal'));
}

/**
 * SHOW GLOBAL STATUS values for the asked names. The server matches names case-insensitively and
 * answers in its own spelling; the answer uses the caller's, so `threads_running=25` works.
 * Unknown and non-numeric names are left out.
 */
/**
 * MariaDB's checkpoint age against its maximum: at the maximum every writer waits in InnoDB's
 * log_free_check while pages are flushed. Null on MySQL, whose status has no such pair (its pacing
 * is --max-load's).
 */
async function innodbRedoFill(pool: Pool): Promise<number | null> {
  const v = await statusValues(pool, ['Innodb_checkpoint_age', 'Innodb_checkpoint_max_age']);
  const age = v.Innodb_checkpoint_age;
  const max = v.Innodb_checkpoint_max_age;
  return age === undefined || !max ? null : Math.round((age / max) * 100);
}

async function statusValues(pool: Pool, names: string[]): Promise<Record<string, number>> {
  if (names.length === 0) return {};
  const [rows] = await pool.query<RowDataPacket[]>('SHOW GLOBAL STATUS WHERE Variable_name IN (?)', [names]);
  const values = new Map(rows.map((r) => [String(r.Variable_name).toLowerCase(), String(r.Value)]));
  const result: Record<string, number> = {};
  for (const name of names) {
    const value = values.get(name.toLowerCase());
    // Text values (e.g. Innodb_buffer_pool_dump_status) are not load, and Number('') would be 0.
    if (value !== undefined && /^-?\d+(\.\d+)?$/.test(value)) result[name] = Number(value);
  }
  return result;
}
