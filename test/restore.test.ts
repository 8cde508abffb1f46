import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { HistoryEntry } from '../src/core/engine/ports/history.js';
import { columns, tableExists } from './support/catalog.js';
import { databases, useDatabase, type Database } from './support/fixture.js';
import { killDuringPhase } from './support/kill.js';

/** Each engine's words for the tables and the impostor a restore must refuse. */
const dialects = {
  mysql: {
    create: (t: string) =>
      `CREATE TABLE ${t} (id INT PRIMARY KEY, n INT, v VARCHAR(40) COLLATE utf8mb4_bin NULL, big LONGTEXT NULL, d DECIMAL(40,20) NULL, ts DATETIME(6) NULL, b VARBINARY(16) NULL)`,
    ts: "TIMESTAMPADD(MICROSECOND, g * 1000003, CAST('2020-01-01 00:00:00.000001' AS DATETIME(6)))",
    bytes: 'UNHEX(MD5(g))',
    rename: (a: string, b: string) => `RENAME TABLE ${a} TO ${b}`,
    impostor: (t: string) => [
      `CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(40)) COMMENT='shadowcut: contract backup'`,
      `CREATE TRIGGER ${t}_tr BEFORE INSERT ON ${t} FOR EACH ROW SET NEW.v = 'forged'`,
    ],
  },
  postgres: {
    create: (t: string) => `CREATE TABLE ${t} (id int PRIMARY KEY, n int, v varchar(40) COLLATE "C", big text, d numeric(40,20), ts timestamptz(6), b bytea)`,
    ts: "timestamptz '2020-01-01 00:00:00.000001+00' + g * interval '1.000003 second'",
    bytes: "decode(md5(g::text), 'hex')",
    rename: (a: string, b: string) => `ALTER TABLE ${a} RENAME TO ${b}`,
    impostor: (t: string) => [
      `CREATE TABLE ${t} (id int PRIMARY KEY, v varchar(40))`,
      `COMMENT ON TABLE ${t} IS 'shadowcut: contract backup'`,
      `CREATE OR REPLACE FUNCTION ${t}_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.v := 'forged'; RETURN NEW; END $$`,
      `CREATE TRIGGER ${t}_tr BEFORE INSERT ON ${t} FOR EACH ROW EXECUTE FUNCTION ${t}_fn()`,
    ],
  },
};

const DROPPED = 'v,big,d,ts,b';

/**
 * `rows` rows whose dropped columns hold what loses precision on the way through a client: NULLs in
 * each, a large text every 500th row, 20-digit decimals, microseconds, raw bytes.
 */
async function makeTable(db: Database, t: string, rows: number): Promise<void> {
  const w = dialects[db.kind];
  await db.drop(t, `${t}_bak`, `${t}_expected`);
  await forget(db, t);
  await db.query(w.create(t));
  await db.query(
    `INSERT INTO ${t} SELECT g, g,
       CASE WHEN g % 5 = 0 THEN NULL ELSE CONCAT('v', g) END,
       CASE WHEN g % 500 = 1 THEN REPEAT('x', 70000) WHEN g % 6 = 0 THEN NULL ELSE CONCAT('big', g) END,
       CASE WHEN g % 7 = 0 THEN NULL ELSE g + 0.12345678901234567891 END,
       CASE WHEN g % 8 = 0 THEN NULL ELSE ${w.ts} END,
       CASE WHEN g % 9 = 0 THEN NULL ELSE ${w.bytes} END
     FROM (${db.series(rows)}) s`,
  );
  await db.query(`CREATE TABLE ${t}_expected AS SELECT * FROM ${t}`);
  // Keyed, so the row-by-row comparison looks each row up instead of scanning.
  await db.query(`ALTER TABLE ${t}_expected ADD PRIMARY KEY (id)`);
}

