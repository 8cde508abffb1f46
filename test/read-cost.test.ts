import { afterEach, describe, expect, it, vi } from 'vitest';
import { ReadCost } from '../src/core/engine/read-cost.js';

describe("trigger capture's read cost over a run", () => {
  afterEach(() => vi.useRealTimers());

  it('stays bounded over a long run and shows a growing cost where it grew', () => {
    vi.useFakeTimers({ now: 0 });
    const cost = new ReadCost();
    // A week of reads, one a second, each costing more in the second half of the run.
    const seconds = 7 * 24 * 3600;
    for (let s = 0; s < seconds; s++) {
      cost.add(s < seconds / 2 ? 1 : 3);
      vi.advanceTimersByTime(1000);
    }
    const summary = cost.summary()!;
    expect(summary.reads).toBe(seconds);
    expect(summary.longestMs).toBe(3);
    expect(summary.msPerReadByPart).toHaveLength(10);
    expect(summary.msPerReadByPart.slice(0, 4)).toEqual([1, 1, 1, 1]);
    expect(summary.msPerReadByPart.slice(6)).toEqual([3, 3, 3, 3]);
    expect((cost as unknown as { buckets: unknown[] }).buckets.length).toBeLessThanOrEqual(64);
  });

  it('has nothing to say before a read, and a short run has fewer parts', () => {
    vi.useFakeTimers({ now: 0 });
    const cost = new ReadCost();
    expect(cost.summary()).toBeNull();
    cost.add(2);
    vi.advanceTimersByTime(6000);
    cost.add(4);
    expect(cost.summary()).toEqual({ reads: 2, longestMs: 4, msPerReadByPart: [2, 4] });
  });
});
