import { backoffMs, sleep } from '../backoff.js';
import { LockTimeoutError, UserError } from '../errors.js';
import type { RetryContext } from '../retry.js';
import type { Engine } from '../types.js';
import type { InPlaceStep } from './types.js';

export interface InPlaceLimits {
  /** Longest wait for a step's locks per attempt: writers queue behind a waiting DDL, so it is short. */
  lockTimeoutMs: number;
  /** Attempts per step (the cut-over's), with backoff and jitter between them. */
  attempts: number;
}

/** Undo statements get a few tries of their own: they wait for the same locks. */
const UNDO_ATTEMPTS = 5;

/**
 * Runs the in-place steps in order. A step whose lock is not free within the timeout is undone (a
 * CONCURRENTLY build that gave up leaves an INVALID index) and tried again after a backoff. A step
 * that fails for any other reason, or runs out of attempts, is undone and the run stops, naming
 * what was already made: each step leaves the table in a state a native ALTER could have left.
 * Returns the statements run.
 */
export async function runInPlace(engine: Engine, steps: InPlaceStep[], limits: InPlaceLimits, ctx: RetryContext): Promise<string[]> {
  const made: string[] = [];
  for (const step of steps) {
    ctx.checkAbort();
    try {
      await attempt(engine, step, limits, ctx);
    } catch (error) {
      const undone = await undo(engine, step, limits);
      const before = made.length ? `already made: ${made.join('; ')}` : 'nothing was changed';
      throw new UserError(`in place, "${step.what}" failed: ${(error as Error).message}${undone}; ${before}`);
    }
    made.push(...step.sql);
    ctx.report.info(`in place: ${step.what}`, { inPlaceStep: step.sql });
  }
  return made;
}

async function attempt(engine: Engine, step: InPlaceStep, limits: InPlaceLimits, ctx: RetryContext): Promise<void> {
  for (let n = 1; ; n++) {
    try {
      return await engine.runInPlaceStep(step, limits.lockTimeoutMs);
    } catch (error) {
      if (!(error instanceof LockTimeoutError)) throw error;
      if (n >= limits.attempts) {
        throw new LockTimeoutError(`${error.message}, ${n} times (raise --lock-timeout-ms or --cutover-attempts, or retry when the table is less busy)`);
      }
      if (step.undo.length) await undo(engine, step, limits);
      const wait = backoffMs(n - 1);
      ctx.report.warn(`in place, "${step.what}" attempt ${n} failed (${error.message}); retrying in ${wait} ms`);
      await sleep(wait);
      ctx.checkAbort();
    }
  }
}

/** Best effort, and said so: the message names what could not be undone. */
async function undo(engine: Engine, step: InPlaceStep, limits: InPlaceLimits): Promise<string> {
  if (step.undo.length === 0) return '';
  for (const sql of step.undo) {
    for (let n = 1; ; n++) {
      try {
        await engine.runInPlaceStep({ what: 'undo', sql: [sql], transaction: false, undo: [] }, limits.lockTimeoutMs);
        break;
      } catch (error) {
        if (n >= UNDO_ATTEMPTS) return `; could NOT undo it (${(error as Error).message}): run ${sql}`;
        await sleep(backoffMs(n - 1));
      }
    }
  }
  return `; undone (${step.undo.join('; ')})`;
}
