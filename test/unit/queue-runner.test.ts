// QueueRunner (src/core/queue/runner.ts with entry-end.ts, running-stage.ts, wait-reason.ts): what it
// takes next and what it leaves, through the real sealed queue (src/core/queue/sealed-queue.ts) over
// an in-memory queue table (test/support/fake-queue-table.ts), and fake stages in place of child
// processes (test/support/fake-stages.ts). Fake timers drive the polls, the lease renewals and the
// table's clock; nothing sleeps for real.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { QueueRunner, type RunnerDeps, type RunnerOptions } from '../../src/core/queue/runner.js';
import type { QueueRow, QueueSpec } from '../../src/core/engine/ports/queue.js';
import { SealedQueue } from '../../src/core/queue/sealed-queue.js';
import { FakeQueueTable, MemoryLedger } from '../support/fake-queue-table.js';
import { FakeStages } from '../support/fake-stages.js';

const NOON = new Date('2024-03-01T12:00:00.000Z');

function spec(table: string, extra: Partial<QueueSpec> = {}): QueueSpec {
  return { stage: 'migrate', table, args: ['--alter', 'ADD COLUMN x INT'], addedBy: 'ops@host', ...extra };
}

interface Harness {
  /** The queue as the runner reads it, and as an operator on the runner's host changes it. */
  store: SealedQueue;
  /** The table under it, to write rows as they stand. */
  table: FakeQueueTable;
  /** The queue as another runner's host reads and writes it. */
  others: SealedQueue;
  stages: FakeStages;
  logs: string[];
  records: { id: number; outcome: string; line: string }[];
  history: { succeeded: boolean; asked: string[] };
  runner: QueueRunner;
  /** The runner's run, started in the background: its result once it has ended. */
  start(): { settled: boolean; failures?: number; error?: unknown };
}

function harness(options: Partial<RunnerOptions> = {}, deps: Partial<RunnerDeps> = {}): Harness {
  const table = new FakeQueueTable();
  const store = new SealedQueue(table, new MemoryLedger());
  const stages = new FakeStages();
  const logs: string[] = [];
  const records: Harness['records'] = [];
  const history = { succeeded: false, asked: [] as string[] };
  const runner = new QueueRunner(
    {
      store,
      launch: stages.launch,
      env: { SHADOWCUT_URL: 'fake://db' },
      succeededSince: async (s, since) => {
        history.asked.push(`${s.table} since ${since}`);
        return history.succeeded;
      },
      ranBefore: async () => false,
      estimateMs: async () => null,
      log: (line) => logs.push(line),
      record: async (row, outcome, line) => void records.push({ id: row.id, outcome, line }),
      ...deps,
    },
    { runner: 'me@here:1:abcd', maxConcurrent: 1, mode: 'drain', leaseSeconds: 30, pollMs: 1000, stageArgs: [], ...options },
  );
  return {
    store,
    table,
    others: new SealedQueue(table, new MemoryLedger()),
    stages,
    logs,
    records,
    history,
    runner,
    start() {
      const outcome: { settled: boolean; failures?: number; error?: unknown } = { settled: false };
      runner.run().then(
        (failures) => Object.assign(outcome, { settled: true, failures }),
        (error) => Object.assign(outcome, { settled: true, error }),
      );
      return outcome;
    },
  };
}

/** Lets the fake clock run in small steps until `check` holds; fails after `ms` of fake time. */
async function until(what: string, check: () => boolean, ms = 120_000): Promise<void> {
  for (let t = 0; !check(); t += 50) {
    if (t > ms) throw new Error(`not within ${ms} ms (fake time): ${what}`);
    await vi.advanceTimersByTimeAsync(50);
  }
}

/** The row as the store holds it now. */
async function stored(store: SealedQueue, id: number): Promise<QueueRow> {
  const row = await store.get(id);
  if (!row) throw new Error(`no entry #${id}`);
  return row;
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(NOON);
});

afterEach(() => {
  vi.useRealTimers();
});

