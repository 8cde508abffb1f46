import { backoffMs } from '../engine/retry/backoff.js';
import { AbortedError, LockTimeoutError, UserError } from '../engine/errors.js';
import { retryBounded, sleepThenCheck, type RetryContext } from '../engine/retry/retry.js';
import type { EngineInPlace } from '../engine/ports/in-place.js';
import type { InPlaceStep } from '../engine/ports/in-place.js';
import type { Reporter } from '../report/reporter.js';

/** A retry's context whose reporter also tells each step made. */
export type InPlaceContext = RetryContext & { report: Reporter };

export interface InPlaceLimits {
  /** Longest wait for a step's locks per attempt: writers queue behind a waiting DDL, so it is short. */
  lockTimeoutMs: number;
  /** Attempts per step (the cut-over's), with backoff and jitter between them. */
  attempts: number;
  /** Longest wait of a step for older transactions to end (an online index build's); not a lock wait. */
  snapshotWaitMs: number;
}

/** Undo statements get a few tries of their own: they wait for the same locks. */
const UNDO_ATTEMPTS = 5;

/**
 * Runs the in-place steps in order. A step whose lock is not free within the timeout is undone (a
 * CONCURRENTLY build that gave up leaves an INVALID index) and tried again after a backoff. A step
 * that fails for any other reason, or runs out of attempts, stops the run, and the undo of that
 * step and of every step before it runs, latest first: the engines order the steps so that what
 * came before a failure is only additions their undo removes (all or nothing, as a native ALTER).
 * The message says "nothing was changed" only when every step made was undone. Returns the
 * statements run.
 */
export async function runInPlace(engine: EngineInPlace, steps: InPlaceStep[], limits: InPlaceLimits, ctx: InPlaceContext): Promise<string[]> {
  const made: InPlaceStep[] = [];
  for (const step of steps) {
    try {
      // Inside: an interrupted run undoes what it made too.
      ctx.checkAbort();
      await attempt(engine, step, limits, ctx);
    } catch (error) {
      const undone: string[] = [];
      const stays: string[] = [];
      for (const s of [step, ...made.reverse()]) {
        const failed = await undo(engine, s, limits);
        if (failed) stays.push(failed);
        else if (s.undo.length) undone.push(...s.undo);
        else if (s !== step) stays.push(...s.sql);
      }
      const outcome = stays.length ? `still made: ${stays.join('; ')}` : 'nothing was changed';
      const message = `in place, "${step.what}" failed: ${(error as Error).message}${undone.length ? `; undone (${undone.join('; ')})` : ''}; ${outcome}`;
      throw error instanceof AbortedError ? new AbortedError(message) : new UserError(message);
    }
    made.push(step);
    ctx.report.info(`in place: ${step.what}`, { inPlaceStep: step.sql });
  }
  return made.flatMap((s) => s.sql);
}

function attempt(engine: EngineInPlace, step: InPlaceStep, limits: InPlaceLimits, ctx: RetryContext): Promise<void> {
  return retryBounded(
    {
      attempts: limits.attempts,
      retryable: (error) => error instanceof LockTimeoutError,
      pauseMs: (n) => backoffMs(n - 1),
      retrying: async (error, n, wait) => {
        if (step.undo.length) await undo(engine, step, limits);
        ctx.report.warn(`in place, "${step.what}" attempt ${n} failed (${(error as Error).message}); retrying in ${wait} ms`);
      },
      wait: sleepThenCheck(() => ctx.checkAbort()),
      exhausted: (error, n) =>
        new LockTimeoutError(`${(error as Error).message}, ${n} times (raise --lock-timeout-ms or --cutover-attempts, or retry when the table is less busy)`),
    },
    () =>
      engine.runInPlaceStep(step, limits.lockTimeoutMs, {
        snapshotWaitMs: limits.snapshotWaitMs,
        report: (message) => ctx.report.warn(`in place, "${step.what}": ${message}`),
      }),
  );
}

/** Best effort, and said so: returns what could not be undone and how to do it by hand ('' when all was). */
async function undo(engine: EngineInPlace, step: InPlaceStep, limits: InPlaceLimits): Promise<string> {
  const retries = { attempts: UNDO_ATTEMPTS, retryable: () => true, pauseMs: (n: number) => backoffMs(n - 1) };
  for (const sql of step.undo) {
    const run = () =>
      engine.runInPlaceStep({ what: 'undo', sql: [sql], transaction: false, undo: [] }, limits.lockTimeoutMs, {
        snapshotWaitMs: limits.snapshotWaitMs,
        report: () => {},
      });
    const failed = await retryBounded(retries, run).then(
      () => '',
      (error: unknown) => `"${step.what}": could NOT undo it (${(error as Error).message}): run ${sql}`,
    );
    if (failed) return failed;
  }
  return '';
}
