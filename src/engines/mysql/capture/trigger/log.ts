import type { Connection, Pool, RowDataPacket } from 'mysql2/promise';
import { backoffMs, sleep } from '../../../../core/backoff.js';
import { LockTimeoutError, UserError } from '../../../../core/errors.js';
import type { LogEntry, TriggerLog } from '../../../../core/migrate/trigger-source.js';
import type { Session } from '../../../../core/primitives.js';
import type { MysqlTarget } from '../../server/connect.js';
import { checkHelper, createFreshHelperTable, dropOwnHelper } from '../../server/helper-tables.js';
import { LockedSession, quickDdl } from '../../server/lock.js';
import { helperNames, type MysqlPlan } from '../../schema/plan.js';
import { ident, qualified } from '../../server/sql.js';
import { innodbTableIdentity } from '../../in-place/server-work.js';
import { describeTable, existingTriggers } from '../../schema/inspect.js';

type Queryable = Pool | Connection;

type RowEvent = 'INSERT' | 'UPDATE' | 'DELETE';
const EVENTS: RowEvent[] = ['INSERT', 'UPDATE', 'DELETE'];

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

  constructor(
    private readonly target: MysqlTarget,
    private readonly pool: Pool,
    private readonly flavor: 'mariadb' | 'mysql',
    private readonly plan: MysqlPlan,
  ) {
    this.name = `${plan.database}.${plan.log}`;
    this.log = qualified(plan.database, plan.log!);
    this.keys = plan.keyColumns.map(ident).join(', ');
  }

  private get triggerNames(): Record<RowEvent, string> {
    return helperNames(this.plan.table).captureTriggers;
  }

  async install(lockTimeoutMs: number): Promise<void> {
    const p = this.plan;
    if (!(await this.triggersPresent()).length) {
      // A log without triggers is a dead run's that nobody resumed: its entries are of no use.
      await dropOwnHelper(this.pool, p.database, p.log!);
      // Read before the triggers exist: a TRUNCATE after this point shows as a new id under the cut-over lock.
      this.identity = await innodbTableIdentity(this.pool, this.flavor, p.database, p.table);
      if (this.identity === null) throw new UserError(IDENTITY_NEEDED);
      await createFreshHelperTable(
        this.pool,
        p.database,
        p.log!,
        this.definition(),
        `changed keys of ${p.table} (InnoDB ids ${this.identity}), written by its capture triggers`,
      );
    } else {
      await this.recallIdentity();
    }
    // A retry after a lock timeout makes only the triggers still missing.
    const present = new Set(await this.triggersPresent());
    for (const event of EVENTS) {
      const name = this.triggerNames[event];
      if (present.has(name)) continue;
      const sql = `CREATE TRIGGER ${qualified(p.database, name)} AFTER ${event} ON ${qualified(p.database, p.table)} FOR EACH ROW ${this.body(event)}`;
      await quickDdl(this.target, this.pool, sql, lockTimeoutMs).catch((error: unknown) => Promise.reject(explainCreateFailure(error)));
    }
  }

  /** The key columns as the original defines them; NOT NULL, as a unique key's are. */
  private definition(): string {
    const columns = this.plan.keyColumns.map((name) => {
      const c = this.plan.original.columns.find((x) => x.name === name)!;
      return `${ident(name)} ${c.type}${c.collation ? ` COLLATE ${c.collation}` : ''} NOT NULL`;
    });
    return `seq BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, ${columns.join(', ')}`;
  }

  private body(event: RowEvent): string {
    const row = (image: 'OLD' | 'NEW') =>
      `INSERT INTO ${this.log} (${this.keys}) VALUES (${this.plan.keyColumns.map((k) => `${image}.${ident(k)}`).join(', ')})`;
    if (event === 'INSERT') return row('NEW');
    if (event === 'DELETE') return row('OLD');
    const moved = this.plan.keyColumns.map((k) => `NOT (OLD.${ident(k)} <=> NEW.${ident(k)})`).join(' OR ');
    return `BEGIN ${row('OLD')}; IF ${moved} THEN ${row('NEW')}; END IF; END`;
  }

  private triggersPresent(db: Queryable = this.pool, tables = [this.plan.table]): Promise<string[]> {
    return existingTriggers(db, this.plan.database, Object.values(this.triggerNames), tables);
  }

  /** A resumed run's: from the log's comment. */
  private async recallIdentity(): Promise<void> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      'SELECT TABLE_COMMENT AS c FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
      [this.plan.database, this.plan.log],
    );
    this.identity = rows.length ? (/\(InnoDB ids ([\d,]+)\)/.exec(String(rows[0].c))?.[1] ?? null) : null;
  }

  async verifyInstalled(): Promise<void> {
    const present = await this.triggersPresent();
    const log = await checkHelper(this.pool, this.plan.database, this.plan.log!);
    if (log) await this.recallIdentity();
    if (present.length === EVENTS.length && log && this.identity !== null) return;
    throw new UserError(
      `the interrupted run's capture ${log ? `triggers (${EVENTS.length - present.length} missing)` : `log ${this.name}`} are gone, so changes made since may be lost: ` +
        `run "shadowcut cleanup --table ${this.plan.table}" and start again`,
    );
  }

  async read(limit: number, afterSeq: string | null, session?: Session): Promise<LogEntry[]> {
    const db = session instanceof LockedSession ? session.conn : this.pool;
    // Under the lock, before the last entries are trusted: a TRUNCATE or a rebuild fires no trigger.
    if (session && afterSeq === null) {
      const now = await innodbTableIdentity(this.pool, this.flavor, this.plan.database, this.plan.table);
      if (now !== this.identity) {
        throw new UserError(`${this.plan.database}.${this.plan.table} was truncated or rebuilt during the migration (its InnoDB ids changed); start again`);
      }
      // An instant ALTER keeps the ids; the binlog would have shown it as DDL.
      if (JSON.stringify(await describeTable(db, this.plan.database, this.plan.table)) !== JSON.stringify(this.plan.original)) {
        throw new UserError(`${this.plan.database}.${this.plan.table} was altered during the migration; start again`);
      }
      // Someone (a cleanup of a like-named table, a DBA) dropped one: what it missed cannot be known.
      if ((await this.triggersPresent(db)).length !== EVENTS.length) {
        throw new UserError(
          `a capture trigger of ${this.plan.database}.${this.plan.table} was dropped during the migration; changes may be missing: start again`,
        );
      }
    }
    const [rows] = await db.query<RowDataPacket[]>({
      sql: `SELECT seq, ${this.keys} FROM ${this.log}${afterSeq === null ? '' : ' WHERE seq > ?'} ORDER BY seq LIMIT ?`,
      values: afterSeq === null ? [limit] : [afterSeq, limit],
      rowsAsArray: true,
    });
    return (rows as unknown as unknown[][]).map(([seq, ...key]) => ({ seq: String(seq), keys: [key as LogEntry['keys'][number]] }));
  }

  /** READ COMMITTED: a sequence already gone would otherwise take a gap lock, and hold up writers' triggers behind it. */
  async remove(seqs: string[]): Promise<void> {
    if (seqs.length === 0) return;
    const conn = await this.pool.getConnection();
    try {
      await conn.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
      await conn.query(`DELETE FROM ${this.log} WHERE seq IN (?)`, [seqs]);
    } finally {
      conn.release();
    }
  }

  async pending(): Promise<number> {
    const [[row]] = await this.pool.query<RowDataPacket[]>(`SELECT COALESCE(MAX(seq) - MIN(seq) + 1, 0) AS n FROM ${this.log}`);
    return Number(row.n);
  }

  /**
   * On the original, or after the swap on the old table (triggers move with it). Each DROP waits for
   * the table's metadata lock behind every open transaction, and writers queue behind the DROP: short
   * waits, retried, as when they were made.
   */
  async uninstall(): Promise<void> {
    for (const name of await this.triggersPresent(this.pool, [this.plan.table, this.plan.old])) {
      await dropTriggerBounded(this.target, this.pool, this.plan.database, name);
    }
    await dropOwnHelper(this.pool, this.plan.database, this.plan.log!);
  }
}

