import { sleep } from '../../engine/retry/backoff.js';
import type { RunSamples } from '../../run/run-samples.js';
import type { LockProbe } from '../../engine/types.js';
import { CLOSING, ignoreFailure } from '../../engine/errors.js';

const EVERY_MS = 1000;
const STOP_WAIT_MS = 2000;

/**
 * The report's latency probe: once a second, the statement that stands in for a writer at the
 * cut-over (it takes the lock an application's write takes first, and reads no row), timed into the
 * samples, so a stall shows where it happened. During a swap (the cut-over, a revert) the writers'
 * stand-in (writer-wait.ts) probes every 10 ms and times into the same samples, so this one stands aside.
 */
export class TableProbe {
  private stopped = false;
  /** Ends the wait between probes: a run that is done must not wait out the second. */
  private wake: () => void = () => {};
  private readonly running: Promise<void>;

  constructor(
    private readonly probe: LockProbe,
    private readonly samples: RunSamples,
    private readonly standAside: () => boolean,
  ) {
    this.running = this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      if (!this.standAside()) {
        const done = this.samples.timeProbe();
        // A failed probe (a lost connection) still took the time it took; the next one reconnects.
        await this.probe.probe().catch(ignoreFailure('a failed probe still took its time, which is what is measured'));
        done();
      }
      if (this.stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, EVERY_MS);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /**
   * Closes its connection once the probe in flight ends, waiting for that only briefly: a probe
   * queued behind somebody else's lock (a LOCK TABLES that made the run fail) must not hold the exit.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    const ended = await Promise.race([this.running.then(() => true), sleep(STOP_WAIT_MS).then(() => false)]);
    const closing = this.probe.close().catch(ignoreFailure(CLOSING));
    if (ended) await closing;
  }
}