describe("the sealed queue's conditions", () => {
  it('claims a queued entry or a lapsed lease only; renews and finishes only for its holder; keeps a request only back in queued', async () => {
    const table = new FakeQueueTable();
    const store = new SealedQueue(table, new MemoryLedger());
    const id = await store.add(spec('shop.a'));
    expect(await store.claim(id, 'r1', 30)).toBe(true);
    expect(await store.claim(id, 'r2', 30)).toBe(false);
    expect(await store.renew(id, 'r2', 30, { attempts: [] })).toBe(false);
    vi.advanceTimersByTime(30_000);
    expect(await store.claim(id, 'r2', 30)).toBe(false); // at the lapse itself: lease_until < now is false
    vi.advanceTimersByTime(1);
    expect(await store.renew(id, 'r1', 30, { attempts: [] })).toBe(true); // renewed in time by its holder, even late
    vi.advanceTimersByTime(30_001);
    expect(await store.claim(id, 'r2', 30)).toBe(true);
    expect(await store.finish(id, 'r1', 'complete', { attempts: [] })).toBe(false);
    expect(await store.request(id, 'cancel')).toBe(true);
    expect(await store.finish(id, 'r2', 'queued', { attempts: [] })).toBe(true);
    expect(await store.get(id)).toMatchObject({ state: 'queued', request: 'cancel', leaseUntil: null, claimedBy: 'r2' });
    expect(await store.transition(id, ['queued'], 'cancelled')).toBe(true);
    expect(await store.get(id)).toMatchObject({ state: 'cancelled', request: null });
    expect(await store.request(id, 'cancel')).toBe(false);
    expect(await store.claim(id, 'r3', 30)).toBe(false);
    const running = table.put({ spec: spec('shop.b'), state: 'running', claimedBy: 'r1', leaseUntil: null });
    expect(await store.claim(running, 'r2', 30)).toBe(false); // NULL < now is not true
  });

  it('hands out copies, and lets one holder of the queue lock in at a time', async () => {
    const store = new SealedQueue(new FakeQueueTable(), new MemoryLedger());
    const id = await store.add(spec('shop.a'));
    (await store.get(id))!.status.attempts.push({ runner: 'x', startedAt: 'y' });
    expect((await store.get(id))!.status.attempts).toEqual([]);
    const order: string[] = [];
    const first = store.exclusive(async () => {
      order.push('first in');
      await new Promise((r) => setTimeout(r, 100));
      order.push('first out');
    });
    const second = store.exclusive(async () => void order.push('second in'));
    await vi.advanceTimersByTimeAsync(100);
    await Promise.all([first, second]);
    expect(order).toEqual(['first in', 'first out', 'second in']);
  });
});

