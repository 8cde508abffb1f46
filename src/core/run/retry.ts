import { backoffMs, sleep } from './backoff.js';
import { LockTimeoutError, UniqueViolationError, UserError } from '../engine/errors.js';
import type { Reporter } from '../report/reporter.js';

/** A lost connection is retried this many times, with backoff, before the run gives up. */
const TRANSIENT_RETRIES = 8;

/**
 * The three ways a step can fail and still be worth repeating, each with its own policy and its own
 * error type: a lost connection (backoff), a lock not had in time (backoff, bounded attempts, the
 * stream applied while waiting) and a unique conflict that may be the stream's, not the data's.
 */
export interface RetryContext {
  isTransient(error: unknown): boolean;
  report: Reporter;
  checkAbort(): void;
}

/** A lost connection (server restart, network blip, killed session) is retried with backoff, not fatal. */
export async function retryTransient<T>(ctx: RetryContext, what: string, step: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await step();
    } catch (error) {
      if (!ctx.isTransient(error) || attempt >= TRANSIENT_RETRIES) throw error;
      const wait = backoffMs(attempt, 500);
      ctx.report.warn(`${what} failed (${(error as Error).message}); retrying in ${wait} ms`);
      await sleep(wait);
      ctx.checkAbort();
    }
  }
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
export async function retryLockTimeouts<T>(ctx: RetryContext, policy: LockAttempts, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    ctx.checkAbort();
    policy.starting(attempt + 1);
    try {
      return await fn();
    } catch (error) {
      policy.failed();
      if (!(error instanceof LockTimeoutError)) throw error;
      if (attempt + 1 >= policy.attempts) {
        throw new UserError(
          `${policy.what} failed ${attempt + 1} times: ${error.message}; the original table is unchanged and serving ` +
            `(${policy.advice ?? 'raise --lock-timeout-ms or --cutover-attempts'}, or retry when the table is less busy)`,
        );
      }
      const wait = backoffMs(attempt);
      ctx.report.warn(`${policy.what} attempt ${attempt + 1} failed (${error.message}); retrying in ${wait} ms`);
      await policy.wait(wait);
    }
  }
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
