import type pg from 'pg';
import type { EntryColumns, QueueTable, StoredEntry } from '../../../core/engine/ports/queue.js';
import { qualified } from '../server/sql.js';
import { checkHelper, ensureHelperTable, helperTransaction } from '../server/helper-tables.js';
import { SESSION_RESET, ignoreFailure } from '../../../core/engine/errors.js';

const NAME = 'shadowcut_queue';
/** One queue per database, where `public` is on every server: the entries name tables of any schema. */
const SCHEMA = 'public';
/** The statement's own instant, not its transaction's. */
const NOW = 'pg_catalog.clock_timestamp()';
const iso = (column: string) => `pg_catalog.to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
/** The columns one write sets, from $1 on. */
const SETS = `state = $1, request = $2, claimed_by = $3, lease_until = $4::timestamptz, spec = $5::jsonb, status = $6::jsonb, updated_at = ${NOW}`;

/** A row as the select reads it: every column as text. */
interface Row {
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

/**
 * The migration queue of one database, `public.shadowcut_queue`, made on first use. Rows only:
 * what a row may say and who may change it is core/queue/sealed-queue.ts's to decide. Every
 * statement checks first that the table is still shadowcut's own and that no other role can write it.
 */
export class PostgresQueue implements QueueTable {
  private readonly table = qualified(SCHEMA, NAME);

  constructor(private readonly pool: pg.Pool) {}

  async name(): Promise<string> {
    const { rows } = await this.pool.query('SELECT pg_catalog.current_database() AS db');
    return `${String(rows[0].db)}.${SCHEMA}.${NAME}`;
  }

  check(): Promise<void> {
    return helperTransaction(this.pool, async (client) => {
      await checkHelper(client, SCHEMA, NAME);
    });
  }

  async insert(table: string, createdAt: string, columns: (id: number) => EntryColumns): Promise<number> {
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
    return helperTransaction(this.pool, async (client) => {
      await checkHelper(client, SCHEMA, NAME);
      // Its document names its id: the row is made first, and given the document before anyone sees it.
      const made = await client.query(
        `INSERT INTO ${this.table} (table_name, state, spec, status, created_at, updated_at) VALUES ($1, 'queued', 'null', '{}', $2::timestamptz, ${NOW}) RETURNING id::text AS id`,
        [table, createdAt],
      );
      const id = Number(made.rows[0].id);
      await client.query(`UPDATE ${this.table} SET ${SETS} WHERE id = $7`, [...values(columns(id)), id]);
      return id;
    });
  }

  list(): Promise<StoredEntry[]> {
    return this.select('true', []);
  }

  async get(id: number): Promise<StoredEntry | null> {
    return (await this.select('id = $1', [id]))[0] ?? null;
  }

  async now(): Promise<Date> {
    const { rows } = await this.pool.query(`SELECT ${iso(NOW)} AS now`);
    return new Date(String(rows[0].now));
  }

  /** One conditional UPDATE: only over the document its writer read. */
  write(id: number, expected: string, columns: EntryColumns): Promise<boolean> {
    return helperTransaction(this.pool, async (client) => {
      if (!(await checkHelper(client, SCHEMA, NAME))) return false;
      const done = await client.query(`UPDATE ${this.table} SET ${SETS} WHERE id = $7 AND spec = $8::jsonb`, [...values(columns), id, expected]);
      return done.rowCount === 1;
    });
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

  private select(where: string, values: unknown[]): Promise<StoredEntry[]> {
    return helperTransaction(this.pool, async (client) => {
      if (!(await checkHelper(client, SCHEMA, NAME))) return [];
      // JSON as text: the pool's parsers are set for exact values, and the documents are read back as written.
      const { rows } = await client.query(
        `SELECT id::text AS id, state, request, claimed_by, ${iso('lease_until')} AS lease_until, spec::text AS spec, status::text AS status,
                ${iso('created_at')} AS created_at, ${iso('updated_at')} AS updated_at
         FROM ${this.table} WHERE ${where} ORDER BY id`,
        values,
      );
      return (rows as Row[]).map((r) => ({
        id: Number(r.id),
        state: r.state,
        request: r.request,
        claimedBy: r.claimed_by,
        leaseUntil: r.lease_until,
        sealed: r.spec,
        status: r.status,
        createdAt: r.created_at,
        updatedAt: r.updated_at,
      }));
    });
  }
}

function values(c: EntryColumns): unknown[] {
  return [c.state, c.request, c.claimedBy, c.leaseUntil, c.sealed, c.status];
}
