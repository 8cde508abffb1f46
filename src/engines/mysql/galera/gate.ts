import type { Connection, Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { LockTimeoutError, UserError } from '../../../core/engine/errors.js';
import { connectOne } from '../server/connect.js';
import type { GaleraMember } from './cluster.js';
import { checkHelper, createFreshHelperTable, dropOwnHelper } from '../server/helper-tables.js';
import { withoutStatementLimit } from '../server/lock.js';
import { helperNames, type MysqlPlan } from '../schema/plan.js';
import { tableExists } from '../schema/inspect.js';
import { qualified } from '../server/sql.js';

import { ClosedGate, isRetryable } from './closed-gate.js';
import { CLUSTER_ROW, EVENTS, GATE_COLUMNS, GATE_SLOTS, gateBody, gateCreate, sameAccount, type RowEvent } from './gate-triggers.js';

export { GATE_SLOTS, isGateCreate } from './gate-triggers.js';

/**
 * Galera's stand-in for LOCK TABLES (why, in README.md, "Why not LOCK TABLES"). LOCK
 * TABLES is node-local and wedges a cluster; the gate holds the original's writers on every node with
 * row locks, which Galera neither replicates nor breaks:
 * - a helper table, rows per node (`GATE_SLOTS` of them) and one for the cluster, and BEFORE triggers
 *   on the original that lock their node's row for their connection FOR UPDATE, then read the
 *   cluster's row LOCK IN SHARE MODE, and fail unless both are open;
 * - to close: a session of ours on every node (a holder) takes all its node's rows FOR UPDATE.
 *   Granted, it proves that every transaction that passed that node's gate has committed (or rolled
 *   back): each held its row until then. Only an exclusive lock proves it: InnoDB lets go of a
 *   transaction's shared locks at its prepare (exclusive ones it keeps), so a shared lock could be
 *   granted while a writer is prepared but not yet ordered, and that write would land in the old
 *   table after the catch-up. Every later writer waits at the gate while the holder's transaction
 *   lasts. A causal read on our node then sees every write the gates let through;
 * - to swap: the cluster row is committed closed (the seal), and only once every node has applied it
 *   with its holder still in its first transaction (`ClosedGate.seal`) does the RENAME run, in total
 *   order: it aborts the writers waiting at the gates on every node (an autocommit statement is
 *   retried, on the new table) and takes the triggers with the original to the old table.
 * A holder whose transaction ended before its node had the seal (killed by someone, a deadlock victim)
 * may have let writers through to the original after the catch-up: the attempt then fails before the
 * RENAME, and those writes are the binlog's to bring, as any. Killed before the seal, writers go on to
 * the original; killed between the seal and the RENAME, writers fail at the gate until a resume or
 * cleanup opens it (`open`).
 */
export class GaleraGate {
  private readonly table: string;
  private readonly triggers: Record<RowEvent, string>;

  constructor(
    private readonly pool: Pool,
    /** Which table: the gate reads nothing else of the plan. */
    private readonly plan: Pick<MysqlPlan, 'database' | 'table'>,
    /** The cluster's nodes as they are now, the connected one first (read again at each close). */
    private readonly members: () => Promise<GaleraMember[]>,
  ) {
    const names = helperNames(plan.table);
    this.table = names.gate;
    this.triggers = names.gateTriggers;
  }

  /**
   * The gate table, a row for every node, and the triggers on the original; idempotent, so a resumed
   * run makes only what is missing. A table or trigger of a gate's name that is not exactly ours (made
   * by another account first) is refused: a gate table that takes no row locks (another engine) or
   * triggers on other events would hold nobody, and the swap would lose writes.
   */
  async install(members: GaleraMember[]): Promise<void> {
    const { database } = this.plan;
    const purpose = `the gate that holds writers to ${database}.${this.plan.table} on every Galera node at the cut-over`;
    await unlimitedConnection(this.pool, async (conn) => {
      if (!(await tableExists(this.pool, this.plan.database, this.table))) await createFreshHelperTable(conn, database, this.table, GATE_COLUMNS, purpose);
      await this.checkTable(conn);
      // Only what is missing is inserted: an INSERT IGNORE of a row that is there locks it shared, so
      // it would wait for a writer holding its slot and then hold up every writer of the slots it had
      // passed, for as long as innodb_lock_wait_timeout. A plain read takes no lock.
      const [present] = await conn.query<RowDataPacket[]>(`SELECT node, COUNT(*) AS n FROM ${qualified(database, this.table)} GROUP BY node`);
      const rows = new Map(present.map((r) => [String(r.node), Number(r.n)]));
      if (!rows.has(CLUSTER_ROW))
        await conn.query(`INSERT IGNORE INTO ${qualified(database, this.table)} (node, slot, closed) VALUES (?, 0, 0)`, [CLUSTER_ROW]);
      for (const { name } of members) {
        if (rows.get(name) === GATE_SLOTS) continue;
        const slots = Array.from({ length: GATE_SLOTS }, (_, slot) => `(${conn.escape(name)}, ${slot}, 0)`).join(', ');
        await conn.query(`INSERT IGNORE INTO ${qualified(database, this.table)} (node, slot, closed) VALUES ${slots}`);
      }
      const own = await this.ownTriggers(conn);
      for (const event of EVENTS) if (!own.has(event)) await conn.query(gateCreate(database, this.plan.table, event));
      if ((await this.ownTriggers(conn)).size !== EVENTS.length)
        throw new UserError(`the Galera gate's triggers on ${database}.${this.plan.table} could not be made`);
    });
  }

  /** Shadowcut's table, InnoDB (row locks, replicated), with exactly the gate's columns and key. */
  private async checkTable(db: Pool | PoolConnection): Promise<void> {
    const { database } = this.plan;
    await checkHelper(db, database, this.table);
    const [[shape]] = await db.query<RowDataPacket[]>(
      `SELECT (SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?) AS engine,
              (SELECT GROUP_CONCAT(COLUMN_NAME, ' ', COLUMN_TYPE, ' ', IS_NULLABLE, ' ', COLUMN_KEY ORDER BY ORDINAL_POSITION)
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?) AS columns`,
      [database, this.table, database, this.table],
    );
    if (String(shape.engine) !== 'InnoDB' || String(shape.columns) !== 'node varchar(255) NO PRI,slot smallint(6) NO PRI,closed tinyint(4) NO ') {
      throw new UserError(
        `${database}.${this.table} is not the Galera gate shadowcut makes (InnoDB, node, slot and closed): drop it, or rename it if it is yours`,
      );
    }
  }

  /**
   * The events whose gate trigger is there and exactly ours: on the original, BEFORE that event, our
   * body, defined by the user shadowcut runs as. Another under one of these names is refused.
   */
  private async ownTriggers(db: Pool | Connection): Promise<Set<RowEvent>> {
    const { database } = this.plan;
    const [found] = await db.query<RowDataPacket[]>(
      `SELECT TRIGGER_NAME AS name, EVENT_OBJECT_TABLE AS tbl, ACTION_TIMING AS timing, EVENT_MANIPULATION AS event, ACTION_STATEMENT AS body,
              DEFINER AS definer, CURRENT_USER() AS me
         FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME IN (?)`,
      [database, Object.values(this.triggers)],
    );
    const own = new Set<RowEvent>();
    for (const event of EVENTS) {
      const t = found.find((r) => r.name === this.triggers[event]);
      if (!t) continue;
      const ours =
        String(t.tbl) === this.plan.table &&
        t.timing === 'BEFORE' &&
        t.event === event &&
        String(t.body).trim() === gateBody(database, this.plan.table) &&
        sameAccount(String(t.definer), String(t.me));
      if (!ours) throw new UserError(`a trigger ${database}.${this.triggers[event]} exists that is not shadowcut's gate: drop it or rename it`);
      own.add(event);
    }
    return own;
  }

  /**
   * Holds every node's writers, each holder given `lockTimeoutMs` to be granted (a transaction that
   * passed its gate before delays it; the writers behind wait as long). The nodes are read again, and
   * the gate made whole (a node that joined gets its row), first. Then a causal read on our node:
   * what it returns afterwards includes every write the gates let through. Each node also gets a
   * session of its own in autocommit, for causal reads there (a read inside the holder's transaction
   * waits for nothing: MariaDB makes no causal wait inside a transaction).
   */
  async close(lockTimeoutMs: number): Promise<ClosedGate> {
    // A session lost here or later (a server restart, a killed connection) is an attempt that failed, not
    // the run: the cut-over (cutover.ts, lostSwapSession) and the verification retry it.
    const members = await this.members();
    await this.install(members);
    const holders: Connection[] = [];
    const checkers: Connection[] = [];
    let session: Connection | null = null;
    const gate = qualified(this.plan.database, this.table);
    const seconds = Math.max(lockTimeoutMs, 1) / 1000;
    try {
      for (const member of members) {
        const holder = await connectOne(member.target);
        holders.push(holder);
        await holder.query(`SET SESSION idle_transaction_timeout = ${holderIdleSeconds(lockTimeoutMs)}`);
        const checker = await connectOne(member.target);
        checkers.push(checker);
        await checker.query('SET SESSION wsrep_sync_wait = 1, max_statement_time = 0');
      }
      session = await connectOne(members[0].target);
      // Reads of the original in the catch-up are consistent reads: the writers held at the gate hold
      // its rows' locks. Its DDLs (the counter, the moved triggers, the RENAME) run in total order: never cut short.
      await session.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
      await session.query('SET SESSION wsrep_sync_wait = 1, max_statement_time = 0');
      await Promise.all(
        holders.map(async (holder, i) => {
          await holder.query('START TRANSACTION');
          await holder.query(`SET STATEMENT max_statement_time = ${seconds} FOR SELECT COUNT(*) FROM ${gate} WHERE node = ? FOR UPDATE`, [members[i].name]);
        }),
      );
      await session.query(`SET STATEMENT max_statement_time = ${seconds} FOR SELECT COUNT(*) FROM ${gate}`); // the causal read
      // Made whole before the holders: still whole now, or a writer may have passed a missing trigger.
      if ((await this.ownTriggers(session)).size !== EVENTS.length) throw new LockTimeoutError('a Galera gate trigger went missing while the gate closed');
    } catch (error) {
      for (const conn of [...holders, ...checkers]) conn.destroy();
      session?.destroy();
      if (isRetryable(error)) throw new LockTimeoutError(`the Galera gate could not hold every node's writers within ${lockTimeoutMs} ms`);
      throw error;
    }
    return new ClosedGate(
      members.map((m, i) => ({ name: m.name, holder: holders[i], checker: checkers[i] })),
      session,
      gate,
      lockTimeoutMs,
    );
  }

  /** Opens the cluster row where a run killed between its seal and its RENAME left it closed: in shadowcut's own gate table only. */
  async open(): Promise<void> {
    if (!(await sealedGate(this.pool, this.plan.database, this.plan.table))) return;
    await this.checkTable(this.pool);
    await this.pool.query(`UPDATE ${qualified(this.plan.database, this.table)} SET closed = 0 WHERE node = ?`, [CLUSTER_ROW]);
  }
}

/** Whether `table`'s gate is there with its cluster row closed: every node's writers fail at it. */
export async function sealedGate(pool: Pool, database: string, table: string): Promise<boolean> {
  const gate = helperNames(table).gate;
  if (!(await tableExists(pool, database, gate))) return false;
  const [rows] = await pool.query<RowDataPacket[]>(`SELECT closed FROM ${qualified(database, gate)} WHERE node = ?`, [CLUSTER_ROW]);
  return rows.length > 0 && Number(rows[0].closed) !== 0;
}

/**
 * A holder's server-side bound: a client that stops without closing its sockets (a frozen host, a
 * network cut) would otherwise hold every node's writers until `wait_timeout`, hours. Past the whole
 * hold an attempt may take (the lock's wait, a catch-up of four times it, the RENAME's wait), the
 * server ends the holder's session: before the seal the attempt then fails its check, after it the
 * writers reach the sealed gate's error, never the original.
 */
function holderIdleSeconds(lockTimeoutMs: number): number {
  return Math.max(10, Math.ceil((6 * lockTimeoutMs) / 1000) + 5);
}

/**
 * A pool connection with no statement time limit: a DDL in total order is made by the other nodes
 * before it can be cut short here (`server/galera-node.ts`), and a server-wide `max_statement_time` would
 * split the schema between the nodes.
 */
async function unlimitedConnection<T>(pool: Pool, work: (conn: PoolConnection) => Promise<T>): Promise<T> {
  const conn = await pool.getConnection();
  try {
    return await withoutStatementLimit(conn, () => work(conn));
  } finally {
    conn.release();
  }
}

/** The triggers first: every write to their table reads the gate table; after a swap they are on its old table (`olds`). */
export async function dropGate(pool: Pool, database: string, table: string, olds: string[]): Promise<string[]> {
  const names = helperNames(table);
  const dropped: string[] = [];
  const [found] = await pool.query<RowDataPacket[]>(
    'SELECT TRIGGER_NAME AS name FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME IN (?) AND EVENT_OBJECT_TABLE IN (?)',
    [database, Object.values(names.gateTriggers), [table, ...olds]],
  );
  await unlimitedConnection(pool, async (conn) => {
    for (const row of found) {
      await conn.query(`DROP TRIGGER IF EXISTS ${qualified(database, String(row.name))}`);
      dropped.push(`${database}.${String(row.name)} (Galera gate trigger)`);
    }
  });
  if (await tableExists(pool, database, names.gate)) {
    await dropOwnHelper(pool, database, names.gate);
    dropped.push(`${database}.${names.gate}`);
  }
  return dropped;
}
