import type { Connection, Pool, RowDataPacket } from 'mysql2/promise';
import { UserError } from '../../../../core/errors.js';
import type { Horizon, LogEntry, TriggerLog } from '../../../../core/migrate/trigger-source.js';
import type { Session } from '../../../../core/primitives.js';
import type { MysqlTarget } from '../../server/connect.js';
import { checkHelper, createFreshHelperTable, dropOwnHelper } from '../../server/helper-tables.js';
import { boundedDdl, LockedSession, quickDdl } from '../../server/lock.js';
import { helperNames, type MysqlPlan } from '../../schema/plan.js';
import { ident, qualified, rowValues } from '../../server/sql.js';
import { innodbTableIdentity } from '../../in-place/server-work.js';
import { describeTable, existingTriggers, type TableShape } from '../../schema/inspect.js';
import { ServerHorizon, type LogHorizon } from './horizon.js';

type Queryable = Pool | Connection;

export type RowEvent = 'INSERT' | 'UPDATE' | 'DELETE';
const EVENTS: RowEvent[] = ['INSERT', 'UPDATE', 'DELETE'];

/**
 * What one log follows, and under which names: a run's capture on its original, or a revert window's
 * on the new table (installed while that table is still the shadow, under names of its own).
 */
export interface CaptureTarget {
  database: string;
  /** The table whose rows the triggers log, as it is named when they are made. */
  table: string;
  keyColumns: string[];
  /** The table's definition: the log's key types, and what it must still be under the lock. */
  shape: TableShape;
  log: string;
  triggers: Record<RowEvent, string>;
  /** Where else the triggers may sit, having moved with their table at a RENAME. */
  movedTo: string[];
  /** What the operator can do instead when a privilege is missing, for the messages. */
  instead: string;
  /** A revert window's: triggers on the table the shadow replaces, that name the log and never write it (see prelockBody). */
  prelock?: { table: string; movedTo: string[]; triggers: Record<RowEvent, string> };
}

/** A run's trigger capture, on its original (after the swap the triggers sit on the old table). */
export function forwardCapture(plan: MysqlPlan): CaptureTarget {
  return {
    database: plan.database,
    table: plan.table,
    keyColumns: plan.keyColumns,
    shape: plan.original,
    log: plan.log!,
    triggers: helperNames(plan.table).captureTriggers,
    movedTo: [plan.old],
    instead: 'use --capture stream',
  };
}

/**
 * The log and its three AFTER row triggers. AFTER, so a key a user's BEFORE trigger changed is the
 * one logged; created after the table's own triggers, so ours run last among the AFTER ones. A
 * trigger runs with its definer's rights (the migrating user): writers need no grant on the log.
 */
export class MysqlTriggerLog implements TriggerLog {
  readonly name: string;
  private readonly log: string;
  private readonly keys: string;
  /** The table's InnoDB ids when the triggers were made (kept in the log's comment for a resumed run). */
  private identity: string | null = null;
  private readonly horizons: LogHorizon;

  constructor(
    private readonly target: MysqlTarget,
    private readonly pool: Pool,
    private readonly flavor: 'mariadb' | 'mysql',
    private readonly at: CaptureTarget,
    /** Who could still add below the log's sequence: one server's writers, or a Galera cluster's (`horizon.ts`). */
    horizons?: LogHorizon,
  ) {
    this.name = `${at.database}.${at.log}`;
    this.log = qualified(at.database, at.log);
    this.keys = at.keyColumns.map(ident).join(', ');
    this.horizons = horizons ?? new ServerHorizon(pool, target, this.log);
  }

  async install(lockTimeoutMs: number): Promise<void> {
    const p = this.at;
    // Triggers a RENAME took to another table still write the log: it is live, whatever is on ours.
    const moved = this.at.movedTo.length ? await this.triggersPresent(this.pool, this.at.movedTo) : [];
    if (moved.length)
      throw new Error(`the capture triggers of ${p.table} are on ${this.at.movedTo.join(', ')} already (${moved.join(', ')}); not installed again`);
    if (!(await this.triggersPresent()).length) {
      // A log without triggers is a dead run's that nobody resumed: its entries are of no use. Its
      // prelock triggers go first: every write to their table opens the log they name.
      await this.dropPrelock();
      await dropOwnHelper(this.pool, p.database, p.log);
      await checkHelper(this.pool, p.database, p.log); // one not ours stays, and is refused for what it is
      // Read before the triggers exist: a TRUNCATE after this point shows as a new id under the cut-over lock.
      this.identity = await innodbTableIdentity(this.pool, this.flavor, p.database, p.table);
      if (this.identity === null) throw new UserError(identityNeeded(p.instead));
      await createFreshHelperTable(
        this.pool,
        p.database,
        p.log,
        this.definition(),
        `changed keys of ${p.table} (InnoDB ids ${this.identity}), written by its capture triggers`,
      );
    } else {
      await this.recallIdentity();
    }
    // A retry after a lock timeout makes only the triggers still missing.
    const present = new Set(await this.triggersPresent());
    for (const event of EVENTS) {
      const name = p.triggers[event];
      if (present.has(name)) continue;
      const sql = `CREATE TRIGGER ${qualified(p.database, name)} AFTER ${event} ON ${qualified(p.database, p.table)} FOR EACH ROW ${this.body(event)}`;
      await quickDdl(this.target, this.pool, sql, lockTimeoutMs).catch((error: unknown) => Promise.reject(explainCreateFailure(error, p)));
    }
    await this.installPrelock(lockTimeoutMs);
  }

