import { describe, expect, it } from 'vitest';
import { databases, useDatabase } from './support/fixture.js';

/**
 * The path and each part's class, as `plan --json` and migrate's dry run (`--json`) report them,
 * for a table of statements per engine. The classes come from the server (probes), so a wrong
 * guess about what a server version can do in place shows here.
 */
type Row = [alter: string, path: 'in-place' | 'copy', classes: string[]];

const CASES: Record<'mysql' | 'postgres', { create: string; fill: string; rows: Row[] }> = {
  mysql: {
    create: "CREATE TABLE {t} (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL DEFAULT 'a', n INT NULL, w INT NULL, u INT NULL, KEY kn (n)) ENGINE=InnoDB",
    fill: "INSERT INTO {t} SELECT g, CONCAT('v', g), g, g, g FROM ({series}) s",
    rows: [
      ['ADD COLUMN note VARCHAR(50) NULL', 'in-place', ['instant']],
      ['ADD COLUMN c INT NOT NULL DEFAULT 7', 'in-place', ['instant']],
      ['DROP COLUMN w', 'in-place', ['instant']],
      ["ALTER COLUMN v SET DEFAULT 'b'", 'in-place', ['instant']],
      ['RENAME INDEX kn TO kn2', 'in-place', ['instant']],
      ['RENAME COLUMN v TO v2', 'in-place', ['instant']],
      ['DROP INDEX kn', 'in-place', ['instant']],
      ["MODIFY v VARCHAR(40) NOT NULL DEFAULT 'a'", 'in-place', ['instant']],
      ['ADD INDEX (u)', 'copy', ['copy']],
      ['ADD UNIQUE KEY (u)', 'copy', ['copy']],
      ['MODIFY n BIGINT NULL', 'copy', ['copy']],
      ['MODIFY u INT NOT NULL', 'copy', ['copy']],
      ['ADD COLUMN c2 INT NULL, DROP INDEX kn', 'in-place', ['instant', 'instant']],
      ['ADD COLUMN c3 INT NULL, MODIFY n BIGINT NULL', 'copy', ['instant', 'copy']],
    ],
  },
  postgres: {
    create: 'CREATE TABLE {t} (id int PRIMARY KEY, v varchar(20) NOT NULL, n numeric(10,2), w int, u int, CONSTRAINT {t}_n_nonneg CHECK (n >= 0))',
    fill: "INSERT INTO {t} SELECT g, 'v' || g, g, g, g FROM ({series}) s",
    rows: [
      ['ADD COLUMN note text', 'in-place', ['instant']],
      ['ADD COLUMN c int NOT NULL DEFAULT 7', 'in-place', ['instant']],
      ['ADD COLUMN r float8 DEFAULT random()', 'copy', ['copy']],
      ['DROP COLUMN w', 'in-place', ['instant']],
      ["ALTER COLUMN v SET DEFAULT 'b'", 'in-place', ['instant']],
      ['ALTER COLUMN v DROP NOT NULL', 'in-place', ['instant']],
      ['RENAME COLUMN v TO v2', 'in-place', ['instant']],
      ['ALTER COLUMN v TYPE varchar(40)', 'in-place', ['instant']],
      ['ALTER COLUMN v TYPE text', 'in-place', ['instant']],
      // n has a CHECK: the server reads every row again to re-validate it, under its lock.
      ['ALTER COLUMN n TYPE numeric(12,2)', 'copy', ['copy']],
      ['ALTER COLUMN u TYPE int', 'in-place', ['instant']],
      ['ALTER COLUMN v TYPE varchar(10)', 'copy', ['copy']],
      ['ALTER COLUMN u TYPE bigint', 'copy', ['copy']],
      ['ALTER COLUMN u SET NOT NULL', 'in-place', ['validate-later']],
      ['ADD CHECK (u > 0)', 'in-place', ['validate-later']],
      ['ADD CHECK (u > 0) NOT VALID', 'in-place', ['instant']],
      ['ADD UNIQUE (u)', 'in-place', ['online-index']],
      ['ADD FOREIGN KEY (w) REFERENCES pl_parent (id)', 'in-place', ['validate-later']],
      ['ADD CONSTRAINT pl_w_fk FOREIGN KEY (w) REFERENCES pl_parent (id) NOT VALID', 'in-place', ['instant']],
      ['ADD COLUMN c2 int, ALTER COLUMN u SET NOT NULL, ADD UNIQUE (u)', 'in-place', ['instant', 'validate-later', 'online-index']],
      ['ADD COLUMN c3 int, ALTER COLUMN u TYPE bigint', 'copy', ['instant', 'copy']],
    ],
  },
};