describe('which entry the runner takes next', () => {
  it('takes due entries oldest first, one at a time under --max-concurrent 1, each claimed under the queue lock', async () => {
    const h = harness({ stageArgs: ['--replica-from-runner'] });
    for (const t of ['shop.a', 'shop.b', 'shop.c']) await h.store.add(spec(t));
    const run = h.start();
    for (const [i, table] of ['shop.a', 'shop.b', 'shop.c'].entries()) {
      await until(`stage ${i + 1} started`, () => h.stages.stages.length === i + 1);
      expect(h.stages.running.map((s) => s.table)).toEqual([table]);
      const waiting = (await h.store.list()).filter((r) => r.state === 'queued').map((r) => r.status.waiting);
      expect(waiting).toEqual(Array(2 - i).fill('1 of 1 running (--max-concurrent)'));
      h.stages.stages[i].end(0);
    }
    await until('the run ended', () => run.settled);
    expect(run).toEqual({ settled: true, failures: 0 });
    // The stage's command line: the runner's options first, the queued ones last; the URL only in the environment.
    expect(h.stages.stages[0].args).toEqual(['migrate', '--execute', '--json', '--replica-from-runner', '--table', 'shop.a', '--alter', 'ADD COLUMN x INT']);
    expect(h.stages.stages[0].env).toEqual({ SHADOWCUT_URL: 'fake://db', SHADOWCUT_QUEUE_ENTRY: '1' });
    for (const row of await h.store.list()) {
      expect(row.state).toBe('complete');
      expect(row.leaseUntil).toBeNull();
      expect(row.status.attempts).toEqual([expect.objectContaining({ runner: 'me@here:1:abcd', outcome: 'complete' })]);
    }
    expect(h.table.claimsOutsideLock).toBe(0);
  });

  it('runs one entry per table, and at most --max-concurrent on the server', async () => {
    const h = harness({ maxConcurrent: 2 });
    await h.store.add(spec('shop.a'));
    await h.store.add(spec('shop.a', { stage: 'verify', args: [] }));
    await h.store.add(spec('shop.b'));
    await h.store.add(spec('shop.c'));
    const run = h.start();
    await until('two stages started', () => h.stages.stages.length === 2);
    await vi.advanceTimersByTimeAsync(3000);
    expect(h.stages.running.map((s) => s.table)).toEqual(['shop.a', 'shop.b']);
    expect((await stored(h.store, 2)).status.waiting).toBe('#1 is running on shop.a');
    expect((await stored(h.store, 4)).status.waiting).toBe('2 of 2 running (--max-concurrent)');
    h.stages.stages[1].end(0); // shop.b: a slot frees, but shop.a is still busy
    await until('a third stage started', () => h.stages.stages.length === 3);
    expect(h.stages.stages[2].table).toBe('shop.c');
    expect((await stored(h.store, 2)).state).toBe('queued');
    h.stages.stages[0].end(0);
    await until('the verify started', () => h.stages.stages.length === 4);
    expect(h.stages.stages[3].args.slice(0, 2)).toEqual(['verify', '--json']); // verify has no --execute
    for (const s of h.stages.running) s.end(0);
    await until('the run ended', () => run.settled);
    expect((await h.store.list()).map((r) => r.state)).toEqual(['complete', 'complete', 'complete', 'complete']);
  });

  it('leaves a postponed entry until it is released, and a queued one asked to be cancelled is cancelled unrun', async () => {
    const h = harness({ maxConcurrent: 3, mode: 'once' });
    await h.store.add(spec('shop.a', { postponed: true }));
    const cancelled = await h.store.add(spec('shop.b'));
    await h.store.request(cancelled, 'cancel');
    const run = h.start();
    await until('the run ended', () => run.settled);
    expect(h.stages.launched).toEqual([]);
    expect((await stored(h.store, 1)).state).toBe('queued');
    expect((await stored(h.store, cancelled)).state).toBe('cancelled');
    expect((await stored(h.store, cancelled)).request).toBeNull();
  });

  it('completes, without running it, an entry whose change the history shows this very entry made (an older document put back)', async () => {
    const asked: number[] = [];
    const h = harness({ mode: 'once', maxConcurrent: 2 }, { ranBefore: async (row) => (asked.push(row.id), true) });
    await h.store.add(spec('shop.a'));
    await h.store.add(spec('shop.b', { stage: 'verify', args: [] }));
    const run = h.start();
    await until('the verify started', () => h.stages.stages.length === 1);
    h.stages.stages[0].end(0);
    await until('the run ended', () => run.settled);
    expect(h.stages.stages.map((s) => s.table)).toEqual(['shop.b']);
    // A verify changes nothing: it runs whatever the history says.
    expect(asked).toEqual([1]);
    expect((await stored(h.store, 1)).state).toBe('complete');
    expect(h.logs).toContain(
      "#1: complete: the history of shop.a has this entry's migrate succeeding already (an older document of the entry was put back); not run again",
    );
  });

  it('fails a hand-written entry the runner may not run, without starting it', async () => {
    const h = harness({ mode: 'once' });
    h.table.put({ spec: spec('shop.a', { args: ['--alter', 'ADD COLUMN x INT', '--execute'] }) });
    const run = h.start();
    await until('the run ended', () => run.settled);
    expect(run.failures).toBe(1);
    expect(h.stages.launched).toEqual([]);
    const row = await stored(h.store, 1);
    expect(row.state).toBe('failed');
    expect(row.status.lastError).toMatch(/^the entry cannot be run: --execute is not for a queued entry/);
    expect(h.records).toEqual([{ id: 1, outcome: 'failure', line: row.status.lastError }]);
  });
});

