import { backoffMs, sleep } from './backoff.js';
import { LockTimeoutError, UniqueViolationError, UserError } from '../errors.js';

/**
 * The policies for trying a step again after it failed, so that which errors, how many attempts, the
 * pause between them and the message at the end are stated once, beside the step:
 * - `retryBounded`: the general one. Used directly where a step has errors and a bound of its own: a
 *   short DDL's or a probe's lock not had in time, the Galera gate's unseal, an apply's lock conflicts,
 *   the deferred indexes' build, the preflight's proofs on a lost session, a backfill's batch (looked
 *   up in its checkpoint after a lost connection), the capture's install and removal, the in-place
 *   steps and their undo;
 * - `retryTransient`: a lost connection, with backoff and an abort check, for the run's steps;
 * - `retryLockTimeouts`: a lock not had in time, a bounded number of attempts with backoff, each
 *   attempt undone when it fails and the stream applied while waiting (the cut-over and its kind);
 * - `retryUniqueConflicts`: a unique conflict that may be the stream's, not the data's: caught up on
 *   at once a few times, then given time before it is taken to be the data's. Its bound is a time,
 *   not a count, and it catches up between attempts, so it is a loop of its own.
 * Waiting for a condition rather than past an error is `waitFor` (wait-for.ts).
 */

/** A bounded retry. Attempts are numbered from 1. */
export interface Retries<T> {
  /** Attempts in all, the first one included. */
  attempts: number;
  /** Whether an attempt's error is worth another attempt; any other error ends the retry at once. */
  retryable(error: unknown): boolean;
  /** The pause after failed attempt `attempt`; none when absent. */
  pauseMs?(attempt: number): number;
  /** Before the pause after a failed attempt that will be tried again: a warning, or undoing what the attempt left. */
  retrying?(error: unknown, attempt: number, pauseMs: number): void | Promise<void>;
  /** How the pause is spent (default: a sleep); a caller's may apply the stream, or check for an abort after it. */
  wait?(ms: number): Promise<void>;
  /**
   * After the pause: whether the failed attempt had succeeded after all, with its value. A lost
   * connection may have lost only a commit's acknowledgement, and a write must not be made twice.
   */
  succeededAfterAll?(error: unknown): Promise<{ value: T } | null>;
  /** What is thrown for an error not worth retrying (default: that error). */
  refused?(error: unknown): unknown;
  /** What is thrown when the last attempt failed too (default: its error). */
  exhausted?(error: unknown, attempts: number): unknown;
}

/** `attempt` tried until it succeeds, fails with an error not worth retrying, or has used up its attempts. */
export async function retryBounded<T>(retries: Retries<T>, attempt: (n: number) => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      if (!retries.retryable(error)) throw retries.refused ? retries.refused(error) : error;
      if (n >= retries.attempts) throw retries.exhausted ? retries.exhausted(error, n) : error;
      const pause = retries.pauseMs?.(n);
      await retries.retrying?.(error, n, pause ?? 0);
      if (pause !== undefined) await (retries.wait ?? sleep)(pause);
      const done = await retries.succeededAfterAll?.(error);
      if (done) return done.value;
    }
  }
}

/** A pause that ends with a check for an abort, so a run asked to stop does not try again. */
export function sleepThenCheck(checkAbort: () => void): (ms: number) => Promise<void> {
  return async (ms) => {
    await sleep(ms);
    checkAbort();
  };
}

/** How a run's step is retried: what is transient on its server, where warnings go, how an abort is seen. */
export interface RetryContext {
  isTransient(error: unknown): boolean;
  /** Where a retry's warning goes: the run's reporter, of which a retry needs only this. */
  report: { warn(message: string): void };
  checkAbort(): void;
}

/** A lost connection is retried this many times, with backoff, before the run gives up. */
const TRANSIENT_RETRIES = 8;

