// The cut-over's narrowing (src/core/migrate/cutover.ts with changed-keys.ts and the Applier): the rows
// changed since the last consistent view are compared, many first in a fresh view without the lock,
// the last ones row by row under it. A fake migration (test/support/fake-migration.ts) stands in for
// the engine; the Applier, ChangedKeys and Cutover are core's own.
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/core/engine/errors.js';
import type { Checkpointer } from '../../src/core/migrate/checkpointer.js';
import { Cutover } from '../../src/core/migrate/cutover/cutover.js';
import type { Pacing } from '../../src/core/run/pacing.js';
import type { Progress } from '../../src/core/run/progress.js';
import type { Key } from '../../src/core/engine/types.js';
import { FakeMigration, isLostConnection, lostConnection } from '../support/fake-migration.js';

const keys = (from: number, count: number): Key[] => Array.from({ length: count }, (_, i) => [from + i]);

async function cutover(fake = new FakeMigration()) {
  const run = await fake.run({ isTransient: isLostConnection });
  const calls: string[] = [];
  const reverify = async () => {
    calls.push('reverify');
    run.applier.changed.restart(); // a whole checksum round opens a new view
  };
  const pacing = { holdWhileThrottled: async () => void calls.push('throttle') } as unknown as Pacing;
  const checkpointer = { confirmClaim: async () => void calls.push('claim') } as unknown as Checkpointer;
  const c = new Cutover(run.ctx, run.applier, pacing, checkpointer, reverify, {} as Progress);
  return { fake, ...run, c, calls };
}

describe('before the cut-over lock (Cutover.ready)', () => {
  it('catches up, and with at most 1000 rows changed since the last view opens no view', async () => {
    const f = await cutover();
    f.fake.emit(keys(1, 1000));
    await f.c.ready();
    expect(f.fake.appliedKeys).toEqual(keys(1, 1000));
    expect(f.fake.viewCompared).toEqual([]);
    expect(f.applier.changed.size).toBe(1000);
    expect(f.calls).toEqual(['throttle', 'claim']);
  });

  it('compares more than 1000 changed rows in a fresh view, applies the differing ones again, and leaves only those for the lock', async () => {
    const f = await cutover();
    f.fake.emit(keys(1, 1500));
    f.fake.differ = (compared, where) => (where === 'view' ? compared.filter(([k]) => Number(k) % 500 === 0) : []);
    await f.c.ready();
    expect(f.fake.viewCompared).toEqual([keys(1, 1500)]);
    expect(f.result.keysCompared).toBe(1500);
    expect(f.fake.applied.at(-1)?.keys).toEqual([[500], [1000], [1500]]);
    expect(f.applier.changed.list()).toEqual([[500], [1000], [1500]]);
    expect(f.fake.warnings).toEqual(['3 of 1500 changed row(s) differed; applying them again']);
  });

  it('keys applied while a view is opened are left for the next round, not lost from the comparison', async () => {
    const f = await cutover();
    f.fake.emit(keys(1, 1200));
    let written = false;
    f.fake.onView = () => {
      if (written) return;
      written = true;
      f.fake.emit(keys(5000, 1100));
    };
    await f.c.ready();
    // The view's catch-up applied the first 1200 before it was opened; the 1100 written after are compared in a second view.
    expect(f.fake.viewCompared.map((k) => [k.length, k[0][0]])).toEqual([
      [1200, 1],
      [1100, 5000],
    ]);
    expect(f.applier.changed.size).toBe(0);
  });

  it('a comparison a lost connection cuts short is made again on all its keys, in the next view', async () => {
    const f = await cutover();
    f.fake.emit(keys(1, 1500));
    let cut = false;
    f.fake.differ = (_compared, where) => {
      if (where === 'view' && !cut) {
        cut = true;
        throw lostConnection();
      }
      return [];
    };
    await f.c.ready();
    // The retry's view restarts what is changed: the first view's keys were compared nowhere.
    expect(f.fake.viewCompared.map((k) => k.length)).toEqual([1500, 1500]);
    expect(f.result.keysCompared).toBe(1500);
  });

  it('gives up narrowing after 5 rounds while writers keep more than 1000 rows changing, and cuts over with what remains', async () => {
    const f = await cutover();
    let next = 1;
    const burst = () => {
      f.fake.emit(keys(next, 1001));
      next += 1001;
    };
    burst();
    f.fake.onView = burst;
    await f.c.ready();
    expect(f.fake.viewCompared).toHaveLength(5);
    // The fifth view's writes are not caught up before the lock: they are the locked catch-up's.
    expect(f.applier.changed.size).toBe(0);
    expect(f.applier.backlog).toBe(1001);
    expect(f.calls).toEqual(['throttle', 'claim']);
  });

  it('past what ChangedKeys remembers, proves parity with a whole checksum round instead', async () => {
    const f = await cutover();
    // As if that many had been applied since the last view (through the stream it takes long for a unit test).
    f.applier.changed.add(keys(1, 100_001));
    expect(f.applier.changed.overflowed).toBe(true);
    await f.c.ready();
    expect(f.calls).toEqual(['throttle', 'reverify', 'claim']);
    expect(f.fake.viewCompared).toEqual([]);
    expect(f.ctx.state.status.phase).toBe('cutover');
  });
});

describe('under the cut-over lock (Cutover.catchUpAndCompare)', () => {
  const lock = { id: 'cut-over lock' };

  it('applies what is left on the locking session, then compares every row changed since the last view there', async () => {
    const f = await cutover();
    f.fake.emit(keys(1, 10));
    await f.c.ready();
    f.fake.emit(keys(100, 5));
    await f.c.catchUpAndCompare(lock);
    expect(f.fake.applied.at(-1)).toEqual({ keys: keys(100, 5), session: lock });
    expect(f.fake.lockedCompared).toEqual([{ keys: [...keys(1, 10), ...keys(100, 5)], session: lock }]);
    expect([f.result.keysComparedAtCutover, f.result.keysCompared]).toEqual([15, 15]);
  });

  it('applies rows that differ again under the lock, and refuses to cut over when they still differ', async () => {
    const f = await cutover();
    f.fake.emit(keys(1, 4));
    await f.c.ready();
    let comparisons = 0;
    f.fake.differ = (compared, where) => (where === 'lock' && comparisons++ === 0 ? compared.filter(([k]) => k === 2) : []);
    await f.c.catchUpAndCompare(lock);
    expect(f.fake.applied.at(-1)).toEqual({ keys: [[2]], session: lock });
    expect(f.fake.lockedCompared.map((c) => c.keys)).toEqual([keys(1, 4), [[2]]]);

    const g = await cutover();
    g.fake.emit(keys(1, 4));
    await g.c.ready();
    g.fake.differ = (compared, where) => (where === 'lock' ? compared.filter(([k]) => k === 3) : []);
    const refused = await g.c.catchUpAndCompare(lock).catch((e: Error) => e);
    expect(refused).toBeInstanceOf(UserError);
    expect((refused as Error).message).toBe('1 row(s) still differ after being applied again under the cut-over lock; not cutting over');
    expect(g.result.keysComparedAtCutover).toBe(0);
  });
});
