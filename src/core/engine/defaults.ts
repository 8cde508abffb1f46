/**
 * The defaults an engine sizes itself by, so an engine need not read the run's configuration
 * (core/run/config.ts builds the run's defaults from these).
 */

/** The most copy sessions a run opens; each engine's pool has room for them beside the applier's. */
export const MAX_COPY_THREADS = 8;

/**
 * A chunk's target duration. Short: the copy takes no locks on the original, but a long chunk's
 * binlog write delays the commits grouped behind it. In bench/, 500 ms chunks raised the longest
 * write stall from 142 ms to 242 ms for no clear gain in wall time. A backfill's batch holds its
 * rows' locks as long.
 */
export const DEFAULT_CHUNK_TIME_MS = 100;

/** How long a step waits for transactions older than it (`--snapshot-wait-ms`) when its caller gives no bound. */
export const DEFAULT_SNAPSHOT_WAIT_MS = 600_000;