describe('--after', () => {
  it('waits for its predecessor to complete, then starts', async () => {
    const h = harness({ maxConcurrent: 2 });
    await h.store.add(spec('shop.a'));
    await h.store.add(spec('shop.b', { after: 1 }));
    const run = h.start();
    await until('the first stage started', () => h.stages.stages.length === 1);
    await vi.advanceTimersByTimeAsync(5000);
    expect(h.stages.stages).toHaveLength(1);
    expect((await stored(h.store, 2)).status.waiting).toBe('waits for #1 (running)');
    h.stages.stages[0].end(0);
    await until('the second stage started', () => h.stages.stages.length === 2);
    expect(h.stages.stages[1].table).toBe('shop.b');
    h.stages.stages[1].end(0);
    await until('the run ended', () => run.settled);
    expect(run.failures).toBe(0);
  });

  it('fails an entry whose predecessor failed, without running it, and counts both', async () => {
    const h = harness({ maxConcurrent: 2 });
    await h.store.add(spec('shop.a'));
    await h.store.add(spec('shop.b', { after: 1 }));
    await h.store.add(spec('shop.c', { after: 9 }));
    const run = h.start();
    await until('the first stage started', () => h.stages.stages.length === 1);
    h.stages.stages[0].end(2, 'shadowcut: the ALTER is refused');
    await until('the run ended', () => run.settled);
    expect(run.failures).toBe(3);
    expect(h.stages.stages).toHaveLength(1);
    const [a, b, c] = await h.store.list();
    expect(a.state).toBe('failed');
    expect(a.status.lastError).toBe('exit 2: shadowcut: the ALTER is refused');
    expect(a.status.attempts).toEqual([expect.objectContaining({ outcome: 'failed', error: 'exit 2: shadowcut: the ALTER is refused' })]);
    expect([b.state, b.status.lastError]).toEqual(['failed', '#1 failed, and this entry comes after it']);
    expect([c.state, c.status.lastError]).toEqual(['failed', '#9 is gone, and this entry comes after it']);
    // The stage recorded its own failure; the runner records only those it failed itself.
    expect(h.records.map((r) => [r.id, r.outcome])).toEqual([
      [3, 'failure'],
      [2, 'failure'],
    ]);
  });
});

describe('leases', () => {
  function othersEntry(h: Harness, leaseSeconds: number, runner: string, status: QueueRow['status'] = { attempts: [] }): number {
    return h.table.put({ spec: spec('shop.a'), state: 'running', claimedBy: runner, leaseUntil: h.table.leaseIn(leaseSeconds), status });
  }

  it('leaves an entry held by a live lease alone: a draining runner waits until it sees the lease renewed, then stops', async () => {
    const h = harness();
    const held = othersEntry(h, 30, 'other@host:2:ffff');
    await h.store.add(spec('shop.a', { stage: 'verify', args: [] }));
    const run = h.start();
    await vi.advanceTimersByTimeAsync(5000);
    // Not idle yet: the lease may be a dead runner's, until it is seen renewed.
    expect(run.settled).toBe(false);
    expect((await stored(h.store, 2)).status.waiting).toBe(`#${held} is running on shop.a`);
    expect(await h.others.renew(held, 'other@host:2:ffff', 30, { attempts: [], phase: 'copy' })).toBe(true);
    await until('the run ended', () => run.settled);
    expect(run.failures).toBe(0);
    expect(h.stages.launched).toEqual([]);
    expect((await stored(h.store, held)).claimedBy).toBe('other@host:2:ffff');
    expect(h.table.claims).toEqual([]);
  });

  it('takes over an entry whose lease lapsed: waited out, then claimed and resumed, the dead attempt marked lost', async () => {
    const h = harness();
    const dead = { runner: 'dead@host:3:0000', startedAt: '2024-03-01T11:00:00.000Z' };
    // Lapsing between two polls: at the very millisecond of a lapse neither the runner nor the store's claim would take it.
    othersEntry(h, 20.5, dead.runner, { attempts: [dead], phase: 'copy' });
    const run = h.start();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(h.stages.launched).toEqual([]);
    expect(run.settled).toBe(false);
    await until('the orphan resumed', () => h.stages.stages.length === 1);
    expect(Date.now() - NOON.getTime()).toBeGreaterThan(20_500);
    expect(h.stages.stages[0].args).toContain('--resume');
    expect(h.logs).toContain('#1: its runner is gone; resuming migrate on shop.a');
    expect((await stored(h.store, 1)).claimedBy).toBe('me@here:1:abcd');
    h.stages.stages[0].end(0);
    await until('the run ended', () => run.settled);
    expect((await stored(h.store, 1)).status.attempts).toEqual([
      { ...dead, outcome: 'lost' },
      expect.objectContaining({ runner: 'me@here:1:abcd', outcome: 'complete' }),
    ]);
  });

  it("renews its stages' leases, and stops a stage whose claim another runner took, writing nothing over it", async () => {
    const h = harness();
    await h.store.add(spec('shop.a'));
    const run = h.start();
    await until('the stage started', () => h.stages.stages.length === 1);
    const first = (await stored(h.store, 1)).leaseUntil!;
    h.stages.stages[0].emit({ phase: 'copy', percent: 10 });
    await vi.advanceTimersByTimeAsync(100);
    const renewed = await stored(h.store, 1);
    // A new phase is written at once, with a new lease.
    expect(renewed.status.phase).toBe('copy');
    expect(renewed.leaseUntil! > first).toBe(true);
    h.table.put({ ...renewed, claimedBy: 'thief@host:4:1111' });
    await until('the stage was stopped', () => h.stages.stages[0].ended);
    expect(h.stages.stages[0].signals).toEqual(['SIGKILL']);
    // The thief's lease is waited on like any other runner's: seen renewed, it is a live runner's.
    await vi.advanceTimersByTimeAsync(2000);
    expect(run.settled).toBe(false);
    expect(await h.others.renew(1, 'thief@host:4:1111', 30, { attempts: [] })).toBe(true);
    await until('the run ended', () => run.settled);
    expect(h.stages.stages).toHaveLength(1);
    expect(h.logs).toContain('#1: its claim was taken over by another runner; stopping its stage, to be resumed');
    expect(h.logs.some((l) => l.startsWith('#1: queued') && l.endsWith('(not written: the claim was lost)'))).toBe(true);
    const row = await stored(h.store, 1);
    expect([row.state, row.claimedBy]).toEqual(['running', 'thief@host:4:1111']);
    expect(h.records).toEqual([]);
  });
});

