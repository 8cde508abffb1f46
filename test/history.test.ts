import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HistoryEntry } from '../src/core/engine/ports/history.js';
import { recordStage } from '../src/core/history/record.js';
import { silentReporter } from '../src/core/report/reporter.js';
import type { Engine } from '../src/core/engine/types.js';
import { databases, useDatabase } from './support/fixture.js';
import { historyOf } from '../src/core/history/store.js';
import { readEntries } from '../src/core/engine/state/history-entries.js';

const TYPE_CHANGE = { mysql: 'MODIFY v BIGINT NULL', postgres: 'ALTER COLUMN v TYPE bigint' } as const;

/** A successful verify of `table`, begun and ended at `at`: an entry to write straight into the history. */
function verifyEntry(table: string, stage: string, at: string): HistoryEntry {
  return {
    table,
    command: 'verify',
    stage,
    startedAt: at,
    finishedAt: at,
    outcome: 'success',
    rowsTouched: 0,
    checks: [],
    summary: [],
    detail: {},
    by: 'test',
  };
}

describe.each(databases)('the table history on $name', ({ kind, open }) => {
  const db = useDatabase(open, 'hist_t', 'shadowcut_history');
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'shadowcut-history-'));
    await db.drop('hist_t', 'shadowcut_history');
    await db.query('CREATE TABLE hist_t (id INT PRIMARY KEY, v INT)');
    await db.query(`INSERT INTO hist_t SELECT g, g FROM (${db.series(50)}) s`);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const entries = (): HistoryEntry[] => {
    const listed = db.cli(['history', '--url', '$URL', '--table', 'hist_t', '--json']);
    expect(listed.stderr).toBe('');
    return listed.stdout.trim() === ''
      ? []
      : listed.stdout
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as HistoryEntry);
  };

  it('records nothing for a dry run or a refusal: nothing happened', () => {
    expect(db.cli(['history', '--url', '$URL', '--table', 'hist_t']).stdout).toMatch(/hist_t: no history recorded/);
    expect(db.cli(['migrate', '--url', '$URL', '--table', 'hist_t', '--alter', TYPE_CHANGE[kind]]).code).toBe(0);
    const refused = db.cli(['migrate', '--url', '$URL', '--table', 'hist_t', '--alter', 'ADD COLUMN', '--execute']);
    expect(refused.code).not.toBe(0);
    expect(entries()).toEqual([]);
  });

  it('appends each executed stage, failed or not, to the database and the markdown timeline', async () => {
    const hooks = path.join(dir, 'hooks');
    await mkdir(hooks);
    await writeFile(path.join(hooks, 'before-cutover'), '#!/bin/sh\necho "change freeze" >&2\nexit 1\n');
    await chmod(path.join(hooks, 'before-cutover'), 0o755);
    const reports = path.join(dir, 'reports');
    const stopped = db.cli([
      'migrate',
      '--url',
      '$URL',
      '--table',
      'hist_t',
      '--alter',
      TYPE_CHANGE[kind],
      '--execute',
      '--hooks-dir',
      hooks,
      '--report-dir',
      reports,
    ]);
    expect(stopped.code).not.toBe(0);
    const done = db.cli(['migrate', '--url', '$URL', '--table', 'hist_t', '--alter', TYPE_CHANGE[kind], '--execute', '--report-dir', reports]);
    expect(done.stderr).not.toMatch(/could not record/);
    expect(done.code).toBe(0);

    const [failed, succeeded, ...more] = entries();
    expect(more).toEqual([]);
    expect(failed).toMatchObject({ command: 'migrate', stage: TYPE_CHANGE[kind], outcome: 'failure', table: expect.stringMatching(/hist_t$/) });
    expect(failed.summary.join(' ')).toMatch(/hook before-cutover failed/);
    expect(succeeded).toMatchObject({ command: 'migrate', stage: TYPE_CHANGE[kind], outcome: 'success', rowsTouched: 50 });
    expect(succeeded.detail).toMatchObject({ rowsCopied: 50, cutoverAttempts: 1 });
    expect(Date.parse(succeeded.finishedAt)).toBeGreaterThanOrEqual(Date.parse(succeeded.startedAt));
    expect(Date.parse(succeeded.startedAt)).toBeGreaterThanOrEqual(Date.parse(failed.finishedAt));

    const printed = db.cli(['history', '--url', '$URL', '--table', 'hist_t']).stdout.split('\n');
    const rows = printed.filter((line) => line.includes('| migrate |'));
    expect(rows.map((line) => line.split('|')[5].trim())).toEqual(['failure', 'success']);
    const markdown = await readFile(path.join(reports, `shadowcut-${succeeded.table}-history.md`), 'utf8');
    expect(
      markdown
        .split('\n')
        .filter((line) => line.includes('| migrate |'))
        .map((line) => line.split('|')[5].trim()),
    ).toEqual(['failure', 'success']);
  });

  it('writes a table name and ALTER with markup into the markdown timeline as text, in a file its user alone reads', async () => {
    // Legal names in both engines, quoted; what a markdown viewer would render as HTML if written raw.
    const name = 'h<b>t';
    const quoted = kind === 'mysql' ? `\`${name}\`` : `"${name}"`;
    const alter = kind === 'mysql' ? "ADD COLUMN note VARCHAR(40) DEFAULT '<script>x</script>'" : "ADD COLUMN note text DEFAULT '<script>x</script>'";
    await db.query(`DROP TABLE IF EXISTS ${quoted}`);
    await db.query(`CREATE TABLE ${quoted} (id INT PRIMARY KEY, v INT)`);
    try {
      const reports = path.join(dir, 'odd', 'reports');
      const run = db.cli(['migrate', '--url', '$URL', '--table', name, '--alter', alter, '--execute', '--report-dir', reports]);
      expect(run.stderr).not.toMatch(/could not record/);
      expect(run.code).toBe(0);
      const [file] = (await readdir(reports)).filter((f) => f.endsWith('-history.md'));
      const markdown = await readFile(path.join(reports, file), 'utf8');
      expect(markdown).toMatch(/^# \S*h&lt;b&gt;t: schema change history$/m);
      expect(markdown).toContain("DEFAULT '&lt;script&gt;x&lt;/script&gt;'");
      expect(markdown).not.toMatch(/[<>]/);
      expect((await stat(path.join(reports, file))).mode & 0o777).toBe(0o600);
      expect((await stat(reports)).mode & 0o777).toBe(0o700);
    } finally {
      await db.query(`DROP TABLE IF EXISTS ${quoted}`);
    }
  });

  it('records every entry when several runs write the first ones at once (the timeline is made once, not raced)', async () => {
    // Two migrations of the schema's tables finishing together, as a queue's runners do: each makes the timeline on first use.
    for (let round = 0; round < 5; round++) {
      await db.drop('shadowcut_history');
      const engines = await Promise.all(Array.from({ length: 6 }, () => db.engine()));
      try {
        const began = new Date().toISOString();
        await Promise.all(engines.map((engine, n) => historyOf(engine).append(verifyEntry(engines[0].qualify('hist_t'), `at once ${n}`, began))));
        expect((await historyOf(engines[0]).list(engines[0].qualify('hist_t'))).map((e) => e.stage).sort()).toEqual(engines.map((_, n) => `at once ${n}`));
      } finally {
        await Promise.all(engines.map((engine) => engine.close()));
      }
    }
  });

  it('lists the timeline in the order it was written, past the ninth entry', async () => {
    // PostgreSQL once ordered by the id read back as text: entry 10 came before entry 9.
    await db.drop('shadowcut_history');
    const engine = await db.engine();
    try {
      const table = engine.qualify('hist_t');
      const stages = Array.from({ length: 12 }, (_, n) => `in order ${n + 1}`);
      for (const stage of stages) {
        await historyOf(engine).append(verifyEntry(table, stage, new Date().toISOString()));
      }
      expect((await historyOf(engine).list(table)).map((e) => e.stage)).toEqual(stages);
      expect(entries().map((e) => e.stage)).toEqual(stages);
    } finally {
      await engine.close();
    }
  });
});

