import type { CleanupOptions } from './ports/cleanup.js';

/**
 * What a migration's cleanup removes, decided here once for every engine: each engine's `cleanup`
 * carries these out in its own order, with its own statements, and adds only what its server alone
 * leaves (foreign keys to put back, triggers that served its swap).
 */
export interface CleanupSteps {
  /** The shadow: the run did not cut over, so its copy is of no use. */
  shadow: boolean;
  /** The old table: asked for, after a forward run's swap, and never while a revert window follows (it is then the window's shadow). */
  old: boolean;
  /**
   * Where the revert window's capture is removed from: the shadow, which it was installed on, when the
   * run did not cut over; the new table, where it went with the shadow at the swap, when no window
   * follows (an engine may have nothing there to remove); null while the window follows, and always
   * for the way back, whose own change source the capture is.
   */
  reverseCapture: 'shadow' | 'table' | null;
  /** The checkpoint and the run's probes (their heartbeat): a revert window that follows reads both. */
  checkpoint: boolean;
}

/**
 * The steps of a cleanup, or null when nothing at all is removed: the way back (`reverse`) that did
 * not end leaves its triggers, log and checkpoint for a resumed run to carry the window on with.
 */
export function cleanupSteps(reverse: boolean, options: CleanupOptions): CleanupSteps | null {
  if (reverse && !options.cutOver) return null;
  const keep = options.keepCheckpoint === true;
  if (reverse) return { shadow: false, old: false, reverseCapture: null, checkpoint: !keep };
  return {
    shadow: !options.cutOver,
    old: options.cutOver && options.dropOld && !keep,
    reverseCapture: !options.cutOver ? 'shadow' : keep ? null : 'table',
    checkpoint: !keep,
  };
}