const DROP_WAIT_MS = 1000;
const DROP_ATTEMPTS = 20;

/** DROP TRIGGER that never holds writers up for long: a bounded wait per attempt, then one clear line. */
export async function dropTriggerBounded(target: MysqlTarget, pool: Pool, database: string, name: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await quickDdl(target, pool, `DROP TRIGGER IF EXISTS ${qualified(database, name)}`, DROP_WAIT_MS);
    } catch (error) {
      if (!(error instanceof LockTimeoutError)) throw error;
      if (attempt >= DROP_ATTEMPTS) {
        throw new UserError(
          `could not drop capture trigger ${database}.${name}: a transaction keeps the table busy; run "shadowcut cleanup" when it is quieter`,
        );
      }
      await sleep(backoffMs(attempt - 1, 250));
    }
  }
}

const IDENTITY_NEEDED =
  "trigger capture needs the PROCESS privilege on MySQL/MariaDB: a TRUNCATE or rebuild of the table fires no trigger, and is seen only in InnoDB's table ids, which need it; GRANT PROCESS ON *.*, or use --capture stream";

/** With the binlog on, MySQL and MariaDB let only SUPER create triggers unless log_bin_trust_function_creators is set. */
function explainCreateFailure(error: unknown): unknown {
  if ((error as { code?: string }).code !== 'ER_BINLOG_CREATE_ROUTINE_NEED_SUPER') return error;
  return new UserError(
    'the server logs binary and the user lacks SUPER, which it then requires to create triggers: SET GLOBAL log_bin_trust_function_creators = 1, or use --capture stream',
  );
}
