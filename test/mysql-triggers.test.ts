import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { migrate } from '../src/core/migrate/runner.js';
import { createMysqlEngine } from '../src/engines/mysql/index.js';
import { killDuringPhase } from './support/kill.js';
import { adminPool, differences, helperTables, migrateMysql, mysqlUrl, runCli } from './support/mysql.js';
import { withMigration } from './support/wrap.js';

let db: mysql.Pool;

beforeAll(() => {
  db = adminPool();
});

afterAll(async () => {
  await db.query('DROP TABLE IF EXISTS tr_t, tr_t__old, tr_t__new, tr_log, tr_copy');
  await db.end();
});

async function seed(names = { bi: 'tr_t_bi', au: 'tr_t_au' }) {
  await db.query('DROP TABLE IF EXISTS tr_t, tr_t__old, tr_t__new, tr_log, tr_copy');
  await db.query('CREATE TABLE tr_t (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB');
  await db.query('CREATE TABLE tr_log (id INT, what VARCHAR(10)) ENGINE=InnoDB');
  await db.query('INSERT INTO tr_t SELECT seq, seq FROM seq_1_to_3000');
  await db.query(`CREATE TRIGGER ${names.bi} BEFORE INSERT ON tr_t FOR EACH ROW SET NEW.v = NEW.v * 10`);
  await db.query(`CREATE TRIGGER ${names.au} AFTER UPDATE ON tr_t FOR EACH ROW INSERT INTO tr_log VALUES (NEW.id, 'update')`);
}

async function triggersOn(table: string): Promise<string[]> {
  const [rows] = await db.query<mysql.RowDataPacket[]>(
    'SELECT TRIGGER_NAME n FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = ? ORDER BY 1',
    [table],
  );
  return rows.map((r) => String(r.n));
}

describe('triggers', () => {
  it('without --include-triggers a table with triggers is refused, naming the flag', async () => {
    await seed();
    const r = runCli(['migrate', '--force-copy', '--url', '$URL', '--table', 'tr_t', '--alter', 'ADD COLUMN x INT', '--execute']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/has triggers \(tr_t_bi, tr_t_au\); pass --include-triggers/);
    expect(await helperTables(db, 'tr_t')).toEqual([]);
  });

  it('move to the new table at the cut-over, even after a cut-over attempt that timed out, and fire there', async () => {
    await seed();
    await db.query('CREATE TABLE tr_copy AS SELECT * FROM tr_t');
    // A session holds the table until the first cut-over attempt has timed out, so the cut-over retries.
    const blocker = await db.getConnection();
    // READ COMMITTED: a lock holder only, not a reader older than the cut-over, which it would wait for first.
    await blocker.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
    await blocker.query('BEGIN');
    await blocker.query('SELECT * FROM tr_t LIMIT 1');
    let held = true;
    const release = async () => {
      if (!held) return;
      held = false;
      await blocker.query('COMMIT');
      blocker.release();
    };
    const real = await createMysqlEngine(mysqlUrl());
    const engine = withMigration(real, (migration) => ({
      async cutover(...args: Parameters<typeof migration.cutover>) {
        try {
          return await migration.cutover(...args);
        } finally {
          await release();
        }
      },
    }));
    const request = { url: mysqlUrl(), table: 'tr_t', alter: 'ADD COLUMN x INT', triggers: { suffix: '_sc', removeSuffixIfExists: false } };
    const result = await migrate(engine, request, { execute: true, forceCopy: true, lockTimeoutMs: 200, cutoverAttempts: 20 }).finally(async () => {
      await release();
      await real.close();
    });
    expect(result.cutoverAttempts).toBeGreaterThan(1);
    expect(await triggersOn('tr_t')).toEqual(['tr_t_au_sc', 'tr_t_bi_sc']);
    expect(await triggersOn('tr_t__old')).toEqual(['tr_t_au', 'tr_t_bi']);
    await db.query('ALTER TABLE tr_copy ADD PRIMARY KEY (id), ADD COLUMN x INT');
    expect(await differences(db, 'tr_t', 'tr_copy')).toEqual([]);
    // The moved triggers act on the new table.
    await db.query('INSERT INTO tr_t (id, v) VALUES (5000, 7)');
    await db.query('UPDATE tr_t SET x = 1 WHERE id = 1');
    const [[row]] = await db.query<mysql.RowDataPacket[]>('SELECT v FROM tr_t WHERE id = 5000');
    expect(Number(row.v)).toBe(70);
    const [[log]] = await db.query<mysql.RowDataPacket[]>("SELECT COUNT(*) n FROM tr_log WHERE id = 1 AND what = 'update'");
    expect(Number(log.n)).toBe(1);
  });

  it('--remove-trigger-suffix-if-exists drops the suffix from names that have it, so names alternate across runs', async () => {
    await seed({ bi: 'tr_t_bi_sc', au: 'tr_t_au' });
    await migrateMysql('tr_t', 'ADD COLUMN x INT', {}, { triggers: { suffix: '_sc', removeSuffixIfExists: true } });
    expect(await triggersOn('tr_t')).toEqual(['tr_t_au_sc', 'tr_t_bi']);
  });

  it('a new name longer than 64 characters is refused before anything is created', async () => {
    await seed({ bi: `tr_${'x'.repeat(58)}`, au: 'tr_t_au' });
    const r = runCli([
      'migrate',
      '--force-copy',
      '--url',
      '$URL',
      '--table',
      'tr_t',
      '--alter',
      'ADD COLUMN x INT',
      '--execute',
      '--include-triggers',
      '--trigger-suffix',
      '_long',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/longer than 64 characters; use a shorter --trigger-suffix/);
    expect(await helperTables(db, 'tr_t')).toEqual([]);
  });

  it('a run killed in its cut-over after moving the triggers onto the shadow resumes with each trigger once, fired only by the application', async () => {
    await seed();
    await db.query('CREATE TABLE tr_copy AS SELECT * FROM tr_t');
    const args = ['--url', mysqlUrl(), '--table', 'tr_t', '--alter', 'ADD COLUMN x INT', '--include-triggers', '--trigger-suffix', '_sc'];
    const { killed } = await killDuringPhase([...args, '--postpone-cutover'], 'postponed');
    expect(killed).toBe(true);
    // What the killed cut-over leaves when it dies between creating the triggers and the swap.
    await db.query('CREATE TRIGGER tr_t_bi_sc BEFORE INSERT ON tr_t__new FOR EACH ROW SET NEW.v = NEW.v * 10');
    await db.query(`CREATE TRIGGER tr_t_au_sc AFTER UPDATE ON tr_t__new FOR EACH ROW INSERT INTO tr_log VALUES (NEW.id, 'update')`);
    // Rows the resumed run applies: the triggers on the original fire once, as they should.
    for (const t of ['tr_t', 'tr_copy']) await db.query(`UPDATE ${t} SET v = v + 1 WHERE id <= 50`);
    const r = runCli(['migrate', '--force-copy', ...args, '--execute', '--resume']);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    expect(await triggersOn('tr_t')).toEqual(['tr_t_au_sc', 'tr_t_bi_sc']);
    expect(await triggersOn('tr_t__old')).toEqual(['tr_t_au', 'tr_t_bi']);
    await db.query('ALTER TABLE tr_copy ADD PRIMARY KEY (id), ADD COLUMN x INT');
    expect(await differences(db, 'tr_t', 'tr_copy')).toEqual([]);
    const [[log]] = await db.query<mysql.RowDataPacket[]>("SELECT COUNT(*) n FROM tr_log WHERE what = 'update'");
    expect(Number(log.n)).toBe(50);
  });
});
