import type { Probes } from '../primitives.js';

/** What the throttler reads to hold the copy back: the engine measures, core's throttler decides. */
export interface MigrationThrottle {
  /** Probes for throttling: heartbeat-based replica lag for `replicas` (URLs), and server load. */
  openProbes(replicas: string[]): Promise<Probes>;
}
