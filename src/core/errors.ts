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

/** The cut-over could not get its locks within the lock timeout; the caller may retry. */
export class LockTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LockTimeoutError';
  }
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
 * A set's swap made for some of its tables and not the others (a RENAME that failed after the
 * unlock). Nothing is cleaned up: every table keeps its shadow, capture and checkpoint, and
 * `--resume` finishes the swap of the rest (the swapped ones only clean up).
 */
export class IncompleteSwapError extends UserError {
  constructor(swapped: string[], left: string[]) {
    super(`the set was swapped only in part (${swapped.join(', ')} swapped, ${left.join(', ')} not): run it again with --resume to swap the rest`);
    this.name = 'IncompleteSwapError';
  }
}
