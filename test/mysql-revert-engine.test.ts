import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { ChangeBuffer } from '../src/core/migrate/capture/change-buffer.js';
import { catchUpFrom, noSetup } from './support/run.js';
import { migrate } from '../src/core/migrate/runner.js';
import { CheckpointRun } from '../src/core/engine/state/checkpoint.js';
import type { Engine, Migration } from '../src/core/engine/types.js';
import { createMysqlEngine } from '../src/engines/mysql/index.js';
import { adminPool, differences, mysqlReplicaUrl, mysqlUrl, schemaOf } from './support/mysql.js';
import { withMigration } from './support/wrap.js';

let db: mysql.Pool;
let engine: Engine;

beforeAll(async () => {
  db = adminPool();
  engine = await createMysqlEngine(mysqlUrl());
});

afterAll(async () => {
  await engine.close();
  await db.end();
});

const HELPERS = ['__new', '__old', '__state', '__hb', '__log', '__rlog'];

async function reset(table: string, rows: number) {
  await db.query(`DROP TABLE IF EXISTS ${[table, `${table}_mirror`, ...HELPERS.map((h) => table + h)].join(', ')}`);
  await db.query(`CREATE TABLE ${table} (id INT AUTO_INCREMENT PRIMARY KEY, n INT NOT NULL, s VARCHAR(20), d DECIMAL(10,4)) ENGINE=InnoDB`);
  await db.query(`INSERT INTO ${table} SELECT seq, seq * 7, CONCAT('s', seq), seq / 16 FROM seq_1_to_${rows}`);
}

async function triggersOf(table: string): Promise<string[]> {
  const [rows] = await db.query<mysql.RowDataPacket[]>(
    'SELECT TRIGGER_NAME n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME LIKE ? ORDER BY 1',
    [`${table.replaceAll('_', '\\_')}\\_\\_%`],
  );
  return rows.map((r) => String(r.n));
}

async function tables(table: string): Promise<string[]> {
  const [rows] = await db.query<mysql.RowDataPacket[]>(
    'SELECT TABLE_NAME t FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE ? ORDER BY 1',
    [`${table.replaceAll('_', '\\_')}%`],
  );
  return rows.map((r) => String(r.t)).sort();
}

const prepare = (table: string, alter: string) => engine.prepare({ url: mysqlUrl(), table, alter });
const WIDENED = 'ADD COLUMN x INT NOT NULL DEFAULT 7, MODIFY n BIGINT NOT NULL, MODIFY s VARCHAR(40)';

