import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { checkEnclosable, parseAssignments, type Assignment } from '../../../core/engine/backfill/sql-text.js';
import { backfillChecks } from '../../../core/engine/backfill/checks.js';
import { noPrimaryKey } from '../../../core/engine/backfill/key.js';
import type { Backfill, BackfillRequest } from '../../../core/engine/ports/backfill.js';
import { LockTimeoutError, UserError, ROLLBACK_AFTER_FAILURE, ignoreFailure } from '../../../core/engine/errors.js';
import { KeysetSql } from '../../../core/engine/keyset.js';
import type { CheckResult, Key, KeyRange, Probes } from '../../../core/engine/types.js';
import { describeTable, tableFacts, type MysqlColumn } from '../schema/inspect.js';
import type { MysqlServer } from '../migration.js';
import { helperNames, parseTableName } from '../schema/plan.js';
import { openMysqlProbes } from '../throttle/probes.js';
import { ident, mysqlDialect, qualified, rowValues } from '../server/sql.js';
import { dropOwnHelper } from '../server/helper-tables.js';
import { createStateTable, readState, writeState } from '../server/state.js';

/** A batch waits this long (seconds, InnoDB's unit) for a row an application holds, then is retried later. */
const LOCK_WAIT_SECONDS = 2;

export async function prepareMysqlBackfill(server: MysqlServer, request: BackfillRequest): Promise<Backfill> {
  const database = server.target.database;
  const table = parseTableName(request.table, database);
  const facts = await tableFacts(server.pool, database, table);
  if (!facts) throw new UserError(`table ${database}.${table} does not exist`);
  if (facts.isView) throw new UserError(`${database}.${table} is a view, not a table`);
  const shape = await describeTable(server.pool, database, table);
  // The primary key only (core/engine/backfill/key.ts): another unique key can change under the walk.
  const key = shape.indexes.find((i) => i.name === 'PRIMARY');
  if (!key) throw noPrimaryKey(`${database}.${table}`);
  const assignments = parseAssignments(request.set);
  if (request.where !== undefined) checkEnclosable(request.where, '--where');
  return new MysqlBackfill(server, database, table, key.name, key.columns, facts.estimatedRows, shape.columns, assignments, request);
}

/**
 * The UPDATE in keyset batches. Each batch runs in READ COMMITTED: InnoDB then locks only the rows
 * the UPDATE changes, with no gap locks, so inserts into the batch's range are never held up, and
 * it evaluates --where on each row's latest committed version (waiting for a writer that holds it).
 */
class MysqlBackfill implements Backfill {
  readonly table: string;
  private readonly keys: KeysetSql;
  private readonly name: string;
  private readonly state: string;
  private readonly where: string;

  constructor(
    private readonly server: MysqlServer,
    private readonly database: string,
    private readonly bare: string,
    readonly keyIndex: string,
    readonly keyColumns: string[],
    readonly estimatedRows: number,
    private readonly columns: MysqlColumn[],
    private readonly assignments: Assignment[],
    private readonly request: BackfillRequest,
  ) {
    this.table = `${database}.${bare}`;
    this.keys = new KeysetSql(mysqlDialect, keyColumns);
    this.name = qualified(database, bare);
    this.state = helperNames(bare).state;
    // On lines of their own: a `--` comment at the end of the operator's text cannot swallow ours.
    this.where = request.where?.trim() ? ` AND (\n${request.where}\n)` : '';
  }

  private get pool() {
    return this.server.pool;
  }

  private statement(range: string): string {
    return `UPDATE ${this.name} SET\n${this.request.set}\nWHERE (${range})${this.where}`;
  }

  checks(): Promise<CheckResult[]> {
    return backfillChecks(
      this.table,
      this.keyIndex,
      this.assignments,
      (a) => {
        const column = this.columns.find((c) => c.name.toLowerCase() === a.column.toLowerCase());
        const inKey = (name: string) => this.keyColumns.some((k) => k.toLowerCase() === name.toLowerCase());
        return column && { name: column.name, generated: column.generated, inKey: inKey(column.name) };
      },
      () => this.explain(),
    );
  }