describe.each(databases)('plan and the dry run choose the path ($name)', ({ kind, open }) => {
  const db = useDatabase(open, 'pl_t', 'pl_parent');
  const c = CASES[kind];
  const q = (t: string) => (kind === 'mysql' ? `\`${t}\`` : t);

  it.each(c.rows)('%s -> %s %j', async (alter, path, classes) => {
    await db.drop('pl_t');
    if (kind === 'postgres' && /pl_parent/.test(alter)) {
      await db.query('CREATE TABLE IF NOT EXISTS pl_parent (id int PRIMARY KEY)');
      await db.query(`INSERT INTO pl_parent SELECT g FROM (${db.series(500)}) s ON CONFLICT DO NOTHING`);
    }
    await db.query(c.create.replaceAll('{t}', q('pl_t')).replaceAll(`${q('pl_t')}_n_nonneg`, 'pl_t_n_nonneg'));
    await db.query(c.fill.replace('{t}', q('pl_t')).replace('{series}', db.series(500)));
    const before = await db.schema('pl_t');

    const plan = db.cli(['plan', '--url', '$URL', '--table', 'pl_t', '--alter', alter, '--json', '--sample-rows', '100']);
    expect(plan.stderr).toBe('');
    expect(plan.code).toBe(0);
    const planned = JSON.parse(plan.stdout);
    expect(planned.detail.path).toBe(path);
    expect(planned.detail.parts.map((p: { class: string }) => p.class)).toEqual(classes);
    expect(planned.detail.parts.every((p: { reason: string }) => p.reason.length > 0)).toBe(true);

    const dry = db.cli(['migrate', '--url', '$URL', '--table', 'pl_t', '--alter', alter, '--json']);
    expect(dry.code).toBe(0);
    const result = dry.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((e) => e.event === 'result');
    expect(result.path).toBe(path);
    expect(result.parts.map((p: { class: string }) => p.class)).toEqual(classes);
    expect(result.executed).toBe(false);

    // Nothing changed, nothing left: the probes are gone.
    expect(await db.schema('pl_t')).toBe(before);
    expect(await db.helpers('pl_t')).toEqual([]);
  });

  it('for the copy: size, disk, a timed sample and the checks; for a rename: the expand/contract commands', async () => {
    await db.drop('pl_t');
    await db.query(c.create.replaceAll('{t}', q('pl_t')).replaceAll(`${q('pl_t')}_n_nonneg`, 'pl_t_n_nonneg'));
    await db.query(c.fill.replace('{t}', q('pl_t')).replace('{series}', db.series(3000)));
    const alter = kind === 'mysql' ? 'RENAME COLUMN v TO v2, MODIFY n BIGINT NULL' : 'RENAME COLUMN v TO v2';
    const r = db.cli([
      'plan',
      '--url',
      '$URL',
      '--table',
      'pl_t',
      '--alter',
      alter,
      '--json',
      '--sample-rows',
      '1000',
      ...(kind === 'postgres' ? ['--force-copy'] : []),
    ]);
    expect(r.code).toBe(0);
    const { outcome, rowsTouched, checks, summary, detail } = JSON.parse(r.stdout);
    expect(outcome).toBe('planned');
    expect(rowsTouched).toBe(0);
    expect(detail.path).toBe('copy');
    expect(checks.length).toBeGreaterThan(0);
    expect(detail.estimate.sample.rows).toBe(1000);
    expect(detail.diskNeededBytes).toBeGreaterThan(0);
    // The servers run on this host, from a directory this user can read.
    expect(detail.disk.availableBytes).toBeGreaterThan(0);
    expect(detail.locks.map((l: { step: string }) => l.step)).toContain('cut-over');
    const rename = detail.stages.find((s: { change: string }) => s.change.startsWith('renames column v to v2'));
    const commands = rename.stages.map((s: { command?: string }) => s.command).filter(Boolean);
    expect(commands[0]).toMatch(/^shadowcut migrate --url \S+ --table pl_t --alter 'ADD COLUMN v2 (varchar|character varying)\(20\) NULL' --execute$/);
    expect(commands.slice(1).map((s: string) => s.replace(/--url \S+ /, ''))).toEqual([
      "shadowcut backfill --table pl_t --set 'v2 = v' --where 'v2 IS NULL'",
      "shadowcut verify --table pl_t --expect 'v2 = v'",
      'shadowcut contract --table pl_t --drop-column v --backup-to pl_t_backup',
    ]);
    expect(commands.every((s: string) => !s.includes(':shadowcut@') && !/:\/\/[^:]+:[^*@]+@/.test(s))).toBe(true);
    expect(summary.join('\n')).toMatch(/duration: about/);
    expect(await db.helpers('pl_t')).toEqual([]);
  });

  it("the estimate times what the run does: the copy in the run's chunks, the deferred index builds, the verification, the fixed costs", async () => {
    await db.drop('pl_t');
    await db.query(c.create.replaceAll('{t}', q('pl_t')).replaceAll(`${q('pl_t')}_n_nonneg`, 'pl_t_n_nonneg'));
    if (kind === 'postgres') await db.query('CREATE INDEX pl_t_n ON pl_t (n)');
    await db.query(c.fill.replace('{t}', q('pl_t')).replace('{series}', db.series(3000)));
    const r = db.cli(['plan', '--url', '$URL', '--table', 'pl_t', '--alter', 'ADD COLUMN c9 INT NULL', '--force-copy', '--json']);
    expect(r.stderr).toBe('');
    const { summary, detail } = JSON.parse(r.stdout);
    const e = detail.estimate;
    // The default sample is at least 50,000 rows: the whole of this table, copied in chunks that
    // start at the run's first chunk size (1000 rows), not in one statement.
    expect(e.sample.rows).toBe(3000);
    expect(e.sample.chunks).toBeGreaterThan(1);
    // The secondary index is left off the probe and built after the copy, as the run does; on
    // PostgreSQL the key's index too, built first.
    if (kind === 'mysql') expect(e.sample.indexes).toEqual(['kn']);
    else expect(e.sample.indexes).toEqual(['pl_t__new_pkey', 'pl_t__new_n_idx']);
    expect(e.totalMs).toBeCloseTo(e.copyMs + e.indexMs + e.verifyMs + e.fixedMs, 3);
    expect(summary.join('\n')).toMatch(/duration: about .*: copy .*, index build .* \(.+\), verification .*, preflight, setup and cut-over/);
    expect(await db.helpers('pl_t')).toEqual([]);
  });

  it("counts migrate's pacing: --max-rows-per-sec caps the copy's rate, --nice-ratio adds its rests", async () => {
    await db.drop('pl_t');
    await db.query(c.create.replaceAll('{t}', q('pl_t')).replaceAll(`${q('pl_t')}_n_nonneg`, 'pl_t_n_nonneg'));
    await db.query(c.fill.replace('{t}', q('pl_t')).replace('{series}', db.series(3000)));
    const plan = (...pacing: string[]) => {
      const r = db.cli(['plan', '--url', '$URL', '--table', 'pl_t', '--alter', 'ADD COLUMN c9 INT NULL', '--force-copy', '--json', ...pacing]);
      expect(r.stderr).toBe('');
      return (JSON.parse(r.stdout) as { detail: { size: { rows: number }; estimate: { copyMs: number } } }).detail;
    };
    // 100 rows a second: the copy of the table's rows takes rows / 100 seconds, however fast the sample was.
    const capped = plan('--max-rows-per-sec', '100');
    expect(capped.estimate.copyMs).toBeCloseTo((Math.max(capped.size.rows, 3000) / 100) * 1000, 0);
    const rested = plan('--max-rows-per-sec', '100', '--nice-ratio', '0.5');
    expect(rested.estimate.copyMs).toBeCloseTo(1.5 * (Math.max(rested.size.rows, 3000) / 100) * 1000, 0);
  });

  it('sizes a table that was never analysed from its pages, not as empty', async () => {
    await db.drop('pl_t');
    await db.query(`CREATE TABLE ${q('pl_t')} (id INT PRIMARY KEY, v INT)`);
    await db.query(`INSERT INTO ${q('pl_t')} SELECT g, g FROM (${db.series(200_000)}) s`);
    const r = db.cli(['plan', '--url', '$URL', '--table', 'pl_t', '--alter', 'ADD COLUMN c9 INT NULL', '--force-copy', '--json', '--sample-rows', '1000']);
    expect(r.stderr).toBe('');
    const rows = (JSON.parse(r.stdout) as { detail: { size: { rows: number } } }).detail.size.rows;
    expect(rows).toBeGreaterThan(150_000);
    expect(rows).toBeLessThan(260_000);
  });

  it('rows the new schema cannot take: a one-line refusal naming the rows, not an internal error', async () => {
    await db.drop('pl_t');
    await db.query(c.create.replaceAll('{t}', q('pl_t')).replaceAll(`${q('pl_t')}_n_nonneg`, 'pl_t_n_nonneg'));
    await db.query(c.fill.replace('{t}', q('pl_t')).replace('{series}', db.series(3000)));
    // NULLs only among the first rows: the timed sample meets them even where the spread-out proof does not.
    await db.query(`UPDATE ${q('pl_t')} SET u = NULL WHERE id <= 5`);
    const before = await db.schema('pl_t');
    const alter = kind === 'mysql' ? 'MODIFY u INT NOT NULL' : 'ALTER COLUMN u SET NOT NULL';
    const r = db.cli(['plan', '--url', '$URL', '--table', 'pl_t', '--alter', alter, '--force-copy', '--sample-rows', '100']);
    // The plan is printed, with the check that fails; the refusal is the one line on stderr.
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/^table: /);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^shadowcut: the copy would be refused: .*(null|NULL)/)]);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    expect(await db.schema('pl_t')).toBe(before);
    expect(await db.helpers('pl_t')).toEqual([]);
  });

  it('bad input: one line, nothing left', async () => {
    await db.drop('pl_t');
    await db.query(c.create.replaceAll('{t}', q('pl_t')).replaceAll(`${q('pl_t')}_n_nonneg`, 'pl_t_n_nonneg'));
    for (const args of [
      ['--table', 'pl_t', '--alter', 'FROB THE TABLE'],
      ['--table', 'pl_nope', '--alter', 'ADD COLUMN x INT'],
      ['--table', 'pl_t', '--alter', ''],
      ['--table', 'pl_t', '--alter', 'RENAME TO pl_other'],
    ]) {
      const r = db.cli(['plan', '--url', '$URL', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^shadowcut: /)]);
    }
    expect(await db.helpers('pl_t')).toEqual([]);
  });
});
