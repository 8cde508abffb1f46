import type { Connection, Pool, RowDataPacket } from 'mysql2/promise';
import type { MysqlTarget } from '../../server/target.js';
import { boundedDdl } from '../../server/lock.js';
import { helperNames } from '../../schema/plan.js';
import { ident, qualified } from '../../server/sql.js';
import { existingTriggers } from '../../schema/inspect.js';
import { EVENTS, type CaptureTarget, type RowEvent } from './capture-target.js';

// The triggers' SQL (the capture's and a revert window's prelock ones), and which triggers are
// shadowcut's own: a trigger is ours only with the exact body shadowcut gives it.

export type Queryable = Pool | Connection;

/** What a capture trigger for `event` runs: shadowcut's own fixed SQL, the same whoever reads it back. */
export function captureBody(at: CaptureTarget, event: RowEvent): string {
  const log = qualified(at.database, at.log);
  const keys = at.keyColumns.map(ident).join(', ');
  const row = (image: 'OLD' | 'NEW') => `INSERT INTO ${log} (${keys}) VALUES (${at.keyColumns.map((k) => `${image}.${ident(k)}`).join(', ')})`;
  if (event === 'INSERT') return row('NEW');
  if (event === 'DELETE') return row('OLD');
  const moved = at.keyColumns.map((k) => `NOT (OLD.${ident(k)} <=> NEW.${ident(k)})`).join(' OR ');
  return `BEGIN ${row('OLD')}; IF ${moved} THEN ${row('NEW')}; END IF; END`;
}

/**
 * MariaDB works out a statement's prelocked tables (those its table's triggers use) when it first
 * opens the table. A writer that opened the original just before the cut-over lock, and backed off
 * from a deadlock with the locker (a child it needs for a foreign key check sorts before the
 * original, and the locker took it first), opens the name again after the RENAME: the new table,
 * with the window's triggers, but keeps the list worked out for the old one, so its INSERT into the
 * window's log fails "Table ... doesn't exist" and the application's statement with it (MariaDB
 * 10.11; test/mysql-window-prelock.test.ts makes it happen). A trigger on the original that names
 * the log puts it in every such list; the branch is never taken, so it writes nothing.
 */
function prelockBody(database: string, log: string): string {
  return `IF FALSE THEN INSERT INTO ${qualified(database, log)} (seq) VALUES (NULL); END IF`;
}

export function prelockCreate(database: string, table: string, name: string, event: RowEvent, log: string): string {
  return `CREATE TRIGGER ${qualified(database, name)} AFTER ${event} ON ${qualified(database, table)} FOR EACH ROW ${prelockBody(database, log)}`;
}

/**
 * Whether a statement the binlog shows on the original is a revert window's own CREATE of a prelock
 * trigger (the server writes the DEFINER into it): it changes no row and no column. Any other body
 * under such a name is someone else's change to the table.
 */
export function isPrelockCreate(query: string, database: string, table: string): boolean {
  const names = helperNames(table);
  const made = query.replace(/^CREATE DEFINER=(?:`(?:[^`]|``)*`|[^\s@]*)@(?:`(?:[^`]|``)*`|\S*) TRIGGER /, 'CREATE TRIGGER ');
  return EVENTS.some((event) => made === prelockCreate(database, table, names.reversePrelockTriggers[event], event, names.reverseLog));
}

/** The prelock triggers that are there, on `tables`, and are shadowcut's own: their name, AFTER their event, and prelockBody. */
export async function ownPrelockTriggers(db: Queryable, at: CaptureTarget, tables: string[]): Promise<string[]> {
  const pre = at.prelock;
  if (!pre) return [];
  return ownTriggers(db, at.database, pre.triggers, tables, () => prelockBody(at.database, at.log));
}

/**
 * The capture's triggers that are there (on `tables`, default the target's) and are shadowcut's own:
 * its name, AFTER its event, and the very body shadowcut gives it. A trigger another account made
 * under one of these names (it would run its own body, with its definer's rights, on every write)
 * is not taken for ours: it is left to the checks that refuse a table's unknown triggers.
 */
export async function ownCaptureTriggers(db: Queryable, at: CaptureTarget, tables = [at.table]): Promise<string[]> {
  return ownTriggers(db, at.database, at.triggers, tables, (event) => captureBody(at, event));
}

/** Those of `triggers` on `tables` that fire AFTER their event and have the body shadowcut gives them. */
async function ownTriggers(
  db: Queryable,
  database: string,
  triggers: Record<RowEvent, string>,
  tables: string[],
  body: (event: RowEvent) => string,
): Promise<string[]> {
  const names = new Map(EVENTS.map((e) => [triggers[e], e]));
  const present = await existingTriggers(db, database, [...names.keys()], tables);
  if (present.length === 0) return [];
  const [rows] = await db.query<RowDataPacket[]>(
    'SELECT TRIGGER_NAME AS name, ACTION_TIMING AS timing, EVENT_MANIPULATION AS event, ACTION_STATEMENT AS body FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME IN (?)',
    [database, present],
  );
  return rows
    .filter((r) => {
      const event = names.get(String(r.name));
      return present.includes(String(r.name)) && event === String(r.event) && String(r.timing) === 'AFTER' && String(r.body) === body(event);
    })
    .map((r) => String(r.name));
}

/** DROP TRIGGER that never holds writers up for long (see boundedDdl). */
export function dropTriggerBounded(target: MysqlTarget, pool: Pool, database: string, name: string): Promise<void> {
  return boundedDdl(target, pool, `DROP TRIGGER IF EXISTS ${qualified(database, name)}`, `could not drop capture trigger ${database}.${name}`);
}
