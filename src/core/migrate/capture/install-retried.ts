import { backoffMs, sleep } from '../../run/backoff.js';
import { LockTimeoutError, UserError } from '../../engine/errors.js';
import type { OpenOptions } from '../../engine/ports/change-source.js';

/**
 * CREATE TRIGGER queues behind every open transaction on the table, and everything after queues
 * behind it: short waits, retried with backoff, as the cut-over is. `what` names the triggers for messages.
 */
export async function installRetried(install: (lockTimeoutMs: number) => Promise<void>, what: string, options: OpenOptions): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await install(options.lockTimeoutMs);
    } catch (error) {
      if (!(error instanceof LockTimeoutError)) throw error;
      if (attempt >= options.attempts) {
        throw new UserError(
          `creating ${what} failed ${attempt} times (${error.message}); those made are removed again: ` +
            'raise --lock-timeout-ms or --cutover-attempts, or retry when the table is less busy',
        );
      }
      const wait = backoffMs(attempt - 1, 250);
      options.warn(`creating ${what}: ${error.message}; retrying in ${wait} ms`);
      await sleep(wait);
    }
  }
}