  private async installPrelock(lockTimeoutMs: number): Promise<void> {
    const pre = this.at.prelock;
    if (!pre) return;
    const present = new Set(await ownPrelockTriggers(this.pool, this.at, [pre.table]));
    for (const event of EVENTS) {
      const name = pre.triggers[event];
      if (present.has(name)) continue;
      const sql = prelockCreate(this.at.database, pre.table, name, event, this.at.log);
      await quickDdl(this.target, this.pool, sql, lockTimeoutMs).catch((error: unknown) => Promise.reject(explainCreateFailure(error, this.at)));
    }
  }

  /**
   * Once the swap is over they have nothing to do, and they must not outlive the log they name: on
   * the original, or on the old table the RENAME took them to. Only ours (by their body) go.
   */
  async dropPrelock(): Promise<void> {
    const pre = this.at.prelock;
    if (!pre) return;
    for (const name of await ownPrelockTriggers(this.pool, this.at, [pre.table, ...pre.movedTo])) {
      await dropTriggerBounded(this.target, this.pool, this.at.database, name);
    }
  }

  /** The key columns as the original defines them; NOT NULL, as a unique key's are. */
  private definition(): string {
    const columns = this.at.keyColumns.map((name) => {
      const c = this.at.shape.columns.find((x) => x.name === name)!;
      return `${ident(name)} ${c.type}${c.collation ? ` COLLATE ${c.collation}` : ''} NOT NULL`;
    });
    return `seq BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, ${columns.join(', ')}`;
  }

  private body(event: RowEvent): string {
    return captureBody(this.at, event);
  }

  private triggersPresent(db: Queryable = this.pool, tables = [this.at.table]): Promise<string[]> {
    return ownCaptureTriggers(db, this.at, tables);
  }

  /** A resumed run's: from the log's comment. */
  private async recallIdentity(): Promise<void> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      'SELECT TABLE_COMMENT AS c FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
      [this.at.database, this.at.log],
    );
    this.identity = rows.length ? (/\(InnoDB ids ([\d,]+)\)/.exec(String(rows[0].c))?.[1] ?? null) : null;
  }

  async verifyInstalled(): Promise<void> {
    const present = await this.triggersPresent();
    const log = await checkHelper(this.pool, this.at.database, this.at.log);
    if (log) await this.recallIdentity();
    if (present.length === EVENTS.length && log && this.identity !== null) return;
    throw new UserError(
      `the interrupted run's capture ${log ? `triggers (${EVENTS.length - present.length} missing)` : `log ${this.name}`} are gone, so changes made since may be lost: ` +
        `run "shadowcut cleanup --table ${this.at.table}" and start again`,
    );
  }

  async read(limit: number, afterSeq: string | null, session?: Session): Promise<LogEntry[]> {
    const db = session instanceof LockedSession ? session.conn : this.pool;
    // Under the lock, before the last entries are trusted: a TRUNCATE or a rebuild fires no trigger.
    // On every read there, not only one from the log's start: the drain starts at the floor once
    // polls have moved it, and nothing in the log above it tells of a TRUNCATE.
    if (session) {
      const { database, table } = this.at;
      const now = await innodbTableIdentity(this.pool, this.flavor, database, table);
      if (now !== this.identity) {
        throw new UserError(`${database}.${table} was truncated or rebuilt during the migration (its InnoDB ids changed); start again`);
      }
      // An instant ALTER keeps the ids; the binlog would have shown it as DDL.
      if (JSON.stringify(await describeTable(db, database, table)) !== JSON.stringify(this.at.shape)) {
        throw new UserError(`${database}.${table} was altered during the migration; start again`);
      }
      // Someone (a cleanup of a like-named table, a DBA) dropped one: what it missed cannot be known.
      if ((await this.triggersPresent(db)).length !== EVENTS.length) {
        throw new UserError(`a capture trigger of ${database}.${table} was dropped during the migration; changes may be missing: start again`);
      }
    }
    const [rows] = await db.query<RowDataPacket[]>({
      sql: `SELECT seq, ${this.keys} FROM ${this.log}${afterSeq === null ? '' : ' WHERE seq > ?'} ORDER BY seq LIMIT ?`,
      values: afterSeq === null ? [limit] : [afterSeq, limit],
      rowsAsArray: true,
    });
    return rows.map(rowValues).map(([seq, ...key]) => ({ seq: String(seq), keys: [key] }));
  }

  /** READ COMMITTED: a sequence already gone would otherwise take a gap lock, and hold up writers' triggers behind it. */
  async remove(seqs: string[]): Promise<void> {
    if (seqs.length === 0) return;
    const conn = await this.pool.getConnection();
    try {
      // Point lookups on the key, never a scan: on a small log the optimizer scans for a bare
      // `seq IN (...)`, and a scan waits for every writer's uncommitted entry it meets, holding the
      // apply until they commit. ORDER BY the key with a LIMIT makes it take the key's ranges.
      await conn.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
      await conn.query(`DELETE FROM ${this.log} WHERE seq IN (?) ORDER BY seq LIMIT ${seqs.length}`, [seqs]);
    } finally {
      conn.release();
    }
  }

  async pending(afterSeq: string | null = null): Promise<number> {
    const [[row]] = await this.pool.query<RowDataPacket[]>({
      sql: `SELECT COALESCE(MAX(seq) - MIN(seq) + 1, 0) AS n FROM ${this.log}${afterSeq === null ? '' : ' WHERE seq > ?'}`,
      values: afterSeq === null ? [] : [afterSeq],
    });
    return Number(row.n);
  }

  horizon(): Promise<Horizon | null> {
    return this.horizons.horizon();
  }

  settled(h: Horizon): Promise<boolean> {
    return this.horizons.settled(h);
  }

  async close(): Promise<void> {
    await this.horizons.close?.();
  }

  /**
   * Where they were made, or where a RENAME took them (triggers move with their table). Each DROP
   * waits for the table's metadata lock behind every open transaction, and writers queue behind the
   * DROP: short waits, retried, as when they were made.
   */
  async uninstall(): Promise<void> {
    await this.dropPrelock();
    for (const name of await this.triggersPresent(this.pool, [this.at.table, ...this.at.movedTo])) {
      await dropTriggerBounded(this.target, this.pool, this.at.database, name);
    }
    await dropOwnHelper(this.pool, this.at.database, this.at.log);
  }
}

