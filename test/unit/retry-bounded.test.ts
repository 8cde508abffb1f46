// retryBounded and sleepThenCheck (src/core/engine/retry/retry.ts): the general bounded retry the engines' own
// retries use. Fake timers stand in for the pauses, so the waits are exact.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AbortedError } from '../../src/core/engine/errors.js';
import { retryBounded, sleepThenCheck, type Retries } from '../../src/core/engine/retry/retry.js';

const busy = (message = 'busy') => Object.assign(new Error(message), { code: 'BUSY' });
const isBusy = (error: unknown) => (error as { code?: string }).code === 'BUSY';

/** A promise's outcome, read later without an unhandled rejection in between. */
function settle<T>(p: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  return p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('retryBounded', () => {
  it('tries again after a retryable error, numbering the attempts from 1, and returns what an attempt returns', async () => {
    const attempt = vi.fn<(n: number) => Promise<string>>().mockRejectedValueOnce(busy()).mockRejectedValueOnce(busy()).mockResolvedValue('done');
    expect(await retryBounded({ attempts: 5, retryable: isBusy }, attempt)).toBe('done');
    expect(attempt.mock.calls).toEqual([[1], [2], [3]]);
  });

  it('without a pause, tries again at once', async () => {
    vi.useFakeTimers();
    const attempt = vi.fn<() => Promise<number>>().mockRejectedValueOnce(busy()).mockResolvedValue(7);
    // No timer is advanced: a pause would leave the promise pending.
    expect(await retryBounded({ attempts: 2, retryable: isBusy }, attempt)).toBe(7);
  });

  it('throws an error not worth retrying at once, as `refused` makes it', async () => {
    const error = new Error('syntax error');
    const retrying = vi.fn();
    const attempt = vi.fn<() => Promise<void>>().mockRejectedValue(error);
    expect(await settle(retryBounded({ attempts: 5, retryable: isBusy, retrying }, attempt))).toEqual({ error });
    const refused = await settle(retryBounded({ attempts: 5, retryable: isBusy, refused: (e) => new Error(`refused: ${(e as Error).message}`) }, attempt));
    expect((refused.error as Error).message).toBe('refused: syntax error');
    expect(attempt).toHaveBeenCalledTimes(2);
    expect(retrying).not.toHaveBeenCalled();
  });

  it('gives up after the last attempt with its error, or what `exhausted` makes of it', async () => {
    const last = busy('still busy');
    const attempt = vi.fn<() => Promise<void>>().mockRejectedValueOnce(busy()).mockRejectedValueOnce(busy()).mockRejectedValueOnce(last);
    expect(await settle(retryBounded({ attempts: 3, retryable: isBusy }, attempt))).toEqual({ error: last });
    expect(attempt).toHaveBeenCalledTimes(3);

    const exhausted = vi.fn((e: unknown, n: number) => new Error(`failed ${n} times: ${(e as Error).message}`));
    const { error } = await settle(retryBounded({ attempts: 2, retryable: isBusy, exhausted }, () => Promise.reject(busy('locked'))));
    expect((error as Error).message).toBe('failed 2 times: locked');
    expect(exhausted).toHaveBeenCalledTimes(1);
  });

  it('one attempt, or none asked for, means no retry', async () => {
    for (const attempts of [1, 0]) {
      const attempt = vi.fn<() => Promise<void>>().mockRejectedValue(busy());
      expect((await settle(retryBounded({ attempts, retryable: isBusy }, attempt))).error).toBeDefined();
      expect(attempt).toHaveBeenCalledTimes(1);
    }
  });

  it('pauses as `pauseMs` says after each failed attempt but the last, telling `retrying` first', async () => {
    vi.useFakeTimers();
    const told: string[] = [];
    const retries: Retries<string> = {
      attempts: 4,
      retryable: isBusy,
      pauseMs: (n) => 100 * 2 ** n,
      retrying: (error, n, ms) => void told.push(`${n}: ${(error as Error).message}, ${ms} ms`),
    };
    const attempt = vi.fn<() => Promise<string>>().mockRejectedValue(busy());
    const result = settle(retryBounded(retries, attempt));
    await vi.advanceTimersByTimeAsync(199);
    expect(attempt).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(attempt).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(400 + 800);
    expect(attempt).toHaveBeenCalledTimes(4);
    expect((await result).error).toMatchObject({ code: 'BUSY' });
    expect(told).toEqual(['1: busy, 200 ms', '2: busy, 400 ms', '3: busy, 800 ms']);
  });

  it('waits for an async `retrying` before the pause, and spends the pause in `wait` when given', async () => {
    const order: string[] = [];
    const attempt = vi.fn<(n: number) => Promise<void>>(async (n) => {
      order.push(`attempt ${n}`);
      if (n === 1) throw busy();
    });
    await retryBounded(
      {
        attempts: 2,
        retryable: isBusy,
        pauseMs: () => 30,
        retrying: async () => {
          await Promise.resolve();
          order.push('undone');
        },
        wait: async (ms) => void order.push(`waited ${ms}`),
      },
      attempt,
    );
    expect(order).toEqual(['attempt 1', 'undone', 'waited 30', 'attempt 2']);
  });

  it('after the pause, returns the value of an attempt that succeeded after all, without trying again', async () => {
    const attempt = vi.fn<() => Promise<number>>().mockRejectedValue(busy('connection lost'));
    const succeededAfterAll = vi.fn<(error: unknown) => Promise<{ value: number } | null>>().mockResolvedValueOnce(null).mockResolvedValueOnce({ value: 12 });
    expect(await retryBounded({ attempts: 5, retryable: isBusy, pauseMs: () => 0, succeededAfterAll }, attempt)).toBe(12);
    expect(attempt).toHaveBeenCalledTimes(2);
    expect(succeededAfterAll).toHaveBeenCalledTimes(2);
    expect((succeededAfterAll.mock.calls[0][0] as Error).message).toBe('connection lost');
  });

  it('does not ask `succeededAfterAll` when the error is thrown', async () => {
    const succeededAfterAll = vi.fn(async () => ({ value: 1 }));
    const error = new Error('no');
    expect(await settle(retryBounded({ attempts: 5, retryable: isBusy, succeededAfterAll }, () => Promise.reject(error)))).toEqual({ error });
    expect(await settle(retryBounded({ attempts: 1, retryable: isBusy, succeededAfterAll }, () => Promise.reject(busy())))).toMatchObject({
      error: { code: 'BUSY' },
    });
    expect(succeededAfterAll).not.toHaveBeenCalled();
  });
});

describe('sleepThenCheck', () => {
  it('sleeps, then checks for an abort, whose error ends the retry', async () => {
    vi.useFakeTimers();
    const aborted = new AbortedError('operator abort');
    const checkAbort = vi.fn(() => {
      throw aborted;
    });
    const attempt = vi.fn<() => Promise<void>>().mockRejectedValue(busy());
    const result = settle(retryBounded({ attempts: 5, retryable: isBusy, pauseMs: () => 50, wait: sleepThenCheck(checkAbort) }, attempt));
    await vi.advanceTimersByTimeAsync(49);
    expect(checkAbort).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(await result).toEqual({ error: aborted });
    expect(attempt).toHaveBeenCalledTimes(1);
  });
});