describe('what can come back', () => {
  it('an added column and widened types are revertible, and proven so on the rows', async () => {
    await reset('rv_wide', 500);
    const m = await prepare('rv_wide', WIDENED);
    expect(m.revertRefusals()).toEqual([]);
    const proof = await m.proveReverse(null, 200);
    expect(proof.rows).toBeGreaterThan(0);
    expect(proof.unmatched).toBe(0);
    expect(proof.columns.map((c) => c.name)).toEqual(['id', 'n', 's', 'd']);
    expect(proof.columns.filter((c) => c.differing > 0)).toEqual([]);
    expect(await tables('rv_wide')).toEqual(['rv_wide']);
  });

  it('the way back is refused where the sql_mode would cut a value short instead of stopping', async () => {
    await reset('rv_loose', 10);
    const [[mode]] = await db.query<mysql.RowDataPacket[]>('SELECT @@GLOBAL.sql_mode AS m');
    await db.query("SET GLOBAL sql_mode = 'NO_ENGINE_SUBSTITUTION'");
    const loose = await createMysqlEngine(mysqlUrl());
    try {
      const m = await loose.prepare({ url: mysqlUrl(), table: 'rv_loose', alter: WIDENED });
      await expect(m.proveReverse(null, 10)).rejects.toThrow(
        /^the server's sql_mode \([A-Z_,]+\) is not strict: on the way back a value the old table cannot hold would be cut short instead of stopping the revert; add STRICT_TRANS_TABLES/,
      );
    } finally {
      await db.query('SET GLOBAL sql_mode = ?', [mode.m]);
      await loose.close();
    }
    expect(await tables('rv_loose')).toEqual(['rv_loose']);
  });

  it('a dropped column, a lost unique key, a column made nullable are refused, one line each', async () => {
    await reset('rv_drop', 10);
    await db.query('ALTER TABLE rv_drop ADD UNIQUE KEY u_s (s)');
    const m = await prepare('rv_drop', 'DROP COLUMN d, DROP KEY u_s, MODIFY n INT NULL');
    expect(m.revertRefusals()).toEqual([
      'column n becomes nullable: a NULL written after the cut-over could not go back into the old table',
      'column d is dropped: values written after the cut-over could not come back',
      'unique key u_s (s) is not enforced by the new table: rows written after the cut-over could break it',
    ]);
  });

  it('unique keys on a prefix: one kept under renamed columns is no refusal, one dropped is', async () => {
    await reset('rv_keep', 10);
    await db.query('ALTER TABLE rv_keep ADD UNIQUE KEY u_sn (s(8), n), ADD UNIQUE KEY u_s (s(4))');
    const m = await prepare('rv_keep', 'RENAME COLUMN s TO s2, RENAME COLUMN n TO n2, DROP KEY u_s');
    expect(m.revertRefusals()).toEqual(['unique key u_s (s(4)) is not enforced by the new table: rows written after the cut-over could break it']);
  });

  it('a unique key whose column changes collation is refused: the new table takes rows the old one holds equal', async () => {
    await reset('rv_coll', 10);
    await db.query('ALTER TABLE rv_coll MODIFY s VARCHAR(20) COLLATE utf8mb4_general_ci, ADD UNIQUE KEY u_s (s)');
    const m = await prepare('rv_coll', 'MODIFY s VARCHAR(20) COLLATE utf8mb4_bin');
    expect(m.revertRefusals()).toEqual([
      'unique key u_s (s): the new table compares s under another collation, so rows written after the cut-over could break it',
    ]);
    // The character set alone changes nothing the key compares.
    await db.query('ALTER TABLE rv_coll MODIFY s VARCHAR(20) CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci');
    expect((await prepare('rv_coll', 'MODIFY s VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci')).revertRefusals()).toEqual([]);
  });

  it('a narrowed decimal loses digits on the way back: the proof names the column and a row', async () => {
    await reset('rv_narrow', 300);
    const m = await prepare('rv_narrow', 'MODIFY d DECIMAL(10,2)');
    expect(m.revertRefusals()).toEqual([]);
    const proof = await m.proveReverse([null], 50);
    const d = proof.columns.find((c) => c.name === 'd')!;
    expect(d.differing).toBeGreaterThan(0);
    expect(d.example).toEqual({ key: '1', alter: '0.0625', copy: '0.0600' });
    expect(proof.columns.filter((c) => c.name !== 'd' && c.differing > 0)).toEqual([]);
  });
});

/** The same writes on the new table and on a mirror that never took the ALTER (x is the new column). */
async function write(table: string, round: number) {
  for (const t of [table, `${table}_mirror`]) {
    await db.query(`INSERT INTO ${t} (id, n, s, d) VALUES (${10_000 + round}, 1, 'new', 1.2345)`);
    await db.query(`UPDATE ${t} SET n = n + 1, s = CONCAT(s, '+') WHERE id % 50 = ${round}`);
    await db.query(`DELETE FROM ${t} WHERE id % 97 = ${round}`);
    // A key that moves: the reverse log holds both the old and the new key.
    await db.query(`UPDATE ${t} SET id = id + 100000 WHERE id = ${200 + round}`);
  }
}

/**
 * A real migrate whose run installs the window's capture before its verification and its cut-over
 * (twice: it is idempotent), and the forward migration to ask for the way back. Just before the
 * cut-over a row is inserted and deleted at the end of the table, so the cut-over carries the
 * AUTO_INCREMENT counter to the shadow, after the window's triggers are on it.
 */
