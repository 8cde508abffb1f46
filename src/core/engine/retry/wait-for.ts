import { sleep } from './backoff.js';

export interface Patience {
  /** How long the looks go on, from the call. */
  withinMs: number;
  /** The pause between two looks. */
  everyMs: number;
}

/**
 * Waiting for a condition rather than past an error: `look` is read, and read again after a pause,
 * until `done` holds for what it read or the time is up. Returns the last reading either way, so the
 * caller can tell the two apart and still use what was seen at the end. A look is always made after
 * the last pause, so what changed during it is seen.
 */
export async function waitFor<T>(look: () => Promise<T>, done: (seen: T) => boolean, patience: Patience): Promise<T> {
  const until = Date.now() + patience.withinMs;
  for (;;) {
    const seen = await look();
    if (done(seen) || Date.now() >= until) return seen;
    await sleep(patience.everyMs);
  }
}
