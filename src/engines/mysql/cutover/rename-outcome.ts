import type { Connection, Pool, RowDataPacket } from 'mysql2/promise';
import { waitFor } from '../../../core/engine/retry/wait-for.js';
import type { MysqlPlan } from '../schema/plan.js';
import { qualified, NOTHING_TO_KILL } from '../server/sql.js';
import { ignoreFailure } from '../../../core/engine/errors.js';

export const SENTRY_COMMENT = 'shadowcut cut-over sentry';

export function isSentry(tableComment: string): boolean {
  return tableComment === SENTRY_COMMENT;
}

/** Whether the swap of `plan` was made: its shadow gone, and its old table there and no sentry. */
export async function isSwapped(db: Pool | Connection, plan: Pick<MysqlPlan, 'database' | 'shadow' | 'old'>): Promise<boolean> {
  const [rows] = await db.query<RowDataPacket[]>(
    'SELECT TABLE_NAME t, TABLE_COMMENT c FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?, ?)',
    [plan.database, plan.shadow, plan.old],
  );
  const old = rows.find((r) => r.t === plan.old);
  return !rows.some((r) => r.t === plan.shadow) && old !== undefined && !isSentry(String(old.c));
}

/**
 * How long a RENAME seen on the server is watched before it counts as pending: the server answers a
 * statement before it clears it from PROCESSLIST, so one that has just swapped (in this process, a
 * moment ago) can still be listed, for longer on a busy machine.
 */
const FINISHING_MS = 500;

/**
 * The connection of a RENAME of this swap still on the server (an interrupted run's, waiting for a
 * lock: on Galera once ordered it cannot be killed), or null: while it is there, the tables do not say
 * yet whether the swap will be made.
 */
export async function pendingRename(db: Pool, plan: MysqlPlan): Promise<number | null> {
  const [orig, shadow, old] = [plan.table, plan.shadow, plan.old].map((t) => qualified(plan.database, t));
  // A set's RENAME names this table's pair among the others'.
  const pair = `${orig} TO ${old}, ${shadow} TO ${orig}`.replace(/[\\%_]/g, (c) => `\\${c}`);
  const look = async () => {
    const [rows] = await db.query<RowDataPacket[]>(
      "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE INFO LIKE CONCAT('RENAME TABLE %', ?, '%') AND ID <> CONNECTION_ID()",
      [pair],
    );
    return rows;
  };
  const rows = await waitFor(look, (found) => found.length === 0, { withinMs: FINISHING_MS, everyMs: 25 });
  return rows.length === 0 ? null : Number(rows[0].id);
}

/** How long a RENAME whose session went without an answer is given to end on the server. */
const LOST_RENAME_MS = 10_000;

/**
 * A RENAME whose session went without an answer may still be waiting, or running, on the server. KILL
 * QUERY ends it while it waits for a lock (on Galera, before it is ordered; once it is, it cannot be
 * killed); running, it is atomic. Once its thread has ended, the tables say whether it ran. Null while
 * the thread is still there after the bound (a RENAME in total order waiting for a backup lock).
 */
export async function lostRenameOutcome(pool: Pool, thread: number, plan: MysqlPlan): Promise<boolean | null> {
  await pool.query(`KILL QUERY ${Number(thread)}`).catch(ignoreFailure(NOTHING_TO_KILL));
  const look = async () => {
    const [[row]] = await pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID = ?', [thread]);
    return Number(row.n);
  };
  const left = await waitFor(look, (n) => n === 0, { withinMs: LOST_RENAME_MS, everyMs: 50 });
  return left === 0 ? isSwapped(pool, plan) : null;
}