async function migrateWithWindow(table: string, capture: 'trigger' | 'stream'): Promise<Migration> {
  let forward: Migration | null = null;
  const hooked = withMigration(engine, (migration) => ({
    async consistentView(...args: Parameters<Migration['consistentView']>) {
      await migration.installReverseCapture(1000);
      return migration.consistentView(...args);
    },
    async snapshotView(catchUp: () => Promise<void>) {
      await migration.installReverseCapture(1000);
      return migration.snapshotView!(catchUp);
    },
    async cutover(...args: Parameters<Migration['cutover']>) {
      forward = migration;
      await migration.installReverseCapture(1000);
      await db.query(`INSERT INTO ${table} (id, n) VALUES (1000000, 0)`);
      await db.query(`DELETE FROM ${table} WHERE id = 1000000`);
      return migration.cutover(...args);
    },
  }));
  await migrate(hooked, { url: mysqlUrl(), table, alter: WIDENED, capture }, { execute: true, forceCopy: true });
  return forward!;
}

const CHECKPOINT = {
  version: 1,
  alter: WIDENED,
  phase: 'window',
  copiedUpTo: null,
  copyDone: true,
  position: { poll: 0 },
  rowsCopied: 0,
  changesApplied: 0,
  startedAt: '',
  savedAt: '',
} as const;

describe.each(['trigger', 'stream'] as const)('the way back, forward capture %s', (capture) => {
  const table = `rv_rt_${capture}`;

  it('follows the new table from the swap, checksums level, repairs, and swaps back', async () => {
    await reset(table, 2000);
    await db.query(`CREATE TABLE ${table}_mirror LIKE ${table}`);
    await db.query(`INSERT INTO ${table}_mirror SELECT * FROM ${table}`);
    const forward = await migrateWithWindow(table, capture);
    // The forward run's capture and checkpoint are gone; the window's triggers moved with the new table.
    expect(await triggersOf(table)).toEqual([`${table}__rtd`, `${table}__rti`, `${table}__rtu`]);
    expect(await tables(table)).toEqual([table, `${table}__old`, `${table}__rlog`, `${table}_mirror`].sort());
    const [[counter]] = await db.query<mysql.RowDataPacket[]>(`SHOW TABLE STATUS LIKE '${table}'`);
    expect(Number(counter.Auto_increment)).toBe(1000001);

    const reversed = await forward.reversed();
    expect(reversed.plan).toMatchObject({ reverse: true, table: `shadowcut_test.${table}`, shadowTable: `shadowcut_test.${table}__old` });
    expect(reversed.plan.oldTable).toBe(`shadowcut_test.${table}__new`);
    expect(reversed.revertRefusals()).toEqual(['this is already the way back of a revert window: it has no window of its own']);
    // As a resumed window gets it: from the checkpoint's JSON.
    const back = engine.resume(JSON.parse(JSON.stringify(reversed.plan)));
    expect((await back.checks({ resuming: true })).filter((c) => !c.ok)).toEqual([]);
    expect(await back.swapped()).toBe(false);
    // Walked along the new table's key, as the window's checksum chunks are.
    expect((await back.nextBoundary([100], 10))?.map(String)).toEqual(['110']);
    const probes = await back.openProbes([mysqlReplicaUrl()]);
    try {
      expect((await probes.replicaLag()).map((r) => r.error)).toEqual([undefined]);
    } finally {
      await probes.close();
    }

    for (let round = 1; round <= 3; round++) await write(table, round);
    await db.query(`UPDATE ${table}__old SET s = 'damaged' WHERE id = 5`);
    // The window's run resumes from a checkpoint: its capture is only verified, never made again.
    const buffer = new ChangeBuffer();
    const stream = await back.changes.open(buffer, { poll: 0 }, noSetup);
    try {
      const catchUp = catchUpFrom(back, stream, buffer);
      const view = await back.consistentView(catchUp, 2000);
      try {
        const [a, b] = await view.checksum({ after: null, upTo: null });
        expect(a.rows).toBe(b.rows);
        expect(a.digest).not.toBe(b.digest);
        expect((await view.compareKeys([[1], [5], [10_001], [100_201], [201]])).map(String)).toEqual(['5']);
      } finally {
        await view.close();
      }
      expect(await back.copyRange({ after: [4], upTo: [5] })).toBe(1);
      expect(await differences(db, `${table}__old`, `${table}_mirror`)).toEqual([]);

      await write(table, 4);
      await back.cutover({ lockTimeoutMs: 2000, catchUp });
    } finally {
      await stream.stop();
    }
    expect(await back.swapped()).toBe(true);
    expect(await differences(db, table, `${table}_mirror`)).toEqual([]);
    expect(await schemaOf(db, table)).toBe(await schemaOf(db, `${table}_mirror`));
    if (capture === 'trigger') await back.cleanup({ dropOld: true, cutOver: true });
    else {
      // A window killed after its revert's swap: its checkpoint tells shadowcut cleanup that __new is the new table.
      await back.saveCheckpoint(CheckpointRun.fresh(engine, table).seal({ ...CHECKPOINT, plan: back.plan }).text);
      expect((await engine.cleanupLeftovers(table, { dropOld: true })).sort()).toEqual(
        [`${table}__rtd (capture trigger)`, `${table}__rti (capture trigger)`, `${table}__rtu (capture trigger)`, `${table}__state`, `${table}__rlog`]
          .map((n) => `shadowcut_test.${n}`)
          .sort(),
      );
    }
    // The new table is set aside, not dropped; the window's capture is gone.
    expect(await triggersOf(table)).toEqual([]);
    expect(await tables(table)).toEqual([table, `${table}__new`, `${table}_mirror`].sort());
    const [[counted]] = await db.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) n FROM ${table}__new WHERE x = 7`);
    expect(Number(counted.n)).toBeGreaterThan(1900);
    if (capture === 'trigger') {
      // With the checkpoint gone, the mark the revert's cleanup left says what __new is: shadowcut cleanup keeps it.
      expect(await engine.cleanupLeftovers(table, { dropOld: true })).toEqual([]);
      expect(await tables(table)).toEqual([table, `${table}__new`, `${table}_mirror`].sort());
      const [[still]] = await db.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) n FROM ${table}__new WHERE x = 7`);
      expect(Number(still.n)).toBe(Number(counted.n));
    }
  });
});

