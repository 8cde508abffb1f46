// LeaseWatch (src/core/queue/lease-watch.ts): whether a draining runner must keep waiting for
// another runner's lease. No database: rows are built here and the server's clock is a plain Date.
import { describe, expect, it } from 'vitest';
import { LeaseWatch } from '../../src/core/queue/lease-watch.js';
import type { QueueRow, QueueState } from '../../src/core/engine/ports/queue.js';

const T0 = Date.parse('2024-03-01T10:00:00.000Z');
const at = (seconds: number) => new Date(T0 + seconds * 1000);
const iso = (seconds: number) => at(seconds).toISOString();

function row(id: number, leaseSeconds: number | null, state: QueueState = 'running'): QueueRow {
  return {
    id,
    state,
    request: null,
    claimedBy: 'other-host:123',
    leaseUntil: leaseSeconds === null ? null : iso(leaseSeconds),
    spec: { stage: 'migrate', table: 't', args: [], addedBy: 'me@host' },
    status: { attempts: [] },
    createdAt: iso(-600),
    updatedAt: iso(-1),
    generation: 1,
  };
}

const notMine = () => false;

describe('LeaseWatch.undecided', () => {
  it('keeps the queue undecided while a lease first seen has not been renewed', () => {
    const watch = new LeaseWatch();
    expect(watch.undecided([row(1, 30)], notMine, at(0))).toBe(true);
    expect(watch.undecided([row(1, 30)], notMine, at(10))).toBe(true);
    expect(watch.undecided([row(1, 30)], notMine, at(29.999))).toBe(true);
  });

  it('decides once a lease not renewed has lapsed (the entry is an orphan to take over)', () => {
    const watch = new LeaseWatch();
    expect(watch.undecided([row(1, 30)], notMine, at(0))).toBe(true);
    // The stores take a lease only once it has passed (lease_until < now): at the instant itself it
    // still holds, or a draining runner would stop there and leave an entry no one could take yet.
    expect(watch.undecided([row(1, 30)], notMine, at(30))).toBe(true);
    expect(watch.undecided([row(1, 30)], notMine, at(30.001))).toBe(false);
    expect(watch.undecided([row(1, 30)], notMine, at(31))).toBe(false);
  });

  it('leaves a lease seen renewed to its live runner, even when it is not renewed again', () => {
    const watch = new LeaseWatch();
    expect(watch.undecided([row(1, 30)], notMine, at(0))).toBe(true);
    expect(watch.undecided([row(1, 40)], notMine, at(10))).toBe(false);
    expect(watch.undecided([row(1, 40)], notMine, at(20))).toBe(false);
  });

  it("ignores the runner's own entries", () => {
    const watch = new LeaseWatch();
    expect(watch.undecided([row(7, 30)], (id) => id === 7, at(0))).toBe(false);
    expect(watch.undecided([row(7, 30), row(8, 30)], (id) => id === 7, at(0))).toBe(true);
  });

  it('ignores entries that are not running, or have no lease', () => {
    const watch = new LeaseWatch();
    const rows = [row(1, 30, 'queued'), row(2, 30, 'complete'), row(3, 30, 'failed'), row(4, null)];
    expect(watch.undecided(rows, notMine, at(0))).toBe(false);
  });

  it('watches a new claim after a lapse afresh: a different lease is not taken for a renewal', () => {
    const watch = new LeaseWatch();
    expect(watch.undecided([row(1, 30)], notMine, at(0))).toBe(true);
    expect(watch.undecided([row(1, 30)], notMine, at(35))).toBe(false);
    // Another runner took the orphan over and died at once: its lease must be waited out too.
    expect(watch.undecided([row(1, 95)], notMine, at(36))).toBe(true);
    expect(watch.undecided([row(1, 95)], notMine, at(60))).toBe(true);
  });

  it('forgets a live runner once its lease is gone: the next claim of the entry is watched afresh', () => {
    const watch = new LeaseWatch();
    expect(watch.undecided([row(1, 30)], notMine, at(0))).toBe(true);
    expect(watch.undecided([row(1, 40)], notMine, at(10))).toBe(false); // renewed: a live runner's
    expect(watch.undecided([row(1, 40)], notMine, at(45))).toBe(false); // lapsed: not held
    // Another runner claimed it and died at once: its lease is waited out, not taken for the first runner's.
    expect(watch.undecided([row(1, 100)], notMine, at(46))).toBe(true);
    expect(watch.undecided([row(1, 100)], notMine, at(70))).toBe(true);
    expect(watch.undecided([row(1, 100)], notMine, at(100.001))).toBe(false);
  });

  it('is undecided while any one entry is, judging each on its own', () => {
    const watch = new LeaseWatch();
    expect(watch.undecided([row(1, 30), row(2, 30)], notMine, at(0))).toBe(true);
    // 1 renewed (live), 2 not: still undecided because of 2.
    expect(watch.undecided([row(1, 45), row(2, 30)], notMine, at(15))).toBe(true);
    // 2 lapsed: decided.
    expect(watch.undecided([row(1, 45), row(2, 30)], notMine, at(30.001))).toBe(false);
  });
});
