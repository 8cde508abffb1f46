/**
 * One expand/contract seed: the expand stage's column already added (`bf`, NULL in every row), the
 * application writing it on every insert and update (the writers put 7 in it, on the table and the
 * mirror alike), `shadowcut backfill --set "bf = 7" --where "bf IS NULL"` filling the rows written
 * before, under the faults of a migration (SIGKILL then --resume, a killed server session), then
 * `shadowcut verify --expect "bf = 7"` while the writers go on. The oracle: verify finds every row
 * matching, and the table equals the mirror after the server's own UPDATE of it, every column of
 * every row: a batch that wrote back a stale value, lost a writer's change or skipped a range shows.
 */
import { EXIT_NO_CHECKPOINT } from '../../src/core/engine/errors.js';
import type { ChaosDb } from './database.js';
import { makeTable, type TableSpec } from './grammar.js';
import { Prng } from './prng.js';
import { Reader } from './reader.js';
import { cliRun, createAndFill, LOCK_TIMEOUT_MS, MIRROR, readerBoundMs, TABLE, type SeedOutcome } from './scenario.js';
import { Workload } from './workload.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const SET = 'bf = 7';
const WHERE = 'bf IS NULL';

export async function runBackfillSeed(db: ChaosDb, cli: string, seed: number, rows: number): Promise<SeedOutcome> {
  const began = Date.now();
  const root = new Prng(seed);
  const table = makeTable(root.fork(1), db.kind);
  const faults = root.fork(3);
  const stage = `backfill --set "${SET}" --where "${WHERE}", then verify --expect "${SET}"`;
  let reader: SeedOutcome['reader'] = null;
  let writer: SeedOutcome['writer'] = null;
  const outcome = (verdict: SeedOutcome['verdict'], reason: string, applied: string[]): SeedOutcome => ({
    engine: db.kind,
    seed,
    path: 'backfill',
    took: null,
    reader,
    writer,
    verdict,
    reason,
    alter: stage,
    faults: applied,
    seconds: (Date.now() - began) / 1000,
    capturedBy: null,
  });

  const failedSetup = await createAndFill(db, table, rows, root.fork(4));
  if (failedSetup) return outcome('FAIL', failedSetup, []);
  const id = (n: string) => (db.kind === 'mysql' ? `\`${n}\`` : `"${n}"`);
  const setup = await db.session();
  try {
    for (const name of [TABLE, MIRROR]) await setup.query(`ALTER TABLE ${id(name)} ADD COLUMN bf ${db.kind === 'mysql' ? 'BIGINT NULL' : 'bigint'}`);
  } finally {
    await setup.close();
  }

  const plan = { kill: faults.chance(0.4) ? faults.int(100, 2500) : null, killSession: faults.chance(0.3) ? faults.int(100, 3000) : null };
  const applied: string[] = [];
  const timers: NodeJS.Timeout[] = [];
  const pending: Promise<unknown>[] = [];
  const load = new Workload(db, withColumnWritten(table), [TABLE, MIRROR], rows);
  await load.start(root.fork(5));
  const watch = new Reader(db, TABLE);
  await watch.start();
  const args = [
    'backfill',
    '--url',
    db.url,
    '--table',
    TABLE,
    '--set',
    SET,
    '--where',
    WHERE,
    '--execute',
    '--json',
    '--batch-rows',
    '50',
    '--max-rows-per-sec',
    String(Math.max(500, Math.ceil(rows / 2))),
  ];
  let last;
  let verified;
  try {
    const first = await cliRun(cli, args, (phase, pid) => {
      if (phase !== 'backfill') return null;
      if (plan.killSession !== null) {
        timers.push(
          setTimeout(
            () => pending.push(db.killSession(pid, () => faults.int(0, 1000)).then((done) => done && applied.push('killed a server session'))),
            plan.killSession,
          ),
        );
      }
      return plan.kill;
    });
    last = first;
    if (first.killed) {
      applied.push(`SIGKILL ${plan.kill} ms into the backfill, then --resume`);
      last = await cliRun(cli, [...args, '--resume'], () => null);
      // Killed after its last batch and cleanup: nothing left to resume, as the oracle will tell.
      if (last.code === EXIT_NO_CHECKPOINT) last = { ...last, code: 0 };
    }
    timers.forEach(clearTimeout);
    await Promise.allSettled(pending);
    // The writers go on: rows they write from now on carry bf = 7, as the application's would.
    verified = last.code === 0 ? await cliRun(cli, ['verify', '--url', db.url, '--table', TABLE, '--expect', SET, '--json'], () => null) : null;
    await sleep(300);
  } finally {
    timers.forEach(clearTimeout);
    await Promise.allSettled(pending);
    await load.stop();
    reader = await watch.stop();
    writer = { longestMs: load.longestMs, longestAt: load.longestAt };
  }
  if (load.transactions === 0) applied.push('no write transaction succeeded');

  const said = (stderr: string) =>
    stderr
      .trim()
      .split('\n')
      .filter(Boolean)
      .find((l) => l.startsWith('shadowcut: ')) ??
    stderr.trim().split('\n').pop() ??
    '';
  if (/^\s+at /m.test(last.stderr) || /^\s+at /m.test(verified?.stderr ?? ''))
    return outcome('FAIL', `a stack trace: ${said(last.stderr + (verified?.stderr ?? ''))}`, applied);
  const left = await db.leftovers(TABLE);
  if (left.length) return outcome('FAIL', `${last.code === 0 ? 'done' : 'stopped'} but left behind: ${left.join(', ')}`, applied);
  if (last.code !== 0) return outcome(last.code === null ? 'FAIL' : 'refused', `backfill: ${said(last.stderr) || `exit ${last.code}`}`, applied);
  // Set whenever the backfill exited 0 (checked just above); tsc needs the `!` on this untyped `let`, eslint's view of it does not.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
  const check = verified!;
  if (check.code !== 0) return outcome('FAIL', `verify --expect "${SET}" after the backfill: ${said(check.stderr) || `exit ${check.code}`}`, applied);
  const mirror = await db.session();
  try {
    await mirror.query(`UPDATE ${id(MIRROR)} SET ${SET} WHERE ${WHERE}`);
  } finally {
    await mirror.close();
  }
  const [ours, theirs] = [await db.definition(TABLE), await db.definition(MIRROR)];
  if (ours !== theirs) return outcome('FAIL', `definitions differ after the backfill`, applied);
  const differing = await db.rowDifferences(TABLE, MIRROR);
  if (differing)
    return outcome('FAIL', `${differing} row(s) differ from the mirror's UPDATE: ${(await db.sampleDifferences(TABLE, MIRROR)).join(' / ')}`, applied);
  // A backfill takes row locks only, never one a reader waits for, and holds them for one batch: the
  // in-place bound is generous for the writers too.
  const bound = readerBoundMs(db.kind, 'in-place', LOCK_TIMEOUT_MS);
  if (writer.longestMs > bound)
    return outcome('FAIL', `a writer waited ${writer.longestMs} ms, ${writer.longestAt} ms into the run, more than ${bound} ms during the backfill`, applied);
  if (reader.errors || reader.longestMs > bound) {
    return outcome(
      'FAIL',
      `a reader waited ${reader.longestMs} ms (${reader.errors} error(s)${reader.firstError ? `: ${reader.firstError}` : ''}) during the backfill`,
      applied,
    );
  }
  return outcome(
    'pass',
    `${load.transactions} transactions during the run, verify matched every row, a reader waited at most ${reader.longestMs} ms, a writer ${writer.longestMs} ms`,
    applied,
  );
}

/** The table as the application sees it after the expand stage: it writes bf = 7 on every insert and update. */
function withColumnWritten(t: TableSpec): TableSpec {
  const seven = { family: 'bigint', sql: 'bigint', indexable: true, value: () => '7' };
  return { ...t, columns: [...t.columns, { name: 'bf', type: seven, nullable: false }] };
}
