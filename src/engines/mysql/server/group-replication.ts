import type { Connection, RowDataPacket } from 'mysql2/promise';

type Queryable = Pick<Connection, 'query'>;

/**
 * Whether this server is an online member of a MySQL Group Replication group in multi-primary mode:
 * every member takes writes, and a member's `LOCK TABLES` holds writers on that member alone. The
 * variable exists only where the plugin is loaded (never on MariaDB); the members' table tells
 * whether the plugin is running a group this server is online in.
 */
export async function multiPrimaryMember(db: Queryable): Promise<boolean> {
  const [mode] = await db.query<RowDataPacket[]>("SHOW GLOBAL VARIABLES LIKE 'group_replication_single_primary_mode'");
  if (!isMultiPrimaryMode(mode.map((r) => String(r.Value)))) return false;
  try {
    const [members] = await db.query<RowDataPacket[]>(
      "SELECT COUNT(*) AS n FROM performance_schema.replication_group_members WHERE MEMBER_ID = @@server_uuid AND MEMBER_STATE = 'ONLINE'",
    );
    return Number(members[0].n) > 0;
  } catch {
    // Multi-primary configured, membership unreadable (no SELECT on performance_schema): not proven safe.
    return true;
  }
}

/** The variable's value as the server shows it: absent (no plugin), ON (single primary), or OFF. */
export function isMultiPrimaryMode(values: string[]): boolean {
  return values.length === 1 && ['OFF', '0'].includes(values[0].toUpperCase());
}

/** The copy path's refusal on such a member: one line. */
export const MULTI_PRIMARY_COPY_REFUSAL =
  'MySQL Group Replication in multi-primary mode: the copy path is refused, since its checksum and its cut-over hold LOCK TABLES, which holds writers on this member only, while the other members go on writing the table and their writes reach this one around the swap; switch the group to single-primary mode (SELECT group_replication_switch_to_single_primary_mode()) and run against the primary, or use a blocking ALTER';
