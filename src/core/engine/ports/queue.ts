import type { QueueStore } from '../../queue/types.js';

/** Where `queue` keeps its entries, on the server, so runners on several hosts share one queue. */
export interface EngineQueue {
  /** The queue of migrations that `queue run` works through (`shadowcut_queue`). */
  readonly queue: QueueStore;
}
