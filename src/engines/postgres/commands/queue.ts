import type pg from 'pg';
import type { QueueRequest, QueueRow, QueueSpec, QueueState, QueueStatus, QueueStore } from '../../../core/engine/ports/queue.js';
import { readSpec, readStatus, writeSpec } from '../../../core/queue/stored.js';
import { qualified } from '../server/connect.js';
import { checkHelper, ensureHelperTable, helperTransaction } from '../server/helper-tables.js';
import { SESSION_RESET, ignoreFailure } from '../../../core/engine/errors.js';

const NAME = 'shadowcut_queue';
/** One queue per database, where `public` is on every server: the entries name tables of any schema. */
const SCHEMA = 'public';
/** The statement's own instant, not its transaction's: leases are compared with it. */
const NOW = 'pg_catalog.clock_timestamp()';
const iso = (column: string) => `pg_catalog.to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** A row as the select reads it: every column as text. */
interface StoredRow {
  id: string;
  state: string;
  request: string | null;
  claimed_by: string | null;
  lease_until: string | null;
  spec: string;
  status: string;
  created_at: string;
  updated_at: string;
}

/** The migration queue of one database, `public.shadowcut_queue`, made on first use. */
export class PostgresQueue implements QueueStore {
  private readonly table = qualified(SCHEMA, NAME);

  constructor(private readonly pool: pg.Pool) {}

  check(): Promise<void> {
    return helperTransaction(this.pool, async (client) => {
      await checkHelper(client, SCHEMA, NAME);
    });
  }

  async add(spec: QueueSpec): Promise<number> {
    await ensureHelperTable(
      this.pool,
      SCHEMA,
      NAME,
      `id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       table_name text NOT NULL,
       state text NOT NULL,
       request text,
       claimed_by text,
       lease_until timestamptz,
       spec jsonb NOT NULL,
       status jsonb NOT NULL,
       created_at timestamptz NOT NULL,
       updated_at timestamptz NOT NULL`,
      'the queue of schema changes that queue run works through',
    );
    const status: QueueStatus = { attempts: [] };
    return helperTransaction(this.pool, async (client) => {
      const done = await client.query(
        `INSERT INTO ${this.table} (table_name, state, spec, status, created_at, updated_at) VALUES ($1, 'queued', $2, $3, ${NOW}, ${NOW}) RETURNING id::text AS id`,
        [spec.table, writeSpec(spec), JSON.stringify(status)],
      );
      return Number(done.rows[0].id);
    });
  }

  list(): Promise<QueueRow[]> {
    return this.select('true', []);
  }

  async get(id: number): Promise<QueueRow | null> {
    return (await this.select('id = $1', [id]))[0] ?? null;
  }

  async now(): Promise<Date> {
    const { rows } = await this.pool.query(`SELECT ${iso(NOW)} AS now`);
    return new Date(String(rows[0].now));
  }

  claim(id: number, runner: string, leaseSeconds: number): Promise<boolean> {
    return this.change(
      `state = 'running', claimed_by = $2, lease_until = ${NOW} + $3 * interval '1 second'`,
      `id = $1 AND (state = 'queued' OR (state = 'running' AND lease_until < ${NOW}))`,
      [id, runner, leaseSeconds],
    );
  }

  renew(id: number, runner: string, leaseSeconds: number, status: QueueStatus): Promise<boolean> {
    return this.change(`lease_until = ${NOW} + $3 * interval '1 second', status = $4`, `id = $1 AND state = 'running' AND claimed_by = $2`, [
      id,
      runner,
      leaseSeconds,
      JSON.stringify(status),
    ]);
  }

  finish(id: number, runner: string, state: QueueState, status: QueueStatus): Promise<boolean> {
    return this.change(
      `state = $3, request = CASE WHEN $3 = 'queued' THEN request END, lease_until = NULL, status = $4`,
      `id = $1 AND state = 'running' AND claimed_by = $2`,
      [id, runner, state, JSON.stringify(status)],
    );
  }

  transition(id: number, from: QueueState[], to: QueueState, status?: QueueStatus, spec?: QueueSpec): Promise<boolean> {
    const values: unknown[] = [id, from, to];
    const sets = ['state = $3', 'request = NULL'];
    if (status) sets.push(`status = $${values.push(JSON.stringify(status))}`);
    if (spec) sets.push(`spec = $${values.push(writeSpec(spec))}`);
    return this.change(sets.join(', '), 'id = $1 AND state = ANY($2::text[])', values);
  }

  request(id: number, request: QueueRequest | null): Promise<boolean> {
    return this.change('request = $2', `id = $1 AND state IN ('queued', 'running')`, [id, request]);
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      // A session lock, held across the caller's own statements on other sessions; bounded like MySQL's.
      await client.query(`SET statement_timeout = 30000`);
      await client.query(`SELECT pg_catalog.pg_advisory_lock(pg_catalog.hashtext('shadowcut_queue'))`);
      try {
        return await fn();
      } finally {
        await client.query(`SELECT pg_catalog.pg_advisory_unlock(pg_catalog.hashtext('shadowcut_queue'))`);
      }
    } finally {
      await client.query('RESET statement_timeout').catch(ignoreFailure(SESSION_RESET));
      client.release();
    }
  }

  async wait(id: number, reason: string): Promise<void> {
    await this.change(`status = pg_catalog.jsonb_set(status, '{waiting}', pg_catalog.to_jsonb($2::text))`, `id = $1 AND state = 'queued'`, [id, reason]);
  }

  private change(sets: string, where: string, values: unknown[]): Promise<boolean> {
    return helperTransaction(this.pool, async (client) => {
      if (!(await checkHelper(client, SCHEMA, NAME))) return false;
      const done = await client.query(`UPDATE ${this.table} SET ${sets}, updated_at = ${NOW} WHERE ${where}`, values);
      return done.rowCount === 1;
    });
  }

  private select(where: string, values: unknown[]): Promise<QueueRow[]> {
    return helperTransaction(this.pool, async (client) => {
      if (!(await checkHelper(client, SCHEMA, NAME))) return [];
      // JSON as text: the pool's parsers are set for exact values, and the documents are read back as written.
      const { rows } = await client.query(
        `SELECT id::text AS id, state, request, claimed_by, ${iso('lease_until')} AS lease_until, spec::text AS spec, status::text AS status,
                ${iso('created_at')} AS created_at, ${iso('updated_at')} AS updated_at
         FROM ${this.table} WHERE ${where} ORDER BY id`,
        values,
      );
      return (rows as StoredRow[]).map((r): QueueRow => ({
        id: Number(r.id),
        state: r.state as QueueState,
        request: r.request as QueueRequest | null,
        claimedBy: r.claimed_by,
        leaseUntil: r.lease_until,
        spec: readSpec(r.spec, Number(r.id)),
        status: readStatus(r.status),
        createdAt: r.created_at,
        updatedAt: r.updated_at,
      }));
    });
  }
}
