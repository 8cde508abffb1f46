// A set's cut-over with a revert window on MariaDB, and the writer that backed off from the old table.
//
// MariaDB works out which tables a statement's triggers use when it first opens the table. Here a
// writer's UPDATE of the parent opens it, then waits for the child (its foreign key check), which the
// cut-over's LOCK TABLES takes first (the child's name sorts first) before it waits for the parent:
// a deadlock the server ends by backing the writer off. The writer opens the parent's name again
// after the RENAME, now the new table with the window's triggers, but keeps the table list of the
// old one; without a trigger on the old table that names the window's log, its statement failed
// "Table 'wp_orders__rlog' doesn't exist". Both captures: the old table had no trigger of ours
// (stream) or only the forward capture's (trigger).
import { seamsOf } from '../src/core/engine/failure-seams.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mysql from 'mysql2/promise';
import { migrateSet } from '../src/core/migrate/sets/migrate-set.js';
import { createMysqlEngine } from '../src/engines/mysql/index.js';
import { adminPool, mysqlUrl } from './support/mysql.js';
import { isPrelockCreate } from '../src/engines/mysql/capture/trigger/capture-triggers.js';
import { background, runState, waitFor } from './support/run.js';

let db: mysql.Pool;
const TABLES = ['wp_items', 'wp_orders'].flatMap((t) => [t, `${t}__new`, `${t}__old`, `${t}__log`, `${t}__rlog`, `${t}__state`, `${t}__hb`]);

beforeAll(() => {
  db = adminPool();
});

afterAll(async () => {
  await db.query(`DROP TABLE IF EXISTS ${TABLES.join(', ')}`);
  await db.end();
});

/** Sentries of the cut-over (made just before its LOCK TABLES). */
async function sentries(): Promise<number> {
  const [rows] = await db.query<mysql.RowDataPacket[]>(
    "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('wp_orders__old', 'wp_items__old') AND TABLE_COMMENT LIKE '%sentry%'",
  );
  return Number(rows[0].n);
}

async function stateOf(session: mysql.Connection): Promise<string> {
  const [rows] = await db.query<mysql.RowDataPacket[]>('SELECT STATE FROM information_schema.PROCESSLIST WHERE ID = ?', [session.threadId]);
  return String(rows[0]?.STATE ?? '');
}

/** Resolves once a session (the given one, or any running `statement`) waits for a metadata lock. */
async function queued(label: string, which: { session: mysql.Connection } | { statement: string }): Promise<number> {
  let id: number | null = null;
  const waiting = async () => {
    const [rows] = await db.query<mysql.RowDataPacket[]>(
      "SELECT ID FROM information_schema.PROCESSLIST WHERE STATE LIKE '%metadata lock%' AND (ID = ? OR INFO LIKE ?)",
      'session' in which ? [which.session.threadId, '\u0000'] : [-1, which.statement],
    );
    if (rows.length) id = Number(rows[0].ID);
    return id !== null;
  };
  // Looked at every 5 ms: the wait may be brief.
  await waitFor(`${label} waiting for its metadata lock`, waiting, null, 60_000, 5).catch(() => {});
  if (id !== null) return id;
  const [all] = await db.query<mysql.RowDataPacket[]>("SELECT ID, STATE, INFO FROM information_schema.PROCESSLIST WHERE COMMAND <> 'Sleep'");
  throw new Error(`${label} never waited for its metadata lock: ${JSON.stringify(all)}`);
}

