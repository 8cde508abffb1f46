import type { Connection, Pool, RowDataPacket } from 'mysql2/promise';
import { LockTimeoutError, UserError } from '../../../core/errors.js';
import { connectOne } from '../server/connect.js';
import type { GaleraMember } from '../server/galera.js';
import { dropOwnHelper, ensureHelperTable } from '../server/helper-tables.js';
import { LockedSession } from '../server/lock.js';
import { helperNames, type MysqlPlan } from '../schema/plan.js';
import { qualified } from '../server/sql.js';

type RowEvent = 'INSERT' | 'UPDATE' | 'DELETE';
const EVENTS: RowEvent[] = ['INSERT', 'UPDATE', 'DELETE'];
/** The gate's row that every node reads after its own: closed (1) from just before the RENAME. */
const CLUSTER_ROW = '*';

/**
 * Galera's stand-in for LOCK TABLES (issue 34; why, in ../README.md, "A copy path for Galera"). LOCK
 * TABLES is node-local and wedges a cluster; the gate holds the original's writers on every node with
 * row locks, which Galera neither replicates nor breaks:
 * - a helper table, one row per node and one for the cluster, and BEFORE triggers on the original
 *   that read their node's row, then the cluster's, LOCK IN SHARE MODE, and fail unless both are open;
 * - to close: a session of ours on every node takes its node's row FOR UPDATE. Granted, it proves
 *   that every transaction that passed that node's gate has ended (each held the row shared until
 *   then), and every later writer waits at the gate. A causal read on our node then sees every
 *   write to the original the cluster will ever commit before the swap;
 * - to swap: the cluster row is committed closed (a holder that dies from then on lets its writers
 *   through to an error, never to the original), then the RENAME, in total order, which aborts the
 *   writers waiting at the gates on every node (an autocommit statement is retried, on the new table)
 *   and takes the triggers with the original to the old table.
 * Killed before the seal, the holders' sessions end and writers go on to the original, which the
 * binlog still follows; killed between the seal and the RENAME, writers fail at the gate until a
 * resume or cleanup opens it (`open`).
 */
export class GaleraGate {
  private readonly table: string;
  private readonly triggers: Record<RowEvent, string>;

  constructor(
    private readonly pool: Pool,
    private readonly plan: MysqlPlan,
    private readonly members: GaleraMember[],
  ) {
    const names = helperNames(plan.table);
    this.table = names.gate;
    this.triggers = names.gateTriggers;
  }

  /** The gate table and the triggers on the original, open; idempotent, so a resumed run makes only what is missing. */
  async install(): Promise<void> {
    const { database } = this.plan;
    await ensureHelperTable(
      this.pool,
      database,
      this.table,
      'node VARCHAR(255) NOT NULL PRIMARY KEY, closed TINYINT NOT NULL',
      `the gate that holds writers to ${database}.${this.plan.table} on every Galera node at the cut-over`,
    );
    const rows = [...this.members.map((m) => m.name), CLUSTER_ROW];
    await this.pool.query(`INSERT IGNORE INTO ${qualified(database, this.table)} (node, closed) VALUES ${rows.map(() => '(?, 0)').join(', ')}`, rows);
    const [found] = await this.pool.query<RowDataPacket[]>(
      'SELECT TRIGGER_NAME AS name, EVENT_OBJECT_TABLE AS tbl, ACTION_STATEMENT AS body FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME IN (?)',
      [database, Object.values(this.triggers)],
    );
    for (const event of EVENTS) {
      const name = this.triggers[event];
      const existing = found.find((r) => r.name === name);
      if (existing && String(existing.tbl) === this.plan.table && String(existing.body).trim() === gateBody(database, this.plan.table)) continue;
      if (existing) throw new UserError(`a trigger ${database}.${name} exists that is not shadowcut's gate: drop it or rename it`);
      await this.pool.query(gateCreate(database, this.plan.table, event));
    }
  }

  /**
   * Holds every node's writers, each holder given `lockTimeoutMs` to be granted (a transaction that
   * passed its gate before delays it; the writers behind wait as long). Then a causal read on our
   * node: what it returns afterwards includes every write the gates let through.
   */
  async close(lockTimeoutMs: number): Promise<ClosedGate> {
    const holders: Connection[] = [];
    let session: Connection | null = null;
    const gate = qualified(this.plan.database, this.table);
    try {
      for (const member of this.members) holders.push(await connectOne(member.target));
      session = await connectOne(this.members[0].target);
      // Reads of the original in the catch-up are consistent reads: the writers held at the gate hold its rows' locks.
      await session.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
      await session.query('SET SESSION wsrep_sync_wait = 1');
      const seconds = Math.max(lockTimeoutMs, 1) / 1000;
      await Promise.all(
        holders.map(async (holder, i) => {
          await holder.query('START TRANSACTION');
          await holder.query(`SET STATEMENT max_statement_time = ${seconds} FOR SELECT closed FROM ${gate} WHERE node = ? FOR UPDATE`, [this.members[i].name]);
        }),
      );
      await session.query(`SELECT COUNT(*) FROM ${gate}`); // the causal read
    } catch (error) {
      for (const holder of holders) holder.destroy();
      session?.destroy();
      if (isLockWait(error)) throw new LockTimeoutError(`the Galera gate could not hold every node's writers within ${lockTimeoutMs} ms`);
      throw error;
    }
    return new ClosedGate(holders, session, gate);
  }

