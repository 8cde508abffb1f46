import { note, type Check } from '../../../core/engine/checks/check.js';
import type { PgCheckContext } from './context.js';

/** Not refusals: what an operator should know before the run. */
export const notes: Check<PgCheckContext> = {
  name: 'notes',
  async run({ pool, detail: d, capture }) {
    const { rows } = await pool.query(
      `SELECT (SELECT string_agg(pubname, ', ') FROM pg_publication WHERE puballtables) AS all_tables,
              current_setting('max_slot_wal_keep_size') AS wal_keep`,
    );
    const { all_tables: allTables, wal_keep: walKeep } = rows[0];
    return [
      // Such a publication also publishes the shadow table, which its subscribers do not have.
      note(
        'publications',
        allTables
          ? `note: publication(s) ${allTables} publish all tables; their subscribers will see the helper table ${d.shadow} and need it or must skip it`
          : 'no FOR ALL TABLES publication',
      ),
      // A slot left by a run that died keeps every WAL segment from then on; trigger capture makes none.
      ...(capture === 'stream' ? [slotNote(walKeep)] : []),
    ];
  },
};

function slotNote(walKeep: string) {
  return note(
    'max_slot_wal_keep_size',
    walKeep === '-1'
      ? 'note: max_slot_wal_keep_size is unlimited: if a run dies and is neither resumed nor cleaned up, its slot keeps WAL until the disk fills; consider a limit'
      : `max_slot_wal_keep_size = ${walKeep}`,
  );
}