describe('rows another account deletes', () => {
  it('stops the stage of a running entry whose row was deleted, as a crash would, and writes nothing; one queued after it fails', async () => {
    const h = harness();
    await h.store.add(spec('shop.a'));
    await h.store.add(spec('shop.b', { after: 1 }));
    const run = h.start();
    await until('the stage started', () => h.stages.stages.length === 1);
    h.table.remove(1);
    await until('the stage was stopped', () => h.stages.stages[0].ended);
    expect(h.stages.stages[0].signals).toEqual(['SIGKILL']);
    await until('the run ended', () => run.settled);
    expect(h.stages.stages).toHaveLength(1);
    expect(await h.store.get(1)).toBeNull();
    expect((await stored(h.store, 2)).status.lastError).toBe('#1 is gone, and this entry comes after it');
  });
});

describe('a resumed stage that found no checkpoint (exit 5)', () => {
  /** A dead runner's migrate entry, its lease lapsed, last seen in `phase`. */
  async function resumedEnding(phase: string | undefined, extra: Partial<QueueRow['status']> = {}, succeeded = false) {
    const h = harness();
    h.history.succeeded = succeeded;
    const dead = { runner: 'dead@host:3:0000', startedAt: '2024-03-01T11:00:00.000Z' };
    h.table.put({
      spec: spec('shop.a'),
      state: 'running',
      claimedBy: dead.runner,
      leaseUntil: h.table.leaseIn(-1),
      status: { attempts: [dead], ...(phase !== undefined ? { phase } : {}), ...extra },
    });
    const run = h.start();
    await until('the orphan resumed', () => h.stages.stages.length === 1);
    expect(h.stages.stages[0].args).toContain('--resume');
    h.stages.stages[0].end(5, 'shadowcut: no checkpoint for shop.a');
    return { h, run, dead };
  }

  it('is complete when the history has the stage succeeding since the dead attempt began', async () => {
    const { h, run, dead } = await resumedEnding('cleanup', {}, true);
    await until('the run ended', () => run.settled);
    expect(run.failures).toBe(0);
    expect(h.history.asked).toEqual([`shop.a since ${dead.startedAt}`]);
    expect((await stored(h.store, 1)).state).toBe('complete');
    expect(h.stages.stages).toHaveLength(1);
  });

  it('is complete without asking the history when the dead attempt had swapped the tables', async () => {
    const { h, run } = await resumedEnding('cleanup', { swapped: true });
    await until('the run ended', () => run.settled);
    expect((await stored(h.store, 1)).state).toBe('complete');
    expect(h.history.asked).toEqual([]);
  });

  it('runs afresh when the dead attempt had changed nothing yet', async () => {
    const { h, run, dead } = await resumedEnding(undefined);
    await until('started afresh', () => h.stages.stages.length === 2);
    expect(h.stages.stages[1].args).not.toContain('--resume');
    h.stages.stages[1].end(0);
    await until('the run ended', () => run.settled);
    const row = await stored(h.store, 1);
    expect(row.state).toBe('complete');
    // The attempt that found no checkpoint is not kept: it ran nothing.
    expect(row.status.attempts).toEqual([{ ...dead, outcome: 'lost' }, expect.objectContaining({ runner: 'me@here:1:abcd', outcome: 'complete' })]);
  });

  it('fails, naming what to look at, when the dead attempt was past its first change and the history has no success', async () => {
    const { h, run } = await resumedEnding('copy');
    await until('the run ended', () => run.settled);
    expect(run.failures).toBe(1);
    expect(h.stages.stages).toHaveLength(1);
    const row = await stored(h.store, 1);
    expect(row.state).toBe('failed');
    expect(row.status.lastError).toMatch(/^the interrupted attempt \(last seen in "copy"\) left neither a checkpoint nor a history entry: look at shop\.a/);
    expect(h.records).toEqual([{ id: 1, outcome: 'failure', line: row.status.lastError }]);
  });

  it('is an ordinary failure from a stage that was not resumed', async () => {
    const h = harness();
    await h.store.add(spec('shop.a'));
    const run = h.start();
    await until('the stage started', () => h.stages.stages.length === 1);
    h.stages.stages[0].end(5, 'shadowcut: no checkpoint');
    await until('the run ended', () => run.settled);
    expect(run.failures).toBe(1);
    expect((await stored(h.store, 1)).status.lastError).toBe('exit 5: shadowcut: no checkpoint');
    expect(h.history.asked).toEqual([]);
  });
});

