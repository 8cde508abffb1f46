// waitFor (src/core/engine/retry/wait-for.ts): looks until a condition holds or the time is up. Fake timers
// stand in for the pauses and for Date.now(), so every look is at a known moment.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { waitFor } from '../../src/core/engine/retry/wait-for.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** A look that answers `answers` in turn (the last one from then on), noting when each look was made. */
function looks<T>(...answers: T[]) {
  const began = Date.now();
  const at: number[] = [];
  const look = vi.fn(async () => {
    at.push(Date.now() - began);
    return answers[Math.min(at.length - 1, answers.length - 1)];
  });
  return { look, at };
}

describe('waitFor', () => {
  it('returns at once when the first look is done, without a pause', async () => {
    const { look } = looks(true);
    // No timer is advanced: a pause would leave the promise pending.
    expect(await waitFor(look, (v) => v, { withinMs: 1000, everyMs: 100 })).toBe(true);
    expect(look).toHaveBeenCalledTimes(1);
  });

  it('looks again after each pause until the condition holds, and returns that reading', async () => {
    const { look, at } = looks(3, 2, 0);
    const result = waitFor(look, (n) => n === 0, { withinMs: 1000, everyMs: 50 });
    await vi.advanceTimersByTimeAsync(100);
    expect(await result).toBe(0);
    expect(at).toEqual([0, 50, 100]);
  });

  it('gives up once the time is up, with the last reading, after a look made past the last pause', async () => {
    const { look, at } = looks<number[]>([7]);
    const result = waitFor(look, (rows) => rows.length === 0, { withinMs: 120, everyMs: 50 });
    await vi.advanceTimersByTimeAsync(200);
    expect(await result).toEqual([7]);
    // Looks at 0, 50 and 100 ms are within the time; the one at 150 ms is past it, and the last.
    expect(at).toEqual([0, 50, 100, 150]);
  });

  it('looks once when no time is given', async () => {
    const { look } = looks(false);
    expect(await waitFor(look, (v) => v, { withinMs: 0, everyMs: 100 })).toBe(false);
    expect(look).toHaveBeenCalledTimes(1);
  });

  it('passes on a look that fails', async () => {
    const error = new Error('connection lost');
    const look = vi.fn<() => Promise<boolean>>().mockResolvedValueOnce(false).mockRejectedValueOnce(error);
    const result = waitFor(look, (v) => v, { withinMs: 1000, everyMs: 10 }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(10);
    expect(await result).toBe(error);
    expect(look).toHaveBeenCalledTimes(2);
  });
});
