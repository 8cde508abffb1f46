import type { Connection, RowDataPacket } from 'mysql2/promise';
import { LockTimeoutError, ignoreFailure } from '../../../core/engine/errors.js';
import { retryBounded } from '../../../core/engine/retry/retry.js';
import { isLockWait, isStatementTimeout, LockedSession } from '../server/lock.js';
import { CLUSTER_ROW } from './gate-triggers.js';

/** One node's part of a closed gate: the holder in its transaction, and a session for causal reads there. */
interface HeldNode {
  name: string;
  holder: Connection;
  checker: Connection;
}

/** The gate held on every node: the catch-up's session on our node, and what ends the hold. */
export class ClosedGate {
  readonly session: LockedSession;
  private released = false;

  constructor(
    private readonly nodes: HeldNode[],
    private readonly conn: Connection,
    private readonly gate: string,
    private readonly lockTimeoutMs: number,
  ) {
    this.session = new LockedSession(conn);
  }

  /**
   * Closed for good until opened. Only once every node has applied the seal (a causal read there),
   * with its holder still in the transaction it began with (`in_transaction`: one ended by a KILL or a
   * deadlock would have let writers through), is the swap safe: from then on a holder that dies lets
   * its writers through to the gate's error only. Otherwise the attempt fails, and the caller unseals.
   */
  async seal(): Promise<void> {
    await this.conn.query(`UPDATE ${this.gate} SET closed = 1 WHERE node = ?`, [CLUSTER_ROW]);
    const seconds = Math.max(this.lockTimeoutMs, 1) / 1000;
    await Promise.all(
      this.nodes.map(async ({ name, holder, checker }) => {
        const [[seen]] = await checker.query<RowDataPacket[]>(
          `SET STATEMENT max_statement_time = ${seconds} FOR SELECT closed FROM ${this.gate} WHERE node = ?`,
          [CLUSTER_ROW],
        );
        const [[held]] = await holder.query<RowDataPacket[]>('SELECT @@in_transaction AS t');
        if (Number(seen?.closed) !== 1 || Number(held.t) !== 1) throw new LockTimeoutError(`the Galera gate's hold on node ${name} was lost before the swap`);
      }),
    ).catch((error: unknown) => {
      if (error instanceof LockTimeoutError) throw error;
      throw new LockTimeoutError(`the Galera gate could not confirm every node's hold before the swap (${(error as Error).message})`);
    });
  }

  /** The seal lifted. A writer that failed at the sealed gate may hold the row shared in its open transaction: a bounded wait, a few times. */
  async unseal(): Promise<void> {
    await retryBounded({ attempts: 5, retryable: isRetryable }, () =>
      this.conn.query(`SET STATEMENT max_statement_time = 2 FOR UPDATE ${this.gate} SET closed = 0 WHERE node = ?`, [CLUSTER_ROW]),
    );
  }

  /**
   * Lets the holders go (their writers pass, or fail on a sealed gate); the session stays. After the
   * RENAME (`swapped`), each only once its own node has applied it (a causal read on that node's
   * autocommit session): a node applies the total order on its own time, and one that had not would
   * let a writer through to its original.
   */
  async releaseHolders(swapped = false): Promise<void> {
    if (this.released) return;
    this.released = true;
    const settle = async ({ holder, checker }: HeldNode) => {
      if (swapped)
        await checker
          .query(`SELECT COUNT(*) FROM ${this.gate}`)
          .catch(ignoreFailure('only waits for the gate to be seen gone; the holders are released next either way'));
      await holder.query('ROLLBACK');
      await holder.end();
    };
    await Promise.all(this.nodes.map((node) => settle(node).catch(() => node.holder.destroy())));
  }

  async release(): Promise<void> {
    await this.releaseHolders();
    for (const { checker } of this.nodes) await checker.end().catch(() => checker.destroy());
    await this.conn.end().catch(() => this.conn.destroy());
  }
}

/**
 * What a retry may get past: a lock wait cut by its limit (the gate bounds its waits with
 * `max_statement_time`), or a deadlock that chose a session of ours.
 */
export function isRetryable(error: unknown): boolean {
  return isLockWait(error) || isStatementTimeout(error) || (error as { code?: string }).code === 'ER_LOCK_DEADLOCK';
}