describe.each(['stream', 'trigger'] as const)('revert window, %s capture', (capture) => {
  it('a writer backed off from the old table runs the new table with the window triggers: not failed, and followed back at the revert', async () => {
    await db.query(`DROP TABLE IF EXISTS ${TABLES.join(', ')}`);
    await db.query('CREATE TABLE wp_orders (id INT NOT NULL PRIMARY KEY, note VARCHAR(20) NOT NULL)');
    await db.query(
      'CREATE TABLE wp_items (id INT NOT NULL PRIMARY KEY, order_id INT NOT NULL, KEY (order_id), CONSTRAINT wp_items_fk FOREIGN KEY (order_id) REFERENCES wp_orders (id))',
    );
    await db.query("INSERT INTO wp_orders SELECT seq, 'before' FROM seq_1_to_500");
    await db.query('INSERT INTO wp_items SELECT seq, seq FROM seq_1_to_500');
    const [holder, writer] = await Promise.all([mysql.createConnection(mysqlUrl()), mysql.createConnection(mysqlUrl())]);
    let write: Promise<string> = Promise.resolve('the writer never ran');
    let settled = false;
    const alter = 'ADD COLUMN extra INT NULL';
    const set = ['wp_orders', 'wp_items'];
    const states = set.map((table) => runState(table, alter, 'mysql'));
    // Under the cut-over's pause before its LOCK TABLES (the sentries made): the writer holds the
    // parent and waits for the child, until the cut-over's lock queues on the child too.
    const choreography = (async () => {
      await waitFor('the sentries', async () => (await sentries()) === set.length, null, 120_000);
      await holder.query('LOCK TABLES wp_items WRITE');
      write = writer.query("UPDATE wp_orders SET note = 'during' WHERE id = 7").then(
        () => 'ok',
        (error: unknown) => (error as Error).message,
      );
      void write.finally(() => (settled = true));
      await queued('the writer', { session: writer });
      await queued("the cut-over's LOCK TABLES", { statement: 'LOCK TABLES %wp_items%' });
      await holder.query('UNLOCK TABLES');
      // The lock granted (the RENAME queues under it) while the writer, backed off, still waits.
      await queued('the RENAME', { statement: 'RENAME TABLE %wp_orders%' });
      return !settled && /metadata lock/.test(await stateOf(writer));
    })();
    choreography.catch(() => {});
    // The cut-over waits a second before its lock, where the seams given to the run say so.
    const seams = seamsOf({ SHADOWCUT_TEST_PAUSE_AT: 'before-lock' });
    const engine = await createMysqlEngine(mysqlUrl());
    try {
      const run = background(
        migrateSet(
          engine,
          set.map((table) => ({ url: mysqlUrl(), table, alter, capture })),
          states.map((state) => ({ execute: true, forceCopy: true, state, revertWindowMs: 600_000, lockTimeoutMs: 10_000, seams })),
        ),
      );
      for (const state of states)
        await waitFor('the revert window', () => state.status.state === 'revert-window' && state.status.phase === 'revert window', run, 120_000);
      expect(await choreography).toBe(true);
      expect(await write).toBe('ok');
      const [[row]] = await db.query<mysql.RowDataPacket[]>('SELECT note, extra FROM wp_orders WHERE id = 7');
      expect(row).toEqual({ note: 'during', extra: null });
      // The write was made on the new table in the window: the revert brings it back.
      states[0].revertRequested = true;
      await waitFor('the revert', () => run.settled, null, 120_000);
      expect(run.error).toBeUndefined();
      const [[back]] = await db.query<mysql.RowDataPacket[]>('SELECT note FROM wp_orders WHERE id = 7');
      expect(back.note).toBe('during');
      const [columns] = await db.query<mysql.RowDataPacket[]>(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'wp_orders'",
      );
      expect(columns.map((c) => c.COLUMN_NAME)).toEqual(['id', 'note']);
    } finally {
      await engine.close();
      await holder.end().catch(() => {});
      await writer.end().catch(() => {});
    }
  });
});

// The stream capture case above proves the binlog's real text of our CREATE is taken for ours (the run
// stopped on it as someone's DDL before isPrelockCreate); these, that nothing else is.
describe('the binlog reader', () => {
  it("takes only the window's own CREATE of a prelock trigger for ours, not another body under its name", () => {
    const logged = (body: string, name = 'orders__rpu') =>
      `CREATE DEFINER=\`ops\`@\`%\` TRIGGER \`shop\`.\`${name}\` AFTER UPDATE ON \`shop\`.\`orders\` FOR EACH ROW ${body}`;
    const ours = 'IF FALSE THEN INSERT INTO `shop`.`orders__rlog` (seq) VALUES (NULL); END IF';
    expect(isPrelockCreate(logged(ours), 'shop', 'orders')).toBe(true);
    expect(isPrelockCreate(logged(ours.replace('FALSE', 'TRUE')), 'shop', 'orders')).toBe(false);
    expect(isPrelockCreate(logged(`${ours}; DELETE FROM \`shop\`.\`orders\``), 'shop', 'orders')).toBe(false);
    expect(isPrelockCreate(logged(ours, 'orders__x'), 'shop', 'orders')).toBe(false);
    expect(isPrelockCreate(logged(ours), 'shop', 'items')).toBe(false);
  });
});
