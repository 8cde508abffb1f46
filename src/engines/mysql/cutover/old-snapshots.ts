import { LockTimeoutError } from '../../../core/engine/errors.js';
import type { OldSnapshot } from '../../../core/engine/types.js';
import type { MysqlTarget } from '../server/target.js';
import type { LockedSession } from '../server/lock.js';
import { TrxList, type Trx } from '../server/trx-list.js';

/** Listings looked at for one that shows its canary: unlocked, then under the lock (where each costs writers' time). */
const TRIES = 3;
const LOCKED_TRIES = 2;

/**
 * Under the cut-over lock: the session holding it (on the node it holds; none on another Galera
 * node), a listing begun no earlier than `since`, and on Galera the gate table's qualified name.
 */
export interface LockedLook {
  session?: LockedSession;
  since: number;
  gate?: string;
}

/**
 * InnoDB transactions at REPEATABLE READ or SERIALIZABLE, other than ours: such a transaction keeps
 * the read view of its first consistent read, and opening the new table under it fails with error
 * 1412 or misses rows. InnoDB does not say which of them made a read view yet, so every one that has
 * started counts. A transaction is listed only once it has touched InnoDB, and autocommitted reads
 * (one statement) are left out: neither can hold an older view. Across schemas: a transaction is not
 * bound to one. Under the lock, those waiting for a table lock are left out: queued behind ours, they
 * open the table once the swap is done, and counting them would give up every attempt while writers
 * queue. On Galera writers wait at the gate instead, inside a transaction the UPDATE has begun: those
 * running the gate trigger's read are left out too, since the RENAME aborts them (an autocommit
 * statement is retried in a new transaction). Null without the PROCESS privilege. INNODB_TRX is a
 * cache that any session's reads can keep old (server/trx-list.ts): unlocked, an old listing costs a
 * longer wait at most, and what it misses the look under the lock finds; under the lock, a reader it
 * missed would fail after the swap, so the attempt gives way. `node`: another Galera node's name, which
 * its sessions are named by (a connection id is a node's own).
 */
export async function mysqlOldSnapshots(target: MysqlTarget, locked?: LockedLook, node?: string): Promise<OldSnapshot[] | null> {
  const listing = await TrxList.of(target).listing(locked ? LOCKED_TRIES : TRIES, locked?.since);
  if (listing.trxs === null) return null;
  if (locked && !listing.fresh) {
    throw new LockTimeoutError(`the server's list of transactions (INNODB_TRX) stayed older than the lock: some session reads it more often than every 100 ms`);
  }
  return listing.trxs.filter((t) => holdsOldView(t, locked)).map((t) => snapshotOf(t, node));
}

function holdsOldView(t: Trx, locked: LockedLook | undefined): boolean {
  if (t.autocommitRead || !['REPEATABLE READ', 'SERIALIZABLE'].includes(t.isolation)) return false;
  if (!locked) return true;
  if (t.thread === locked.session?.conn.threadId || /^Waiting for table.*lock/.test(t.state)) return false;
  return locked.gate === undefined || !t.info.toLowerCase().includes(locked.gate.toLowerCase());
}

function snapshotOf(t: Trx, node: string | undefined): OldSnapshot {
  const session = node === undefined ? String(t.thread) : `${node}:${t.thread}`;
  return {
    session,
    transaction: `${session}/${t.id}`,
    user: t.user,
    client: t.host,
    since: t.since,
    state: t.state || null,
    query: t.query,
  };
}