describe('a failed stage in the history', () => {
  it('keeps its error as stderr shows it: a URL in it has no password', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'shadowcut-history-'));
    const kept: HistoryEntry[] = [];
    const engine = {
      qualify: (t: string) => `shop.${t}`,
      // A timeline that keeps what it is given, as the history store writes it (sealed).
      helperTables: {
        placeOf: () => 'shop',
        helpersOf: () => [],
        check: () => Promise.resolve(true),
        table: () => ({
          ensure: () => Promise.resolve(),
          insert: (row: { entry: string }) => Promise.resolve(void kept.push(...readEntries('shop.orders', [row.entry]))),
        }),
      },
    } as unknown as Engine;
    try {
      const failing = recordStage({
        engine,
        table: 'orders',
        command: 'migrate',
        stage: 'ADD COLUMN note TEXT',
        reportDir: dir,
        reporter: silentReporter,
        record: true,
        started: () => true,
        describe: () => ({ outcome: 'success', rowsTouched: 0, checks: [], summary: [], detail: {} }),
        run: () => Promise.reject(new Error('lost mysql://app:s3cret@db.example/shop?ssl-password=hunter2 mid-copy')),
      });
      await expect(failing).rejects.toThrow(/s3cret/);
      expect(kept.map((e) => e.summary)).toEqual([['lost mysql://app:***@db.example/shop?ssl-password=*** mid-copy']]);
      const markdown = await readFile(path.join(dir, 'shadowcut-shop.orders-history.md'), 'utf8');
      expect(markdown).toContain('lost mysql://app:***@db.example/shop?ssl-password=*** mid-copy');
      expect(markdown).not.toMatch(/s3cret|hunter2/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
