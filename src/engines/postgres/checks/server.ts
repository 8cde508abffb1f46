import { verdict, type Check } from '../../../core/check.js';
import type { PgCheckContext } from './context.js';

/** The change stream is a logical replication slot read by a WAL sender, with pgoutput's messages. */
export const server: Check<PgCheckContext> = {
  name: 'server settings',
  async run({ pool }) {
    const { rows } = await pool.query(
      `SELECT current_setting('wal_level') AS wal_level,
              current_setting('server_version_num')::int AS version,
              current_setting('max_replication_slots')::int AS max_slots,
              (SELECT count(*) FROM pg_replication_slots) AS used_slots,
              current_setting('max_wal_senders')::int AS max_senders,
              (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender') AS used_senders`,
    );
    const s = rows[0];
    const freeSlots = Number(s.max_slots) - Number(s.used_slots);
    const freeSenders = Number(s.max_senders) - Number(s.used_senders);
    return [
      verdict(
        'server version',
        Number(s.version) >= 140000,
        `PostgreSQL ${s.version}`,
        `PostgreSQL ${s.version} is too old: logical messages in pgoutput need 14 or later`,
      ),
      verdict(
        'wal_level',
        s.wal_level === 'logical',
        'wal_level = logical',
        `wal_level is ${s.wal_level}; set wal_level = logical in postgresql.conf and restart the server`,
      ),
      verdict(
        'replication slot',
        freeSlots > 0,
        `${freeSlots} free replication slot(s)`,
        `all ${s.max_slots} replication slots are in use; raise max_replication_slots (restart) or drop an unused slot`,
      ),
      verdict(
        'wal sender',
        freeSenders > 0,
        `${freeSenders} free WAL sender(s)`,
        `all ${s.max_senders} WAL senders are in use; raise max_wal_senders (restart)`,
      ),
    ];
  },
};
