import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { HistoryEntry, HistoryStore } from '../../../core/engine/ports/history.js';
import { readEntries, writeEntry } from '../../../core/engine/state/history-entries.js';
import { checkHelper, ensureHelperTable } from '../server/helper-tables.js';
import { helperNames } from '../schema/plan.js';
import { qualified } from '../server/sql.js';

const NAME = 'shadowcut_history';

/** The timelines of a database's tables, in `<database>.shadowcut_history`, made on first use. */
export class MysqlHistory implements HistoryStore {
  constructor(
    private readonly pool: Pool,
    private readonly database: string,
    /** The table's name as the server stores it (the engine's case folding), from the operator's spelling. */
    private readonly bareName: (table: string) => string,
  ) {}

  /** The timeline and the table's own helpers (checkpoint, heartbeat), before a stage on `table` runs. */
  async check(table: string): Promise<void> {
    const { state, heartbeat } = helperNames(this.bareName(table));
    for (const helper of [NAME, state, heartbeat]) await checkHelper(this.pool, this.database, helper);
  }

  async append(e: HistoryEntry): Promise<void> {
    await ensureHelperTable(
      this.pool,
      this.database,
      NAME,
      `id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
       table_name VARCHAR(512) NOT NULL,
       command VARCHAR(16) NOT NULL,
       started_at DATETIME(6) NOT NULL COMMENT 'UTC',
       finished_at DATETIME(6) NOT NULL COMMENT 'UTC',
       outcome VARCHAR(16) NOT NULL,
       rows_touched BIGINT NOT NULL,
       entry LONGTEXT NOT NULL COMMENT 'the whole stage as JSON',
       KEY by_table (table_name, id)`,
      // The comment every version has given it, so older timelines carry the mark already.
      'the schema change timeline of each table',
    );
    await this.pool.query(
      `INSERT INTO ${qualified(this.database, NAME)} (table_name, command, started_at, finished_at, outcome, rows_touched, entry) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      [e.table, e.command, utc(e.startedAt), utc(e.finishedAt), e.outcome, e.rowsTouched, writeEntry(e)],
    );
  }

  async list(table: string): Promise<HistoryEntry[]> {
    if (!(await checkHelper(this.pool, this.database, NAME))) return [];
    const [rows] = await this.pool.query<RowDataPacket[]>(`SELECT entry FROM ${qualified(this.database, NAME)} WHERE table_name = ? ORDER BY id`, [table]);
    return readEntries(
      table,
      rows.map((r) => String(r.entry)),
    );
  }
}

/** DATETIME has no zone: the ISO instant's UTC wall clock, to the microsecond column's precision. */
function utc(iso: string): string {
  return iso.replace('T', ' ').replace('Z', '');
}
