// The applier while the shadow has no key (PostgreSQL's copy into a bare heap, Migration.keylessShadow):
// nothing is applied, the source is acknowledged only while nothing is held, and a source that pins the
// server's own log has the key built once the buffer is full. A fake migration and change source stand
// in for the engine: the decisions are core's.
import { describe, expect, it } from 'vitest';
import { Applier } from '../../src/core/migrate/applier.js';
import { RunContext } from '../../src/core/migrate/context.js';
import { CheckpointRun } from '../../src/core/engine/state/checkpoint.js';
import { configure, type MigrateResult } from '../../src/core/run/config.js';
import { silentReporter } from '../../src/core/report/reporter.js';
import type { ChangeSink, ChangeSource, ChangeStream } from '../../src/core/engine/ports/change-source.js';
import type { Engine, Key, Migration, Position } from '../../src/core/engine/types.js';

/** The run's identity its checkpoints would carry; these runs save none. */
const unsavedRun = CheckpointRun.fresh({ database: 'test', qualify: (t) => t }, 't');

interface Fake {
  applier: Applier;
  sink: () => ChangeSink;
  acknowledged: Position[];
  applied: Key[];
  built: () => number;
}

async function fakeRun(pinsServerLog: boolean): Promise<Fake> {
  const acknowledged: Position[] = [];
  const applied: Key[] = [];
  let sink: ChangeSink | null = null;
  let built = 0;
  const stream: ChangeStream = {
    start: { n: 0 },
    head: async () => ({ n: 0 }),
    acknowledge: async (position) => void acknowledged.push(position),
    stop: async () => {},
  };
  const changes: ChangeSource = {
    open: async (s) => ((sink = s), stream),
    cleanup: async () => {},
    comparePositions: (a, b) => Number(a.n) - Number(b.n),
    pinsServerLog,
  };
  const keylessShadow = {
    holding: true,
    async build() {
      built++;
      keylessShadow.holding = false;
    },
  };
  const migration = {
    keylessShadow,
    changes,
    async applyKeys(keys: Key[]) {
      if (keylessShadow.holding) throw new Error('applied before the key exists');
      applied.push(...keys);
    },
  };
  const { config, makeState } = configure({ chunkTimeMs: 100 });
  const engine = { isTransient: () => false } as unknown as Engine;
  const result = { changesApplied: 0 } as MigrateResult;
  const ctx = new RunContext(engine, migration as unknown as Migration, config, makeState('t', 'ADD x int', 'postgres'), silentReporter, result, unsavedRun);
  const applier = new Applier(ctx, null, () => {});
  await applier.open();
  return { applier, sink: () => sink!, acknowledged, applied, built: () => built };
}

describe('changes held until the shadow has its key', () => {
  it('with nothing held, the source is acknowledged as far as it went: a slot keeps no WAL of a quiet copy', async () => {
    const f = await fakeRun(true);
    f.sink().advance({ n: 7 });
    await f.applier.applyPending();
    expect(f.acknowledged).toEqual([{ n: 7 }]);
    expect(f.applied).toEqual([]);
    expect(f.built()).toBe(0);
  });

  it('with keys held and room in the buffer, nothing is applied and nothing acknowledged past them', async () => {
    const f = await fakeRun(true);
    f.sink().keys([[1], [2]], { n: 3 });
    f.sink().advance({ n: 9 });
    await f.applier.applyPending();
    expect(f.acknowledged).toEqual([]);
    expect(f.applied).toEqual([]);
    expect(f.applier.backlog).toBe(2);
  });

  it('a full buffer from a source that pins the server log has the key built once, then everything applied', async () => {
    const f = await fakeRun(true);
    const keys: Key[] = Array.from({ length: 20_000 }, (_, i) => [i]);
    f.sink().keys(keys, { n: 5 });
    expect(f.sink().hasRoom()).toBe(false);
    await f.applier.applyPending();
    expect(f.built()).toBe(1);
    expect(f.applied).toHaveLength(20_000);
    expect(f.acknowledged).toEqual([{ n: 5 }]);
    await f.applier.applyPending();
    expect(f.built()).toBe(1);
  });

  it('a full buffer from a trigger log waits for the copy: the log keeps the rest, at no cost to the server', async () => {
    const f = await fakeRun(false);
    f.sink().keys(
      Array.from({ length: 20_000 }, (_, i) => [i]),
      { n: 5 },
    );
    await f.applier.applyPending();
    expect(f.built()).toBe(0);
    expect(f.applied).toEqual([]);
    expect(f.acknowledged).toEqual([]);
  });

  it('refuses to apply under a lock, or to catch up, before the key exists', async () => {
    const f = await fakeRun(true);
    await expect(f.applier.applyPending({ id: 'locked' })).rejects.toThrow(/before the shadow has its key/);
    await expect(f.applier.catchUp()).rejects.toThrow(/before the shadow has its key/);
  });
});
