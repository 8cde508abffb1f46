import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { Horizon } from '../../../../core/engine/capture/trigger-source.js';
import { createPool } from '../../server/connect.js';
import type { MysqlTarget } from '../../server/target.js';
import type { GaleraMember } from '../../galera/cluster.js';
import { qualified } from '../../server/sql.js';
import { TrxList } from '../../server/trx-list.js';
import { CLOSING, ignoreFailure, failedAs } from '../../../../core/engine/errors.js';

/**
 * Where the log's sequence stands and who could still commit an entry at or below it: what lets the
 * trigger source move its floor (core/engine/capture/trigger-source.ts). A wrong answer loses entries with
 * nothing failing, so where it cannot tell it says null (or not settled), and the floor stays.
 */
export interface LogHorizon {
  horizon(): Promise<Horizon | null>;
  /** Every writer of `h.mark` has ended, and what they committed can be read here. */
  settled(h: Horizon): Promise<boolean>;
  /** Lets go of the sessions it keeps, where it keeps any; they are made again on the next use. */
  close?(): Promise<void>;
}

/** One server's writers of a horizon: listed once a listing begun after it was taken shows them, then looked for in each newer one until gone. */
interface Writers {
  /** When the horizon was taken, then when the listing last looked at began. */
  since: number;
  /** Null until listed. */
  ids: string[] | null;
}

/**
 * Whether every writer in `w` has ended, by the newest listing of `list` (server/trx-list.ts: one
 * begun after `w.since` shows every transaction then open, and any session's reads can keep it old).
 * The transactions that have written something: a writer's entry follows its write to the table, so
 * every writer of an entry that has not ended is among them. Readers (a verification's snapshot) have
 * modified nothing and are left out, or they would hold the horizon for their whole length. Never
 * waits for a listing: false until there is one.
 */
function writersEnded(list: TrxList, w: Writers): boolean {
  if (w.ids?.length === 0) return true;
  const listing = list.after(w.since);
  if (listing === null) return false;
  if (listing.trxs === null) throw new Error('trigger capture reads INNODB_TRX, which needs the PROCESS privilege');
  const ids = w.ids;
  w.since = listing.begunAt;
  w.ids = listing.trxs.filter((t) => (ids === null ? t.modified > 0 : ids.includes(t.id))).map((t) => t.id);
  return w.ids.length === 0;
}

/** One server: the highest sequence value written, committed or not (a dirty read), and its writers. */
export class ServerHorizon implements LogHorizon {
  private readonly list: TrxList;

  constructor(
    private readonly pool: Pool,
    target: MysqlTarget,
    private readonly log: string,
  ) {
    this.list = TrxList.of(target);
  }

  async horizon(): Promise<Horizon | null> {
    const conn = await this.pool.getConnection();
    let seq: string | null;
    try {
      await conn.query('SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED');
      const [[row]] = await conn.query<RowDataPacket[]>(`SELECT MAX(seq) AS seq FROM ${this.log}`);
      seq = row.seq === null ? null : String(row.seq);
    } finally {
      conn.release();
    }
    if (seq === null) return null;
    const writers: Writers = { since: performance.now(), ids: null };
    return { seq, mark: JSON.stringify(writers) };
  }

  settled(h: Horizon): Promise<boolean> {
    const writers = JSON.parse(h.mark) as Writers;
    const ended = writersEnded(this.list, writers);
    h.mark = JSON.stringify(writers);
    return Promise.resolve(ended);
  }
}

/** A bound on each statement of the cluster's horizon: a node that does not answer holds the floor where it is, not the stream. */
const NODE_TIMEOUT_MS = 5_000;

interface Node {
  name: string;
  pool: Pool;
  list: TrxList;
}

/** What a cluster's horizon keeps in its mark: the membership it was taken under, and each node's writers. */
interface ClusterMark {
  conf: string;
  /** When it was taken. */
  since: number;
  writers: Record<string, Writers>;
}

/**
 * A Galera cluster (../../galera/README.md). Writers on every node fill the log, each entry taking its sequence from
 * its own node's counter (Galera spaces the nodes' values apart: auto_increment_offset), and it is
 * seen here only once its writeset is applied here. The one-server horizon would lose such an entry:
 * a value another node hands out later may be below our highest, and that node's writers are in no
 * list of ours. So:
 * - the sequence is the lowest of every node's next value (`AUTO_INCREMENT`, which InnoDB keeps past
 *   every value the node handed out or applied): no node of the membership can hand out a value at or
 *   below it any more;
 * - the writers are every node's own, from each node's own listing;
 * - settled when each node's have ended, and then a causal read here (`wsrep_sync_wait`): the
 *   commits of the cluster before it are applied here, so the next read of the log sees them;
 * - taken under one membership (`wsrep_cluster_conf_id`, which every join and leave changes): a node
 *   that joined since may hand out values below it, its writers in no list, so a horizon whose
 *   membership changed is taken again before it can settle.
 * A node that does not answer, or a membership that cannot be read, gives no horizon (or not yet
 * settled), and the floor stays where it is.
 */
