import pg from 'pg';
import { retryBounded } from '../../src/core/engine/retry/retry.js';
import { migrate, type MigrateOptions } from '../../src/core/migrate/runner.js';
import type { ChangeSink, Key, MigrationRequest, Position, Reference } from '../../src/core/engine/types.js';
import { createPostgresEngine } from '../../src/engines/postgres/index.js';
import { serverUrl, withDatabase, type Database, type Replica, type ServerChoice } from './database.js';
import { runCli, runCliAsync } from './mysql.js';
import { MirrorWorkload, type Statement } from './workload.js';

export const pgUrl = () => serverUrl('SHADOWCUT_PG_URL');
export const pgStandbyUrl = () => serverUrl('SHADOWCUT_PG_STANDBY_URL');
/** A PostgreSQL as it comes: wal_level=replica, and a role that owns the database but is neither superuser nor REPLICATION. */
export const pgPlainUrl = () => serverUrl('SHADOWCUT_PG_PLAIN_URL');

// Values as the server's text on the test side too, so the comparison is not blurred by JS types.
const raw = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig;

export function pgPool(url = pgUrl()): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: 12, types: raw });
  // An idle connection the server ended (a restart, a terminated backend): the pool drops it and the
  // next query opens another; unheard, the event would end the test's process.
  pool.on('error', () => {});
  return pool;
}

export async function migratePg(
  table: string,
  alter: string,
  options: Partial<MigrateOptions> = {},
  request: Omit<MigrationRequest, 'url' | 'table' | 'alter'> = {},
) {
  const engine = await createPostgresEngine(pgUrl());
  try {
    return await migrate(engine, { url: pgUrl(), table, alter, ...request }, { execute: true, forceCopy: true, ...options });
  } finally {
    await engine.close();
  }
}

/** Helper objects shadowcut would leave behind if it misbehaved. */
export async function pgHelpers(db: pg.Pool, table: string): Promise<string[]> {
  const { rows } = await db.query(
    `SELECT relname AS name FROM pg_class WHERE relname IN ($1, $2)
     UNION ALL SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE $3
     UNION ALL SELECT pubname FROM pg_publication WHERE pubname LIKE $3 ORDER BY 1`,
    [`${table}__new`, `${table}__old`, `shadowcut\\_${table}\\_%`],
  );
  return rows.map((r) => r.name);
}

