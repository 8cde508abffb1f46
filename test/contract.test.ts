import { describe, expect, it } from 'vitest';
import { columns, tableExists } from './support/catalog.js';
import { databases, useDatabase, type Database } from './support/fixture.js';

// Each engine's words for what a contract step must not break.
const dialects = {
  mysql: {
    generated: (t: string) => `ALTER TABLE ${t} ADD COLUMN g INT AS (n * 2) STORED`,
    trigger: (t: string) => [`CREATE TRIGGER ${t}_tr BEFORE INSERT ON ${t} FOR EACH ROW SET NEW.b = NEW.n + 1`],
    dropView: (v: string) => `DROP VIEW IF EXISTS ${v}`,
    addColumn: 'ADD COLUMN extra INT NULL',
  },
  postgres: {
    generated: (t: string) => `ALTER TABLE ${t} ADD COLUMN g INT GENERATED ALWAYS AS (n * 2) STORED`,
    trigger: (t: string) => [
      `CREATE OR REPLACE FUNCTION ${t}_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.b := NEW.n + 1; RETURN NEW; END $$`,
      `CREATE TRIGGER ${t}_tr BEFORE INSERT ON ${t} FOR EACH ROW EXECUTE FUNCTION ${t}_fn()`,
    ],
    dropView: (v: string) => `DROP VIEW IF EXISTS ${v}`,
    addColumn: 'ADD COLUMN extra int',
  },
};

const ROWS = 2000;