  /** EXPLAIN UPDATE: the server resolves every name and plans the statement without running it. */
  private async explain(): Promise<RowDataPacket[]> {
    const [rows] = await this.pool.query<RowDataPacket[]>(`EXPLAIN ${this.statement('1=1')}`);
    return rows;
  }

  async estimateMatching(): Promise<number> {
    const rows = await this.explain();
    return Math.round(rows.reduce((sum, r) => sum + Number(r.rows ?? 0) * (r.filtered === undefined || r.filtered === null ? 1 : Number(r.filtered) / 100), 0));
  }

  /**
   * The next keys, counted and their last one taken on the server (a CTE over `ORDER BY key LIMIT n`):
   * nothing travels but one key and a count.
   */
  async nextBatch(after: Key | null, rows: number): Promise<{ upTo: Key; rows: number } | null> {
    const where = this.keys.range({ after, upTo: null });
    const cols = this.keyColumns.map(ident).join(', ');
    const desc = this.keyColumns.map((c) => `${ident(c)} DESC`).join(', ');
    const [found] = await this.pool.query<RowDataPacket[]>({
      sql:
        `WITH s AS (SELECT ${cols} FROM ${this.name} FORCE INDEX (${ident(this.keyIndex)}) WHERE ${where.sql} ORDER BY ${this.keys.orderBy()} LIMIT ${rows}) ` +
        `SELECT ${cols}, (SELECT COUNT(*) FROM s) FROM s ORDER BY ${desc} LIMIT 1`,
      values: where.params,
      rowsAsArray: true,
    });
    if (found.length === 0) return null;
    const row = rowValues(found[0]);
    return { upTo: row.slice(0, -1), rows: Number(row[row.length - 1]) };
  }

  async start(checkpoint: string): Promise<void> {
    await createStateTable(this.pool, this.database, this.state);
    await writeState(this.pool, this.database, this.state, checkpoint);
  }

  async update(range: KeyRange, checkpoint: (rowsUpdated: number) => string): Promise<number> {
    const conn = await this.pool.getConnection();
    try {
      await conn.query(`SET SESSION innodb_lock_wait_timeout = ${LOCK_WAIT_SECONDS}`);
      // READ COMMITTED cannot be logged as statements; a server logging them keeps its own level.
      const [[format]] = await conn.query<RowDataPacket[]>('SELECT @@SESSION.binlog_format AS f');
      if (String(format.f).toUpperCase() !== 'STATEMENT') await conn.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
      await conn.beginTransaction();
      const where = this.keys.range(range);
      const [res] = await conn.query<ResultSetHeader>(this.statement(where.sql), where.params);
      // mysql2 asks for found rows: the rows that matched, changed or already equal.
      await writeState(conn, this.database, this.state, checkpoint(res.affectedRows));
      await conn.commit();
      return res.affectedRows;
    } catch (error) {
      await conn.rollback().catch(ignoreFailure(ROLLBACK_AFTER_FAILURE));
      const code = (error as { code?: string }).code;
      if (code === 'ER_LOCK_WAIT_TIMEOUT' || code === 'ER_LOCK_DEADLOCK') throw new LockTimeoutError(`row locks: ${(error as Error).message}`);
      throw error;
    } finally {
      conn.release();
    }
  }

  savedCheckpoint(): Promise<string | null> {
    return readState(this.pool, this.database, this.state);
  }

  async cleanup(): Promise<void> {
    const names = helperNames(this.bare);
    for (const name of [names.state, names.heartbeat]) await dropOwnHelper(this.pool, this.database, name);
  }

  async openProbes(replicas: string[]): Promise<Probes> {
    // A backfill's UPDATEs are writesets every node applies: paced by the cluster's flow control too.
    return openMysqlProbes(this.server.target, this.pool, { database: this.database, table: this.bare }, replicas, await this.server.galeraMembers());
  }
}
