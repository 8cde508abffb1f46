// The queue runner's decision to plan an entry, on a queue held in memory: what is decided here needs
// no server (test/queue.test.ts runs the whole queue against real ones).
import { describe, expect, it } from 'vitest';
import { QueueRunner } from '../src/core/queue/runner.js';
import { SealedQueue } from '../src/core/queue/sealed-queue.js';
import type { QueueSpec } from '../src/core/engine/ports/queue.js';
import { FakeQueueTable, MemoryLedger } from './support/fake-queue-table.js';

/** A daily window that is closed now: it opens in two hours, so nothing is started. */
function closedWindow(now = new Date()): string {
  const at = (hours: number) => `${String((now.getUTCHours() + hours) % 24).padStart(2, '0')}:00`;
  return `${at(2)}-${at(3)}`;
}

function spec(id: number, extra: Partial<QueueSpec>): QueueSpec {
  return { stage: 'migrate', table: `shop.t${id}`, args: ['--alter', 'ADD COLUMN note TEXT'], addedBy: 'test', window: closedWindow(), tz: 'UTC', ...extra };
}

/** The queue in memory, through the real sealed queue: a runner that starts nothing only writes why each entry waits. */
function store(specs: QueueSpec[]): SealedQueue {
  const table = new FakeQueueTable();
  for (const s of specs) table.put({ spec: s });
  return new SealedQueue(table, new MemoryLedger());
}

describe("the queue runner's estimate", () => {
  it('plans a queued migrate entry that must fit its window, but never a postponed one: plan would run its ALTER on a probe', async () => {
    const planned: string[] = [];
    const runner = new QueueRunner(
      {
        store: store([spec(1, { postponed: true }), spec(2, {})]),
        launch: () => {
          throw new Error('nothing is due: no stage may start');
        },
        env: {},
        succeededSince: () => Promise.resolve(false),
        ranBefore: () => Promise.resolve(false),
        estimateMs: (spec) => {
          planned.push(spec.table);
          return Promise.resolve(1000);
        },
        log: () => {},
        record: () => Promise.resolve(),
      },
      { runner: 'test', maxConcurrent: 1, mode: 'once', leaseSeconds: 30, pollMs: 10, stageArgs: [] },
    );
    expect(await runner.run()).toBe(0);
    expect(planned).toEqual(['shop.t2']);
  });
});