describe('windows, estimates and --until', () => {
  it("starts an entry only inside its window, in the window's time zone, and a migration only when the plan fits", async () => {
    const estimates: Record<string, number> = { 'shop.a': 5 * 3_600_000, 'shop.b': 3_600_000 };
    const h = harness({ mode: 'once', maxConcurrent: 2 }, { estimateMs: async (s) => estimates[s.table] ?? null });
    await h.store.add(spec('shop.a', { window: '03:00-07:00', tz: 'Europe/Berlin' }));
    await h.store.add(spec('shop.b', { window: '03:00-07:00', tz: 'Europe/Berlin' }));
    let run = h.start();
    await until('the first run ended', () => run.settled);
    expect(h.stages.launched).toEqual([]);
    expect((await h.store.list()).map((r) => r.status.waiting)).toEqual(Array(2).fill('outside its window 03:00-07:00 Europe/Berlin'));
    // 02:00 UTC is 03:00 in Berlin (winter time): four hours left.
    vi.setSystemTime(new Date('2024-03-02T02:00:00.000Z'));
    run = h.start();
    await until('the stage started', () => h.stages.stages.length === 1);
    expect(h.stages.stages[0].table).toBe('shop.b');
    expect(h.stages.stages[0].args).toEqual(expect.arrayContaining(['--window', '03:00-07:00']));
    expect(h.stages.stages[0].env.TZ).toBe('Europe/Berlin');
    expect((await stored(h.store, 1)).status.waiting).toBe('needs about 5h, 4h left');
    h.stages.stages[0].end(0);
    await until('the second run ended', () => run.settled);
  });

  it('stops a copy at --until as a crash would, to be resumed; a cut-over under way is waited out', async () => {
    const h = harness({ maxConcurrent: 2, until: new Date(NOON.getTime() + 60_000) });
    await h.store.add(spec('shop.a'));
    await h.store.add(spec('shop.b'));
    const run = h.start();
    await until('both started', () => h.stages.stages.length === 2);
    const [copying, swapping] = h.stages.stages;
    copying.emit({ phase: 'copy' });
    swapping.emit({ phase: 'cutover' });
    await until('the copy was stopped', () => copying.ended);
    expect(Date.now()).toBeGreaterThanOrEqual(NOON.getTime() + 60_000);
    expect(copying.signals).toEqual(['SIGKILL']);
    await vi.advanceTimersByTimeAsync(5000);
    expect(swapping.signals).toEqual([]);
    expect(run.settled).toBe(false);
    swapping.end(0);
    await until('the run ended', () => run.settled);
    const [a, b] = await h.store.list();
    expect([a.state, a.claimedBy !== null, a.leaseUntil]).toEqual(['queued', true, null]);
    expect(a.status.attempts).toEqual([expect.objectContaining({ outcome: 'suspended' })]);
    expect(a.status.waiting).toBe(`stopped at the runner's --until; the next "queue run" resumes it from its checkpoint`);
    expect(b.state).toBe('complete');
    expect(h.records).toEqual([{ id: 1, outcome: 'suspended', line: a.status.waiting }]);
  });
});

