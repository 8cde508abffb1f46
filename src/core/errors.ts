/**
 * A UserError is a problem the operator can fix (bad flag, unsafe table, missing privilege).
 * The CLI prints its message as one line and exits non-zero, without a stack trace.
 * Anything else is a bug or an outage and is reported with its stack.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/** The exit code of a `--resume` that found no checkpoint: the queue's runner tells it from any other refusal by it alone. */
export const EXIT_NO_CHECKPOINT = 5;

/** `--resume` found nothing to resume (the interrupted run ended, or never saved a checkpoint). */
export class NoCheckpointError extends UserError {
  constructor(message: string) {
    super(message, EXIT_NO_CHECKPOINT);
    this.name = 'NoCheckpointError';
  }
}

/** The cut-over could not get its locks within the lock timeout; the caller may retry. */
export class LockTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LockTimeoutError';
  }
}

/**
 * A swap's session lost (killed by someone, a server restart, the network) before its point of no
 * return: nothing was swapped and the attempt undid what it made, so it is one failed attempt, retried
 * as a lock not had in time is. Lost after that point the outcome is unknown, and the run stops for a
 * resume to find out which it was.
 */
export function lostSwapSession(error: unknown): LockTimeoutError {
  return new LockTimeoutError(`cut-over: the session was lost (${(error as Error).message})`);
}

/** The run was asked to stop (Ctrl-C, abort command); helper objects are cleaned up. */
export class AbortedError extends UserError {
  constructor(reason: string) {
    super(`aborted: ${reason}`, 3);
    this.name = 'AbortedError';
  }
}

/**
 * A write to the shadow broke one of its unique keys. During the copy this can be transient (a unique
 * value moved from one row to another, and the shadow row still holding it awaits its change), so the
 * runner catches up and retries before calling it a real violation of the new schema.
 */
export class UniqueViolationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UniqueViolationError';
  }
}

/** A readable reason; a refused connection to a name with several addresses is an AggregateError with an empty message. */
export function describeError(error: unknown): string {
  const e = error as { message?: string; code?: string };
  return e.message || e.code || String(error);
}

/**
 * A swap that stopped where only `--resume` can tell or finish what was made: nothing is cleaned up,
 * every table keeping its shadow, capture and checkpoint for it.
 */
export class UnfinishedSwapError extends UserError {}

/**
 * A swap's session lost past its point of no return (a RENAME sent, a COMMIT sent): whether the swap
 * was made is not known yet. `--resume` looks at the tables, and finishes the run either way.
 */
export class UnknownSwapError extends UnfinishedSwapError {
  constructor(error: unknown) {
    super(
      `cut-over: the session was lost while the swap was being made (${(error as Error).message}); whether it was made is not known yet: ` +
        'run it again with --resume, which looks and finishes the swap or the run',
    );
    this.name = 'UnknownSwapError';
  }
}
