import { backoffMs } from '../retry/backoff.js';
import { retryBounded } from '../retry/retry.js';
import { LockTimeoutError, UserError } from '../errors.js';
import type { OpenOptions } from '../ports/change-source.js';

/**
 * CREATE TRIGGER queues behind every open transaction on the table, and everything after queues
 * behind it: short waits, retried with backoff, as the cut-over is. `what` names the triggers for messages.
 */
export function installRetried(install: (lockTimeoutMs: number) => Promise<void>, what: string, options: OpenOptions): Promise<void> {
  return retryBounded(
    {
      attempts: options.attempts,
      retryable: (error) => error instanceof LockTimeoutError,
      pauseMs: (n) => backoffMs(n - 1, 250),
      retrying: (error, _n, wait) => options.warn(`creating ${what}: ${(error as Error).message}; retrying in ${wait} ms`),
      exhausted: (error, n) =>
        new UserError(
          `creating ${what} failed ${n} times (${(error as Error).message}); those made are removed again: ` +
            'raise --lock-timeout-ms or --cutover-attempts, or retry when the table is less busy',
        ),
    },
    () => install(options.lockTimeoutMs),
  );
}
