// RunContext.transient (src/core/migrate/context.ts): a step that rides out a lost connection says so
// where the DBA looks, while it waits and after: the run's status (`shadowcut status`, the progress
// lines) and its timeline (the report page). Fake timers stand in for the backoff's sleeps.
import { afterEach, expect, it, vi } from 'vitest';
import { configure, type MigrateResult } from '../../src/core/run/config.js';
import { RunContext } from '../../src/core/migrate/context.js';
import { CheckpointRun } from '../../src/core/engine/state/checkpoint.js';
import type { Reporter } from '../../src/core/report/reporter.js';
import type { Engine, Migration } from '../../src/core/engine/types.js';

afterEach(() => {
  vi.useRealTimers();
});

it('a lost connection is in the status while the step waits, and lost and back on the timeline once each', async () => {
  vi.useFakeTimers();
  vi.spyOn(Math, 'random').mockReturnValue(0);
  const { config, makeState } = configure({ chunkTimeMs: 100 });
  const engine = { kind: 'mysql', isTransient: (e: unknown) => (e as { code?: string }).code === 'ECONNRESET' } as unknown as Engine;
  const warnings: string[] = [];
  const report: Reporter = { phase() {}, progress() {}, info() {}, warn: (m) => void warnings.push(m), close() {} };
  const state = makeState('t', 'ADD x int', 'mysql');
  const run = CheckpointRun.fresh({ database: 'test', qualify: (t) => t }, 't');
  const ctx = new RunContext(engine, {} as Migration, config, state, report, {} as MigrateResult, run);
  let calls = 0;
  const lost = () => Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
  const done = ctx.transient('copying a chunk', async () => {
    if (++calls <= 2) throw lost();
    return 'copied';
  });
  await vi.advanceTimersByTimeAsync(0);
  expect(state.status.retrying).toBe('copying a chunk failed (read ECONNRESET); retrying in 250 ms (retry 1 of 8, then the run stops)');
  await vi.advanceTimersByTimeAsync(250);
  expect(state.status.retrying).toMatch(/^copying a chunk failed \(read ECONNRESET\); retrying in 500 ms \(retry 2 of 8/);
  await vi.advanceTimersByTimeAsync(500);
  expect(await done).toBe('copied');
  expect(state.status.retrying).toBeNull();
  expect(state.status.timeline.map((t) => t.event)).toEqual(['connection lost: copying a chunk', 'connection back: copying a chunk']);
  expect(warnings).toHaveLength(2);
});
