import type pg from 'pg';
import type { HelperColumn, HelperLayout, HelperRow, HelperTable, HelperTables, StoredRow } from '../../../core/engine/ports/helper-table.js';
import { SESSION_RESET, UserError, ignoreFailure } from '../../../core/engine/errors.js';
import type { Client } from './connect.js';
import { helperNames } from './helper-names.js';
import { ident, parseTableName, qualified } from './sql.js';
import { checkHelper, ensureHelperTableIn, helperTransaction } from './helper-tables.js';

/** Database-wide helpers (the queue) live where `public` is on every server: their rows name tables of any schema. */
const PUBLIC = 'public';
/** The statement's own instant, not its transaction's. */
const NOW = 'pg_catalog.clock_timestamp()';
const iso = (column: string) => `pg_catalog.to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

const TYPES: Record<HelperColumn['type'], string> = {
  serial: 'bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY',
  text: 'text',
  document: 'jsonb',
  instant: 'timestamptz',
  count: 'bigint',
};
/** How a parameter is cast to its column, and how the column is read back as text (the pool's parsers are set for exact values: JSON is read as written). */
const CAST: Partial<Record<HelperColumn['type'], string>> = { document: '::jsonb', instant: '::timestamptz' };
const read = (c: HelperColumn) => (c.type === 'instant' ? iso(ident(c.name)) : `${ident(c.name)}::text`);

/** The helpers core keeps (core/engine/ports/helper-table.ts): the queue in `public`, a table's timeline in its schema. */
export class PgHelperTables implements HelperTables {
  constructor(private readonly pool: pg.Pool) {}

  table(layout: HelperLayout, place = PUBLIC): HelperTable {
    return new PgHelperTable(this.pool, place, layout);
  }

  check(name: string, place = PUBLIC): Promise<boolean> {
    return helperTransaction(this.pool, (client) => checkHelper(client, place, name));
  }

  placeOf(table: string): string {
    return parseTableName(table).schema;
  }

  /** None for a name too long to derive them from: migrate refuses it, verify and contract run on it. */
  helpersOf(table: string): string[] {
    const { schema, name } = parseTableName(table);
    try {
      const { state, heartbeat } = helperNames(schema, name);
      return [state, heartbeat];
    } catch (error) {
      if (error instanceof UserError) return [];
      throw error;
    }
  }

  async now(): Promise<Date> {
    const { rows } = await this.pool.query(`SELECT ${iso(NOW)} AS now`);
    return new Date(String(rows[0].now));
  }

  /** A session advisory lock, held across the caller's own statements on other sessions; bounded like MySQL's. */
  async exclusive<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query(`SET statement_timeout = 30000`);
      await client.query(`SELECT pg_catalog.pg_advisory_lock(pg_catalog.hashtext($1))`, [name]);
      try {
        return await fn();
      } finally {
        await client.query(`SELECT pg_catalog.pg_advisory_unlock(pg_catalog.hashtext($1))`, [name]);
      }
    } finally {
      await client.query('RESET statement_timeout').catch(ignoreFailure(SESSION_RESET));
      client.release();
    }
  }
}

/**
 * One helper in `schema`. Every statement runs in a transaction that first proves the table still
 * shadowcut's own and that no other role can write it (helper-tables.ts), with the search_path pinned.
 */
class PgHelperTable implements HelperTable {
  private readonly table: string;
  private readonly key: string;

  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
    private readonly layout: HelperLayout,
  ) {
    this.table = qualified(schema, layout.name);
    this.key = ident(layout.columns[0].name);
  }

  async name(): Promise<string> {
    const { rows } = await this.pool.query('SELECT pg_catalog.current_database() AS db');
    return `${String(rows[0].db)}.${this.schema}.${this.layout.name}`;
  }

  ensure(): Promise<void> {
    const { name, purpose, columns, index } = this.layout;
    const definition = columns.map((c) => `${ident(c.name)} ${TYPES[c.type]}${c.nullable || c.type === 'serial' ? '' : ' NOT NULL'}`).join(', ');
    return helperTransaction(this.pool, async (client) => {
      await ensureHelperTableIn(client, this.schema, name, definition, purpose);
      // In the transaction that made the table, under its lock: two first uses at once make it once.
      if (index) await client.query(`CREATE INDEX IF NOT EXISTS ${ident(`${name}_${index.name}`)} ON ${this.table} (${index.columns.map(ident).join(', ')})`);
    });
  }

  select(where: HelperRow): Promise<StoredRow[]> {
    return this.checked([], async (client) => {
      const [cond, values] = this.assign(where, ' AND ');
      const columns = this.layout.columns.map((c) => `${read(c)} AS ${ident(c.name)}`);
      // Ordered by the table's column, qualified: a bare name means the output column of that name, the
      // key as text, which puts id 10 before id 9 (a timeline out of order, the queue's entries too).
      const { rows } = await client.query(`SELECT ${columns.join(', ')} FROM ${this.table} WHERE ${cond || 'true'} ORDER BY ${this.table}.${this.key}`, values);
      return rows as StoredRow[];
    });
  }

  insert(row: HelperRow, complete?: (id: number) => HelperRow): Promise<number> {
    return helperTransaction(this.pool, async (client) => {
      await checkHelper(client, this.schema, this.layout.name);
      const [names, values] = [Object.keys(row), Object.values(row)];
      const marks = names.map((n, i) => `$${i + 1}${this.cast(n)}`);
      const stamped = this.layout.columns.filter((c) => c.stamped).map((c) => c.name);
      const made = await client.query(
        `INSERT INTO ${this.table} (${[...names, ...stamped].map(ident).join(', ')}) VALUES (${[...marks, ...stamped.map(() => NOW)].join(', ')})
         RETURNING ${this.key}::text AS id`,
        values,
      );
      const id = Number(made.rows[0].id);
      if (complete) await this.write(client, { [this.layout.columns[0].name]: id }, complete(id));
      return id;
    });
  }

  update(where: HelperRow, set: HelperRow): Promise<number> {
    return this.checked(0, (client) => this.write(client, where, set));
  }

  /** `fn` in a helper transaction over the table proven shadowcut's own; `none` when there is no table. */
  private checked<T>(none: T, fn: (client: Client) => Promise<T>): Promise<T> {
    return helperTransaction(this.pool, async (client) => ((await checkHelper(client, this.schema, this.layout.name)) ? fn(client) : none));
  }

  private async write(client: Client, where: HelperRow, set: HelperRow): Promise<number> {
    const [sets, setValues] = this.assign(set, ', ');
    const [cond, condValues] = this.assign(where, ' AND ', setValues.length);
    const stamps = this.layout.columns.filter((c) => c.stamped).map((c) => `${ident(c.name)} = ${NOW}`);
    const done = await client.query(`UPDATE ${this.table} SET ${[sets, ...stamps].filter(Boolean).join(', ')} WHERE ${cond}`, [...setValues, ...condValues]);
    return done.rowCount ?? 0;
  }

  /** `column = $n` for each (cast to the column's type: a document is compared as JSON), joined. */
  private assign(row: HelperRow, join: string, after = 0): [string, unknown[]] {
    const names = Object.keys(row);
    return [names.map((n, i) => `${ident(n)} = $${after + i + 1}${this.cast(n)}`).join(join), Object.values(row)];
  }

  private cast(name: string): string {
    const type = this.layout.columns.find((c) => c.name === name)?.type;
    return (type && CAST[type]) ?? '';
  }
}
