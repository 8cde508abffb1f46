import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { QueueRequest, QueueRow, QueueSpec, QueueState, QueueStatus, QueueStore } from '../../../core/engine/ports/queue.js';
import { readSpec, readStatus, writeSpec } from '../../../core/queue/stored.js';
import { checkHelper, ensureHelperTable } from '../server/helper-tables.js';
import { qualified } from '../server/sql.js';

const NAME = 'shadowcut_queue';
const NOW = 'UTC_TIMESTAMP(6)';
const iso = (column: string) => `DATE_FORMAT(${column}, '%Y-%m-%dT%H:%i:%s.%fZ')`;

/** The migration queue of one database, `<database>.shadowcut_queue`, made on first use. */
export class MysqlQueue implements QueueStore {
  private readonly table: string;

  constructor(
    private readonly pool: Pool,
    private readonly database: string,
  ) {
    this.table = qualified(database, NAME);
  }

  async check(): Promise<void> {
    await checkHelper(this.pool, this.database, NAME);
  }

  async add(spec: QueueSpec): Promise<number> {
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
       spec LONGTEXT NOT NULL COMMENT 'what was queued, as JSON',
       status LONGTEXT NOT NULL COMMENT 'attempts and progress, as JSON',
       created_at DATETIME(6) NOT NULL COMMENT 'UTC',
       updated_at DATETIME(6) NOT NULL COMMENT 'UTC'`,
      'the queue of schema changes that queue run works through',
    );
    const status: QueueStatus = { attempts: [] };
    const [done] = await this.pool.query<ResultSetHeader>(
      `INSERT INTO ${this.table} (table_name, state, spec, status, created_at, updated_at) VALUES (?, 'queued', ?, ?, ${NOW}, ${NOW})`,
      [spec.table, writeSpec(spec), JSON.stringify(status)],
    );
    return Number(done.insertId);
  }

  async list(): Promise<QueueRow[]> {
    if (!(await checkHelper(this.pool, this.database, NAME))) return [];
    return this.select('1 = 1');
  }

  async get(id: number): Promise<QueueRow | null> {
    if (!(await checkHelper(this.pool, this.database, NAME))) return null;
    return (await this.select('id = ?', [id]))[0] ?? null;
  }

  async now(): Promise<Date> {
    const [rows] = await this.pool.query<RowDataPacket[]>(`SELECT ${iso(NOW)} AS now`);
    return new Date(String(rows[0].now));
  }

  async claim(id: number, runner: string, leaseSeconds: number): Promise<boolean> {
    return this.change(
      `state = 'running', claimed_by = ?, lease_until = ${NOW} + INTERVAL ? SECOND`,
      `id = ? AND (state = 'queued' OR (state = 'running' AND lease_until < ${NOW}))`,
      [runner, leaseSeconds, id],
    );
  }

  renew(id: number, runner: string, leaseSeconds: number, status: QueueStatus): Promise<boolean> {
    return this.change(`lease_until = ${NOW} + INTERVAL ? SECOND, status = ?`, `id = ? AND state = 'running' AND claimed_by = ?`, [
      leaseSeconds,
      JSON.stringify(status),
      id,
      runner,
    ]);
  }

  finish(id: number, runner: string, state: QueueState, status: QueueStatus): Promise<boolean> {
    return this.change(
      `state = ?, request = IF(? = 'queued', request, NULL), lease_until = NULL, status = ?`,
      `id = ? AND state = 'running' AND claimed_by = ?`,
      [state, state, JSON.stringify(status), id, runner],
    );
  }

  transition(id: number, from: QueueState[], to: QueueState, status?: QueueStatus, spec?: QueueSpec): Promise<boolean> {
    const sets = ['state = ?', 'request = NULL', ...(status ? ['status = ?'] : []), ...(spec ? ['spec = ?'] : [])];
    const values = [to, ...(status ? [JSON.stringify(status)] : []), ...(spec ? [writeSpec(spec)] : [])];
    return this.change(sets.join(', '), `id = ? AND state IN (${from.map(() => '?').join(', ')})`, [...values, id, ...from]);
  }

  request(id: number, request: QueueRequest | null): Promise<boolean> {
    return this.change('request = ?', `id = ? AND state IN ('queued', 'running')`, [request, id]);
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

  async wait(id: number, reason: string): Promise<void> {
    await this.pool.query(`UPDATE ${this.table} SET status = JSON_SET(status, '$.waiting', ?) WHERE id = ? AND state = 'queued'`, [reason, id]);
  }

  /** One conditional UPDATE; true when it matched a row (mysql2 reports found rows, not only changed ones). */
  private async change(sets: string, where: string, values: unknown[]): Promise<boolean> {
    const [done] = await this.pool.query<ResultSetHeader>(`UPDATE ${this.table} SET ${sets}, updated_at = ${NOW} WHERE ${where}`, values);
    return done.affectedRows === 1;
  }

  private async select(where: string, values: unknown[] = []): Promise<QueueRow[]> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT id, state, request, claimed_by, ${iso('lease_until')} AS lease_until, spec, status, ${iso('created_at')} AS created_at, ${iso('updated_at')} AS updated_at
       FROM ${this.table} WHERE ${where} ORDER BY id`,
      values,
    );
    return rows.map((r) => ({
      id: Number(r.id),
      state: String(r.state) as QueueState,
      request: r.request === null ? null : (String(r.request) as QueueRequest),
      claimedBy: r.claimed_by === null ? null : String(r.claimed_by),
      leaseUntil: r.lease_until === null ? null : String(r.lease_until),
      spec: readSpec(String(r.spec), Number(r.id)),
      status: readStatus(String(r.status)),
      createdAt: String(r.created_at),
      updatedAt: String(r.updated_at),
    }));
  }
}
