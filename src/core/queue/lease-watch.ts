import type { QueueRow } from '../engine/ports/queue.js';

/**
 * Entries running under another runner's lease that has not lapsed yet. That runner may be alive,
 * or its host may have died a moment ago: a runner that systemd restarts at once, or the other cron
 * host, finds the dead runner's claim still in force. A lease renewed while it is watched is a live
 * runner's, and is left to it; one that is not renewed is waited for until it lapses, when the entry
 * is an orphan the runner takes over (a lease is renewed every third of its length, so a live one is
 * seen renewed well before it would lapse).
 */
export class LeaseWatch {
  /** The lease each entry had when first seen. */
  private readonly first = new Map<number, string>();
  private readonly live = new Set<number>();

  /** Whether some entry's lease is still to be judged: until it is, the queue is not idle. */
  undecided(rows: QueueRow[], mine: (id: number) => boolean, now: Date): boolean {
    let waiting = false;
    for (const row of rows) {
      const held = !row.refused && row.state === 'running' && !mine(row.id) && row.leaseUntil !== null && new Date(row.leaseUntil) >= now;
      if (!held) {
        // Lapsed or ended: whoever claims the entry next is judged afresh.
        this.first.delete(row.id);
        this.live.delete(row.id);
        continue;
      }
      if (this.live.has(row.id)) continue;
      const seen = this.first.get(row.id);
      if (seen === undefined) this.first.set(row.id, row.leaseUntil!);
      if (seen !== undefined && seen !== row.leaseUntil) this.live.add(row.id);
      else waiting = true;
    }
    return waiting;
  }
}
