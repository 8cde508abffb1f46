// The applier's round (core/migrate/applier.ts, applyPending): under a steady stream, a round applies
// what was pending when it began and leaves what came meanwhile to the next round, unless that fills
// a batch; under a lock it applies everything. A fake migration and change source stand in for the
// engine, each apply bringing three more keys as the application's writes would: the decisions are core's.
import { describe, expect, it } from 'vitest';
import { Applier } from '../../src/core/migrate/applier.js';
import { RunContext } from '../../src/core/migrate/context.js';
import { CheckpointRun } from '../../src/core/engine/state/checkpoint.js';
import { configure, type MigrateResult } from '../../src/core/run/config.js';
import { silentReporter } from '../../src/core/report/reporter.js';
import type { ChangeSink, ChangeSource, ChangeStream } from '../../src/core/engine/ports/change-source.js';
import type { Engine, Key, Migration, Session } from '../../src/core/engine/types.js';

const unsavedRun = CheckpointRun.fresh({ database: 'test', qualify: (t) => t }, 't');

/** A run whose every apply brings `arriving` more keys, up to `limit` applies. */
async function steadyStream(arriving: number, limit = 50) {
  let sink: ChangeSink | null = null;
  let next = 1000;
  const applies: number[] = [];
  const stream: ChangeStream = { start: { n: 0 }, head: async () => ({ n: 0 }), acknowledge: async () => {}, stop: async () => {} };
  const changes: ChangeSource = { open: async (s) => ((sink = s), stream), cleanup: async () => {}, comparePositions: (a, b) => Number(a.n) - Number(b.n) };
  const migration = {
    changes,
    async applyKeys(keys: Key[]) {
      applies.push(keys.length);
      if (applies.length < limit)
        sink!.keys(
          Array.from({ length: arriving }, () => [next++]),
          { n: next },
        );
    },
  };
  const { config, makeState } = configure({ chunkTimeMs: 100 });
  const ctx = new RunContext(
    { isTransient: () => false } as unknown as Engine,
    migration as unknown as Migration,
    config,
    makeState('t', 'ADD x int', 'mysql'),
    silentReporter,
    { changesApplied: 0 } as MigrateResult,
    unsavedRun,
  );
  const applier = new Applier(ctx, null, () => {});
  await applier.open();
  return { applier, sink: () => sink!, applies, applyBatch: config.applyBatch };
}

describe("the applier's round under a steady stream", () => {
  it('applies what was pending when it began, in one commit, and leaves the keys that came meanwhile for the next round', async () => {
    // Chasing the tail took the three keys each apply brought, one commit for every three keys.
    const f = await steadyStream(3);
    f.sink().keys(
      Array.from({ length: 40 }, (_, i) => [i]),
      { n: 1 },
    );
    await f.applier.applyPending();
    expect(f.applies).toEqual([40]);
    expect(f.applier.backlog).toBe(3);
    await f.applier.applyPending();
    expect(f.applies).toEqual([40, 3]);
  });

  it('goes on while what came meanwhile fills a batch', async () => {
    const f = await steadyStream(0);
    f.sink().keys(
      Array.from({ length: 2 * f.applyBatch + 10 }, (_, i) => [i]),
      { n: 1 },
    );
    await f.applier.applyPending();
    expect(f.applies).toEqual([f.applyBatch, f.applyBatch, 10]);
  });

  it('under a lock, applies everything, the keys that came meanwhile too', async () => {
    const f = await steadyStream(3, 5);
    f.sink().keys(
      Array.from({ length: 40 }, (_, i) => [i]),
      { n: 1 },
    );
    await f.applier.applyPending({ id: 'locked', inTransaction: true } as Session);
    expect(f.applies).toEqual([40, 3, 3, 3, 3]);
    expect(f.applier.backlog).toBe(0);
  });
});
