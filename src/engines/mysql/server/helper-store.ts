import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { HelperColumn, HelperLayout, HelperRow, HelperTable, HelperTables, StoredRow } from '../../../core/engine/ports/helper-table.js';
import { checkHelper, ensureHelperTable } from './helper-tables.js';
import { ident, qualified } from './sql.js';

const NOW = 'UTC_TIMESTAMP(6)';
const iso = (column: string) => `DATE_FORMAT(${column}, '%Y-%m-%dT%H:%i:%s.%fZ')`;
/** An ISO instant as a DATETIME literal in UTC, which the columns hold (DATETIME has no zone). */
const datetime = (at: string | number | null) => (at === null ? null : new Date(at).toISOString().replace('T', ' ').replace('Z', ''));

const TYPES: Record<HelperColumn['type'], (c: HelperColumn) => string> = {
  serial: () => 'BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY',
  text: (c) => (c.length ? `VARCHAR(${c.length})` : 'LONGTEXT'),
  document: () => 'LONGTEXT',
  instant: () => 'DATETIME(6)',
  count: () => 'BIGINT',
};

/** The helpers core keeps (core/engine/ports/helper-table.ts) in the URL's database, where every helper of its tables lives. */
export class MysqlHelperTables implements HelperTables {
  constructor(
    private readonly pool: Pool,
    private readonly database: string,
    /** The table's name as the server stores it, from the operator's spelling (throws UserError for another database's). */
    private readonly bareName: (table: string) => string,
    private readonly helperNames: (bare: string) => { state: string; heartbeat: string },
  ) {}

  table(layout: HelperLayout, place = this.database): HelperTable {
    return new MysqlHelperTable(this.pool, place, layout);
  }

  check(name: string, place = this.database): Promise<boolean> {
    return checkHelper(this.pool, place, name);
  }

  placeOf(): string {
    return this.database;
  }

  helpersOf(table: string): string[] {
    const { state, heartbeat } = this.helperNames(this.bareName(table));
    return [state, heartbeat];
  }

  async now(): Promise<Date> {
    const [rows] = await this.pool.query<RowDataPacket[]>(`SELECT ${iso(NOW)} AS now`);
    return new Date(String(rows[0].now));
  }

  /** GET_LOCK on a session of its own, the lock named with the database: the server's locks are server-wide. */
  async exclusive<T>(lock: string, fn: () => Promise<T>): Promise<T> {
    const conn = await this.pool.getConnection();
    const name = `${lock}:${this.database}`;
    try {
      const [[got]] = await conn.query<RowDataPacket[]>('SELECT GET_LOCK(?, 30) AS got', [name]);
      if (Number(got.got) !== 1) throw new Error(`the lock ${name} was not had in 30 s`);
      try {
        return await fn();
      } finally {
        await conn.query('DO RELEASE_LOCK(?)', [name]);
      }
    } finally {
      conn.release();
    }
  }
}

/**
 * One helper in `database`. Proven shadowcut's own when made and before it is read; a write is not
 * checked again, since no check keeps out an account with the database's rights: what core reads
 * back is sealed instead (helper-tables.ts says why the rights are not refused).
 */
class MysqlHelperTable implements HelperTable {
  private readonly table: string;
  private readonly stamped: string[];

  constructor(
    private readonly pool: Pool,
    private readonly database: string,
    private readonly layout: HelperLayout,
  ) {
    this.table = qualified(database, layout.name);
    this.stamped = layout.columns.filter((c) => c.stamped).map((c) => c.name);
  }

  async name(): Promise<string> {
    return `${this.database}.${this.layout.name}`;
  }

  async ensure(): Promise<void> {
    const columns = this.layout.columns.map((c) => {
      const nullable = c.type === 'serial' ? '' : c.nullable ? ' NULL' : ' NOT NULL';
      const note = c.note ?? (c.type === 'instant' ? 'UTC' : undefined);
      return `${ident(c.name)} ${TYPES[c.type](c)}${nullable}${note ? ` COMMENT '${note.replace(/'/g, "''")}'` : ''}`;
    });
    const index = this.layout.index ? [`KEY ${ident(this.layout.index.name)} (${this.layout.index.columns.map(ident).join(', ')})`] : [];
    await ensureHelperTable(this.pool, this.database, this.layout.name, [...columns, ...index].join(', '), this.layout.purpose);
  }

  async select(where: HelperRow): Promise<StoredRow[]> {
    if (!(await checkHelper(this.pool, this.database, this.layout.name))) return [];
    const columns = this.layout.columns.map((c) => (c.type === 'instant' ? `${iso(ident(c.name))} AS ${ident(c.name)}` : ident(c.name)));
    const [cond, values] = this.assign(where, ' AND ');
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT ${columns.join(', ')} FROM ${this.table} WHERE ${cond || 'TRUE'} ORDER BY ${ident(this.layout.columns[0].name)}`,
      values,
    );
    return rows.map((r) => Object.fromEntries(this.layout.columns.map((c) => [c.name, r[c.name] === null ? null : String(r[c.name])])));
  }

  async insert(row: HelperRow, complete?: (id: number) => HelperRow): Promise<number> {
    const conn = await this.pool.getConnection();
    try {
      await conn.query('START TRANSACTION');
      const names = [...Object.keys(row).map(ident), ...this.stamped.map(ident)];
      const marks = [...Object.keys(row).map(() => '?'), ...this.stamped.map(() => NOW)];
      const [made] = await conn.query<ResultSetHeader>(`INSERT INTO ${this.table} (${names.join(', ')}) VALUES (${marks.join(', ')})`, this.values(row));
      const id = Number(made.insertId);
      if (complete) {
        const [sets, values] = this.assign(complete(id), ', ');
        await conn.query(`UPDATE ${this.table} SET ${this.withStamps(sets)} WHERE ${ident(this.layout.columns[0].name)} = ?`, [...values, id]);
      }
      await conn.query('COMMIT');
      return id;
    } catch (error) {
      await conn.query('ROLLBACK');
      throw error;
    } finally {
      conn.release();
    }
  }

  /** mysql2 reports the rows found, not only those changed: a write of the same values still matched. */
  async update(where: HelperRow, set: HelperRow): Promise<number> {
    const [sets, setValues] = this.assign(set, ', ');
    const [cond, condValues] = this.assign(where, ' AND ');
    const [done] = await this.pool.query<ResultSetHeader>(`UPDATE ${this.table} SET ${this.withStamps(sets)} WHERE ${cond}`, [...setValues, ...condValues]);
    return done.affectedRows;
  }

  private withStamps(sets: string): string {
    return [sets, ...this.stamped.map((c) => `${ident(c)} = ${NOW}`)].filter(Boolean).join(', ');
  }

  /** `column = ?` for each, joined, with the values as the columns take them. */
  private assign(row: HelperRow, join: string): [string, unknown[]] {
    return [
      Object.keys(row)
        .map((c) => `${ident(c)} = ?`)
        .join(join),
      this.values(row),
    ];
  }

  private values(row: HelperRow): unknown[] {
    return Object.entries(row).map(([name, value]) => (this.layout.columns.find((c) => c.name === name)?.type === 'instant' ? datetime(value) : value));
  }
}
