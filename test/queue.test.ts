import { added, entries, phaseOf, plainTable, rewriteEntry } from './support/queue-table.js';
import { waitUntil } from './support/wait.js';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { databases, useDatabase } from './support/fixture.js';
import {
  sleep,
  ALTER,
  background,
  history,
  clock,
  closedWindow,
  untilAndResume,
  windowReopens,
  twoRunners,
  killedAndResumed,
  killedSetResumed,
} from './support/queue-scenarios.js';

describe.each(databases)('the migration queue on $name', ({ kind, open }) => {
  const db = useDatabase(
    open,
    'qa_t',
    'qb_t',
    'qc_t',
    'qd_t',
    'qk_t',
    'qk_t_mirror',
    'qp_t',
    'qu_t',
    'qu_t_mirror',
    'qf_t',
    'qs1_t',
    'qs2_t',
    'qs_m',
    'shadowcut_queue',
  );

  it('refuses bad input at add, in one line, adding nothing', async () => {
    await db.drop('shadowcut_queue');
    await plainTable(db, 'qa_t', 100);
    const refused = [
      { args: ['--table', 'no_such_t', '--alter', ALTER[kind]], says: /no_such_t/ },
      { args: ['--table', 'qa_t', '--alter', 'ADD COLUMN'], says: /./ },
      { args: ['--table', 'qa_t', '--alter', ALTER[kind], '--window', '25:00-02:00'], says: /--window 25:00-02:00 is not HH:MM-HH:MM/ },
      { args: ['--table', 'qa_t', '--alter', ALTER[kind], '--window', '01:00-02:00', '--tz', 'Mars/Olympus'], says: /--tz Mars\/Olympus: not a time zone/ },
      { args: ['--table', 'qa_t', '--alter', ALTER[kind], '--replica', 'mysql://u:secret@r/db'], says: /--replica is not for a queued entry/ },
      { args: ['--table', 'qa_t', '--alter', ALTER[kind], '--after', '999'], says: /--after 999: no such entry/ },
      { args: ['--table', 'qa_t', '--stage', 'vacuum'], says: /--stage vacuum: one of migrate, backfill, verify, contract/ },
      { args: ['--table', 'qa_t', '--stage', 'backfill', '--set', 'v = 1', '--table', 'qb_t'], says: /several --table are for a migrate entry/ },
      { args: ['--table', 'qa_t', '--alter', ALTER[kind], '--table', 'qb_t'], says: /2 tables and 1 --alter: give each --table its own --alter/ },
      { args: ['--table', 'qa_t', '--alter', ALTER[kind], '--table', 'qa_t', '--alter', ALTER[kind]], says: /a table is named twice/ },
    ];
    for (const { args, says } of refused) {
      const r = db.cli(['queue', 'add', '--url', '$URL', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(says);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/secret/);
    }
    expect(entries(db)).toEqual([]);
  });

  it('runs due entries in order, each once, a stage after its predecessor; one outside its window waits and says why', async () => {
    const began = new Date().toISOString();
    await db.drop('shadowcut_queue');
    await plainTable(db, 'qa_t', 2000);
    await plainTable(db, 'qb_t', 100);
    const expand = added(db, ['--table', 'qa_t', '--alter', ALTER[kind]]);
    const fill = added(db, ['--table', 'qa_t', '--stage', 'backfill', '--set', 'w = v', '--where', 'w IS NULL', '--after', String(expand)]);
    const check = added(db, ['--table', 'qa_t', '--stage', 'verify', '--expect', 'w = v', '--after', String(fill)]);
    // Read once: the hour may turn while the queue runs, and the entry keeps the window it was given.
    const window = closedWindow();
    const later = added(db, ['--table', 'qb_t', '--alter', ALTER[kind], '--window', window, '--tz', 'UTC']);

    const run = db.cli(['queue', 'run', '--url', '$URL']);
    expect(run.code, run.stderr).toBe(0);
    const byId = new Map(entries(db).map((e) => [e.id, e]));
    for (const id of [expand, fill, check]) expect(byId.get(id)).toMatchObject({ state: 'complete', claimedBy: expect.any(String) });
    for (const id of [expand, fill, check]) expect(byId.get(id)!.status.attempts).toHaveLength(1);
    expect(byId.get(later)).toMatchObject({ state: 'queued', status: { attempts: [], waiting: `outside its window ${window} UTC` } });

    const stages = history(db, 'qa_t', began).map((h) => `${h.command} ${h.outcome}`);
    expect(stages).toEqual(['migrate success', 'backfill success', 'verify success']);
    const [[wrong]] = await db.query(`SELECT COUNT(*) FROM qa_t WHERE w IS NULL OR w <> v`);
    expect(Number(wrong)).toBe(0);
    expect(db.cli(['queue', 'list', '--url', '$URL']).stdout).toMatch(new RegExp(`#${later}\\s+queued .*waits: outside its window`));

    // Cancelled while queued; retried, it is queued again.
    expect(db.cli(['queue', 'cancel', '--url', '$URL', String(later)]).stdout).toMatch(/cancelled/);
    expect(db.cli(['queue', 'retry', '--url', '$URL', String(later)]).code).toBe(0);
    expect(entries(db).find((e) => e.id === later)?.state).toBe('queued');
    const again = db.cli(['queue', 'retry', '--url', '$URL', String(expand)]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(new RegExp(`queue retry #${expand}: it is complete`));
  });

  it('never runs an entry twice when two runners start at once', () => twoRunners(db, kind));

  it('a runner killed with SIGKILL takes its stage with it; the next runner resumes it from the checkpoint, once', () => killedAndResumed(db, kind));

  it("a runner restarted at once waits out the dead runner's lease and takes its entry over", () => killedAndResumed(db, kind, true));

  it('holds a postponed cut-over until "queue cutover", passed on by the runner', async () => {
    const began = new Date().toISOString();
    await db.drop('shadowcut_queue');
    await plainTable(db, 'qp_t', 1000);
    const id = added(db, ['--table', 'qp_t', '--alter', ALTER[kind], '--force-copy', '--postpone-cutover']);
    const runner = background(db, ['queue', 'run', '--url', '$URL']);
    await waitUntil('the postponed cut-over', async () => (await phaseOf(db, id)) === 'postponed');
    expect(await db.helpers('qp_t')).toContain('qp_t__new');
    expect(db.cli(['queue', 'cutover', '--url', '$URL', String(id)]).stdout).toMatch(/cut-over asked/);
    const end = await runner.done;
    expect(end.code, runner.stderr()).toBe(0);
    expect(entries(db).find((e) => e.id === id)?.state).toBe('complete');
    expect(history(db, 'qp_t', began).map((h) => `${h.command} ${h.outcome}`)).toEqual(['migrate success']);
  });
  it("runs the runner's own hooks for each entry's events, and gives the stages theirs", async () => {
    await db.drop('shadowcut_queue');
    await plainTable(db, 'qa_t', 300);
    await plainTable(db, 'qb_t', 300);
    const dir = await mkdtemp(path.join(tmpdir(), 'shadowcut-queue-hooks-'));
    try {
      const log = path.join(dir, 'events.log');
      const hooks = path.join(dir, 'hooks');
      await mkdir(hooks);
      for (const event of ['queue-start', 'queue-complete', 'queue-failure', 'success']) {
        const line =
          event === 'success'
            ? 'stage-success $SHADOWCUT_TABLE'
            : '$SHADOWCUT_EVENT $SHADOWCUT_QUEUE_ID $SHADOWCUT_STAGE $SHADOWCUT_TABLE ${SHADOWCUT_ERROR:+error}';
        await writeFile(path.join(hooks, event), `#!/bin/sh\necho "${line}" >> ${log}\n`, { mode: 0o755 });
      }
      const good = added(db, ['--table', 'qa_t', '--alter', ALTER[kind]]);
      const bad = added(db, ['--table', 'qb_t', '--alter', kind === 'mysql' ? 'ADD UNIQUE KEY uq_v (v)' : 'ADD CONSTRAINT uq_v UNIQUE (v)', '--force-copy']);
      await db.query('UPDATE qb_t SET v = 7 WHERE id = 2');
      const run = db.cli(['queue', 'run', '--url', '$URL', '--hooks-dir', hooks]);
      expect(run.code, run.stderr).toBe(4);
      const qualified = (t: string) => (kind === 'mysql' ? `shadowcut_test.${t}` : `public.${t}`);
      const lines = (await readFile(log, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => l.trim());
      // The start hook runs beside the stage (the queue's lock is not held for it): each entry's own order is what holds.
      const expected = [
        `queue-start ${good} migrate ${qualified('qa_t')}`,
        `stage-success ${qualified('qa_t')}`,
        `queue-complete ${good} migrate ${qualified('qa_t')}`,
        `queue-start ${bad} migrate ${qualified('qb_t')}`,
        `queue-failure ${bad} migrate ${qualified('qb_t')} error`,
      ];
      expect([...lines].sort(), run.stderr).toEqual([...expected].sort());
      const at = (line: string) => lines.indexOf(line);
      expect(at(expected[0])).toBeLessThan(at(expected[2]));
      expect(at(expected[1])).toBeLessThan(at(expected[2]));
      expect(at(expected[3])).toBeLessThan(at(expected[4]));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails, without running it, an entry someone wrote into the table by hand with what add refuses', async () => {
    await db.drop('shadowcut_queue');
    await plainTable(db, 'qa_t', 100);
    const began = new Date().toISOString();
    const hooked = added(db, ['--table', 'qa_t', '--alter', ALTER[kind]]);
    const garbled = added(db, ['--table', 'qa_t', '--alter', ALTER[kind]]);
    // Sealed with this host's key, as shadowcut would: what add refuses is still found by the runner's own check.
    await rewriteEntry(db, hooked, (doc) => void doc.spec.args.push('--hooks-dir', '/tmp'));
    if (kind === 'mysql') await db.query(`UPDATE shadowcut_queue SET spec = '{not json' WHERE id = ${db.param(1)}`, [garbled]);
    else await db.query(`UPDATE shadowcut_queue SET spec = '"not a spec"' WHERE id = ${db.param(1)}`, [garbled]);
    const before = await db.schema('qa_t');
    const run = db.cli(['queue', 'run', '--url', '$URL']);
    expect(run.code, run.stderr).toBe(4);
    expect(run.stderr).toMatch(/queue run: 2 entries failed/);
    const byId = new Map(entries(db).map((e) => [e.id, e]));
    expect(byId.get(hooked)).toMatchObject({
      state: 'failed',
      status: { attempts: [], lastError: expect.stringMatching(/--hooks-dir is not for a queued entry/) },
    });
    expect(byId.get(garbled)).toMatchObject({ state: 'failed', status: { attempts: [], lastError: expect.stringMatching(/it carries no seal/) } });
    expect(await db.schema('qa_t')).toBe(before);
    // The table's timeline says why its entry never ran.
    const said = history(db, 'qa_t', began).filter((h) => h.command === 'queue');
    expect(said).toEqual([
      expect.objectContaining({ stage: `#${hooked} migrate`, outcome: 'failure', summary: [expect.stringMatching(/--hooks-dir is not for a queued entry/)] }),
    ]);
  });

  it("stops a dead runner's contract that the history does not show done, rather than run it again", async () => {
    await db.drop('shadowcut_queue');
    await plainTable(db, 'qa_t', 100);
    const id = added(db, ['--table', 'qa_t', '--stage', 'verify', '--expect', 'v = v']);
    // A dead runner's contract, as its runner had sealed it: its lease lapsed a minute ago.
    await rewriteEntry(db, id, (doc) => {
      Object.assign(doc, { state: 'running', claimedBy: 'dead@host:1:0', leaseUntil: new Date(Date.now() - 60_000).toISOString() });
      doc.spec = { ...doc.spec, stage: 'contract', args: ['--drop-column', 'v'] };
      doc.status = { attempts: [{ runner: 'dead@host:1:0', startedAt: new Date(Date.now() - 60_000).toISOString() }], phase: 'contract' };
    });
    const before = await db.schema('qa_t');
    const run = db.cli(['queue', 'run', '--url', '$URL']);
    expect(run.code, run.stderr).toBe(4);
    const entry = entries(db).find((e) => e.id === id)!;
    expect(entry).toMatchObject({ state: 'failed', status: { lastError: expect.stringMatching(/its runner died during the contract/) } });
    expect(entry.status.attempts.map((a) => a.outcome)).toEqual(['lost']);
    expect(await db.schema('qa_t')).toBe(before);
  });

  it('runs a failed migration afresh when it is retried, once what failed it is fixed', async () => {
    await db.drop('shadowcut_queue');
    await plainTable(db, 'qa_t', 500);
    const began = new Date().toISOString();
    const id = added(db, ['--table', 'qa_t', '--alter', kind === 'mysql' ? 'ADD UNIQUE KEY uq_v (v)' : 'ADD CONSTRAINT uq_v UNIQUE (v)', '--force-copy']);
    await db.query('UPDATE qa_t SET v = 7 WHERE id = 2');
    const failed = db.cli(['queue', 'run', '--url', '$URL']);
    expect(failed.code, failed.stderr).toBe(4);
    expect(entries(db).find((e) => e.id === id)).toMatchObject({ state: 'failed', status: { lastError: expect.stringMatching(/exit 2: shadowcut: /) } });
    await db.query('UPDATE qa_t SET v = 14 WHERE id = 2');
    expect(db.cli(['queue', 'retry', '--url', '$URL', String(id)]).code).toBe(0);
    const again = db.cli(['queue', 'run', '--url', '$URL']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(new RegExp(`#${id}: starting migrate`));
    const entry = entries(db).find((e) => e.id === id)!;
    expect(entry.state).toBe('complete');
    expect(entry.status.attempts.map((a) => a.outcome)).toEqual(['failed', 'complete']);
    // The first attempt was refused by its checks, before it changed anything: no history for it.
    expect(history(db, 'qa_t', began).map((h) => `${h.command} ${h.outcome}`)).toEqual(['migrate success']);
  });
  it('stops a copy at --until as a crash would, and the next run resumes it from its checkpoint, once, under writes', () => untilAndResume(db, kind));

  it('holds a copy when its window closes and goes on when it reopens, cutting over inside it, under writes', () => windowReopens(db, kind));

  it('completes, without running it again, an entry whose runner died after its cut-over, while the stage cleaned up', async () => {
    await db.drop('shadowcut_queue');
    await plainTable(db, 'qs_t', 2000);
    await plainTable(db, 'qs_t_mirror', 2000);
    const dir = await mkdtemp(path.join(tmpdir(), 'shadowcut-queue-swapped-'));
    try {
      // Its success hook runs after the cleanup removed the checkpoint and before the stage writes its
      // history: it kills the stage and its runner there, as a crash of the runner's host would. A
      // second after the swap: the runner writes the swap's mark as it hears of it, and a kill in the
      // same instant (seen once on PostgreSQL) leaves the next runner only the history to go by.
      await writeFile(path.join(dir, 'success'), '#!/bin/sh\nsleep 1\nstage=$PPID\nrunner=$(cut -d" " -f4 /proc/$stage/stat)\nkill -9 "$runner" "$stage"\n', {
        mode: 0o755,
      });
      const id = added(db, ['--table', 'qs_t', '--alter', ALTER[kind], '--force-copy']);
      const killed = await db.cliAsync(['queue', 'run', '--url', '$URL', '--hooks-dir', dir, '--lease-seconds', '2']);
      expect(killed.code, killed.stderr).toBeNull();
      expect(entries(db).find((e) => e.id === id)).toMatchObject({ state: 'running', status: { swapped: true } });
      await sleep(2500);
      const next = await db.cliAsync(['queue', 'run', '--url', '$URL']);
      expect(next.code, next.stderr).toBe(0);
      expect(next.stderr).toMatch(new RegExp(`#${id}: complete \\(the interrupted attempt had cut over; only its cleanup was cut short\\)`));
      expect(
        entries(db)
          .find((e) => e.id === id)
          ?.status.attempts.map((a) => a.outcome),
      ).toEqual(['lost', 'complete']);
      await db.query(`ALTER TABLE qs_t_mirror ${ALTER[kind]}`);
      expect(await db.schema('qs_t')).toBe(await db.schema('qs_t_mirror'));
      expect(await db.differences('qs_t', 'qs_t_mirror')).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('runs several tables as one entry, swapped in one cut-over; an entry on one of them waits for it', async () => {
    const began = new Date().toISOString();
    await db.drop('shadowcut_queue');
    for (const t of ['qs1_t', 'qs2_t', 'qs_m']) await plainTable(db, t, 2000);
    const qualified = (t: string) => (kind === 'mysql' ? `shadowcut_test.${t}` : `public.${t}`);
    const pairs = ['--table', 'qs1_t', '--alter', ALTER[kind], '--table', 'qs2_t', '--alter', ALTER[kind]];
    const set = added(db, [...pairs, '--force-copy', '--postpone-cutover']);
    const check = added(db, ['--table', 'qs2_t', '--stage', 'verify', '--expect', 'v IS NOT NULL']);
    const runner = background(db, ['queue', 'run', '--url', '$URL', '--max-concurrent', '2']);
    await waitUntil('the postponed cut-over', async () => (await phaseOf(db, set)) === 'postponed');
    expect(entries(db).find((e) => e.id === check)).toMatchObject({ state: 'queued', status: { waiting: `#${set} is running on ${qualified('qs2_t')}` } });
    expect(db.cli(['queue', 'list', '--url', '$URL']).stdout).toMatch(new RegExp(`#${set}\\s+running\\s+migrate ${qualified('qs1_t')}, ${qualified('qs2_t')}`));
    expect(await db.helpers('qs1_t')).toContain('qs1_t__new');
    expect(await db.helpers('qs2_t')).toContain('qs2_t__new');
    expect(db.cli(['queue', 'cutover', '--url', '$URL', String(set)]).stdout).toMatch(/cut-over asked/);
    const end = await runner.done;
    expect(end.code, runner.stderr()).toBe(0);
    const byId = new Map(entries(db).map((e) => [e.id, e]));
    for (const id of [set, check]) expect(byId.get(id)).toMatchObject({ state: 'complete', status: { attempts: [{ outcome: 'complete' }] } });
    await db.query(`ALTER TABLE qs_m ${ALTER[kind]}`);
    for (const t of ['qs1_t', 'qs2_t']) expect(await db.schema(t)).toBe(await db.schema('qs_m'));
    expect(history(db, 'qs1_t', began).map((h) => `${h.command} ${h.outcome}`)).toEqual(['migrate success']);
    expect(history(db, 'qs2_t', began).map((h) => `${h.command} ${h.outcome}`)).toEqual(['migrate success', 'verify success']);
    const shown = db.cli(['queue', 'show', '--url', '$URL', String(set)]).stdout;
    expect(shown).toContain(`shadowcut migrate --table ${qualified('qs1_t')} --table ${qualified('qs2_t')}`);
    expect(shown).toMatch(new RegExp(`${qualified('qs2_t')} migrate success`));
  });

  it("a runner killed during a set's copy: the next runner resumes every table of it, once, under writes", () => killedSetResumed(db, kind));

  it("leaves an entry queued when plan's estimate does not fit in what is left, and says so", async () => {
    await db.drop('shadowcut_queue');
    // Large enough that the plan's estimate (copy, verification, 1.5 s of fixed work) is well over the
    // 6 s given, on a fast machine too: 1M MariaDB rows were estimated at 10 s on one, 4.2 s on a faster
    // one (where the runner then started the entry); 2M PostgreSQL rows fitted once its copy filled a
    // table with no index. Those 6 s are the runner's to start in: one that starts after its --until
    // has nothing to estimate.
    expect(db.cli(['cleanup', '--url', '$URL', '--table', 'qf_t']).code).toBe(0);
    await plainTable(db, 'qf_t', 4_000_000);
    const before = await db.schema('qf_t');
    const id = added(db, ['--table', 'qf_t', '--alter', ALTER[kind], '--force-copy']);
    const run = db.cli(['queue', 'run', '--url', '$URL', '--until', clock(6)]);
    expect(run.code, run.stderr).toBe(0);
    expect(
      entries(db).find((e) => e.id === id),
      run.stderr,
    ).toMatchObject({
      state: 'queued',
      status: { attempts: [], waiting: expect.stringMatching(/^needs about \d+s, \d+s left$/) },
    });
    expect(await db.schema('qf_t')).toBe(before);
  });
});
