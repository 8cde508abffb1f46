import { setTimeout as sleep } from 'node:timers/promises';

/** Polls `check` until it holds, failing with `what` after `ms`: a wait for a condition, not a fixed sleep. */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}