/** What a capture trigger for `event` runs: shadowcut's own fixed SQL, the same whoever reads it back. */
function captureBody(at: CaptureTarget, event: RowEvent): string {
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

function prelockCreate(database: string, table: string, name: string, event: RowEvent, log: string): string {
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
async function ownPrelockTriggers(db: Queryable, at: CaptureTarget, tables: string[]): Promise<string[]> {
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

const identityNeeded = (otherwise: string) =>
  `trigger capture needs the PROCESS privilege on MySQL/MariaDB: a TRUNCATE or rebuild of the table fires no trigger, and is seen only in InnoDB's table ids, which need it; GRANT PROCESS ON *.*, or ${otherwise}`;

/**
 * With the binlog on, MySQL and MariaDB let only SUPER create triggers unless
 * log_bin_trust_function_creators is set; without the TRIGGER privilege nobody may.
 */
function explainCreateFailure(error: unknown, at: CaptureTarget): unknown {
  const code = (error as { code?: string }).code;
  if (code === 'ER_TABLEACCESS_DENIED_ERROR' || code === 'ER_SPECIFIC_ACCESS_DENIED_ERROR') {
    return new UserError(
      `creating the capture triggers on ${at.database}.${at.table} needs the TRIGGER privilege: GRANT TRIGGER ON ${at.database}.*, or ${at.instead}`,
    );
  }
  if (code !== 'ER_BINLOG_CREATE_ROUTINE_NEED_SUPER') return error;
  return new UserError(
    `the server logs binary and the user lacks SUPER, which it then requires to create triggers: SET GLOBAL log_bin_trust_function_creators = 1, or ${at.instead}`,
  );
}

/** A revert window's log and triggers: names of their own, as a forward run's capture may still exist beside them. */
function windowCapture(plan: MysqlPlan, on: Pick<CaptureTarget, 'table' | 'keyColumns' | 'shape' | 'movedTo'>): CaptureTarget {
  const names = helperNames(plan.table);
  return { database: plan.database, ...on, log: names.reverseLog, triggers: names.reverseTriggers, instead: 'run without --revert-window' };
}

/**
 * Made by the forward run on its shadow before the cut-over: the shadow becomes the table at the
 * RENAME and takes the triggers along, so the log follows the new table from the swap's very instant.
 */
export function reverseCaptureOnShadow(plan: MysqlPlan): CaptureTarget {
  return {
    ...windowCapture(plan, { table: plan.shadow, keyColumns: plan.shadowKeyColumns, shape: plan.shadowShape, movedTo: [plan.table] }),
    prelock: { table: plan.table, movedTo: [plan.old], triggers: helperNames(plan.table).reversePrelockTriggers },
  };
}

/** The same log and triggers as the way back (`Plan.reverse`) sees them: on its original, the new table; after the revert on `<table>__new`. */
export function reverseCapture(reverse: MysqlPlan): CaptureTarget {
  return windowCapture(reverse, { table: reverse.table, keyColumns: reverse.keyColumns, shape: reverse.original, movedTo: [reverse.old] });
}