/** Column definitions (name, type, NOT NULL, default, identity, generated) for schema equality. */
export async function pgSchemaOf(db: pg.Pool, table: string): Promise<string[]> {
  const { rows } = await db.query(
    `SELECT format('%s %s %s %s %s %s', attname, format_type(atttypid, atttypmod), attnotnull, attidentity, attgenerated,
                   regexp_replace(coalesce(pg_get_expr(d.adbin, d.adrelid), ''), '_?[a-z_]+_seq', 'SEQ')) AS c
       FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [table],
  );
  return rows.map((r) => r.c);
}

/**
 * Rows of `a` that `b` lacks, then rows of `b` that `a` lacks (EXCEPT ALL both ways, up to 10 each,
 * as `table:row`); empty means equal. `a` and `b` are tables or aliased subqueries. Rows are
 * compared by their text (`r::text`): that works for types without an equality operator (json) and
 * sees what equality hides (float8 -0 = 0, numeric 1.0 = 1.00, json whitespace), while two rows
 * with the same text are also equal.
 */
export async function differences(db: pg.Pool, a: string, b: string): Promise<string[]> {
  const missing = async (from: string, to: string) => {
    const { rows } = await db.query(`SELECT r::text AS row FROM (SELECT * FROM ${from}) r EXCEPT ALL SELECT r::text FROM (SELECT * FROM ${to}) r LIMIT 10`);
    return rows.map((r) => `${from}:${r.row}`);
  };
  return [...(await missing(a, b)), ...(await missing(b, a))];
}

/** Drops the tables with their dependants, and what a migration of each leaves (`__new`, `__old`). */
export async function pgDropTables(db: pg.Pool, tables: string[]): Promise<void> {
  await db.query(`DROP TABLE IF EXISTS ${tables.flatMap((t) => [t, `${t}__new`, `${t}__old`]).join(', ')} CASCADE`);
}

/** Creates `ddl` (with `{t}` for the name) for each table and fills each with `fill`, dropping leftovers first. */
export async function pgTwins(db: pg.Pool, tables: string[], ddl: string, fill?: string): Promise<void> {
  await pgDropTables(db, tables);
  for (const t of tables) {
    await db.query(ddl.replaceAll('{t}', t));
    if (fill) await db.query(fill.replaceAll('{t}', t));
  }
}

/**
 * Runs `migratePg` on `table` while a MirrorWorkload writes to it and `mirror`, keeps writing a
 * little after the cut-over, then gives the mirror the same ALTER. The workload is stopped even
 * when the migration fails; the error is rethrown.
 */
export async function migrateUnderWrites(
  db: pg.Pool,
  [table, mirror]: [string, string],
  alter: string,
  next: (worker: number) => Statement,
  {
    options = {},
    workers = 3,
    beforeMs = 300,
    afterMs = 300,
  }: {
    options?: Partial<MigrateOptions>;
    workers?: number;
    beforeMs?: number;
    afterMs?: number;
  } = {},
) {
  const load = new MirrorWorkload(postgresDatabase(db), [table, mirror], next, workers);
  load.start();
  let result: Awaited<ReturnType<typeof migratePg>>;
  try {
    await new Promise((r) => setTimeout(r, beforeMs));
    result = await migratePg(table, alter, options);
    await new Promise((r) => setTimeout(r, afterMs));
  } finally {
    await load.stop();
  }
  await db.query(`ALTER TABLE ${mirror} ${alter}`);
  return { result, stats: load.stats };
}

/**
 * The PostgreSQL primary as a fixture `Database`, on a `shared` pool if given (then left open by
 * close()); with `{ plain: true }` the plain PostgreSQL, which has no standby.
 */
export function postgresDatabase(from?: pg.Pool | ServerChoice): Database {
  const plain = from !== undefined && 'plain' in from;
  const other = from !== undefined && 'database' in from ? from.database : undefined;
  const given = from !== undefined && 'url' in from ? from.url : undefined;
  const shared = plain || other !== undefined || given !== undefined ? undefined : (from as pg.Pool | undefined);
  const url = plain ? pgPlainUrl : other !== undefined ? () => withDatabase(pgUrl(), other) : given !== undefined ? () => given : pgUrl;
  let own: pg.Pool | null = null;
  let standbyPool: pg.Pool | null = null;
  const db = () => shared ?? (own ??= pgPool(url()));
  const standby = () => (standbyPool ??= new pg.Pool({ connectionString: pgStandbyUrl(), max: 2 }));
  const run = async (on: pg.Pool | pg.PoolClient, text: string, values?: unknown[]) => {
    const result: pg.QueryResult | pg.QueryResult[] = await on.query({ text, values, rowMode: 'array' });
    return Array.isArray(result) ? [] : (result.rows as unknown[][]); // several statements: no rows wanted
  };
  const names = async (text: string, values: unknown[]) => (await run(db(), text, values)).map((r) => String(r[0])).sort();
  const like = (table: string) => table.replaceAll('_', '\\_');
  const replica: Replica = {
    get url() {
      return pgStandbyUrl();
    },
    pause: async () => void (await standby().query('SELECT pg_wal_replay_pause()')),
    async resume() {
      await standby().query('SELECT pg_wal_replay_resume()');
      const { rows } = await db().query('SELECT pg_current_wal_lsn() AS lsn');
      const deadline = Date.now() + 60_000;
      for (;;) {
        const { rows: replayed } = await standby().query('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done', [rows[0].lsn]);
        if (replayed[0].done) return;
        if (Date.now() > deadline) throw new Error('the standby did not catch up within 60 s');
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
  return {
    kind: 'postgres',
    get url() {
      return url();
    },
    query: (sql, values) => run(db(), sql, values),
    param: (n) => `$${n}`,
    async session() {
      const client = await db().connect();
      // The server ending the connection (a restart) is told by the next query's failure; unheard, the event would end the test's process.
      client.on('error', () => {});
      return { query: (sql, values) => run(client, sql, values), release: (destroy) => client.release(destroy) };
    },
    engine: () => createPostgresEngine(url()),
    async drop(...tables) {
      const all = tables.flatMap((t) => [t, `${t}__new`, `${t}__old`, `${t}__state`, `${t}__hb`, `${t}__log`]);
      // A run a failed test left going (or autovacuum) may lock the same tables in another order:
      // the server then picks one side of the deadlock, and this side tries again.
      const deadlock = (error: unknown) => (error as { code?: string }).code === '40P01';
      await retryBounded({ attempts: 5, retryable: deadlock, pauseMs: (n) => 200 * n }, () => db().query(`DROP TABLE IF EXISTS ${all.join(', ')} CASCADE`));
    },
    series: (rows) => `SELECT generate_series(1, ${rows}) AS g`,
    differences: (a, b) => differences(db(), a, b),
    schema: async (table) => (await pgSchemaOf(db(), table)).join('\n'),
    helpers: (table) =>
      names(
        `SELECT relname FROM pg_class WHERE relname LIKE $1 AND relkind IN ('r', 'p')
         UNION ALL SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE $2
         UNION ALL SELECT pubname FROM pg_publication WHERE pubname LIKE $2
         UNION ALL SELECT proname FROM pg_proc WHERE proname LIKE $2`,
        [`${like(table)}\\_\\_%`, `shadowcut\\_${like(table)}\\_%`],
      ),
    indexes: (table) => names('SELECT indexname FROM pg_indexes WHERE tablename = $1', [table]),
    killSession: async (id) => void (await db().query('SELECT pg_terminate_backend($1)', [id])),
    cli: (args) => runCli(args, url()),
    cliAsync: (args) => runCliAsync(args, url()),
    get replica() {
      if (plain) throw new Error('the plain PostgreSQL has no standby');
      return replica;
    },
    async close() {
      await own?.end();
      await standbyPool?.end();
    },
  };
}

/** A change sink that records what a stream reports: each key with the position it came with. */
export class Recorder implements ChangeSink {
  changes: { key: Key; position: Position }[] = [];
  seen: Position | null = null;
  failure: Error | null = null;
  get received(): Key[] {
    return this.changes.map((c) => c.key);
  }
  keys(keys: Key[], position: Position) {
    for (const key of keys) this.changes.push({ key, position });
    this.seen = position;
  }
  /** References (a cascade's) are recorded as nothing: the tests that use it follow no foreign key. */
  references(_references: Reference[], position: Position) {
    this.seen = position;
  }
  advance(position: Position) {
    this.seen = position;
  }
  fail(error: Error) {
    this.failure = error;
  }
  hasRoom() {
    return true;
  }
  onRoom() {}
}

/** The statements in one transaction on a client of `pool`, rolled back if one fails. */
export async function inTransaction(pool: pg.Pool, statements: (string | [string, unknown[]])[]): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    for (const statement of statements) {
      const [sql, values] = typeof statement === 'string' ? [statement, []] : statement;
      await client.query(sql, values);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