  /** Opens the cluster row (a run killed between its seal and its RENAME leaves it closed). */
  async open(): Promise<void> {
    if (await this.installed()) {
      await this.pool.query(`UPDATE ${qualified(this.plan.database, this.table)} SET closed = 0 WHERE node = ?`, [CLUSTER_ROW]);
    }
  }

  private async installed(): Promise<boolean> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [
      this.plan.database,
      this.table,
    ]);
    return rows.length > 0;
  }

  /** The triggers, wherever they are (on the original, or on the old table after the swap), then the table. */
  async uninstall(): Promise<void> {
    await dropGate(this.pool, this.plan.database, this.plan.table);
  }
}

function gateBody(database: string, table: string): string {
  const gate = qualified(database, helperNames(table).gate);
  const message = `shadowcut: ${table} is being swapped on this Galera cluster; retry`.replace(/['\\]/g, '');
  return `BEGIN
  DECLARE here INT DEFAULT 1;
  DECLARE cluster INT DEFAULT 1;
  SELECT IFNULL(MAX(closed), 1) INTO here FROM ${gate} WHERE node = @@wsrep_node_name LOCK IN SHARE MODE;
  SELECT IFNULL(MAX(closed), 1) INTO cluster FROM ${gate} WHERE node = '${CLUSTER_ROW}' LOCK IN SHARE MODE;
  IF here <> 0 OR cluster <> 0 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '${message}'; END IF;
END`;
}

/** A DDL on the original, in total order: as any, it aborts the transactions open on the table on every node. */
function gateCreate(database: string, table: string, event: RowEvent): string {
  const name = helperNames(table).gateTriggers[event];
  return `CREATE TRIGGER ${qualified(database, name)} BEFORE ${event} ON ${qualified(database, table)} FOR EACH ROW ${gateBody(database, table)}`;
}

/**
 * Whether a statement the binlog shows on the original is our own CREATE of a gate trigger (the
 * server writes the DEFINER into it): it changes no row and no column. Any other body under such a
 * name is someone else's change to the table.
 */
export function isGateCreate(query: string, database: string, table: string): boolean {
  const made = query.replace(/^CREATE DEFINER=(?:`(?:[^`]|``)*`|[^\s@]*)@(?:`(?:[^`]|``)*`|\S*) TRIGGER /, 'CREATE TRIGGER ');
  return EVENTS.some((event) => made === gateCreate(database, table, event));
}

/** The triggers first: every write to their table reads the gate table. */
export async function dropGate(pool: Pool, database: string, table: string): Promise<string[]> {
  const names = helperNames(table);
  const dropped: string[] = [];
  const [found] = await pool.query<RowDataPacket[]>(
    'SELECT TRIGGER_NAME AS name FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME IN (?) AND EVENT_OBJECT_TABLE IN (?, ?)',
    [database, Object.values(names.gateTriggers), table, names.old],
  );
  for (const row of found) {
    await pool.query(`DROP TRIGGER IF EXISTS ${qualified(database, String(row.name))}`);
    dropped.push(`${database}.${String(row.name)} (Galera gate trigger)`);
  }
  const [tables] = await pool.query<RowDataPacket[]>('SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [
    database,
    names.gate,
  ]);
  if (tables.length) {
    await dropOwnHelper(pool, database, names.gate);
    dropped.push(`${database}.${names.gate}`);
  }
  return dropped;
}

/** The gate held on every node: the catch-up's session on our node, and what ends the hold. */
export class ClosedGate {
  readonly session: LockedSession;
  private released = false;

  constructor(
    private readonly holders: Connection[],
    private readonly conn: Connection,
    private readonly gate: string,
  ) {
    this.session = new LockedSession(conn);
  }

  /** Closed for good until opened: from here a dead holder lets its node's writers through to an error only. */
  async seal(): Promise<void> {
    await this.conn.query(`UPDATE ${this.gate} SET closed = 1 WHERE node = ?`, [CLUSTER_ROW]);
  }

  async unseal(): Promise<void> {
    await this.conn.query(`UPDATE ${this.gate} SET closed = 0 WHERE node = ?`, [CLUSTER_ROW]);
  }

  /**
   * Lets the holders go (their writers pass, or fail on a sealed gate); the session stays. After the
   * RENAME (`swapped`), each only once its own node has applied it: a node applies the total order on
   * its own time, and until it has, it has neither the seal nor the new table, and a writer let
   * through there would write the original.
   */
  async releaseHolders(swapped = false): Promise<void> {
    if (this.released) return;
    this.released = true;
    const settle = async (holder: Connection) => {
      if (swapped) {
        await holder.query('SET SESSION wsrep_sync_wait = 1');
        await holder.query(`SELECT COUNT(*) FROM ${this.gate}`);
      }
      await holder.query('ROLLBACK');
      await holder.end();
    };
    await Promise.all(this.holders.map((h) => settle(h).catch(() => h.destroy())));
  }

  async release(): Promise<void> {
    await this.releaseHolders();
    await this.conn.end().catch(() => this.conn.destroy());
  }
}

function isLockWait(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'ER_LOCK_WAIT_TIMEOUT' || code === 'ER_STATEMENT_TIMEOUT' || code === 'ER_QUERY_INTERRUPTED';
}