describe("operators' requests", () => {
  it('cancels a running stage with SIGTERM; its exit 3 cancels the entry', async () => {
    const h = harness();
    await h.store.add(spec('shop.a'));
    const run = h.start();
    await until('the stage started', () => h.stages.stages.length === 1);
    await h.store.request(1, 'cancel');
    await until('SIGTERM sent', () => h.stages.stages[0].signals.length > 0);
    await vi.advanceTimersByTimeAsync(3000);
    expect(h.stages.stages[0].signals).toEqual(['SIGTERM']);
    h.stages.stages[0].end(3, 'shadowcut: cancelled');
    await until('the run ended', () => run.settled);
    expect(run.failures).toBe(0);
    const row = await stored(h.store, 1);
    expect([row.state, row.request, row.status.attempts[0].outcome]).toEqual(['cancelled', null, 'cancelled']);
  });

  it('relays a cut-over to each table of a set, and clears the request once every one passed', async () => {
    const h = harness();
    await h.store.add(spec('shop.a', { set: ['shop.b'], args: ['--alter', 'ADD COLUMN x INT', '--alter', 'ADD COLUMN y INT'], postponeCutover: true }));
    const run = h.start();
    await until('the stage started', () => h.stages.stages.length === 1);
    expect(h.stages.stages[0].args).toEqual(expect.arrayContaining(['--postpone-cutover']));
    h.stages.relayCode = 1;
    await h.store.request(1, 'cutover');
    await until('relayed', () => h.stages.launched.length === 3);
    expect(h.stages.launched.slice(1).map((s) => s.args)).toEqual([
      ['cutover', '--table', 'shop.a'],
      ['cutover', '--table', 'shop.b'],
    ]);
    expect((await stored(h.store, 1)).request).toBe('cutover'); // not passed on: asked again at the next poll
    h.stages.relayCode = 0;
    await until('relayed again', () => h.stages.launched.length === 5);
    await vi.advanceTimersByTimeAsync(100);
    expect((await stored(h.store, 1)).request).toBeNull();
    await vi.advanceTimersByTimeAsync(5000);
    expect(h.stages.launched).toHaveLength(5);
    h.stages.stages[0].end(0);
    await until('the run ended', () => run.settled);
  });
});

describe('a store that cannot be reached', () => {
  it('tries again, and gives up after 10 failures in a row when nothing runs', async () => {
    const h = harness();
    await h.store.add(spec('shop.a'));
    h.table.failNext('list', 2);
    let run = h.start();
    await until('the stage started', () => h.stages.stages.length === 1);
    expect(h.logs.filter((l) => l.startsWith('the queue could not be read or written'))).toHaveLength(2);
    h.stages.stages[0].end(0);
    await until('the run ended', () => run.settled);
    expect(run.failures).toBe(0);
    h.table.failNext('list', 10);
    run = h.start();
    await until('the run gave up', () => run.settled);
    expect((run.error as Error).message).toBe('Connection lost: list (fake)');
  });
});
