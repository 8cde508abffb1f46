import type { EngineHelperTables, HelperLayout, HelperTables } from '../engine/ports/helper-table.js';
import type { HistoryEntry, HistoryStore } from '../engine/ports/history.js';
import { readEntries, writeEntry } from '../engine/state/history-entries.js';

/** `shadowcut_history`, in the table's database (MySQL) or schema (PostgreSQL), made on first use. */
const LAYOUT: HelperLayout = {
  name: 'shadowcut_history',
  // The comment every version has given it, so older timelines carry the mark already.
  purpose: 'the schema change timeline of each table',
  columns: [
    { name: 'id', type: 'serial' },
    { name: 'table_name', type: 'text', length: 512 },
    { name: 'command', type: 'text', length: 16 },
    { name: 'started_at', type: 'instant' },
    { name: 'finished_at', type: 'instant' },
    { name: 'outcome', type: 'text', length: 16 },
    { name: 'rows_touched', type: 'count' },
    { name: 'entry', type: 'document', note: 'the whole stage as JSON' },
  ],
  index: { name: 'by_table', columns: ['table_name', 'id'] },
};

/** The timelines of the tables, the same for both engines; each entry sealed (stored.ts). */
export class HistoryTable implements HistoryStore {
  constructor(private readonly helpers: HelperTables) {}

  /** The timeline and the table's own helpers (checkpoint, heartbeat), before a stage on `table` runs. */
  async check(table: string): Promise<void> {
    const place = this.helpers.placeOf(table);
    for (const helper of [LAYOUT.name, ...this.helpers.helpersOf(table)]) await this.helpers.check(helper, place);
  }

  async append(e: HistoryEntry): Promise<void> {
    const table = this.helpers.table(LAYOUT, this.helpers.placeOf(e.table));
    await table.ensure();
    await table.insert({
      table_name: e.table,
      command: e.command,
      started_at: e.startedAt,
      finished_at: e.finishedAt,
      outcome: e.outcome,
      rows_touched: e.rowsTouched,
      entry: writeEntry(e),
    });
  }

  async list(table: string): Promise<HistoryEntry[]> {
    const rows = await this.helpers.table(LAYOUT, this.helpers.placeOf(table)).select({ table_name: table });
    return readEntries(
      table,
      rows.map((r) => String(r.entry)),
    );
  }
}

/** The timelines on the engine's server. */
export function historyOf(engine: EngineHelperTables): HistoryStore {
  return new HistoryTable(engine.helperTables);
}
