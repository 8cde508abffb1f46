import type pg from 'pg';
import { verdict } from '../../../core/engine/checks/check.js';
import type { CheckResult } from '../../../core/engine/types.js';
import { currentRole } from '../server/role.js';

/**
 * What logical decoding needs of the server: the stream's checks, and what `auto` weighs
 * (`logicalDecodingProblems`). A set (several tables, one cut-over) takes one slot and one WAL
 * sender, as a table alone does (capture/logical/hub.ts).
 */
export async function streamSettings(pool: pg.Pool): Promise<CheckResult[]> {
  const { rows } = await pool.query(
    `SELECT current_setting('wal_level') AS wal_level,
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
    verdict('wal sender', freeSenders > 0, `${freeSenders} free WAL sender(s)`, `all ${s.max_senders} WAL senders are in use; raise max_wal_senders (restart)`),
  ];
}

/** Why logical decoding cannot follow the table for this role, empty when it can: `--capture auto` takes triggers otherwise. */
export async function logicalDecodingProblems(pool: pg.Pool): Promise<string[]> {
  const results = [...(await streamSettings(pool)), await replicationPrivilege(pool)];
  return results.filter((r) => !r.ok).map((r) => r.message);
}

export async function replicationPrivilege(pool: pg.Pool): Promise<CheckResult> {
  const role = await currentRole(pool);
  return verdict(
    'replication privilege',
    role.superuser || role.replication,
    'current user may replicate',
    'the current user lacks REPLICATION; ALTER ROLE ... REPLICATION or run as a superuser',
  );
}