/** A test's tables start with no history: an earlier run's stages would count toward the soak. */
async function forget(db: Database, ...tables: string[]): Promise<void> {
  const schema = db.kind === 'mysql' ? 'shadowcut_test' : 'public';
  await db.query(`DELETE FROM shadowcut_history WHERE table_name IN (${tables.map((t) => `'${schema}.${t}'`).join(', ')})`).catch(() => {});
}

async function history(db: Database, t: string): Promise<HistoryEntry[]> {
  const r = db.cli(['history', '--url', '$URL', '--table', t, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as HistoryEntry);
}

const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop()!);

/** A refusal: exit 2, one line on stderr matching `message`. */
function refused(r: { code: number | null; stderr: string }, message: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(message);
}

describe.each(databases)('the soak and restore ($name)', ({ open }) => {
  const db = useDatabase(
    open,
    'sk',
    'sk_bak',
    'rs',
    'rs_bak',
    'rs_expected',
    'rk',
    'rk_bak',
    'rk_expected',
    'rt',
    'rt_bak',
    'rt_expected',
    'rf',
    'rf_bak',
    'rf_bak_real',
    'rf_expected',
    'b',
    'b_bak',
    'b_expected',
    'rx',
    'rx_bak',
    'rx_expected',
  );
  const cli = (command: string, args: string[]) => db.cli([command, '--url', '$URL', ...args]);

  it('refuses a contract inside the soak, changing nothing; --min-soak 0 goes ahead and the history says so', async () => {
    await db.drop('sk', 'sk_bak');
    await forget(db, 'sk');
    await db.query('CREATE TABLE sk (id INT PRIMARY KEY, a VARCHAR(20), a2 VARCHAR(20) NULL, c INT)');
    await db.query(`INSERT INTO sk SELECT g, CONCAT('a', g), NULL, g FROM (${db.series(300)}) s`);
    const filled = cli('backfill', ['--table', 'sk', '--set', 'a2 = a', '--where', 'a2 IS NULL', '--execute']);
    expect(filled.code, filled.stderr).toBe(0);
    const before = await history(db, 'sk');

    // The backfill retired a: the default week, and a shorter soak, are not over.
    for (const soak of [[], ['--min-soak', '1h']]) {
      const r = cli('contract', ['--table', 'sk', '--drop-column', 'a', '--backup-to', 'sk_bak', '--execute', ...soak]);
      refused(
        r,
        new RegExp(`inside the soak: backfill ".*a2 = a.*" finished .*--min-soak ${soak.length ? '1h' : '7d'} ends \\d{4}-\\d\\d-\\d\\dT.*--min-soak 0`),
      );
    }
    expect(await columns(db, 'sk')).toEqual(['id', 'a', 'a2', 'c']);
    expect(await tableExists(db, 'sk_bak')).toBe(false);
    expect(await db.helpers('sk')).toEqual([]);
    expect(await history(db, 'sk')).toEqual(before);

    // Data goes only when the operator said what becomes of it.
    refused(cli('contract', ['--table', 'sk', '--drop-column', 'c', '--execute']), /--backup-to <table> .*or say --no-backup/);
    refused(cli('contract', ['--table', 'sk', '--drop-table', '--execute']), /--backup-to <table> .*or say --no-backup/);
    refused(cli('contract', ['--table', 'sk', '--drop-column', 'c', '--backup-to', 'sk_bak', '--no-backup', '--execute']), /not both/);
    refused(cli('contract', ['--table', 'sk', '--drop-column', 'c', '--no-backup', '--min-soak', '7']), /--min-soak 7: give a number with a unit/);
    expect(await columns(db, 'sk')).toEqual(['id', 'a', 'a2', 'c']);

    // A column no stage touched has no soak: said, not refused.
    const untouched = cli('contract', ['--table', 'sk', '--drop-column', 'c', '--no-backup', '--execute']);
    expect(untouched.code, untouched.stderr).toBe(0);
    expect(untouched.stdout).toMatch(/ok {3}soak: the history of \S+ has no migrate, backfill, verify or restore of what goes/);

    const forced = cli('contract', ['--table', 'sk', '--drop-column', 'a', '--backup-to', 'sk_bak', '--execute', '--min-soak', '0', '--json']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(await columns(db, 'sk')).toEqual(['id', 'a2']);
    const entry = (await history(db, 'sk')).pop()!;
    expect(entry).toMatchObject({
      command: 'contract',
      outcome: 'success',
      detail: { soak: { minSoakMs: 0, overridden: true, since: { command: 'backfill' } } },
    });
    expect(entry.checks).toEqual([]);
    expect(lastJson(forced.stdout).checks.find((c: { name: string }) => c.name === 'soak').message).toMatch(/^overridden by --min-soak 0: backfill/);
    const dropped = (await history(db, 'sk')).find((e) => e.stage.startsWith('DROP COLUMN c'))!;
    expect(dropped).toMatchObject({ stage: 'DROP COLUMN c (no backup)', detail: { noBackup: true, soak: { since: null } } });
  });

  it('restore puts dropped columns back exactly: NULLs, large values, decimals, microseconds, bytes; recorded, and then in the soak', async () => {
    await makeTable(db, 'rs', 1200);
    const contracted = cli('contract', ['--table', 'rs', '--drop-column', DROPPED, '--backup-to', 'rs_bak', '--execute']);
    expect(contracted.code, contracted.stderr).toBe(0);
    expect(await columns(db, 'rs')).toEqual(['id', 'n']);

    const dry = cli('restore', ['--table', 'rs', '--from', 'rs_bak']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/dry run: nothing was changed/);
    expect(await columns(db, 'rs')).toEqual(['id', 'n']);

    // The fill is a backfill: it runs the operator's hooks for its events.
    const hooks = await mkdtemp(path.join(os.tmpdir(), 'restore-hooks-'));
    const ran = path.join(hooks, 'ran.log');
    for (const event of ['startup', 'before-backfill', 'success']) {
      await writeFile(path.join(hooks, event), `#!/bin/sh\necho ${event} >> ${ran}\n`);
      await chmod(path.join(hooks, event), 0o755);
    }
    const r = cli('restore', ['--table', 'rs', '--from', 'rs_bak', '--execute', '--batch-rows', '97', '--json', '--hooks-dir', hooks]);
    expect(r.code, r.stderr).toBe(0);
    expect((await readFile(ran, 'utf8')).trim().split('\n')).toEqual(['startup', 'before-backfill', 'success']);
    await rm(hooks, { recursive: true });
    expect(lastJson(r.stdout)).toMatchObject({ event: 'result', outcome: 'success', rowsTouched: 1200, detail: { kind: 'column', batches: 13 } });
    expect(await columns(db, 'rs')).toEqual(['id', 'n', 'v', 'big', 'd', 'ts', 'b']);
    expect(await db.differences('rs', 'rs_expected')).toEqual([]);
    expect(await db.helpers('rs')).toEqual([]);
    const entry = (await history(db, 'rs')).pop()!;
    expect(entry).toMatchObject({ command: 'restore', outcome: 'success', rowsTouched: 1200, stage: 'restore from rs_bak' });

    refused(cli('restore', ['--table', 'rs', '--from', 'rs_bak', '--execute']), /column\(s\) v, big, d, ts, b already exist in \S+rs: .*--resume/);
    // The restore is the stage a new contract of the column retires.
    refused(cli('contract', ['--table', 'rs', '--drop-column', 'v', '--no-backup', '--execute']), /inside the soak: restore "restore from rs_bak"/);
  });

  it('a restore killed in its fill goes on with --resume and ends exact', async () => {
    const rows = 8000;
    await makeTable(db, 'rk', rows);
    expect(cli('contract', ['--table', 'rk', '--drop-column', DROPPED, '--backup-to', 'rk_bak', '--execute']).code).toBe(0);
    const args = ['--url', db.url, '--table', 'rk', '--from', 'rk_bak', '--batch-rows', '100', '--max-rows-per-sec', '2000'];
    const crash = await killDuringPhase(args, 'backfill', 700, 'restore');
    expect(crash.killed, `the run ended before its batches (exit ${crash.exitCode}): ${crash.stderr}`).toBe(true);
    const filled = Number((await db.query('SELECT COUNT(*) FROM rk WHERE v IS NOT NULL'))[0][0]);
    expect(filled).toBeGreaterThan(0);
    expect(filled).toBeLessThan(rows - rows / 5);
    expect(await db.helpers('rk')).toEqual(['rk__state']);

    refused(cli('restore', ['--table', 'rk', '--from', 'rk_bak', '--execute']), /already exist .*add --resume/);
    // The application writes one restored column of a row not filled yet: it keeps it, and the row's others are filled.
    for (const t of ['rk', 'rk_expected']) await db.query(`UPDATE ${t} SET v = 'written by the application' WHERE id = ${rows}`);
    const resumed = cli('restore', ['--table', 'rk', '--from', 'rk_bak', '--execute', '--resume', '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(lastJson(resumed.stdout)).toMatchObject({ outcome: 'success', detail: { resumed: true } });
    expect(await db.differences('rk', 'rk_expected')).toEqual([]);
    expect(await db.helpers('rk')).toEqual([]);
  }, 120_000);

  it('restore renames a dropped table back, and refuses while the name is taken', async () => {
    await makeTable(db, 'rt', 500);
    expect(cli('contract', ['--table', 'rt', '--drop-table', '--backup-to', 'rt_bak', '--execute']).code).toBe(0);
    expect(await tableExists(db, 'rt')).toBe(false);
    await db.query('CREATE TABLE rt (id INT PRIMARY KEY)');
    refused(cli('restore', ['--table', 'rt', '--from', 'rt_bak', '--execute']), /rt exists: restore renames \S+rt_bak back/);
    expect(await tableExists(db, 'rt_bak')).toBe(true);
    await db.drop('rt');

    const r = cli('restore', ['--table', 'rt', '--from', 'rt_bak', '--execute']);
    expect(r.code, r.stderr).toBe(0);
    expect(await tableExists(db, 'rt_bak')).toBe(false);
    expect(await db.differences('rt', 'rt_expected')).toEqual([]);
    expect((await history(db, 'rt')).map((e) => [e.command, e.outcome])).toEqual([
      ['contract', 'success'],
      ['restore', 'success'],
    ]);
    refused(cli('restore', ['--table', 'rt', '--from', 'rt_bak', '--execute']), /rt_bak does not exist: nothing to restore/);
  });

  it('fills a table whose name is the one a fill once gave its backup (b): each row from its own backup row', async () => {
    await db.drop('b', 'b_bak', 'b_expected');
    await forget(db, 'b');
    await db.query('CREATE TABLE b (id INT PRIMARY KEY, kept_note VARCHAR(40))');
    await db.query(`INSERT INTO b SELECT g, CONCAT('note', g) FROM (${db.series(300)}) s`);
    await db.query('CREATE TABLE b_expected AS SELECT * FROM b');
    await db.query('ALTER TABLE b_expected ADD PRIMARY KEY (id)');
    const contracted = cli('contract', ['--table', 'b', '--drop-column', 'kept_note', '--backup-to', 'b_bak', '--execute']);
    expect(contracted.code, contracted.stderr).toBe(0);
    const r = cli('restore', ['--table', 'b', '--from', 'b_bak', '--execute']);
    expect(r.code, r.stderr).toBe(0);
    expect(await db.differences('b', 'b_expected')).toEqual([]);
  });

  it("refuses, changing nothing, while another run's checkpoint is on the table; restores once it is cleaned up", async () => {
    const rows = 6000;
    await makeTable(db, 'rx', rows);
    expect(cli('contract', ['--table', 'rx', '--drop-column', DROPPED, '--backup-to', 'rx_bak', '--execute']).code).toBe(0);
    const args = ['--url', db.url, '--table', 'rx', '--set', 'n = n + 1', '--batch-rows', '100', '--max-rows-per-sec', '2000'];
    const crash = await killDuringPhase(args, 'backfill', 500, 'backfill');
    expect(crash.killed, `the backfill ended before its batches (exit ${crash.exitCode}): ${crash.stderr}`).toBe(true);
    expect(await db.helpers('rx')).toEqual(['rx__state']);

    for (const execute of [[], ['--execute']]) {
      refused(cli('restore', ['--table', 'rx', '--from', 'rx_bak', ...execute]), /an interrupted backfill of \S+rx left a checkpoint: .*shadowcut cleanup/);
    }
    expect(await columns(db, 'rx')).toEqual(['id', 'n']);
    expect(cli('cleanup', ['--table', 'rx']).code).toBe(0);
    const r = cli('restore', ['--table', 'rx', '--from', 'rx_bak', '--execute']);
    expect(r.code, r.stderr).toBe(0);
    expect(Number((await db.query('SELECT COUNT(*) FROM rx WHERE v IS NOT NULL'))[0][0])).toBe(rows - rows / 5);
  }, 120_000);

  it("refuses a backup the history does not name, one that is missing or not shadowcut's, and an index", async () => {
    await makeTable(db, 'rf', 50);
    // A restored column comes back last: the expectation in that order, as the comparison goes by position on PostgreSQL.
    await db.drop('rf_expected');
    await db.query('CREATE TABLE rf_expected AS SELECT id, n, big, d, ts, b, v FROM rf');
    await db.query('ALTER TABLE rf_expected ADD PRIMARY KEY (id)');
    await db.query('CREATE INDEX rf_n ON rf (n)');
    expect(cli('contract', ['--table', 'rf', '--drop-column', 'v', '--backup-to', 'rf_bak', '--execute']).code).toBe(0);
    const w = dialects[db.kind];

    refused(cli('restore', ['--table', 'rf']), /give --from <backup> .* or --index <name>/);
    refused(cli('restore', ['--table', 'rf', '--from', 'rf_other', '--execute']), /has no contract that kept its data in rf_other/);
    // Another role could have put a table of its own under the backup's name: marked, with a trigger that runs as whoever writes it.
    await db.query(w.rename('rf_bak', 'rf_bak_real'));
    for (const sql of w.impostor('rf_bak')) await db.query(sql);
    refused(cli('restore', ['--table', 'rf', '--from', 'rf_bak', '--execute']), /refusing to use \S+rf_bak: it has triggers \(rf_bak_tr\)/);
    await db.drop('rf_bak');
    if (db.kind === 'mysql') {
      // MySQL keeps no owner: without the mark nothing shows the table is shadowcut's.
      await db.query('CREATE TABLE rf_bak (id INT PRIMARY KEY, v VARCHAR(40))');
      refused(cli('restore', ['--table', 'rf', '--from', 'rf_bak', '--execute']), /does not carry shadowcut's mark/);
      await db.drop('rf_bak');
    }
    refused(cli('restore', ['--table', 'rf', '--from', 'rf_bak', '--execute']), /rf_bak does not exist: nothing to restore/);
    expect(await columns(db, 'rf')).toEqual(['id', 'n', 'big', 'd', 'ts', 'b']);

    await db.query(w.rename('rf_bak_real', 'rf_bak'));
    refused(cli('restore', ['--table', 'rf', '--from', 'rf_bak', '--resume', '--execute']), /nothing to resume/);
    const r = cli('restore', ['--table', 'rf', '--from', 'rf_bak', '--execute']);
    expect(r.code, r.stderr).toBe(0);
    expect(await db.differences('rf', 'rf_expected')).toEqual([]);

    expect(cli('contract', ['--table', 'rf', '--drop-index', 'rf_n', '--execute']).code).toBe(0);
    refused(cli('restore', ['--table', 'rf', '--index', 'rf_n']), /restore cannot rebuild index rf_n .*recorded its definition.*rf_n.*\(.?n.?\)/);
  });
});
