// The queue runner's decision to plan an entry, on a queue held in memory: what is decided here needs
// no server (test/queue.test.ts runs the whole queue against real ones).
import { describe, expect, it } from 'vitest';
import { QueueRunner } from '../src/core/queue/runner.js';
import type { QueueRow, QueueSpec, QueueStore } from '../src/core/engine/ports/queue.js';

/** A daily window that is closed now: it opens in two hours, so nothing is started. */
function closedWindow(now = new Date()): string {
  const at = (hours: number) => `${String((now.getUTCHours() + hours) % 24).padStart(2, '0')}:00`;
  return `${at(2)}-${at(3)}`;
}

function row(id: number, spec: Partial<QueueSpec>): QueueRow {
  const at = new Date().toISOString();
  return {
    id,
    state: 'queued',
    request: null,
    claimedBy: null,
    leaseUntil: null,
    spec: { stage: 'migrate', table: `shop.t${id}`, args: ['--alter', 'ADD COLUMN note TEXT'], addedBy: 'test', window: closedWindow(), tz: 'UTC', ...spec },
    status: { attempts: [] },
    createdAt: at,
    updatedAt: at,
  };
}

/** Only what a runner that starts nothing calls; anything else would be a change the test did not expect. */
function store(rows: QueueRow[]): QueueStore {
  const never = () => Promise.reject(new Error('not expected'));
  return {
    check: never,
    add: never,
    get: never,
    claim: never,
    renew: never,
    finish: never,
    transition: never,
    request: never,
    list: () => Promise.resolve(rows),
    now: () => Promise.resolve(new Date()),
    exclusive: (fn) => fn(),
    wait: () => Promise.resolve(),
  };
}

describe("the queue runner's estimate", () => {
  it('plans a queued migrate entry that must fit its window, but never a postponed one: plan would run its ALTER on a probe', async () => {
    const planned: string[] = [];
    const runner = new QueueRunner(
      {
        store: store([row(1, { postponed: true }), row(2, {})]),
        launch: () => {
          throw new Error('nothing is due: no stage may start');
        },
        env: {},
        succeededSince: () => Promise.resolve(false),
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
