import type pg from 'pg';
import { UserError } from '../../../core/engine/errors.js';
import type { HistoryEntry, HistoryStore } from '../../../core/engine/ports/history.js';
import { readEntries, writeEntry } from '../../../core/engine/state/history-entries.js';
import { helperNames } from '../server/helper-names.js';
import { parseTableName, qualified } from '../server/sql.js';
import { checkHelper, ensureHelperTableIn, helperTransaction } from '../server/helper-tables.js';

const NAME = 'shadowcut_history';

/** The timelines of a schema's tables, in `<schema>.shadowcut_history`, made on first use; refused when not shadowcut's own. */
export class PostgresHistory implements HistoryStore {
  constructor(private readonly pool: pg.Pool) {}

  /** The timeline and the table's own helpers (checkpoint, heartbeat), before a stage on `table` runs. */
  async check(table: string): Promise<void> {
    const { schema, name } = parseTableName(table);
    await helperTransaction(this.pool, async (client) => {
      for (const helper of [NAME, ...ownHelpers(schema, name)]) await checkHelper(client, schema, helper);
    });
  }

  async append(e: HistoryEntry): Promise<void> {
    const { schema } = parseTableName(e.table);
    const table = qualified(schema, NAME);
    await helperTransaction(this.pool, async (client) => {
      await ensureHelperTableIn(
        client,
        schema,
        NAME,
        `id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         table_name text NOT NULL,
         command text NOT NULL,
         started_at timestamptz NOT NULL,
         finished_at timestamptz NOT NULL,
         outcome text NOT NULL,
         rows_touched bigint NOT NULL,
         entry jsonb NOT NULL`,
        'the schema change timeline of each table',
      );
      // In the transaction that made the table, under its lock: two first entries at once make it once.
      await client.query(`CREATE INDEX IF NOT EXISTS shadowcut_history_by_table ON ${table} (table_name, id)`);
      await client.query(
        `INSERT INTO ${table} (table_name, command, started_at, finished_at, outcome, rows_touched, entry) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [e.table, e.command, e.startedAt, e.finishedAt, e.outcome, e.rowsTouched, writeEntry(e)],
      );
    });
  }

  list(table: string): Promise<HistoryEntry[]> {
    const { schema } = parseTableName(table);
    return helperTransaction(this.pool, async (client) => {
      if (!(await checkHelper(client, schema, NAME))) return [];
      // As text: the pool's parsers are set for exact values, and the entry is read back as written.
      const found = await client.query(`SELECT entry::text AS entry FROM ${qualified(schema, NAME)} WHERE table_name = $1 ORDER BY id`, [table]);
      return readEntries(
        table,
        found.rows.map((r) => String(r.entry)),
      );
    });
  }
}

/** The table's checkpoint and heartbeat; none for a name too long to derive them from (migrate refuses it, verify and contract run on it). */
function ownHelpers(schema: string, name: string): string[] {
  try {
    const { state, heartbeat } = helperNames(schema, name);
    return [state, heartbeat];
  } catch (error) {
    if (error instanceof UserError) return [];
    throw error;
  }
}
