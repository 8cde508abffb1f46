import type pg from 'pg';
import type { HistoryEntry, HistoryStore } from '../../core/history/entry.js';
import { parseTableName, qualified } from './connect.js';

const NAME = 'shadowcut_history';

/** The timelines of a schema's tables, in `<schema>.shadowcut_history`, made on first use. */
export class PostgresHistory implements HistoryStore {
  constructor(private readonly pool: pg.Pool) {}

  async append(e: HistoryEntry): Promise<void> {
    const table = qualified(parseTableName(e.table).schema, NAME);
    await this.pool.query(
      `CREATE TABLE IF NOT EXISTS ${table} (
         id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         table_name text NOT NULL,
         command text NOT NULL,
         started_at timestamptz NOT NULL,
         finished_at timestamptz NOT NULL,
         outcome text NOT NULL,
         rows_touched bigint NOT NULL,
         entry jsonb NOT NULL
       )`,
    );
    await this.pool.query(`CREATE INDEX IF NOT EXISTS shadowcut_history_by_table ON ${table} (table_name, id)`);
    await this.pool.query(
      `INSERT INTO ${table} (table_name, command, started_at, finished_at, outcome, rows_touched, entry) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [e.table, e.command, e.startedAt, e.finishedAt, e.outcome, e.rowsTouched, JSON.stringify(e)],
    );
  }

  async list(table: string): Promise<HistoryEntry[]> {
    const history = qualified(parseTableName(table).schema, NAME);
    const { rows } = await this.pool.query('SELECT to_regclass($1) IS NOT NULL AS e', [history]);
    if (rows[0].e !== 't') return [];
    // As text: the pool's parsers are set for exact values, and the entry is read back as written.
    const found = await this.pool.query(`SELECT entry::text AS entry FROM ${history} WHERE table_name = $1 ORDER BY id`, [table]);
    return found.rows.map((r) => JSON.parse(String(r.entry)) as HistoryEntry);
  }
}
