import { sleep } from '../../../../core/engine/retry/backoff.js';
import { ignoreFailure } from '../../../../core/engine/errors.js';

interface Queryable {
  query(sql: string): Promise<{ rows: Record<string, unknown>[] }>;
}

/** Past this many noted transactions, the visible ones are pruned without waiting for an apply. */
const PRUNE_AT = 1024;

/**
 * A walsender sends a transaction as soon as its commit record is flushed, but the transaction
 * becomes visible to new snapshots only when it leaves the proc array: a moment later, or much
 * later when its commit waits for a synchronous standby. An apply that read the original in
 * between would copy the row as it was before that commit, and the stream never sends the key
 * again (docs/invariants.md, invariant 3). So the stream notes the xid of every transaction that changed the
 * table, and an apply first waits until all of them are visible to a fresh snapshot.
 */
export class VisibilityGate {
  private pending = new Set<number>();
  private pruning = false;

  /** `db` prunes the set while no apply runs (a long throttle), so it stays small. */
  constructor(private readonly db: Queryable) {}

  /** A transaction (32-bit xid from pgoutput's BEGIN) delivered changes of the table. */
  note(xid: number): void {
    this.pending.add(xid);
    if (this.pending.size >= PRUNE_AT && !this.pruning) {
      this.pruning = true;
      void this.forgetVisible(this.db, [...this.pending])
        .catch(ignoreFailure('pruning only keeps the set small: what it could not forget is pruned on a later try'))
        .finally(() => (this.pruning = false));
    }
  }

  /**
   * Resolves once every noted transaction is visible to new snapshots taken through `db`. A
   * transaction that changed the table holds its lock on it until it is visible, so under our own
   * lock on the table this returns at once.
   */
  async settle(db: Queryable = this.db): Promise<void> {
    let waiting = [...this.pending];
    for (let attempt = 0; waiting.length > 0; attempt++) {
      if (attempt > 0) await sleep(Math.min(50, 2 ** attempt));
      waiting = await this.forgetVisible(db, waiting);
    }
  }

  /** Drops the visible ones among `xids`; returns the rest. */
  private async forgetVisible(db: Queryable, xids: number[]): Promise<number[]> {
    const { rows } = await db.query('SELECT pg_current_snapshot()::text AS s');
    const snapshot = parseSnapshot(String(rows[0].s));
    const still = xids.filter((xid) => !visible(snapshot, xid));
    const kept = new Set(still);
    for (const xid of xids) if (!kept.has(xid)) this.pending.delete(xid);
    return still;
  }
}

interface Snapshot {
  xmax: bigint;
  inProgress: Set<bigint>;
}

/** `xmin:xmax:xip,...` with 64-bit transaction ids. */
function parseSnapshot(text: string): Snapshot {
  const [, xmax, xip] = text.split(':');
  return { xmax: BigInt(xmax), inProgress: new Set(xip ? xip.split(',').map((x) => BigInt(x)) : []) };
}

/**
 * The 32-bit xid is placed in the epoch nearest the snapshot's xmax (a transaction seen by the
 * stream is never 2^31 ids away from it). A committed transaction is visible once it is below
 * xmax and not listed as in progress.
 */
function visible(snapshot: Snapshot, xid: number): boolean {
  const low = Number(snapshot.xmax & 0xffffffffn);
  const delta = (xid - low) | 0; // signed 32-bit distance from xmax
  const full = snapshot.xmax + BigInt(delta);
  return full < snapshot.xmax && !snapshot.inProgress.has(full);
}