export class ClusterHorizon implements LogHorizon {
  private nodes: Node[] | null = null;
  /** `wsrep_cluster_conf_id` when `nodes` was read. */
  private conf: string | null = null;

  constructor(
    private readonly members: () => Promise<GaleraMember[]>,
    private readonly database: string,
    private readonly log: string,
  ) {}

  horizon(): Promise<Horizon | null> {
    return this.fresh().catch(failedAs(null, 'no horizon this time: the next read asks again'));
  }

  async settled(h: Horizon): Promise<boolean> {
    try {
      const nodes = await this.current();
      const mark = JSON.parse(h.mark) as ClusterMark;
      if (nodes === null || mark.conf !== this.conf) {
        // Taken under another membership: taken again (a lower sequence, the new node's writers).
        const again = nodes === null ? null : await this.fresh();
        if (again) Object.assign(h, again);
        return false;
      }
      // Every node looked at each time: each listing asked for now comes in the background meanwhile.
      const ended = nodes.map((node) => writersEnded(node.list, (mark.writers[node.name] ??= { since: mark.since, ids: null })));
      h.mark = JSON.stringify(mark);
      if (!ended.every(Boolean)) return false;
      await nodes[0].pool.query({
        sql: `SET STATEMENT wsrep_sync_wait = 1 FOR SELECT COUNT(*) FROM ${qualified(this.database, this.log)} WHERE seq = 0`,
        timeout: NODE_TIMEOUT_MS,
      });
      return true;
    } catch {
      return false;
    }
  }

  /** A horizon taken now, under the current membership, its writers to be listed after the sequence read; null when it cannot be. */
  private async fresh(): Promise<Horizon | null> {
    const nodes = await this.current();
    if (nodes === null) return null;
    const conf = this.conf!;
    const next = await Promise.all(
      nodes.map(async ({ pool }) => {
        const [[row]] = await pool.query<RowDataPacket[]>({
          sql: 'SELECT AUTO_INCREMENT AS next FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
          values: [this.database, this.log],
          timeout: NODE_TIMEOUT_MS,
        });
        return row?.next === null || row?.next === undefined ? null : BigInt(String(row.next));
      }),
    );
    if (next.some((n) => n === null)) return null;
    const lowest = (next as bigint[]).reduce((a, b) => (b < a ? b : a));
    if (lowest <= 1n) return null;
    const mark: ClusterMark = { conf, since: performance.now(), writers: {} };
    return { seq: String(lowest - 1n), mark: JSON.stringify(mark) };
  }

  /**
   * The nodes with sessions of their own, the connected one first; read again when the membership
   * changed. Null while it cannot be read, or changed while it was (a node joining: the next look
   * takes it in).
   */
  private async current(): Promise<Node[] | null> {
    if (this.nodes && (await confOf(this.nodes[0].pool)) === this.conf) return this.nodes;
    await this.close();
    let members: GaleraMember[];
    try {
      members = await this.members();
    } catch {
      return null; // a node joining or unreachable: no horizon until it is Synced
    }
    if (members.length === 0) return null;
    const nodes = members.map((m) => {
      const pool = createPool(m.target, 1);
      return { name: m.name, pool, list: TrxList.of(m.target) };
    });
    try {
      // The members were read between two looks at the membership, both the same: no node joined or left meanwhile.
      const before = await confOf(nodes[0].pool);
      const again = await this.members();
      const after = await confOf(nodes[0].pool);
      if (before !== after || again.map((m) => m.name).join() !== members.map((m) => m.name).join()) throw new Error('the membership changed');
      this.conf = after;
      this.nodes = nodes;
      return nodes;
    } catch {
      await Promise.all(
        nodes.map(({ pool }) =>
          pool.end().catch(ignoreFailure('the nodes could not be read as one membership: these pools are thrown away, and the caller is answered with null')),
        ),
      );
      return null;
    }
  }

  async close(): Promise<void> {
    const nodes = this.nodes ?? [];
    this.nodes = null;
    this.conf = null;
    await Promise.all(nodes.map(({ pool }) => pool.end().catch(ignoreFailure(CLOSING))));
  }
}

async function confOf(pool: Pool): Promise<string> {
  const [[row]] = await pool.query<RowDataPacket[]>({ sql: "SHOW GLOBAL STATUS LIKE 'wsrep_cluster_conf_id'", timeout: NODE_TIMEOUT_MS });
  return String(row?.Value);
}
