import type { Connection, Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { KeysetSql } from '../../../core/engine/keyset.js';
import { retryBounded } from '../../../core/engine/retry/retry.js';
import { UniqueViolationError, UserError, ROLLBACK_AFTER_FAILURE, ignoreFailure } from '../../../core/engine/errors.js';
import type { CheckedCopy, Key, KeyRange } from '../../../core/engine/types.js';
import type { MysqlPlan } from '../schema/plan.js';
import { fillLists } from '../schema/implicit-default.js';
import { ident, mysqlDialect, qualified, rowValues } from '../server/sql.js';

type Queryable = Pool | PoolConnection | Connection;

/**
 * The copy's column mapping as SQL lists: the shadow's columns, and what fills each from the original's
 * row; then the new columns that need a value named (`plan.fills`: a NOT NULL column without a DEFAULT).
 */
export function columnLists(plan: Pick<MysqlPlan, 'columns' | 'fills'>): { targets: string; sources: string } {
  const fills = fillLists(plan.fills);
  return {
    targets: [...plan.columns.map((c) => ident(c.target)), ...fills.targets].join(', '),
    sources: [...plan.columns.map((c) => ident(c.source)), ...fills.values].join(', '),
  };
}

/** The key `rows` rows after `after` in `table` (qualified), read along its unique index; null when fewer remain. */
export async function nextKey(db: Queryable, table: string, index: string, keys: KeysetSql, after: Key | null, rows: number): Promise<Key | null> {
  const where = keys.range({ after, upTo: null });
  const [found] = await db.query<RowDataPacket[]>({
    sql:
      `SELECT ${keys.columns.map(ident).join(', ')} FROM ${table} FORCE INDEX (${ident(index)}) WHERE ${where.sql} ` +
      `ORDER BY ${keys.orderBy()} LIMIT 1 OFFSET ${Math.max(0, rows - 1)}`,
    values: where.params,
    rowsAsArray: true,
  });
  return found.length ? rowValues(found[0]) : null;
}

/** SQL for moving rows from the original into the shadow; every statement lets the server convert types. */
export class Copier {
  private readonly origKeys: KeysetSql;
  private readonly shadowKeys: KeysetSql;
  private readonly orig: string;
  private readonly shadow: string;
  private readonly insertHead: string;

  /** `reverse`: a revert window's, filling the old table from the new one. */
  constructor(
    private readonly plan: MysqlPlan,
    private readonly flavor: 'mariadb' | 'mysql',
    private readonly reverse = false,
  ) {
    this.origKeys = new KeysetSql(mysqlDialect, plan.keyColumns);
    this.shadowKeys = new KeysetSql(mysqlDialect, plan.shadowKeyColumns);
    this.orig = qualified(plan.database, plan.table);
    this.shadow = qualified(plan.database, plan.shadow);
    const { targets, sources } = columnLists(plan);
    this.insertHead = `INSERT INTO ${this.shadow} (${targets}) SELECT ${sources} FROM ${this.orig} FORCE INDEX (${ident(plan.keyIndex)})`;
  }

  nextBoundary(db: Queryable, after: Key | null, rows: number): Promise<Key | null> {
    return nextKey(db, this.orig, this.plan.keyIndex, this.origKeys, after, rows);
  }

  /**
   * The shadow's rows in the range are replaced by the original's. A plain consistent read is
   * enough here: copy and apply never overlap, and an apply has already waited (locking read) for
   * any commit whose binlog event it handled, so this read is never older than what it replaces.
   * No IGNORE: a row the new schema rejects fails loudly, as the native ALTER would.
   */
  async copyRange(db: Pool, range: KeyRange): Promise<number> {
    return (await this.copyChecked(db, range, async () => true)).rows;
  }

  /** `copyRange`, with `check` run on the copy's session before it commits (its result is `matched`). */
  async copyChecked(db: Pool, range: KeyRange, check: (conn: PoolConnection) => Promise<boolean>): Promise<CheckedCopy> {
    const conn = await db.getConnection();
    try {
      await conn.beginTransaction();
      const shadowWhere = this.shadowKeys.range(range);
      await conn.query(`DELETE FROM ${this.shadow} WHERE ${shadowWhere.sql}`, shadowWhere.params);
      const where = this.origKeys.range(range);
      const [res] = await conn.query(`${this.insertHead} WHERE ${where.sql}`, where.params);
      const matched = await check(conn);
      await conn.commit();
      return { rows: (res as { affectedRows: number }).affectedRows, matched };
    } catch (error) {
      await conn.rollback().catch(ignoreFailure(ROLLBACK_AFTER_FAILURE));
      throw asUniqueViolation(error, this.reverse);
    } finally {
      conn.release();
    }
  }

  /**
   * The shadow's rows for these keys become the original's current committed rows. The locking read
   * waits for a writer whose binlog event we already saw but whose commit is not yet visible (group
   * commit), so we never copy the row as it was before that change (docs/invariants.md, invariant 3).
   * It first tries NOWAIT: a read that never waits can never close a deadlock cycle with a
   * multi-row application transaction, so the application is never the victim of our apply.
   * `locked` means the caller holds LOCK TABLES, under which a locking read is unnecessary.
   */
  async applyKeys(db: Pool | Connection, keys: Key[], locked: boolean): Promise<void> {
    if (locked) return this.applyOnce(db, keys, '').catch((error) => Promise.reject(asUniqueViolation(error, this.reverse)));
    const nowait = this.flavor === 'mariadb' ? ' LOCK IN SHARE MODE NOWAIT' : ' FOR SHARE NOWAIT';
    const unique = (error: unknown) => asUniqueViolation(error, this.reverse);
    // Five attempts NOWAIT, then four that wait for the lock; the pause after each doubles from 5 ms.
    const retries = { attempts: 9, retryable: isLockConflict, pauseMs: (n: number) => 5 * 2 ** (n - 1), refused: unique, exhausted: unique };
    return retryBounded(retries, async (n) => {
      const conn = await (db as Pool).getConnection();
      try {
        await conn.beginTransaction();
        await this.applyOnce(conn, keys, n <= 5 ? nowait : ' LOCK IN SHARE MODE');
        await conn.commit();
      } catch (error) {
        await conn.rollback().catch(ignoreFailure(ROLLBACK_AFTER_FAILURE));
        throw error;
      } finally {
        conn.release();
      }
    });
  }

  private async applyOnce(conn: Connection, keys: Key[], lockClause: string): Promise<void> {
    const del = this.shadowKeys.keyIn(keys);
    await conn.query(`DELETE FROM ${this.shadow} WHERE ${del.sql}`, del.params);
    const sel = this.origKeys.keyIn(keys);
    await conn.query(`${this.insertHead} WHERE ${sel.sql}${lockClause}`, sel.params);
  }
}

/** Values the new schema cannot hold: the native ALTER would stop on them too, so retrying is pointless. */
const REJECTED_VALUE = new Set([
  'ER_DATA_TOO_LONG',
  'ER_WARN_DATA_OUT_OF_RANGE',
  'ER_TRUNCATED_WRONG_VALUE',
  'ER_TRUNCATED_WRONG_VALUE_FOR_FIELD',
  'WARN_DATA_TRUNCATED',
  'ER_BAD_NULL_ERROR',
  'ER_INVALID_CHARACTER_STRING',
  'ER_CANNOT_CONVERT_CHARACTER',
  'ER_CONSTRAINT_FAILED',
  'ER_CHECK_CONSTRAINT_VIOLATED',
]);

/** The write errors an operator can act on, as such; a unique conflict for the runner to judge. */
function asUniqueViolation(error: unknown, reverse: boolean): unknown {
  const code = (error as { code?: string }).code ?? '';
  const message = (error as Error).message;
  if (code === 'ER_DUP_ENTRY') return new UniqueViolationError(message);
  if (REJECTED_VALUE.has(code) && reverse)
    return new UserError(`a row of the new table cannot be stored in the old table, so it could not come back: ${message}`);
  if (REJECTED_VALUE.has(code)) return new UserError(`a row cannot be stored under the new schema (a native ALTER fails the same way): ${message}`);
  if (code === 'ER_TRANS_CACHE_FULL') {
    return new UserError(`a chunk is too large for the binlog cache: ${message}; raise max_binlog_cache_size or lower --chunk-time-ms`);
  }
  return error;
}

function isLockConflict(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'ER_LOCK_WAIT_TIMEOUT' || code === 'ER_LOCK_NOWAIT' || code === 'ER_LOCK_DEADLOCK';
}
