import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { ChangeBuffer } from '../src/core/migrate/change-buffer.js';
import { catchUpFrom } from './support/run.js';
import { migrate } from '../src/core/migrate/runner.js';
import type { Engine, Migration } from '../src/core/types.js';
import { createMysqlEngine } from '../src/engines/mysql/index.js';
import { adminPool, differences, mysqlUrl, schemaOf } from './support/mysql.js';
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
  await db.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, n INT NOT NULL, s VARCHAR(20), d DECIMAL(10,4)) ENGINE=InnoDB`);
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

describe.each(['trigger', 'stream'] as const)('the way back, forward capture %s', (capture) => {
  const table = `rv_rt_${capture}`;

  it('follows the new table from the swap, checksums level, and swaps back', async () => {
    await reset(table, 2000);
    await db.query(`CREATE TABLE ${table}_mirror LIKE ${table}`);
    await db.query(`INSERT INTO ${table}_mirror SELECT * FROM ${table}`);
    let forward: Migration | null = null;
    const hooked = withMigration(engine, (migration) => ({
      async cutover(...args: Parameters<Migration['cutover']>) {
        forward = migration;
        await migration.installReverseCapture(1000);
        await migration.installReverseCapture(1000); // idempotent
        return migration.cutover(...args);
      },
    }));
    await migrate(hooked, { url: mysqlUrl(), table, alter: WIDENED, capture }, { execute: true, forceCopy: true });
    // The forward run's capture and checkpoint are gone; the window's triggers moved with the new table.
    expect(await triggersOf(table)).toEqual([`${table}__rtd`, `${table}__rti`, `${table}__rtu`]);
    expect(await tables(table)).toEqual([table, `${table}__old`, `${table}__rlog`, `${table}_mirror`].sort());

    const back = await forward!.reversed();
    expect(back.plan).toMatchObject({ reverse: true, table: `shadowcut_test.${table}`, shadowTable: `shadowcut_test.${table}__old` });
    expect(back.plan.oldTable).toBe(`shadowcut_test.${table}__new`);
    expect(back.revertRefusals()).toEqual(['this is already the way back of a revert window: it has no window of its own']);
    expect(await back.swapped()).toBe(false);

    for (let round = 1; round <= 3; round++) await write(table, round);
    // The window's run resumes from a checkpoint: its capture is only verified, never made again.
    const buffer = new ChangeBuffer();
    const stream = await back.changes.open(buffer, { poll: 0 }, { lockTimeoutMs: 1000, attempts: 1, warn: () => {} });
    try {
      const catchUp = catchUpFrom(back, stream, buffer);
      const view = await back.consistentView(catchUp, 2000);
      try {
        const [a, b] = await view.checksum({ after: null, upTo: null });
        expect(a).toEqual(b);
        expect(await view.compareKeys([[1], [10_001], [100_201], [201]])).toEqual([]);
      } finally {
        await view.close();
      }
      expect(await differences(db, `${table}__old`, `${table}_mirror`)).toEqual([]);

      await write(table, 4);
      await back.cutover({ lockTimeoutMs: 2000, catchUp });
    } finally {
      await stream.stop();
    }
    expect(await back.swapped()).toBe(true);
    expect(await differences(db, table, `${table}_mirror`)).toEqual([]);
    expect(await schemaOf(db, table)).toBe(await schemaOf(db, `${table}_mirror`));
    await back.cleanup({ dropOld: true, cutOver: true });
    // The new table is set aside, not dropped; the window's capture is gone.
    expect(await triggersOf(table)).toEqual([]);
    expect(await tables(table)).toEqual([table, `${table}__new`, `${table}_mirror`].sort());
    const [[counted]] = await db.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) n FROM ${table}__new WHERE x = 7`);
    expect(Number(counted.n)).toBeGreaterThan(1900);
  });
});

describe('a run that does not cut over, and cleanup', () => {
  it('removes the window capture with its shadow; shadowcut cleanup names and removes a dead window', async () => {
    await reset('rv_fail', 100);
    const m = await prepare('rv_fail', WIDENED);
    await m.createShadow();
    await m.installReverseCapture(1000);
    expect(await triggersOf('rv_fail')).toEqual(['rv_fail__rtd', 'rv_fail__rti', 'rv_fail__rtu']);
    await m.cleanup({ dropOld: false, cutOver: false });
    expect(await triggersOf('rv_fail')).toEqual([]);
    expect(await tables('rv_fail')).toEqual(['rv_fail']);

    await m.createShadow();
    await m.installReverseCapture(1000);
    expect((await engine.cleanupLeftovers('rv_fail', { dropOld: false, dryRun: true })).sort()).toEqual(
      [
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
