import pg from 'pg';
import { describeError, CLOSING, ignoreFailure } from '../../../core/engine/errors.js';
import { redactUrl } from '../../../core/engine/connect/secrets.js';
import { startHeartbeat, type Heartbeat } from '../../../core/engine/heartbeat.js';
import type { Probes } from '../../../core/engine/types.js';
import { asUserOn, PINNED_SEARCH_PATH_OPTION } from '../server/connect.js';
import { helperNames } from '../server/helper-names.js';
import { qualified } from '../server/sql.js';
import { dropOwnHelper, ensureHelperTable } from '../server/helper-tables.js';
import { connectFirst, parsePgUrl, pgConfig, type PgTarget } from '../server/target.js';
import type { PgDetail } from '../schema/plan.js';

/** A standby slower than this to answer counts as unreachable, so a dead host cannot stall the copy loop. */
const STANDBY_TIMEOUT_MS = 2000;
/** Our heartbeat connection, left out of the load we measure. */
const HEARTBEAT_APP = 'shadowcut heartbeat';

type LagReading = Awaited<ReturnType<Probes['replicaLag']>>[number];

/**
 * Server load from pg_stat_activity, and standby lag from a heartbeat: a row on the primary
 * rewritten with clock_timestamp() every 100 ms, read on each standby against the standby's clock.
 * It measures what the standby has replayed, so it stays right where pg_last_xact_replay_timestamp()
 * does not: an idle primary (no commits to compare with) and paused replay (the row stops moving,
 * the lag grows).
 */
export async function openPostgresProbes(pool: pg.Pool, d: Pick<PgDetail, 'schema' | 'name'>, replicas: string[], heartbeatWanted = false): Promise<Probes> {
  const load = (names: string[]) => loadValues(pool, names);
  // --throttle-query is the operator's SQL: it resolves names as their own session would.
  const rows = async (sql: string) => (await asUserOn(pool, (c) => c.query({ text: sql, rowMode: 'array' }))).rows as unknown[][];
  // A checkpoint of PostgreSQL spreads its writes and never makes writers wait for room in the WAL.
  const redoFill = () => Promise.resolve(null);
  if (replicas.length === 0 && !heartbeatWanted) return { replicaLag: async () => [], load, rows, redoFill, close: async () => {} };

  // Checked before anything is created, so a bad URL leaves nothing behind.
  const parsed = replicas.map((url) => ({ name: redactUrl(url), targets: parsePgUrl(url, `--replica ${redactUrl(url)}:`) }));
  const settled = await Promise.all(parsed.map(async (s) => ({ name: s.name, target: await settleStandbyTarget(s.targets) })));
  const { heartbeat, stop } = await postgresHeartbeat(pool, d.schema, helperNames(d.schema, d.name).heartbeat);
  const standbys = settled.map(({ name, target }) => {
    const standby = new pg.Pool(pgConfig(target, STANDBY_SETTINGS));
    // A standby going away must not crash the process; the next reading reports it.
    standby.on('error', () => {});
    return { name, pool: standby };
  });
  return {
    replicaLag: () => Promise.all(standbys.map((s) => readLag(s.name, s.pool, heartbeat))),
    timeWrites: (listener) => heartbeat.timeWrites(listener),
    load,
    rows,
    redoFill,
    close: async () => {
      await Promise.all(standbys.map((s) => s.pool.end().catch(ignoreFailure(CLOSING))));
      await stop();
    },
  };
}

/** The heartbeat on its own one-connection pool, so a busy engine pool never delays a beat. */
function postgresHeartbeat(primary: pg.Pool, schema: string, name: string) {
  // With synchronous_commit off, a beat would wait for the WAL writer before any standby could
  // receive it, and that wait would read as lag. `local` flushes it at once, without waiting
  // for a synchronous standby (which may be the paused one).
  // It runs only shadowcut's own statements: the search_path is pinned for the whole session.
  const options = `-c synchronous_commit=local ${PINNED_SEARCH_PATH_OPTION}`;
  const pool = new pg.Pool({ ...primary.options, max: 1, application_name: HEARTBEAT_APP, options });
  pool.on('error', () => {});
  const table = qualified(schema, name);
  return startHeartbeat(table, {
    // A resumed run finds the table of the run it continues; it is checked as shadowcut's own either way.
    create: () => ensureHelperTable(pool, schema, name, 'id int PRIMARY KEY, ts timestamptz NOT NULL', 'the heartbeat standbys measure their lag by'),
    write: () => pool.query(`INSERT INTO ${table} (id, ts) VALUES (1, pg_catalog.clock_timestamp()) ON CONFLICT (id) DO UPDATE SET ts = EXCLUDED.ts`),
    end: () => pool.end(),
    drop: () => dropOwnHelper(primary, schema, name),
  });
}

async function readLag(name: string, standby: pg.Pool, heartbeat: Heartbeat): Promise<LagReading> {
  // A stale heartbeat would only overstate the lag; say what is really wrong.
  if (heartbeat.failure) return { replica: name, lagMs: null, error: `the heartbeat cannot be written on the primary: ${heartbeat.failure}` };
  try {
    const { rows } = await standby.query(`SELECT extract(epoch FROM pg_catalog.clock_timestamp() - ts) * 1000 AS ms FROM ${heartbeat.table} WHERE id = 1`);
    // A standby clock slightly behind the primary's must not read as negative lag.
    if (rows.length) return { replica: name, lagMs: Math.max(0, Math.round(Number(rows[0].ms))) };
  } catch (error) {
    // 42P01 undefined_table: the standby has not replayed the table's creation yet.
    if ((error as { code?: string }).code !== '42P01') return { replica: name, lagMs: null, error: describeError(error) };
  }
  // Neither the table nor the first beat has been replayed: the standby is behind by at least
  // their age. Counting that as lag, rather than as unmeasurable, spares a healthy standby a
  // throttle at start-up, and still holds the copy back once the age passes --max-lag-ms.
  return { replica: name, lagMs: Date.now() - heartbeat.since };
}

const STANDBY_SETTINGS: pg.PoolConfig = {
  max: 1,
  application_name: 'shadowcut',
  options: PINNED_SEARCH_PATH_OPTION,
  connectionTimeoutMillis: STANDBY_TIMEOUT_MS,
  query_timeout: STANDBY_TIMEOUT_MS,
};

/** A standby unreachable now is not a refusal: it reads as unmeasured lag, and with sslmode=prefer or allow is tried the first way. */
async function settleStandbyTarget(targets: PgTarget[]): Promise<PgTarget> {
  if (targets.length === 1) return targets[0];
  try {
    const { target, client } = await connectFirst(targets, STANDBY_SETTINGS);
    await client.end().catch(ignoreFailure(CLOSING));
    return target;
  } catch {
    return targets[0];
  }
}

/**
 * Load indicators for --max-load and --critical-load; unknown names are left out.
 * - active_backends: client sessions running a statement now, other than ours. Walsenders always
 *   look active and are not load; our heartbeat is left out by its application name.
 */
async function loadValues(pool: pg.Pool, names: string[]): Promise<Record<string, number>> {
  const wanted = names.filter((n) => n.toLowerCase() === 'active_backends');
  if (wanted.length === 0) return {};
  const { rows } = await pool.query(
    `SELECT count(*) AS n FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid() AND application_name <> $1`,
    [HEARTBEAT_APP],
  );
  return Object.fromEntries(wanted.map((n) => [n, Number(rows[0].n)]));
}
