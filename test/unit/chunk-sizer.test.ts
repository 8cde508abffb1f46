// ChunkSizer (src/core/run/chunk-sizer.ts): rows per chunk steered toward a target time, at most 2x a
// step, within its bounds.
import { describe, expect, it } from 'vitest';
import { ChunkSizer } from '../../src/core/run/chunk-sizer.js';

describe('ChunkSizer', () => {
  it('starts at its initial size', () => {
    expect(new ChunkSizer(500).rows).toBe(1000);
    expect(new ChunkSizer(500, 64).rows).toBe(64);
  });

  it('moves straight to the ideal size when it is within a factor of two', () => {
    const sizer = new ChunkSizer(100);
    sizer.record(1000, 80); // 0.08 ms a row: 1250 rows take 100 ms
    expect(sizer.rows).toBe(1250);
    sizer.record(1250, 125); // 0.1 ms a row: 1000 rows
    expect(sizer.rows).toBe(1000);
    sizer.record(1000, 100); // on target: unchanged
    expect(sizer.rows).toBe(1000);
  });

  it('at most doubles or halves a step', () => {
    const fast = new ChunkSizer(100);
    fast.record(1000, 1); // ideal 100,000
    expect(fast.rows).toBe(2000);
    fast.record(2000, 2);
    expect(fast.rows).toBe(4000);
    const slow = new ChunkSizer(100);
    slow.record(1000, 10_000); // ideal 10
    expect(slow.rows).toBe(500);
  });

  it('stays within its minimum and maximum', () => {
    const small = new ChunkSizer(100, 15, 10, 1000);
    small.record(15, 60_000);
    expect(small.rows).toBe(10);
    small.record(10, 60_000);
    expect(small.rows).toBe(10);
    const large = new ChunkSizer(100, 800, 10, 1000);
    large.record(800, 1);
    expect(large.rows).toBe(1000);
  });

  it('takes a chunk measured as 0 ms as 0.1 ms, not as infinitely fast', () => {
    const sizer = new ChunkSizer(100, 1000, 10, 200_000);
    sizer.record(1000, 0);
    expect(sizer.rows).toBe(2000);
    // 0.1 ms for 50,000 rows: ideal 5e7, capped at 2x.
    const big = new ChunkSizer(100, 50_000);
    big.record(50_000, 0);
    expect(big.rows).toBe(100_000);
  });

  it('ignores an empty chunk', () => {
    const sizer = new ChunkSizer(100);
    sizer.record(0, 5000);
    sizer.record(-1, 5000);
    expect(sizer.rows).toBe(1000);
  });

  it('follows a target changed while the copy runs', () => {
    const sizer = new ChunkSizer(100);
    sizer.target(300);
    sizer.record(1000, 100); // 0.1 ms a row: 3000 ideal, 2000 allowed
    expect(sizer.rows).toBe(2000);
    sizer.record(2000, 200);
    expect(sizer.rows).toBe(3000);
  });

  it('rounds to whole rows', () => {
    const sizer = new ChunkSizer(100);
    sizer.record(1000, 70); // ideal 1428.57...
    expect(sizer.rows).toBe(1429);
  });

  it("sizes by the rows' part when each chunk has a fixed part too (a durable server's commit)", () => {
    // 0.005 ms a row, and a fixed part of each chunk whatever its size. Through the origin, a fixed
    // 60 ms took chunks down to the minimum (10 rows) and 40 ms to 2,000 rows (10 ms of rows'
    // work a chunk). Told apart, the rows' part gets the target less the fixed part, at least the
    // fixed part and at most the target.
    const run = (fixedMs: number) => {
      const sizer = new ChunkSizer(50, 1000);
      for (let i = 0; i < 16; i++) sizer.record(sizer.rows, fixedMs + 0.005 * sizer.rows);
      return sizer.rows;
    };
    expect(run(60)).toBe(10_000);
    expect(run(40)).toBe(8000);
    expect(run(5)).toBe(9000);
  });
});
