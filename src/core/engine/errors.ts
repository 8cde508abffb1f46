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
 * A stop that leaves everything the run made (shadow, capture, checkpoint) for `--resume`: the
 * runner cleans up nothing, as after a crash.
 */
export class KeptForResumeError extends UserError {}

/**
 * A swap that stopped where only `--resume` can tell or finish what was made: nothing is cleaned up,
 * every table keeping its shadow, capture and checkpoint for it.
 */
export class UnfinishedSwapError extends KeptForResumeError {}

/**
 * The server ran out of disk space. Hours of copy are worth keeping for when there is room again,
 * so nothing is dropped; the line names the other way, `cleanup`, which gives the space back now.
 */
export class DiskFullError extends KeptForResumeError {
  /** `kept`: what the run leaves for its resume, and the other way out, in the command's words (a migration's by default). */
  constructor(
    error: unknown,
    phase: string,
    kept = 'what it made (the shadow table, the change capture, the checkpoint): make room and run it again with --resume, ' +
      'or run shadowcut cleanup to drop them and give their space back',
  ) {
    super(`the server ran out of disk space in the ${phase} (${(error as Error).message.split('\n')[0]}): the run stopped and keeps ${kept}`);
    this.name = 'DiskFullError';
  }
}

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

/** Where dropped failures are told, with their reasons (`--verbose`); nowhere by default. */
let droppedSink: ((line: string) => void) | null = null;

/** Tells every failure dropped from now on to `sink` (the CLI's `--verbose`), or to nowhere again with null. */
export function traceDroppedFailures(sink: ((line: string) => void) | null): void {
  droppedSink = sink;
}

/**
 * The handler of a failure that may be dropped, for `.catch`: `why` says in plain words why it may
 * be dropped there, so that no failure is dropped without a reason a reader can check, and with
 * `--verbose` the reason and the error are told as they happen. It returns nothing and never throws.
 */
export function ignoreFailure(why: string): (error: unknown) => void {
  return (error) => droppedSink?.(`dropped a failure (${describeError(error)}): ${why}`);
}

/** `ignoreFailure`, for a `.catch` that stands in a value for what failed. */
export function failedAs<T>(value: T, why: string): (error: unknown) => T {
  const drop = ignoreFailure(why);
  return (error) => (drop(error), value);
}

/** The reasons many places share; a reason that fits one place only is written there. */
export const ROLLBACK_AFTER_FAILURE = 'a rollback after a failed statement: the error that led here is what matters';
export const CLEANUP_AFTER_FAILURE = 'cleaning up after a failure: the error that led here is what matters, and is thrown on';
export const CLOSING = 'closing what is no longer used: the outcome is settled already, and nothing more is read from it';
export const FAILURE_HOOK = "the operator's failure hook, run as the run fails: the run's own error is what is thrown";
export const SEEN_WHERE_AWAITED = 'only marks the rejection handled: the promise is kept, and its failure is seen where it is awaited';
export const SESSION_RESET =
  'a session setting put back before the connection goes back to the pool: it fails only on a broken connection, which the pool does not lend out again';
export const READ_ONLY_END = 'ends a read-only snapshot: nothing was written, and a connection that cannot end it is broken and not lent out again';
export const ALWAYS_ROLLED_BACK =
  'ends a transaction that is always rolled back: it fails only on a broken connection, whose transaction the server rolls back itself';
