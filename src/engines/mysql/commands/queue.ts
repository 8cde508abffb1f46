import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { EntryColumns, QueueTable, StoredEntry } from '../../../core/engine/ports/queue.js';
import { checkHelper, ensureHelperTable } from '../server/helper-tables.js';
import { qualified } from '../server/sql.js';

const NAME = 'shadowcut_queue';
const NOW = 'UTC_TIMESTAMP(6)';
const iso = (column: string) => `DATE_FORMAT(${column}, '%Y-%m-%dT%H:%i:%s.%fZ')`;
/** An ISO instant as a DATETIME literal in UTC, which the columns hold. */
const datetime = (at: string | null) => (at === null ? null : new Date(at).toISOString().replace('T', ' ').replace('Z', ''));

/**
 * The migration queue of one database, `<database>.shadowcut_queue`, made on first use. Rows only:
 * what a row may say and who may change it is core/queue/sealed-queue.ts's to decide.
 */
export class MysqlQueue implements QueueTable {
  private readonly table: string;

  constructor(
    private readonly pool: Pool,
    private readonly database: string,
  ) {
    this.table = qualified(database, NAME);
  }

  async name(): Promise<string> {
    return `${this.database}.${NAME}`;
  }

  async check(): Promise<void> {
    await checkHelper(this.pool, this.database, NAME);
  }

  async insert(table: string, createdAt: string, columns: (id: number) => EntryColumns): Promise<number> {
    await ensureHelperTable(
      this.pool,
      this.database,
      NAME,
      `id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
       table_name VARCHAR(512) NOT NULL,
       state VARCHAR(16) NOT NULL,
       request VARCHAR(16) NULL,
       claimed_by VARCHAR(255) NULL,
       lease_until DATETIME(6) NULL COMMENT 'UTC',
       spec LONGTEXT NOT NULL COMMENT 'the entry, sealed: what was queued and every column above',
       status LONGTEXT NOT NULL COMMENT 'attempts and progress, as JSON',
       created_at DATETIME(6) NOT NULL COMMENT 'UTC',
       updated_at DATETIME(6) NOT NULL COMMENT 'UTC'`,
      'the queue of schema changes that queue run works through',
    );
    const conn = await this.pool.getConnection();
    try {
      await conn.query('START TRANSACTION');
      // Its document names its id: the row is made first, and given the document before anyone sees it.
      const [made] = await conn.query<ResultSetHeader>(
        `INSERT INTO ${this.table} (table_name, state, spec, status, created_at, updated_at) VALUES (?, 'queued', '', '{}', ?, ${NOW})`,
        [table, datetime(createdAt)],
      );
      const id = Number(made.insertId);
      await conn.query(`UPDATE ${this.table} SET ${SETS} WHERE id = ?`, [...values(columns(id)), id]);
      await conn.query('COMMIT');
      return id;
    } catch (error) {
      await conn.query('ROLLBACK');
      throw error;
    } finally {
      conn.release();
    }
  }

  async list(): Promise<StoredEntry[]> {
    if (!(await checkHelper(this.pool, this.database, NAME))) return [];
    return this.select('1 = 1');
  }

  async get(id: number): Promise<StoredEntry | null> {
    if (!(await checkHelper(this.pool, this.database, NAME))) return null;
    return (await this.select('id = ?', [id]))[0] ?? null;
  }

  async now(): Promise<Date> {
    const [rows] = await this.pool.query<RowDataPacket[]>(`SELECT ${iso(NOW)} AS now`);
    return new Date(String(rows[0].now));
  }

  /** One conditional UPDATE; true when it matched the row (mysql2 reports found rows, not only changed ones). */
  async write(id: number, expected: string, columns: EntryColumns): Promise<boolean> {
    const [done] = await this.pool.query<ResultSetHeader>(`UPDATE ${this.table} SET ${SETS} WHERE id = ? AND spec = ?`, [...values(columns), id, expected]);
    return done.affectedRows === 1;
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const conn = await this.pool.getConnection();
    const name = `shadowcut_queue:${this.database}`;
    try {
      const [[got]] = await conn.query<RowDataPacket[]>('SELECT GET_LOCK(?, 30) AS got', [name]);
      if (Number(got.got) !== 1) throw new Error(`the queue's lock ${name} was not had in 30 s`);
      try {
        return await fn();
      } finally {
        await conn.query('DO RELEASE_LOCK(?)', [name]);
      }
    } finally {
      conn.release();
    }
  }

  private async select(where: string, values: unknown[] = []): Promise<StoredEntry[]> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT id, state, request, claimed_by, ${iso('lease_until')} AS lease_until, spec, status, ${iso('created_at')} AS created_at, ${iso('updated_at')} AS updated_at
       FROM ${this.table} WHERE ${where} ORDER BY id`,
      values,
    );
    return rows.map((r) => ({
      id: Number(r.id),
      state: String(r.state),
      request: r.request === null ? null : String(r.request),
      claimedBy: r.claimed_by === null ? null : String(r.claimed_by),
      leaseUntil: r.lease_until === null ? null : String(r.lease_until),
      sealed: String(r.spec),
      status: String(r.status),
      createdAt: String(r.created_at),
      updatedAt: String(r.updated_at),
    }));
  }
}

const SETS = `state = ?, request = ?, claimed_by = ?, lease_until = ?, spec = ?, status = ?, updated_at = ${NOW}`;

function values(c: EntryColumns): unknown[] {
  return [c.state, c.request, c.claimedBy, datetime(c.leaseUntil), c.sealed, c.status];
}
