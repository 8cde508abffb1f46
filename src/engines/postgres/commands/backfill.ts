import type pg from 'pg';
import { checkEnclosable, parseAssignments, type Assignment } from '../../../core/engine/backfill/sql-text.js';
import { backfillChecks } from '../../../core/engine/backfill/checks.js';
import { noPrimaryKey } from '../../../core/engine/backfill/key.js';
import type { Backfill, BackfillRequest } from '../../../core/engine/ports/backfill.js';
import { LockTimeoutError, ALWAYS_ROLLED_BACK, ignoreFailure } from '../../../core/engine/errors.js';
import { KeysetSql } from '../../../core/engine/keyset.js';
import type { CheckResult, Key, KeyRange, Probes } from '../../../core/engine/types.js';
import { asUser, userPathForTransaction, type Client } from '../server/connect.js';
import { dialect, ident, parseTableName, qualified } from '../server/sql.js';
import { errorCode } from '../server/errors.js';
import { helperNames } from '../server/helper-names.js';
import { inTransaction } from '../server/transactions.js';
import { inspectTable, type Column } from '../schema/inspect.js';
import { openPostgresProbes } from '../throttle/probes.js';
import { refuseForeignWrites, refuseOwnerCode } from '../server/owner-code.js';
import { dropOwnHelper } from '../server/helper-tables.js';
import { createStateTable, readState, writeState, writeStateWithin } from '../server/state.js';
import { keyTypes } from '../server/key-types.js';
import { rowsWhereTheyAre } from '../schema/citus.js';

/** A batch waits this long for a row an application holds (or for the table's lock), then is retried later. */
const LOCK_TIMEOUT = '2s';

export async function preparePostgresBackfill(pool: pg.Pool, request: BackfillRequest): Promise<Backfill> {
  const { schema, name } = parseTableName(request.table);
  const t = await inspectTable(pool, schema, name);
  const key = await primaryKey(pool, t.oid);
  if (!key) throw noPrimaryKey(`${schema}.${name}`);
  const assignments = parseAssignments(request.set);
  if (request.where !== undefined) checkEnclosable(request.where, '--where');
  const backfill = new PostgresBackfill(
    pool,
    schema,
    name,
    key.index,
    key.columns,
    await keyTypes(pool, t.oid, key.columns),
    await rowsWhereTheyAre(pool, schema, name, t.estimatedRows),
    t.columns,
    assignments,
    request,
  );
  await refuseForeignWrites(pool, t.oid, 'backfill');
  // Before the checks' EXPLAIN, which would fold an immutable function of the owner's with our rights.
  await refuseOwnerCode(pool, t.oid, [{ sql: backfill.statement('true'), what: '--set and --where' }], { triggers: true, keyColumns: key.columns });
  return backfill;
}

/** The primary key (core/engine/backfill/key.ts): not the replica identity migrate walks, which may be a unique key that changes. */
async function primaryKey(pool: pg.Pool, oid: string): Promise<{ index: string; columns: string[] } | null> {
  const { rows } = await pool.query(
    `SELECT ic.relname AS index, (SELECT json_agg(a.attname ORDER BY k.ord) FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum WHERE k.ord <= i.indnkeyatts) AS columns
       FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = $1 AND i.indisprimary`,
    [oid],
  );
  return rows.length ? { index: rows[0].index, columns: JSON.parse(rows[0].columns) } : null;
}

/**
 * The UPDATE in keyset batches, each in READ COMMITTED: a row a writer changed meanwhile is
 * read again at its latest version and --where is evaluated on that (PostgreSQL's EvalPlanQual),
 * so a row that no longer matches is left alone.
 */