describe('the window, interrupted or tampered with', () => {
  it('a trigger left on the old table is refused before the window writes there', async () => {
    await reset('rv_trig', 10);
    const forward = await migrateWithWindow('rv_trig', 'stream');
    await db.query('CREATE TRIGGER rv_trig_spy BEFORE INSERT ON rv_trig__old FOR EACH ROW SET NEW.n = 0');
    await expect(forward.reversed()).rejects.toThrow(
      'shadowcut_test.rv_trig__old has triggers (rv_trig_spy), which would fire for every row the revert window writes there: drop them first',
    );
    await db.query('DROP TRIGGER rv_trig_spy');
  });

  it("a trigger of the window capture's name but another body is not taken for shadowcut's own: the way back refuses it", async () => {
    await reset('rv_own', 10);
    const forward = await migrateWithWindow('rv_own', 'trigger');
    // Another account's trigger under the capture's name: it would run its own body on every write.
    await db.query('DROP TRIGGER rv_own__rti');
    await db.query('CREATE TRIGGER rv_own__rti AFTER INSERT ON rv_own FOR EACH ROW SET @rv_own_spy = NEW.id');
    const back = await forward.reversed();
    const checks = await back.checks({ resuming: false });
    expect(checks.filter((c) => !c.ok).map((c) => c.message)).toContainEqual(expect.stringMatching(/has triggers \(rv_own__rti\)/));
    await expect(back.changes.open(new ChangeBuffer(), { poll: 0 }, noSetup).then((s) => s.stop())).rejects.toThrow(/capture triggers \(1 missing\)/);
    await db.query('DROP TRIGGER rv_own__rti');
  });

  it('an ALTER of the new table during the window stops the revert under its lock, and nothing is swapped', async () => {
    await reset('rv_alt', 100);
    const back = await (await migrateWithWindow('rv_alt', 'trigger')).reversed();
    await db.query('ALTER TABLE rv_alt ADD COLUMN y INT, ALGORITHM=INSTANT');
    const buffer = new ChangeBuffer();
    const stream = await back.changes.open(buffer, { poll: 0 }, noSetup);
    await expect(back.cutover({ lockTimeoutMs: 2000, catchUp: catchUpFrom(back, stream, buffer) })).rejects.toThrow(
      'shadowcut_test.rv_alt was altered during the migration; start again',
    );
    await stream.stop();
    expect(await back.swapped()).toBe(false);
    expect(await tables('rv_alt')).toEqual(['rv_alt', 'rv_alt__old', 'rv_alt__rlog']);
    // Failed: the window keeps its capture for a resumed run.
    await back.cleanup({ dropOld: false, cutOver: false });
    expect(await triggersOf('rv_alt')).toEqual(['rv_alt__rtd', 'rv_alt__rti', 'rv_alt__rtu']);
    // Completed: the capture goes, both tables stay.
    await back.cleanup({ dropOld: true, cutOver: true });
    expect(await triggersOf('rv_alt')).toEqual([]);
    expect(await tables('rv_alt')).toEqual(['rv_alt', 'rv_alt__old']);
  });
});