async function makeTable(db: Database, t: string): Promise<void> {
  await db.query(dialects[db.kind].dropView(`${t}_v`));
  await db.drop(t, `${t}_bak`, `${t}_expected`, `${t}_child`);
  await db.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, a VARCHAR(20), b INT, n INT)`);
  // Every fifth a is NULL: the backup keeps NULLs as NULLs.
  await db.query(`INSERT INTO ${t} SELECT g, CASE WHEN g % 5 = 0 THEN NULL ELSE CONCAT('a', g) END, g % 7, g FROM (${db.series(ROWS)}) s`);
}

function contract(db: Database, args: string[]) {
  return db.cli(['contract', '--url', '$URL', ...args]);
}

/** The last JSON line on stdout: the result, or the refusal with every check. */
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop()!);

describe.each(databases)('contract ($name)', ({ open, kind }) => {
  const db = useDatabase(
    open,
    'ct_view',
    'ct_dep',
    'ct_drop',
    'ct_idx',
    'ct_tab',
    'ct_lock',
    'ct_bad',
    'ct_uq_child',
    'ct_uq',
    'ct_nokey',
    'ct_live',
    'ct_live_m',
    'ct_live_bak',
    'ct_wait',
    'ct_wait_bak',
    'ct_mig',
    'ct_dead',
    'ct_dead_bak',
  );
  const words = () => dialects[db.kind];

  it('refuses a column a view uses, even with --force, and changes nothing', async () => {
    await makeTable(db, 'ct_view');
    await db.query('CREATE VIEW ct_view_v AS SELECT id, a FROM ct_view');
    for (const extra of [[], ['--execute', '--force']]) {
      const r = contract(db, ['--table', 'ct_view', '--drop-column', 'a', '--no-backup', ...extra]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^shadowcut: view\(s\) \S*ct_view_v use/);
      expect(r.stdout).toMatch(/FAIL views/);
    }
    // A column the view does not use is free to go (dry run).
    expect(contract(db, ['--table', 'ct_view', '--drop-column', 'b', '--no-backup']).code).toBe(0);
    const table = contract(db, ['--table', 'ct_view', '--drop-table', '--no-backup']);
    expect(table.code).toBe(2);
    expect(table.stderr).toMatch(/view\(s\) \S*ct_view_v use/);
    expect(await columns(db, 'ct_view')).toEqual(['id', 'a', 'b', 'n']);
    await db.query('DROP VIEW ct_view_v');
  });

  it('refuses a column a generated column, a trigger or a foreign key uses', async () => {
    await makeTable(db, 'ct_dep');
    await db.query(words().generated('ct_dep'));
    for (const sql of words().trigger('ct_dep')) await db.query(sql);
    await db.query('CREATE UNIQUE INDEX ct_dep_a ON ct_dep (a)');
    await db.query('CREATE TABLE ct_dep_child (id INT PRIMARY KEY, a VARCHAR(20), FOREIGN KEY (a) REFERENCES ct_dep (a))');
    const generated = contract(db, ['--table', 'ct_dep', '--drop-column', 'n', '--no-backup', '--execute', '--force']);
    expect(generated.code).toBe(2);
    expect(generated.stderr).toMatch(/\bg\b.* computed from n/);
    expect(generated.stderr).toMatch(/trigger\(s\) \S*ct_dep_tr/);
    const trigger = contract(db, ['--table', 'ct_dep', '--drop-column', 'b', '--no-backup', '--execute', '--force']);
    expect(trigger.code).toBe(2);
    expect(trigger.stderr).toMatch(/trigger\(s\) \S*ct_dep_tr/);
    expect(trigger.stderr).not.toMatch(/computed from/);
    const fk = contract(db, ['--table', 'ct_dep', '--drop-column', 'a', '--no-backup', '--execute', '--force']);
    expect(fk.code).toBe(2);
    expect(fk.stderr).toMatch(/foreign key/i);
    const parent = contract(db, ['--table', 'ct_dep', '--drop-table', '--no-backup', '--execute', '--force']);
    expect(parent.code).toBe(2);
    expect(parent.stderr).toMatch(/foreign key\(s\) \S*ct_dep_child/);
    expect(await columns(db, 'ct_dep')).toEqual(['id', 'a', 'b', 'n', 'g']);
    await db.drop('ct_dep_child');
  });

  it('drops an unused column after copying it, with the key, into the backup', async () => {
    await makeTable(db, 'ct_drop');
    await db.query('CREATE TABLE ct_drop_expected AS SELECT id, a, b FROM ct_drop');
    const dry = contract(db, ['--table', 'ct_drop', '--drop-column', 'a,b', '--backup-to', 'ct_drop_bak']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/dry run: nothing was changed/);
    expect(await tableExists(db, 'ct_drop_bak')).toBe(false);

    const r = contract(db, ['--table', 'ct_drop', '--drop-column', 'a,b', '--backup-to', 'ct_drop_bak', '--execute', '--chunk-rows', '300', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const result = lastJson(r.stdout);
    expect(result).toMatchObject({ event: 'result', outcome: 'done', rowsTouched: ROWS, detail: { backupTo: 'ct_drop_bak', attempts: 1 } });
    expect(result.detail.method).toMatch(db.kind === 'mysql' ? /^ALGORITHM=(INSTANT|INPLACE)/ : /^DROP COLUMN/);
    // The test servers run without performance_schema and pg_stat_statements: said, not refused.
    expect(result.checks.find((c: { name: string }) => c.name === 'query statistics')).toMatchObject({ ok: true, message: /could not look/ });
    expect(await columns(db, 'ct_drop')).toEqual(['id', 'n']);
    expect(await columns(db, 'ct_drop_bak')).toEqual(['id', 'a', 'b']);
    expect(await db.differences('ct_drop_bak', 'ct_drop_expected')).toEqual([]);
  });

  it('--backup-to holds the values committed at the DROP while a writer keeps changing the column', async () => {
    await makeTable(db, 'ct_live');
    await db.drop('ct_live_m', 'ct_live_bak');
    // The mirror takes the writer's changes in the same transactions: once the column is gone, a
    // transaction fails whole, so the mirror holds what the table held at the DROP.
    await db.query('CREATE TABLE ct_live_m AS SELECT id, a FROM ct_live');
    const writer = await db.session();
    let stop = false;
    let committed = 0;
    const p = (n: number) => db.param(n);
    const writes = (async () => {
      for (let i = 1; !stop; i++) {
        const id = 1 + ((i * 7919) % (ROWS + 100));
        const value = `w${i}`;
        const pair: [string, unknown[]][] =
          i % 10 === 0
            ? // The DELETE names the column too: one that did not would still succeed after the DROP, and the mirror would lose a row the backup rightly keeps.
              [
                [`DELETE FROM ct_live WHERE id = ${p(1)} AND (a IS NULL OR a IS NOT NULL)`, [id]],
                [`DELETE FROM ct_live_m WHERE id = ${p(1)}`, [id]],
              ]
            : i % 10 === 5
              ? [
                  [`INSERT INTO ct_live (id, a, b, n) VALUES (${p(1)}, ${p(2)}, 0, 0)`, [ROWS + 1000 + i, value]],
                  [`INSERT INTO ct_live_m (id, a) VALUES (${p(1)}, ${p(2)})`, [ROWS + 1000 + i, value]],
                ]
              : [
                  [`UPDATE ct_live SET a = ${p(1)} WHERE id = ${p(2)}`, [value, id]],
                  [`UPDATE ct_live_m SET a = ${p(1)} WHERE id = ${p(2)}`, [value, id]],
                ];
        try {
          await writer.query('BEGIN');
          for (const [sql, values] of pair) await writer.query(sql, values);
          await writer.query('COMMIT');
          committed++;
        } catch {
          await writer.query('ROLLBACK').catch(() => {});
          return; // the column is gone
        }
      }
    })();
    try {
      const r = await db.cliAsync([
        'contract',
        '--url',
        '$URL',
        '--table',
        'ct_live',
        '--drop-column',
        'a',
        '--backup-to',
        'ct_live_bak',
        '--execute',
        '--chunk-rows',
        '50',
      ]);
      expect(r.code, r.stderr).toBe(0);
    } finally {
      stop = true;
      await writes;
      writer.release();
    }
    expect(committed).toBeGreaterThan(20);
    expect(await columns(db, 'ct_live')).toEqual(['id', 'b', 'n']);
    expect(await db.differences('ct_live_bak', 'ct_live_m')).toEqual([]);
    // Nothing of the capture is left: writes go on without the column.
    await db.query(`INSERT INTO ct_live (id, b, n) VALUES (${ROWS + 999_999}, 0, 0)`);
    expect(Number((await db.query('SELECT COUNT(*) FROM ct_live_bak'))[0][0])).toBe(Number((await db.query('SELECT COUNT(*) FROM ct_live_m'))[0][0]));
  });

  // PostgreSQL only: a row held FOR UPDATE takes no table lock the capture's trigger waits for, so it
  // can be held before the run starts; on MySQL any open transaction holds the metadata lock it needs.
  it('a backup chunk waiting for a row a transaction holds does not keep writers of its other rows waiting', async (test) => {
    if (db.kind === 'mysql') return test.skip();
    const rows = 2000;
    await db.drop('ct_wait', 'ct_wait_bak');
    await db.query('CREATE TABLE ct_wait (id INT PRIMARY KEY, a VARCHAR(20), b INT, n INT)');
    await db.query(`INSERT INTO ct_wait SELECT g, CONCAT('a', g), 0, g FROM (${db.series(rows)}) s`);
    const holder = await db.session();
    const writer = await db.session();
    let slowest = 0;
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT id FROM ct_wait WHERE id = ${rows - 10} FOR UPDATE`);
      const run = db.cliAsync([
        'contract',
        '--url',
        '$URL',
        '--table',
        'ct_wait',
        '--drop-column',
        'a',
        '--backup-to',
        'ct_wait_bak',
        '--execute',
        '--chunk-rows',
        '100',
      ]);
      let held = true;
      const released = new Promise((r) => setTimeout(r, 6000)).then(() => holder.query('COMMIT')).then(() => (held = false));
      // The last chunk holds rows 1901.. while it waits for the held one; a writer updates one of them.
      await new Promise((r) => setTimeout(r, 1500));
      while (held) {
        const t0 = Date.now();
        await writer.query(`UPDATE ct_wait SET a = 'w' WHERE id = ${rows - 50}`);
        slowest = Math.max(slowest, Date.now() - t0);
        await new Promise((r) => setTimeout(r, 100));
      }
      await released;
      const r = await run;
      expect(r.code, r.stderr).toBe(0);
    } finally {
      holder.release();
      writer.release();
    }
    // Each wait is the chunk's own lock timeout (2 s) at most, never the holder's.
    expect(slowest).toBeLessThan(3000);
    const kept = await db.query(`SELECT id, a FROM ct_wait_bak WHERE id IN (${rows - 50}, ${rows - 10}) ORDER BY id`);
    expect(kept.map((row) => row.map(String))).toEqual([
      [String(rows - 50), 'w'],
      [String(rows - 10), `a${rows - 10}`],
    ]);
  }, 60_000);

  it('--drop-index records the definition, drops the index, and the definition makes it again', async () => {
    await makeTable(db, 'ct_idx');
    await db.query('CREATE INDEX ct_idx_n ON ct_idx (n, b)');
    const r = contract(db, ['--table', 'ct_idx', '--drop-index', 'ct_idx_n', '--execute', '--json']);
    expect(r.code).toBe(0);
    const result = lastJson(r.stdout);
    expect(result.detail.method).toMatch(db.kind === 'mysql' ? /^ALGORITHM=/ : /^DROP INDEX CONCURRENTLY$/);
    expect(await db.indexes('ct_idx')).not.toContain('ct_idx_n');
    await db.query(result.detail.indexDefinition);
    expect(await db.indexes('ct_idx')).toContain('ct_idx_n');
  });

  it('never drops a UNIQUE index as unused: only --drop-unique drops the guarantee, never past a foreign key or the row identity', async () => {
    await db.drop('ct_uq_child');
    await makeTable(db, 'ct_uq');
    // Made with CREATE UNIQUE INDEX: no constraint row, and no scan ever counted for its checks.
    await db.query('CREATE UNIQUE INDEX ct_uq_a ON ct_uq (a)');
    const refusedDuplicate = () => db.query("INSERT INTO ct_uq (id, a, b, n) VALUES (9001, 'a1', 0, 0)");
    for (const extra of [[], ['--force']]) {
      const r = contract(db, ['--table', 'ct_uq', '--drop-index', 'ct_uq_a', '--execute', ...extra]);
      expect(r.code, extra.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(
        /^shadowcut: index ct_uq_a of \S*ct_uq is UNIQUE: without it the server accepts duplicate \(a\).*--drop-unique to drop the guarantee/,
      );
    }
    expect(await db.indexes('ct_uq')).toContain('ct_uq_a');
    await expect(refusedDuplicate()).rejects.toThrow(/duplicate/i);

    // An index a foreign key needs stays, whatever the flags.
    await db.query('CREATE UNIQUE INDEX ct_uq_n ON ct_uq (n)');
    await db.query('CREATE TABLE ct_uq_child (id INT PRIMARY KEY, n INT, FOREIGN KEY (n) REFERENCES ct_uq (n))');
    const fk = contract(db, ['--table', 'ct_uq', '--drop-index', 'ct_uq_n', '--execute', '--force', '--drop-unique']);
    expect(fk.code).toBe(2);
    expect(fk.stderr.trim().split('\n')).toHaveLength(1);
    expect(fk.stderr).toMatch(/foreign key\S* \S*ct_uq_child/);
    expect(fk.stdout).toMatch(/overridden by --drop-unique: index ct_uq_n/);
    expect(await db.indexes('ct_uq')).toContain('ct_uq_n');

    const dropped = contract(db, ['--table', 'ct_uq', '--drop-index', 'ct_uq_a', '--execute', '--drop-unique', '--json']);
    expect(dropped.code).toBe(0);
    expect(lastJson(dropped.stdout).detail.overridden).toEqual(['uniqueness']);
    expect(await db.indexes('ct_uq')).not.toContain('ct_uq_a');
    await refusedDuplicate();
  });

  it('never drops the index the rows are identified by, even with --drop-unique', async () => {
    await db.drop('ct_nokey');
    if (db.kind === 'mysql') {
      await db.query('CREATE TABLE ct_nokey (id INT NOT NULL, a INT, UNIQUE KEY ct_nokey_id (id))');
    } else {
      await db.query('CREATE TABLE ct_nokey (id INT NOT NULL, a INT)');
      await db.query('CREATE UNIQUE INDEX ct_nokey_id ON ct_nokey (id)');
      await db.query('ALTER TABLE ct_nokey REPLICA IDENTITY USING INDEX ct_nokey_id');
    }
    const r = contract(db, ['--table', 'ct_nokey', '--drop-index', 'ct_nokey_id', '--execute', '--drop-unique', '--force']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(
      db.kind === 'mysql' ? /has no PRIMARY KEY and ct_nokey_id stands in for it/ : /ct_nokey_id is the REPLICA IDENTITY of public\.ct_nokey/,
    );
    expect(await db.indexes('ct_nokey')).toContain('ct_nokey_id');
    if (db.kind === 'postgres') {
      // An exclusion constraint's index is not unique, and no flag drops it either.
      await db.query('ALTER TABLE ct_nokey ADD COLUMN r int4range, ADD CONSTRAINT ct_nokey_excl EXCLUDE USING gist (r WITH &&)');
      const excl = contract(db, ['--table', 'ct_nokey', '--drop-index', 'ct_nokey_excl', '--execute', '--drop-unique', '--force']);
      expect(excl.code).toBe(2);
      expect(excl.stderr).toMatch(/constraint ct_nokey_excl needs index ct_nokey_excl/);
      expect(await db.indexes('ct_nokey')).toContain('ct_nokey_excl');
    }
  });

  it('--drop-table with --backup-to renames the table; without, drops it', async () => {
    await makeTable(db, 'ct_tab');
    await db.query('CREATE TABLE ct_tab_expected AS SELECT * FROM ct_tab');
    const kept = contract(db, ['--table', 'ct_tab', '--drop-table', '--backup-to', 'ct_tab_bak', '--execute']);
    expect(kept.code).toBe(0);
    expect(await tableExists(db, 'ct_tab')).toBe(false);
    expect(await db.differences('ct_tab_bak', 'ct_tab_expected')).toEqual([]);
    const gone = contract(db, ['--table', 'ct_tab_bak', '--drop-table', '--no-backup', '--execute']);
    expect(gone.code).toBe(0);
    expect(await tableExists(db, 'ct_tab_bak')).toBe(false);
  });

  it("the old table a migration kept is inside that migration's soak: refused right after it, dropped with --min-soak 0", async () => {
    await makeTable(db, 'ct_mig');
    const migrated = db.cli(['migrate', '--url', '$URL', '--table', 'ct_mig', '--alter', words().addColumn, '--force-copy', '--execute']);
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(await tableExists(db, 'ct_mig__old')).toBe(true);
    const early = contract(db, ['--table', 'ct_mig__old', '--drop-table', '--no-backup', '--execute']);
    expect(early.code).not.toBe(0);
    expect(early.stderr.trim().split('\n')).toHaveLength(1);
    expect(early.stderr).toMatch(/inside the soak: migrate /);
    expect(await tableExists(db, 'ct_mig__old')).toBe(true);
    const late = contract(db, ['--table', 'ct_mig__old', '--drop-table', '--no-backup', '--min-soak', '0', '--execute']);
    expect(late.code, late.stderr).toBe(0);
    expect(await tableExists(db, 'ct_mig__old')).toBe(false);
  });

  it('gives up after its attempts while a transaction holds the table, leaving no backup, and succeeds after', async () => {
    await makeTable(db, 'ct_lock');
    const holder = await db.session();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT COUNT(*) FROM ct_lock');
      const r = contract(db, [
        '--table',
        'ct_lock',
        '--drop-column',
        'a',
        '--backup-to',
        'ct_lock_bak',
        '--execute',
        '--lock-timeout-ms',
        '200',
        '--attempts',
        '2',
      ]);
      expect(r.code).toBe(2);
      // MySQL's capture triggers wait for the same lock as the DROP, and are made before the backup.
      expect(r.stderr.trim().split('\n').pop()).toMatch(/^shadowcut: (the DROP|the backup's capture) failed 2 times: .*raise --lock-timeout-ms or --attempts/);
      // The holder's transaction was never disturbed.
      expect(Number((await holder.query('SELECT COUNT(*) FROM ct_lock'))[0][0])).toBe(ROWS);
      await holder.query('COMMIT');
    } finally {
      holder.release();
    }
    expect(await columns(db, 'ct_lock')).toEqual(['id', 'a', 'b', 'n']);
    expect(await tableExists(db, 'ct_lock_bak')).toBe(false);
    // Whatever of the capture could not be removed with the holder there, writes go on.
    await db.query(`INSERT INTO ct_lock (id, a, b, n) VALUES (${ROWS + 1}, 'x', 0, 0)`);
    await db.query(`UPDATE ct_lock SET a = 'y' WHERE id = ${ROWS + 1}`);
    await db.query(`DELETE FROM ct_lock WHERE id = ${ROWS + 1}`);
    const again = contract(db, ['--table', 'ct_lock', '--drop-column', 'a', '--backup-to', 'ct_lock_bak', '--execute']);
    expect(again.code, again.stderr).toBe(0);
    expect(await columns(db, 'ct_lock')).toEqual(['id', 'b', 'n']);
  });

  it('cleanup removes the backup capture a contract killed while filling its backup left on the table; the backup stays', async () => {
    await db.drop('ct_dead', 'ct_dead_bak');
    await db.query('CREATE TABLE ct_dead (id INT PRIMARY KEY, v INT, x INT)');
    await db.query(`INSERT INTO ct_dead (id, v, x) SELECT g, g, g FROM (${db.series(100)}) s`);
    // What a contract killed after making its backup leaves: the backup and the capture keeping it level.
    const engine = await db.engine();
    try {
      const contraction = await engine.prepareContract({ table: 'ct_dead', drop: { kind: 'column', columns: ['x'] }, backupTo: 'ct_dead_bak' });
      await contraction.backup!.create(1000);
    } finally {
      await engine.close();
    }
    const triggers = () =>
      kind === 'postgres'
        ? db.query(`SELECT tgname FROM pg_trigger WHERE tgrelid = 'ct_dead'::regclass AND NOT tgisinternal ORDER BY 1`)
        : db.query(`SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = 'ct_dead' ORDER BY 1`);
    expect(await triggers()).toEqual(kind === 'postgres' ? [['shadowcut_backup_capture']] : [['ct_dead_bak__d'], ['ct_dead_bak__i'], ['ct_dead_bak__u']]);
    const r = db.cli(['cleanup', '--url', '$URL', '--table', 'ct_dead']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      kind === 'postgres' ? /shadowcut_backup_capture \(a contract's backup capture\)/ : /ct_dead_bak__i \(a contract's backup capture\)/,
    );
    expect(await triggers()).toEqual([]);
    if (kind === 'postgres') expect(await db.query(`SELECT proname FROM pg_proc WHERE proname LIKE 'shadowcut_backup_capture%'`)).toEqual([]);
    // The table takes writes again without them reaching the backup, which stays as the user's data.
    await db.query('INSERT INTO ct_dead (id, v, x) VALUES (1000, 1, 1)');
    expect(await db.query('SELECT count(*) FROM ct_dead_bak WHERE id = 1000')).toEqual([['0']]);
  });

  it.runIf(kind === 'mysql')("cleanup leaves a user's trigger that takes a backup trigger's name but writes elsewhere", async () => {
    await db.drop('ct_own', 'ct_own_bak', 'ct_own_log');
    await db.query('CREATE TABLE ct_own (id INT PRIMARY KEY, v INT, x INT)');
    await db.query('CREATE TABLE ct_own_log (id INT)');
    const engine = await db.engine();
    try {
      const contraction = await engine.prepareContract({ table: 'ct_own', drop: { kind: 'column', columns: ['x'] }, backupTo: 'ct_own_bak' });
      await contraction.backup!.create(1000);
    } finally {
      await engine.close();
    }
    await db.query('DROP TRIGGER ct_own_bak__i');
    await db.query('CREATE TRIGGER ct_own_bak__i AFTER INSERT ON ct_own FOR EACH ROW INSERT INTO ct_own_log VALUES (NEW.id)');
    const r = db.cli(['cleanup', '--url', '$URL', '--table', 'ct_own']);
    expect(r.code, r.stderr).toBe(0);
    expect(await db.query(`SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = 'ct_own'`)).toEqual([
      ['ct_own_bak__i'],
    ]);
    await db.drop('ct_own', 'ct_own_bak', 'ct_own_log');
  });

  it('refuses bad input with one line, exit 2, and changes nothing', async () => {
    await makeTable(db, 'ct_bad');
    await db.query('CREATE TABLE ct_bad_bak (id INT PRIMARY KEY)');
    const refusals: [string[], RegExp][] = [
      [['--table', 'ct_bad'], /give one of --drop-column/],
      [['--table', 'ct_bad', '--drop-column', 'a', '--no-backup', '--drop-table'], /give one of --drop-column/],
      [['--table', 'ct_bad', '--drop-column', 'nope', '--no-backup', '--execute'], /column nope does not exist/],
      [['--table', 'ct_nope', '--drop-column', 'a', '--no-backup', '--execute'], /ct_nope does not exist/],
      [['--table', 'ct_bad', '--drop-index', 'nope', '--execute'], /index nope does not exist/],
      [['--table', 'ct_bad', '--drop-column', 'a', '--backup-to', 'ct_bad_bak', '--execute'], /ct_bad_bak already exists/],
      [['--table', 'ct_bad', '--drop-table', '--backup-to', 'ct_bad_bak', '--execute'], /ct_bad_bak already exists/],
      [['--table', 'ct_bad', '--drop-column', 'id', '--backup-to', 'ct_bad_b2', '--execute'], /key/],
      [['--table', 'ct_bad', '--drop-column', 'id,a,b,n', '--no-backup', '--execute'], /every column/],
    ];
    for (const [args, message] of refusals) {
      const r = contract(db, args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
    expect(await columns(db, 'ct_bad')).toEqual(['id', 'a', 'b', 'n']);
    expect(await tableExists(db, 'ct_bad_b2')).toBe(false);
    await db.drop('ct_bad_bak');
  });
});
