import { sleep } from '../../engine/retry/backoff.js';
import type { RunSamples } from '../../run/run-samples.js';
import type { LockProbe } from '../../engine/types.js';

/** Pause between probes: a wait shorter than this may go unseen, which is below what a writer notices. */
const BETWEEN_PROBES_MS = 10;

/**
 * What an application's write to the table waited during the cut-over, as a writer would time it:
 * a statement that needs the lock such a write needs, sent over and over on a connection of its own
 * from before an attempt's lock request to after its end. It counts the time spent queued
 * behind the pending lock (behind a long transaction, for instance) and the failed attempts', which
 * the lock holder's own timer cannot see.
 */
export class WriterWait {
  private longest = 0;
  private stopped = false;
  private readonly running: Promise<void>;

  constructor(
    private readonly probe: LockProbe,
    private readonly samples?: RunSamples,
  ) {
    this.running = this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const began = performance.now();
      const timed = this.samples?.timeProbe();
      // A probe that fails (a lost connection) measured nothing; the next one tries again.
      const ok = await this.probe.probe().then(
        () => true,
        () => false,
      );
      timed?.(ok);
      if (ok) this.longest = Math.max(this.longest, performance.now() - began);
      await sleep(BETWEEN_PROBES_MS);
    }
  }

  /** Stops after the probe in flight (which ends when the lock is released) and gives the longest wait in ms. */
  async stop(): Promise<number> {
    this.stopped = true;
    await this.running;
    return Math.round(this.longest);
  }
}