class PostgresBackfill implements Backfill {
  readonly table: string;
  private readonly keys: KeysetSql;
  private readonly name: string;
  private readonly where: string;

  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
    private readonly bare: string,
    readonly keyIndex: string,
    readonly keyColumns: string[],
    /** The key's types, which the keyset's parameters are typed with (server/key-types.ts). */
    keyTypes: string[],
    readonly estimatedRows: number,
    private readonly columns: Column[],
    private readonly assignments: Assignment[],
    private readonly request: BackfillRequest,
  ) {
    this.table = `${schema}.${bare}`;
    this.keys = new KeysetSql(dialect, keyColumns, true, keyTypes);
    this.name = qualified(schema, bare);
    // On lines of their own: a `--` comment at the end of the operator's text cannot swallow ours.
    this.where = request.where?.trim() ? ` AND (\n${request.where}\n)` : '';
  }

  private get state(): string {
    return helperNames(this.schema, this.bare).state;
  }

  statement(range: string): string {
    return `UPDATE ${this.name} SET\n${this.request.set}\nWHERE (${range})${this.where}`;
  }

  checks(): Promise<CheckResult[]> {
    return backfillChecks(
      this.table,
      this.keyIndex,
      this.assignments,
      (a) => {
        const wanted = a.quoted ? a.column : a.column.toLowerCase();
        const column = this.columns.find((c) => c.name === wanted);
        return column && { name: column.name, generated: column.generated !== '', inKey: this.keyColumns.includes(column.name) };
      },
      () => this.explain(),
    );
  }

  /** EXPLAIN parses, type-checks and plans the UPDATE without running it; rolled back, with a short lock wait. */
  private async explain(): Promise<{ Plan: Record<string, unknown> & { Plans?: Record<string, unknown>[] } }> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`);
      const { rows } = await asUser(client, () => client.query(`EXPLAIN (FORMAT JSON) ${this.statement('true')}`));
      return (JSON.parse(rows[0]['QUERY PLAN']) as { Plan: Record<string, unknown> }[])[0];
    } finally {
      await client.query('ROLLBACK').catch(ignoreFailure(ALWAYS_ROLLED_BACK));
      client.release();
    }
  }

  async estimateMatching(): Promise<number> {
    const { Plan: top } = await this.explain();
    // The ModifyTable node estimates no output; its scan estimates the rows it feeds it.
    const rowsOf = (plan: Record<string, unknown>) =>
      Math.round(Number((plan.Plans as Record<string, unknown>[] | undefined)?.[0]?.['Plan Rows'] ?? plan['Plan Rows'] ?? 0));
    // A Citus table's UPDATE is a task per shard: one shown, as many run.
    const job = (
      top['Distributed Query'] as { Job?: { 'Task Count'?: number; Tasks?: { 'Remote Plan'?: { Plan: Record<string, unknown> }[][] }[] } } | undefined
    )?.Job;
    const task = job?.Tasks?.[0]?.['Remote Plan']?.[0]?.[0]?.Plan;
    return job && task ? rowsOf(task) * Number(job['Task Count'] ?? 1) : rowsOf(top);
  }

  /**
   * The next keys, counted and their last one taken on the server (a CTE over `ORDER BY key LIMIT n`,
   * materialized once): nothing travels but one key and a count.
   */
  async nextBatch(after: Key | null, rows: number): Promise<{ upTo: Key; rows: number } | null> {
    const where = this.keys.range({ after, upTo: null });
    const cols = this.keyColumns.map(ident).join(', ');
    const desc = this.keyColumns.map((c) => `${ident(c)} DESC`).join(', ');
    const { rows: found } = await this.pool.query({
      text:
        `WITH s AS (SELECT ${cols} FROM ${this.name} WHERE ${where.sql} ORDER BY ${this.keys.orderBy()} LIMIT ${rows}) ` +
        `SELECT ${cols}, (SELECT count(*) FROM s) FROM s ORDER BY ${desc} LIMIT 1`,
      values: where.params,
      rowMode: 'array',
    });
    if (found.length === 0) return null;
    const row = found[0] as unknown[];
    return { upTo: row.slice(0, -1) as Key, rows: Number(row[row.length - 1]) };
  }

  async start(checkpoint: string): Promise<void> {
    await createStateTable(this.pool, this.schema, this.state);
    await writeState(this.pool, this.schema, this.state, checkpoint);
  }

  async update(range: KeyRange, checkpoint: (rowsUpdated: number) => string): Promise<number> {
    return inTransaction(this.pool, async (client: Client) => {
      await client.query(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`);
      const where = this.keys.range(range);
      await userPathForTransaction(client);
      const result = await client.query(this.statement(where.sql), where.params);
      const rows = result.rowCount ?? 0;
      await writeStateWithin(client, this.schema, this.state, checkpoint(rows));
      return rows;
    }).catch((error) => {
      // 55P03: lock_timeout; 40P01: chosen as a deadlock's victim. Rolled back either way.
      if (errorCode(error) === '55P03' || errorCode(error) === '40P01') throw new LockTimeoutError(`row locks: ${(error as Error).message}`);
      throw error;
    });
  }

  savedCheckpoint(): Promise<string | null> {
    return readState(this.pool, this.schema, this.state);
  }

  async cleanup(): Promise<void> {
    const names = helperNames(this.schema, this.bare);
    for (const name of [names.state, names.heartbeat]) await dropOwnHelper(this.pool, this.schema, name);
  }

  openProbes(replicas: string[]): Promise<Probes> {
    return openPostgresProbes(this.pool, { schema: this.schema, name: this.bare }, replicas);
  }
}
