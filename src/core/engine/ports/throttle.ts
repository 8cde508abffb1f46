import type { Probes } from '../primitives.js';

export interface ProbeOptions {
  heartbeat?: boolean;
}

/** What the throttler reads to hold the copy back: the engine measures, core's throttler decides. */
export interface MigrationThrottle {
  /**
   * Probes for throttling: heartbeat-based replica lag for `replicas` (URLs), and server load.
   * `heartbeat`: write the heartbeat even with no replica, for its writes' times (`Probes.timeWrites`).
   */
  openProbes(replicas: string[], options?: ProbeOptions): Promise<Probes>;
}
