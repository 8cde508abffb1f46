import pg from 'pg';
import { migrate, type MigrateOptions } from '../../src/core/runner.js';
import type { ChangeSink, Key, MigrationRequest, Position } from '../../src/core/types.js';
import { createPostgresEngine } from '../../src/engines/postgres/index.js';

export const pgUrl = () => {
  const value = process.env.SHADOWCUT_PG_URL;
  if (!value) throw new Error('SHADOWCUT_PG_URL is not set; the vitest global setup starts the servers');
  return value;
};

// Values as the server's text on the test side too, so the comparison is not blurred by JS types.
const raw = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig;

export function pgPool(): pg.Pool {
  return new pg.Pool({ connectionString: pgUrl(), max: 12, types: raw });
}

export async function migratePg(table: string, alter: string, options: Partial<MigrateOptions> = {}, request: Omit<MigrationRequest, 'url' | 'table' | 'alter'> = {}) {
  const engine = await createPostgresEngine(pgUrl());
  try {
    return await migrate(engine, { url: pgUrl(), table, alter, ...request }, { execute: true, ...options });
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

/** Rows only in a, and only in b (EXCEPT ALL both ways); both zero means equal. */
export async function pgDifferences(db: pg.Pool, a: string, b: string): Promise<{ onlyA: number; onlyB: number }> {
  const { rows } = await db.query(
    `SELECT (SELECT count(*) FROM (SELECT * FROM ${a} EXCEPT ALL SELECT * FROM ${b}) x)::int AS a,
            (SELECT count(*) FROM (SELECT * FROM ${b} EXCEPT ALL SELECT * FROM ${a}) y)::int AS b`,
  );
  return { onlyA: Number(rows[0].a), onlyB: Number(rows[0].b) };
}

export type Statement = { sql: string; values: unknown[]; serial?: boolean };

/**
 * Concurrent writers running each statement against the table and its mirror in one transaction:
 * the mirror is the ground truth. Writers own disjoint regions (the first key column), so they
 * never conflict; any error is shadowcut's. Inserts take an advisory lock so identity values are
 * drawn in the same order from both tables' sequences.
 */
export class MirrorWorkload {
  private running = false;
  private loops: Promise<void>[] = [];
  transactions = 0;
  errors: string[] = [];
  maxLatencyMs = 0;

  constructor(
    private readonly db: pg.Pool,
    private readonly tables: [string, string],
    private readonly next: (worker: number) => Statement,
    private readonly workers = 3,
  ) {}

  start(): void {
    this.running = true;
    for (let w = 0; w < this.workers; w++) this.loops.push(this.loop(w));
  }

  async stop() {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async loop(worker: number): Promise<void> {
    const client = await this.db.connect();
    try {
      while (this.running) {
        const statement = this.next(worker);
        const t0 = performance.now();
        try {
          await client.query('BEGIN');
          if (statement.serial) await client.query('SELECT pg_advisory_xact_lock(4242)');
          for (const table of this.tables) await client.query(statement.sql.replaceAll('{t}', table), statement.values);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {});
          this.errors.push((error as Error).message);
        }
        this.maxLatencyMs = Math.max(this.maxLatencyMs, performance.now() - t0);
        this.transactions++;
        await new Promise((r) => setTimeout(r, 2));
      }
    } finally {
      client.release();
    }
  }
}


/**
 * Like pgDifferences, but compares each row's text (`SELECT r::text FROM t r`): works for types
 * without an equality operator (json) and sees what equality hides (float8 -0 = 0, json whitespace).
 */
export async function pgTextDifferences(db: pg.Pool, a: string, b: string): Promise<{ onlyA: number; onlyB: number }> {
  const { rows } = await db.query(
    `SELECT (SELECT count(*) FROM (SELECT r::text FROM ${a} r EXCEPT ALL SELECT r::text FROM ${b} r) x)::int AS a,
            (SELECT count(*) FROM (SELECT r::text FROM ${b} r EXCEPT ALL SELECT r::text FROM ${a} r) y)::int AS b`,
  );
  return { onlyA: Number(rows[0].a), onlyB: Number(rows[0].b) };
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
  { options = {}, workers = 3, beforeMs = 300, afterMs = 300 }: {
    options?: Partial<MigrateOptions>;
    workers?: number;
    beforeMs?: number;
    afterMs?: number;
  } = {},
) {
  const load = new MirrorWorkload(db, [table, mirror], next, workers);
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
  return { result, load };
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