describe('values the old table cannot take', () => {
  it('a value written after the cut-over that the old type cannot hold stops the way back with one line', async () => {
    await reset('rv_big', 100);
    const back = await (await migrateWithWindow('rv_big', 'stream')).reversed();
    await db.query('UPDATE rv_big SET n = 5000000000 WHERE id = 3');
    await expect(back.applyKeys([[3]])).rejects.toThrow(
      /^a row of the new table cannot be stored in the old table, so it could not come back: Out of range value for column 'n'/,
    );
    const [[row]] = await db.query<mysql.RowDataPacket[]>('SELECT n FROM rv_big__old WHERE id = 3');
    expect(String(row.n)).toBe('21');
  });
});

describe('a run that does not cut over, and cleanup', () => {
  it('a __rlog shadowcut did not make is named by the preflight and refused by the install, and left as it is', async () => {
    await reset('rv_foreign', 10);
    await db.query("CREATE TABLE rv_foreign__rlog (seq INT) COMMENT 'someone else'");
    const m = await prepare('rv_foreign', WIDENED);
    const leftovers = (await m.checks({ resuming: false })).find((c) => c.name === 'leftovers')!;
    expect(leftovers.ok).toBe(false);
    expect(leftovers.message).toMatch(/helper table shadowcut_test.rv_foreign__rlog already exists/);
    await m.createShadow();
    await expect(m.installReverseCapture(1000)).rejects.toThrow(/^refusing to use shadowcut_test.rv_foreign__rlog: it does not carry shadowcut's mark/);
    await m.cleanup({ dropOld: false, cutOver: false });
    expect(await tables('rv_foreign')).toEqual(['rv_foreign', 'rv_foreign__rlog']);
  });

  it('removes the window capture with its shadow; shadowcut cleanup names and removes a dead window', async () => {
    await reset('rv_fail', 100);
    const m = await prepare('rv_fail', WIDENED);
    await m.createShadow();
    await m.installReverseCapture(1000);
    // The window's on the shadow, and those that only name its log on the original.
    expect(await triggersOf('rv_fail')).toEqual(['rv_fail__rpd', 'rv_fail__rpi', 'rv_fail__rpu', 'rv_fail__rtd', 'rv_fail__rti', 'rv_fail__rtu']);
    await m.cleanup({ dropOld: false, cutOver: false });
    expect(await triggersOf('rv_fail')).toEqual([]);
    expect(await tables('rv_fail')).toEqual(['rv_fail']);

    await m.createShadow();
    await m.installReverseCapture(1000);
    expect((await engine.cleanupLeftovers('rv_fail', { dropOld: false, dryRun: true })).sort()).toEqual(
      [
        "shadowcut_test.rv_fail__rpd (a revert window's prelock trigger)",
        "shadowcut_test.rv_fail__rpi (a revert window's prelock trigger)",
        "shadowcut_test.rv_fail__rpu (a revert window's prelock trigger)",
        'shadowcut_test.rv_fail__rtd (capture trigger)',
        'shadowcut_test.rv_fail__rti (capture trigger)',
        'shadowcut_test.rv_fail__rtu (capture trigger)',
        'shadowcut_test.rv_fail__new',
        'shadowcut_test.rv_fail__rlog',
      ].sort(),
    );
    await engine.cleanupLeftovers('rv_fail', { dropOld: false });
    expect(await triggersOf('rv_fail')).toEqual([]);
    expect(await tables('rv_fail')).toEqual(['rv_fail']);
  });
});
