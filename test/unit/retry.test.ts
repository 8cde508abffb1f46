// backoffMs and the three retry policies (src/core/engine/retry/backoff.ts, src/core/engine/retry/retry.ts). Math.random is
// pinned so delays are exact, and fake timers stand in for the backoff's sleeps.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { backoffMs } from '../../src/core/engine/retry/backoff.js';
import { AbortedError, LockTimeoutError, UniqueViolationError, UserError } from '../../src/core/engine/errors.js';
import type { Reporter } from '../../src/core/report/reporter.js';
import { retryLockTimeouts, retryTransient, retryUniqueConflicts, uniqueViolation, type LockAttempts } from '../../src/core/engine/retry/retry.js';

const transient = (message = 'connection lost') => Object.assign(new Error(message), { code: 'ECONNRESET' });

function context(checkAbort: () => void = () => {}) {
  const warnings: string[] = [];
  const report: Reporter = { phase() {}, progress() {}, info() {}, warn: (m) => warnings.push(m), close() {} };
  const ctx = { isTransient: (e: unknown) => (e as { code?: string }).code === 'ECONNRESET', report, checkAbort: vi.fn(checkAbort) };
  return { ctx, warnings };
}

/** A promise's outcome, read later without an unhandled rejection in between. */
function settle<T>(p: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  return p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

beforeEach(() => {
  vi.spyOn(Math, 'random').mockReturnValue(0);
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('backoffMs', () => {
  it('doubles from the base, with jitter between half and all of the step, up to the cap', () => {
    expect([0, 1, 2, 3, 5, 6, 10].map((a) => backoffMs(a))).toEqual([125, 250, 500, 1000, 4000, 5000, 5000]);
    vi.mocked(Math.random).mockReturnValue(0.5);
    expect([0, 1, 6].map((a) => backoffMs(a))).toEqual([188, 375, 7500]);
    vi.mocked(Math.random).mockReturnValue(1);
    expect([0, 6, 30].map((a) => backoffMs(a))).toEqual([250, 10_000, 10_000]);
    expect(backoffMs(2, 100, 300)).toBe(300);
  });
});

describe('retryTransient', () => {
  it('retries a lost connection after a backoff, and returns what the step returns', async () => {
    vi.useFakeTimers();
    const { ctx, warnings } = context();
    const step = vi.fn<() => Promise<string>>().mockRejectedValueOnce(transient()).mockRejectedValueOnce(transient('reset')).mockResolvedValue('ok');
    const result = settle(retryTransient(ctx, 'copy chunk', step));
    await vi.advanceTimersByTimeAsync(249);
    expect(step).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(step).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(500);
    expect(await result).toEqual({ value: 'ok' });
    expect(step).toHaveBeenCalledTimes(3);
    expect(ctx.checkAbort).toHaveBeenCalledTimes(2);
    expect(warnings).toEqual([
      'copy chunk failed (connection lost); retrying in 250 ms (retry 1 of 8, then the run stops)',
      'copy chunk failed (reset); retrying in 500 ms (retry 2 of 8, then the run stops)',
    ]);
  });

  it('throws anything else at once', async () => {
    const { ctx, warnings } = context();
    const error = new Error('syntax error');
    const step = vi.fn<() => Promise<void>>().mockRejectedValue(error);
    expect(await settle(retryTransient(ctx, 'apply', step))).toEqual({ error });
    expect(step).toHaveBeenCalledTimes(1);
    expect(warnings).toEqual([]);
  });

  it('gives up after 8 retries, with the last error', async () => {
    vi.useFakeTimers();
    const { ctx, warnings } = context();
    const last = transient('still down');
    const step = vi.fn<() => Promise<void>>();
    for (let i = 0; i < 8; i++) step.mockRejectedValueOnce(transient());
    step.mockRejectedValueOnce(last);
    const result = settle(retryTransient(ctx, 'checksum', step));
    // 250 + 500 + 1000 + 2000 + 4000 + 5000 * 3 (capped at 10 s, halved by the jitter pinned at 0)
    await vi.advanceTimersByTimeAsync(22_749);
    expect(step).toHaveBeenCalledTimes(8);
    await vi.advanceTimersByTimeAsync(1);
    expect(await result).toEqual({ error: last });
    expect(step).toHaveBeenCalledTimes(9);
    expect(warnings).toHaveLength(8);
  });

  it('stops at the abort check after a backoff', async () => {
    vi.useFakeTimers();
    const aborted = new AbortedError('operator abort');
    const { ctx } = context(() => {
      throw aborted;
    });
    const step = vi.fn<() => Promise<void>>().mockRejectedValue(transient());
    const result = settle(retryTransient(ctx, 'copy', step));
    await vi.advanceTimersByTimeAsync(250);
    expect(await result).toEqual({ error: aborted });
    expect(step).toHaveBeenCalledTimes(1);
  });
});

describe('retryLockTimeouts', () => {
  function policy(attempts: number, advice?: string) {
    const waits: number[] = [];
    const p: LockAttempts & { starting: ReturnType<typeof vi.fn>; failed: ReturnType<typeof vi.fn> } = {
      what: 'cut-over',
      attempts,
      starting: vi.fn(),
      failed: vi.fn(),
      wait: async (ms: number) => {
        waits.push(ms);
      },
      ...(advice ? { advice } : {}),
    };
    return { p, waits };
  }

  it('tries a bounded number of times, then says what the operator can change', async () => {
    const { ctx, warnings } = context();
    const { p, waits } = policy(3);
    const fn = vi.fn<() => Promise<void>>().mockRejectedValue(new LockTimeoutError('Lock wait timeout exceeded'));
    const { error } = await settle(retryLockTimeouts(ctx, p, fn));
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toBe(
      'cut-over failed 3 times: Lock wait timeout exceeded; the original table is unchanged and serving ' +
        '(raise --lock-timeout-ms or --cutover-attempts, or retry when the table is less busy)',
    );
    expect(fn).toHaveBeenCalledTimes(3);
    expect(p.starting.mock.calls).toEqual([[1], [2], [3]]);
    expect(p.failed).toHaveBeenCalledTimes(3);
    expect(waits).toEqual([125, 250]);
    expect(ctx.checkAbort).toHaveBeenCalledTimes(3);
    expect(warnings).toEqual([
      'cut-over attempt 1 failed (Lock wait timeout exceeded); retrying in 125 ms',
      'cut-over attempt 2 failed (Lock wait timeout exceeded); retrying in 250 ms',
    ]);
  });

  it('uses the advice given', async () => {
    const { ctx } = context();
    const { p } = policy(1, 'raise --revert-lock-timeout-ms');
    const { error } = await settle(retryLockTimeouts(ctx, p, () => Promise.reject(new LockTimeoutError('busy'))));
    expect((error as Error).message).toBe(
      'cut-over failed 1 times: busy; the original table is unchanged and serving (raise --revert-lock-timeout-ms, or retry when the table is less busy)',
    );
  });

  it('returns once an attempt has its locks', async () => {
    const { ctx } = context();
    const { p, waits } = policy(5);
    const fn = vi.fn<() => Promise<number>>().mockRejectedValueOnce(new LockTimeoutError('busy')).mockResolvedValue(42);
    expect(await retryLockTimeouts(ctx, p, fn)).toBe(42);
    expect(p.failed).toHaveBeenCalledTimes(1);
    expect(waits).toEqual([125]);
  });

  it('undoes a failed attempt and throws any other error unchanged', async () => {
    const { ctx } = context();
    const { p, waits } = policy(5);
    const error = new Error('table is gone');
    expect(await settle(retryLockTimeouts(ctx, p, () => Promise.reject(error)))).toEqual({ error });
    expect(p.failed).toHaveBeenCalledTimes(1);
    expect(waits).toEqual([]);
  });

  it('does not start an attempt once aborted', async () => {
    const aborted = new AbortedError('stop');
    const { ctx } = context(() => {
      throw aborted;
    });
    const { p } = policy(3);
    const fn = vi.fn<() => Promise<void>>();
    expect(await settle(retryLockTimeouts(ctx, p, fn))).toEqual({ error: aborted });
    expect(fn).not.toHaveBeenCalled();
    expect(p.starting).not.toHaveBeenCalled();
  });
});

describe('retryUniqueConflicts', () => {
  it('catches up and retries a conflict that clears', async () => {
    const catchUp = vi.fn(async () => {});
    const step = vi
      .fn<() => Promise<string>>()
      .mockRejectedValueOnce(new UniqueViolationError('dup'))
      .mockRejectedValueOnce(new UniqueViolationError('dup'))
      .mockResolvedValue('copied');
    expect(await retryUniqueConflicts(step, catchUp)).toBe('copied');
    expect(catchUp).toHaveBeenCalledTimes(2);
  });

  it('passes any other error on without catching up', async () => {
    const catchUp = vi.fn(async () => {});
    const error = new Error('deadlock');
    expect(await settle(retryUniqueConflicts(() => Promise.reject(error), catchUp))).toEqual({ error });
    expect(catchUp).not.toHaveBeenCalled();
  });

  it('after five quick catch-ups backs off until the patience is spent, then blames the data', async () => {
    vi.useFakeTimers();
    const catchUp = vi.fn(async () => {});
    const step = vi.fn<() => Promise<void>>().mockRejectedValue(new UniqueViolationError("Duplicate entry 'a' for key 'u'"));
    const began = Date.now();
    const result = settle(retryUniqueConflicts(step, catchUp));
    await vi.advanceTimersByTimeAsync(0);
    expect(catchUp).toHaveBeenCalledTimes(5); // attempts 0-4 catch up at once; the sixth waits first
    expect(step).toHaveBeenCalledTimes(6);
    await vi.runAllTimersAsync();
    const { error } = await result;
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toBe("the rows violate a unique key of the new schema: Duplicate entry 'a' for key 'u'");
    // Sleeps of 50, 100, 200, 400, 800, 1600, then 2000 (the cap) until 10 s have passed.
    expect(Date.now() - began).toBe(11_150);
    expect(catchUp).toHaveBeenCalledTimes(15);
    expect(step).toHaveBeenCalledTimes(16);
  });
});

describe('uniqueViolation', () => {
  it("makes a unique conflict the operator's, and leaves any other error alone", () => {
    const made = uniqueViolation(new UniqueViolationError('dup key'));
    expect(made).toBeInstanceOf(UserError);
    expect((made as UserError).message).toBe('the rows violate a unique key of the new schema: dup key');
    const other = new Error('x');
    expect(uniqueViolation(other)).toBe(other);
  });
});
