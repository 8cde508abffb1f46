// The queue's scenarios that run on every engine and change source: queue.test.ts and
// queue-trigger-capture.test.ts run them (two files, so that the test shards can split their time).
import { added, entries, phaseOf, plainTable, plainTableWrites } from './queue-table.js';
import { waitUntil } from './wait.js';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { HistoryEntry } from '../../src/core/engine/ports/history.js';
import type { Report } from '../../src/operator/report.js';
import type { Database } from './fixture.js';
import { MirrorWorkload } from './workload.js';

const cli = fileURLToPath(new URL('../../dist/bin/shadowcut.js', import.meta.url));
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const ALTER = { mysql: 'MODIFY v BIGINT NULL, ADD COLUMN w BIGINT NULL', postgres: 'ALTER COLUMN v TYPE bigint, ADD COLUMN w bigint' } as const;

/** A `queue run` (or any command) in the background, with its process to kill. */
export function background(db: Database, args: string[]) {
  const child = spawn(process.execPath, [cli, ...args.map((a) => a.replace('$URL', db.url))], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, done, stderr: () => stderr };
}

/** The table's history from `since` on: earlier runs of this file left theirs. */
export function history(db: Database, table: string, since: string): HistoryEntry[] {
  const out = db.cli(['history', '--url', '$URL', '--table', table, '--json']).stdout.trim();
  return (out ? out.split('\n').map((l) => JSON.parse(l) as HistoryEntry) : []).filter((h) => h.startedAt >= since);
}