/** A lost connection (server restart, network blip, killed session) is retried with backoff, not fatal. */
export function retryTransient<T>(ctx: RetryContext, what: string, step: () => Promise<T>): Promise<T> {
  return retryBounded(
    {
      attempts: TRANSIENT_RETRIES + 1,
      retryable: (error) => ctx.isTransient(error),
      pauseMs: (n) => backoffMs(n - 1, 500),
      retrying: (error, n, wait) =>
        ctx.report.warn(`${what} failed (${(error as Error).message}); retrying in ${wait} ms (retry ${n} of ${TRANSIENT_RETRIES}, then the run stops)`),
      wait: sleepThenCheck(() => ctx.checkAbort()),
    },
    step,
  );
}

export interface LockAttempts {
  what: string;
  attempts: number;
  /** Before each attempt, with its number (from 1). */
  starting(attempt: number): void;
  /** After a failed attempt: undo what its rolled-back transaction did. */
  failed(): void;
  /** The backoff between attempts; writers are not blocked during it. */
  wait(ms: number): Promise<void>;
  /** What the operator can change when every attempt failed (default: migrate's flags). */
  advice?: string;
}

/** A lock not had in time is tried again after a backoff, a bounded number of times. */
export function retryLockTimeouts<T>(ctx: RetryContext, policy: LockAttempts, fn: () => Promise<T>): Promise<T> {
  return retryBounded(
    {
      attempts: policy.attempts,
      retryable: (error) => error instanceof LockTimeoutError,
      pauseMs: (n) => backoffMs(n - 1),
      retrying: (error, n, wait) => ctx.report.warn(`${policy.what} attempt ${n} failed (${(error as Error).message}); retrying in ${wait} ms`),
      wait: (ms) => policy.wait(ms),
      exhausted: (error, n) =>
        new UserError(
          `${policy.what} failed ${n} times: ${(error as Error).message}; the original table is unchanged and serving ` +
            `(${policy.advice ?? 'raise --lock-timeout-ms or --cutover-attempts'}, or retry when the table is less busy)`,
        ),
    },
    async (n) => {
      ctx.checkAbort();
      policy.starting(n);
      try {
        return await fn();
      } catch (error) {
        policy.failed();
        throw error;
      }
    },
  );
}

/**
 * How long a value may stay on two rows of the original before the run takes it to be the data's.
 * The original has no such unique key yet, so the application may hold a value twice for a while
 * (set on one row in one transaction, cleared on the other in the next); the native ALTER, made at
 * one moment, would not see it. Longer than that, it is a duplicate the new schema cannot take.
 */
export const UNIQUE_PATIENCE_MS = 10_000;

/** Catch-ups before a unique conflict is taken to be the data's. */
const UNIQUE_RETRIES = 5;

/**
 * A unique conflict while copying or indexing may be transient: the shadow row holding the value
 * is stale and its change is in the stream. Catch up and retry. Under writers that keep moving
 * values, a value can move again between the catch-up and the retry, so once is not enough (chaos
 * seeds MySQL 66 and 96), and the original itself may hold a value twice for a while: past the
 * catch-ups, the retries back off until UNIQUE_PATIENCE_MS. A conflict that lasts longer is in the
 * data itself, and the new schema cannot hold it.
 */
export async function retryUniqueConflicts<T>(step: () => Promise<T>, catchUp: () => Promise<void>): Promise<T> {
  const began = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return await step();
    } catch (error) {
      if (!(error instanceof UniqueViolationError)) throw error;
      if (attempt >= UNIQUE_RETRIES) {
        if (Date.now() - began > UNIQUE_PATIENCE_MS) throw uniqueViolation(error);
        await sleep(Math.min(2000, backoffMs(attempt - UNIQUE_RETRIES, 100)));
      }
      await catchUp();
    }
  }
}

/** A conflict that survived catching up is the data's: the operator's to fix. */
export function uniqueViolation(error: unknown): unknown {
  return error instanceof UniqueViolationError ? new UserError(`the rows violate a unique key of the new schema: ${error.message}`) : error;
}
