import type { Pool, RowDataPacket } from 'mysql2/promise';
import { UserError } from '../../../../core/engine/errors.js';
import type { Horizon, LogEntry, TriggerLog } from '../../../../core/engine/capture/trigger-source.js';
import type { Session } from '../../../../core/engine/contract-values.js';
import type { MysqlTarget } from '../../server/target.js';
import { checkHelper, createFreshHelperTable, dropOwnHelper } from '../../server/helper-tables.js';
import { LockedSession, quickDdl } from '../../server/lock.js';
import { ident, qualified, rowValues } from '../../server/sql.js';
import { innodbTableIdentity } from '../../schema/innodb-ids.js';
import { describeTable } from '../../schema/inspect.js';
import { ServerHorizon, type LogHorizon } from './horizon.js';
import { EVENTS, type CaptureTarget, type RowEvent } from './capture-target.js';
import { captureBody, dropTriggerBounded, ownCaptureTriggers, ownPrelockTriggers, prelockCreate, type Queryable } from './capture-triggers.js';

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