/** The local time `seconds` from now, as `--until` takes it. */
export function clock(seconds: number): string {
  const t = new Date(Date.now() + seconds * 1000);
  return [t.getHours(), t.getMinutes(), t.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

/** A daily window that is closed now and for the next hour, in UTC. */
export function closedWindow(): string {
  const h = new Date().getUTCHours();
  const at = (d: number) => `${String((h + d) % 24).padStart(2, '0')}:00`;
  return `${at(2)}-${at(3)}`;
}
/**
 * An entry whose copy outlasts `queue run --until`, under writes: the runner stops it as a crash would,
 * it waits queued, and the next run resumes it from its checkpoint; one migration in the history, the
 * table exact against a mirror that took the same writes and the native ALTER.
 */
export async function untilAndResume(db: Database, kind: 'mysql' | 'postgres'): Promise<void> {
  await db.drop('shadowcut_queue');
  expect(db.cli(['cleanup', '--url', '$URL', '--table', 'qu_t']).code).toBe(0);
  await plainTable(db, 'qu_t', 16_000);
  await plainTable(db, 'qu_t_mirror', 16_000);
  const began = new Date().toISOString();
  // 4 s of copy, which plan says fits before --until; its operator then pauses it, so --until comes mid-copy.
  // --until leaves room for the runner's own plan, which took seconds on a loaded machine (CI once had
  // 7 s left of 14 when the stage started): an estimate that does not fit leaves the entry queued.
  const id = added(db, ['--table', 'qu_t', '--alter', ALTER[kind], '--force-copy', '--max-rows-per-sec', '4000', '--chunk-time-ms', '50', '--threads', '1']);
  const load = new MirrorWorkload(db, ['qu_t', 'qu_t_mirror'], plainTableWrites(db, 16_000));
  load.start();
  try {
    const runner = db.cliAsync(['queue', 'run', '--url', '$URL', '--until', clock(24)]);
    await waitUntil('the copy', async () => (await phaseOf(db, id)) === 'copy');
    const paused = db.cli(['pause', '--table', kind === 'mysql' ? 'shadowcut_test.qu_t' : 'public.qu_t']);
    expect(paused.code, paused.stderr).toBe(0);
    const stopped = await runner;
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stderr, stopped.stderr).toMatch(new RegExp(`#${id}: stopped at the runner's --until; stopping its stage`));
    const waiting = entries(db).find((e) => e.id === id)!;
    expect(waiting).toMatchObject({ state: 'queued', status: { waiting: expect.stringMatching(/the next "queue run" resumes it from its checkpoint/) } });
    expect(waiting.status.attempts.map((a) => a.outcome)).toEqual(['suspended']);
    const copied = Number((await db.query('SELECT COUNT(*) FROM qu_t__new'))[0][0]);
    expect(copied).toBeGreaterThan(0);
    expect(copied).toBeLessThan(16_000);

    const resumed = await db.cliAsync(['queue', 'run', '--url', '$URL']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(new RegExp(`#${id}: resuming migrate`));
  } finally {
    await load.stop();
  }
  expect(load.stats.errors).toEqual([]);
  expect(load.stats.transactions).toBeGreaterThan(0);
  expect(
    entries(db)
      .find((e) => e.id === id)
      ?.status.attempts.map((a) => a.outcome),
  ).toEqual(['suspended', 'complete']);
  // The plan the runner asked whether the copy fits before --until, then the one migration.
  // The runner entered the stop it made (the stage could not); the stage's own entry names the queue entry.
  const timeline = history(db, 'qu_t', began);
  expect(timeline.map((h) => `${h.command} ${h.outcome}`)).toEqual(['plan success', 'queue suspended', 'migrate success']);
  expect(timeline[1]).toMatchObject({ stage: `#${id} migrate`, summary: [expect.stringMatching(/--until.*resumes it from its checkpoint/)] });
  expect(timeline[2].by).toMatch(new RegExp(`\\(queue #${id}\\)$`));
  await db.query(`ALTER TABLE qu_t_mirror ${ALTER[kind]}`);
  expect(await db.differences('qu_t', 'qu_t_mirror')).toEqual([]);
}

/**
 * A window of two parts (seconds, so the test drives the clock): the copy starts in the first, where
 * plan's estimate says it fits; its operator pauses it until the first part has ended, so the window
 * holds it while closed, and it goes on in the second, where it cuts over.
 */
export async function windowReopens(db: Database, kind: 'mysql' | 'postgres'): Promise<void> {
  await db.drop('shadowcut_queue');
  expect(db.cli(['cleanup', '--url', '$URL', '--table', 'qw_t']).code).toBe(0);
  await plainTable(db, 'qw_t', 16_000);
  await plainTable(db, 'qw_t_mirror', 16_000);
  const reports = await mkdtemp(path.join(tmpdir(), 'shadowcut-queue-window-'));
  const began = new Date().toISOString();
  // The first part leaves room for plan's estimate (4 s of copy) after `queue add`'s dry run and the
  // runner's own plan, which took 10 s and more on a loaded machine: an estimate that does not fit in
  // what is left leaves the entry queued, and the runner ends with nothing started.
  const [closes, reopens] = [Date.now() + 30_000, Date.now() + 40_000];
  const window = `${clock(-2)}-${clock(30)},${clock(40)}-${clock(600)}`;
  const id = added(db, [
    '--table',
    'qw_t',
    '--alter',
    ALTER[kind],
    '--window',
    window,
    '--force-copy',
    '--max-rows-per-sec',
    '4000',
    '--chunk-time-ms',
    '50',
    '--threads',
    '1',
  ]);
  const load = new MirrorWorkload(db, ['qw_t', 'qw_t_mirror'], plainTableWrites(db, 16_000));
  load.start();
  try {
    const runner = background(db, ['queue', 'run', '--url', '$URL', '--report-dir', reports]);
    let ended = false;
    void runner.done.then(() => (ended = true));
    await waitUntil('the copy', async () => {
      if (ended)
        throw new Error(
          `the runner ended before the copy began: ${runner.stderr()} (the entry: ${JSON.stringify(entries(db).find((e) => e.id === id)?.status)})`,
        );
      return (await phaseOf(db, id)) === 'copy';
    });
    // Held by its operator until the first part has ended: the window holds it from then on.
    const qualified = kind === 'mysql' ? 'shadowcut_test.qw_t' : 'public.qw_t';
    const paused = db.cli(['pause', '--table', qualified]);
    expect(paused.code, paused.stderr).toBe(0);
    await waitUntil('the first part of the window to end', () => Date.now() > closes + 1000);
    const resumed = db.cli(['resume', '--table', qualified]);
    expect(resumed.code, resumed.stderr).toBe(0);
    const ran = await runner.done;
    expect(ran.code, runner.stderr()).toBe(0);
  } finally {
    await load.stop();
  }
  try {
    expect(load.stats.errors).toEqual([]);
    const entry = entries(db).find((e) => e.id === id)!;
    // One attempt: the stage held its copy itself, nothing was stopped and resumed.
    expect(entry.state).toBe('complete');
    expect(entry.status.attempts.map((a) => a.outcome)).toEqual(['complete']);
    const json = (await readdir(reports)).find((f) => f.endsWith('.json'))!;
    const report = JSON.parse(await readFile(path.join(reports, json), 'utf8')) as Report;
    expect(Date.parse(report.startedAt)).toBeLessThan(reopens - 10_000);
    expect(report.throttledMsByReason.window).toBeGreaterThan(5_000);
    expect(Date.parse(report.milestones.cutover!)).toBeGreaterThanOrEqual(reopens - 1000);
    expect(history(db, 'qw_t', began).map((h) => `${h.command} ${h.outcome}`)).toEqual(['plan success', 'migrate success']);
    await db.query(`ALTER TABLE qw_t_mirror ${ALTER[kind]}`);
    expect(await db.differences('qw_t', 'qw_t_mirror')).toEqual([]);
  } finally {
    await rm(reports, { recursive: true, force: true });
  }
}

/** Two `queue run`s started at once on two entries: each entry runs once. */
export async function twoRunners(db: Database, kind: 'mysql' | 'postgres'): Promise<void> {
  const began = new Date().toISOString();
  await db.drop('shadowcut_queue');
  await plainTable(db, 'qc_t', 3000);
  await plainTable(db, 'qd_t', 3000);
  const ids = [added(db, ['--table', 'qc_t', '--alter', ALTER[kind]]), added(db, ['--table', 'qd_t', '--alter', ALTER[kind]])];
  const runners = [
    background(db, ['queue', 'run', '--url', '$URL', '--max-concurrent', '2']),
    background(db, ['queue', 'run', '--url', '$URL', '--max-concurrent', '2']),
  ];
  const ends = await Promise.all(runners.map((r) => r.done));
  expect(
    ends.map((e) => e.code),
    runners.map((r) => r.stderr()).join('\n'),
  ).toEqual([0, 0]);
  const said = runners.map((r) => r.stderr()).join('\n');
  for (const e of entries(db).filter((x) => ids.includes(x.id))) {
    expect(e.state, `${JSON.stringify(e)}\n${said}`).toBe('complete');
    expect(e.status.attempts, `${JSON.stringify(e)}\n${said}`).toHaveLength(1);
  }
  for (const t of ['qc_t', 'qd_t']) expect(history(db, t, began).map((h) => `${h.command} ${h.outcome}`)).toEqual(['migrate success']);
}

/** A runner killed with SIGKILL during a copy: its stage dies with it, and the next runner resumes it once. */
/**
 * `atOnce`: the next runner starts half a second after the kill (systemd's Restart=on-failure, the
 * other cron host), while the dead runner's lease still holds: it waits for the lease to lapse, as it
 * is not renewed, and takes the entry over then; otherwise it starts after the lease has lapsed.
 */
export async function killedAndResumed(db: Database, kind: 'mysql' | 'postgres', atOnce = false): Promise<void> {
  const began = new Date().toISOString();
  await db.drop('shadowcut_queue');
  // What an earlier run of this file may have left (a killed stage's shadow, slot or checkpoint).
  expect(db.cli(['cleanup', '--url', '$URL', '--table', 'qk_t']).code).toBe(0);
  await plainTable(db, 'qk_t', 30_000);
  await plainTable(db, 'qk_t_mirror', 30_000);
  const id = added(db, ['--table', 'qk_t', '--alter', ALTER[kind], '--force-copy', '--max-rows-per-sec', '4000', '--chunk-time-ms', '50']);
  const first = background(db, ['queue', 'run', '--url', '$URL', '--lease-seconds', '3']);
  await waitUntil('the copy under the first runner', async () => (await phaseOf(db, id)) === 'copy');
  await sleep(1500);
  first.child.kill('SIGKILL');
  await first.done;
  if (atOnce) {
    await sleep(500);
    expect(entries(db).find((e) => e.id === id)?.state).toBe('running');
  } else {
    // Its stage is gone too: the shadow stops growing.
    await sleep(1500);
    const shadowRows = async () => Number((await db.query('SELECT COUNT(*) FROM qk_t__new'))[0][0]);
    const before = await shadowRows();
    await sleep(1500);
    expect(await shadowRows()).toBe(before);
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(30_000);
  }

  const second = db.cli(['queue', 'run', '--url', '$URL', '--lease-seconds', '3']);
  expect(second.code, second.stderr).toBe(0);
  expect(second.stderr).toMatch(new RegExp(`#${id}: its runner is gone; resuming migrate`));
  const entry = entries(db).find((e) => e.id === id)!;
  expect(entry.state).toBe('complete');
  expect(entry.status.attempts.map((a) => a.outcome ?? 'none')).toEqual(['lost', 'complete']);
  expect(history(db, 'qk_t', began).map((h) => `${h.command} ${h.outcome}`)).toEqual(['migrate success']);
  await db.query(`ALTER TABLE qk_t_mirror ${ALTER[kind]}`);
  expect(await db.differences('qk_t', 'qk_t_mirror')).toEqual([]);
}

/** The same for an entry of two tables, both written all through: the next runner resumes the set, and both swap in its one cut-over. */
export async function killedSetResumed(db: Database, kind: 'mysql' | 'postgres'): Promise<void> {
  const began = new Date().toISOString();
  await db.drop('shadowcut_queue');
  const tables = ['qk1_t', 'qk2_t'];
  for (const t of tables) {
    expect(db.cli(['cleanup', '--url', '$URL', '--table', t]).code).toBe(0);
    await plainTable(db, t, 20_000);
    await plainTable(db, t.replace('_t', '_m'), 20_000);
  }
  const pairs = tables.flatMap((t) => ['--table', t, '--alter', ALTER[kind]]);
  const id = added(db, [...pairs, '--force-copy', '--max-rows-per-sec', '4000', '--chunk-time-ms', '50']);
  const loads = tables.map((t) => new MirrorWorkload(db, [t, t.replace('_t', '_m')], plainTableWrites(db, 20_000)));
  for (const load of loads) load.start();
  try {
    const first = background(db, ['queue', 'run', '--url', '$URL', '--lease-seconds', '3']);
    await waitUntil('the copy under the first runner', async () => (await phaseOf(db, id)) === 'copy');
    await sleep(1500);
    first.child.kill('SIGKILL');
    await first.done;
    // Its lease lapses first; the writes go on meanwhile.
    await sleep(3500);
    // Not db.cli: it would block this process, and with it a writer's open transaction, for the whole run.
    const second = await db.cliAsync(['queue', 'run', '--url', '$URL', '--lease-seconds', '3']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(
      new RegExp(`#${id}: its runner is gone; resuming migrate on ${tables.map((t) => (kind === 'mysql' ? `shadowcut_test.${t}` : `public.${t}`)).join(', ')}`),
    );
    const entry = entries(db).find((e) => e.id === id)!;
    expect(entry.state).toBe('complete');
    expect(entry.status.attempts.map((a) => a.outcome ?? 'none')).toEqual(['lost', 'complete']);
  } finally {
    for (const load of loads) await load.stop();
  }
  for (const load of loads) expect(load.stats.errors).toEqual([]);
  for (const t of tables) {
    expect(history(db, t, began).map((h) => `${h.command} ${h.outcome}`)).toEqual(['migrate success']);
    await db.query(`ALTER TABLE ${t.replace('_t', '_m')} ${ALTER[kind]}`);
    expect(await db.schema(t)).toBe(await db.schema(t.replace('_t', '_m')));
    expect(await db.differences(t, t.replace('_t', '_m'))).toEqual([]);
  }
}
