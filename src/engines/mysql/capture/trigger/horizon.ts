import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { Horizon } from '../../../../core/migrate/trigger-source.js';
import { createPool } from '../../server/connect.js';
import type { GaleraMember } from '../../server/galera.js';
import { qualified } from '../../server/sql.js';

/**
 * Where the log's sequence stands and who could still commit an entry at or below it: what lets the
 * trigger source move its floor (core/migrate/trigger-source.ts). A wrong answer loses entries with
 * nothing failing, so where it cannot tell it says null, and the floor stays.
 */
export interface LogHorizon {
  horizon(): Promise<Horizon | null>;
  /** Every writer of `h.mark` has ended, and what they committed can be read here. */
  settled(h: Horizon): Promise<boolean>;
  /** Lets go of the sessions it keeps; they are made again on the next use. */
  close(): Promise<void>;
}

/** A horizon whose writers are not listed yet, with when its sequence was read. */
const UNLISTED = 'unlisted@';
/** Longer than INNODB_TRX's cache may be stale (the server refills it when it is over 100 ms old). */
const TRX_CACHE_MS = 250;
/**
 * Transactions that have written something: a writer's entry follows its write to the table, so every
 * writer of an entry that has not ended is among them. Readers (a verification's snapshot) have
 * modified nothing and are left out, or they would hold the horizon for their whole length.
 */
const WRITERS = 'SELECT trx_id FROM information_schema.INNODB_TRX WHERE trx_rows_modified > 0 AND trx_mysql_thread_id <> CONNECTION_ID()';
const STILL_OPEN = 'SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX WHERE trx_id IN (?)';

function listedAfterCache(h: Horizon): boolean {
  return !h.mark.startsWith(UNLISTED) || Date.now() - Number(h.mark.slice(UNLISTED.length)) >= TRX_CACHE_MS;
}

async function stillOpen(db: Pool, ids: string[]): Promise<boolean> {
  if (ids.length === 0) return false;
  const [[row]] = await db.query<RowDataPacket[]>(STILL_OPEN, [ids]);
  return Number(row.n) > 0;
}

/**
 * One server: the highest sequence value written, committed or not (a dirty read). Who could still
 * commit below it is read later, by `settled`: information_schema.INNODB_TRX is a cache the server
 * fills at most every 100 ms, so a list read at once could predate a writer that took a value just
 * before the dirty read, and miss it.
 */
export class ServerHorizon implements LogHorizon {
  constructor(
    private readonly pool: Pool,
    private readonly log: string,
  ) {}

  async horizon(): Promise<Horizon | null> {
    const conn = await this.pool.getConnection();
    try {
      await conn.query('SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED');
      const [[row]] = await conn.query<RowDataPacket[]>(`SELECT MAX(seq) AS seq FROM ${this.log}`);
      return row.seq === null ? null : { seq: String(row.seq), mark: `${UNLISTED}${Date.now()}` };
    } finally {
      conn.release();
    }
  }

  async settled(h: Horizon): Promise<boolean> {
    if (!listedAfterCache(h)) return false;
    if (h.mark.startsWith(UNLISTED)) {
      const [writers] = await this.pool.query<RowDataPacket[]>(WRITERS);
      h.mark = writers.map((w) => String(w.trx_id)).join(',');
    }
    return !(await stillOpen(this.pool, h.mark === '' ? [] : h.mark.split(',')));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * A Galera cluster (issue 34). Writers on every node fill the log, each entry taking its sequence from
 * its own node's counter (Galera spaces the nodes' values apart: auto_increment_offset), and it is
 * seen here only once its writeset is applied here. The one-server horizon would lose such an entry:
 * a value another node hands out later may be below our highest, and that node's writers are in no
 * list of ours. So:
 * - the sequence is the lowest of every node's next value (`AUTO_INCREMENT`, which InnoDB keeps past
 *   every value the node handed out or applied): no node can hand out a value at or below it any more;
 * - the writers are every node's own, listed there once its INNODB_TRX cache is newer than that read;
 * - settled when each node's have ended, and then a causal read here (`wsrep_sync_wait`): the
 *   commits of the cluster before it are applied here, so the next read of the log sees them.
 * Until the cluster's membership is known and unchanged it has no horizon, and the floor stays.
 */
export class ClusterHorizon implements LogHorizon {
  private nodes: { name: string; pool: Pool }[] | null = null;
  /** `wsrep_cluster_conf_id` when `nodes` was read: it changes with every join and leave. */
  private conf: string | null = null;

  constructor(
    private readonly members: () => Promise<GaleraMember[]>,
    private readonly database: string,
    private readonly log: string,
  ) {}

  async horizon(): Promise<Horizon | null> {
    const nodes = await this.current();
    if (nodes === null) return null;
    const [schema, table] = [this.database, this.log];
    const next = await Promise.all(
      nodes.map(async ({ pool }) => {
        const [[row]] = await pool.query<RowDataPacket[]>(
          'SELECT AUTO_INCREMENT AS next FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
          [schema, table],
        );
        return row?.next === null || row?.next === undefined ? null : BigInt(String(row.next));
      }),
    );
    if (next.some((n) => n === null)) return null;
    const lowest = (next as bigint[]).reduce((a, b) => (b < a ? b : a));
    if (lowest <= 1n) return null;
    return { seq: String(lowest - 1n), mark: `${UNLISTED}${Date.now()}` };
  }

  async settled(h: Horizon): Promise<boolean> {
    if (!listedAfterCache(h)) return false;
    const nodes = await this.current();
    if (nodes === null) return false;
    if (h.mark.startsWith(UNLISTED)) {
      const lists = await Promise.all(
        nodes.map(async ({ name, pool }) => [name, (await pool.query<RowDataPacket[]>(WRITERS))[0].map((w) => String(w.trx_id))]),
      );
      h.mark = JSON.stringify(Object.fromEntries(lists));
    }
    const writers = JSON.parse(h.mark) as Record<string, string[]>;
    for (const [name, ids] of Object.entries(writers)) {
      // A node that left: its open transactions can no longer commit in this cluster's order.
      const node = nodes.find((n) => n.name === name);
      if (node && (await stillOpen(node.pool, ids))) return false;
    }
    await nodes[0].pool.query(`SET STATEMENT wsrep_sync_wait = 1 FOR SELECT COUNT(*) FROM ${qualified(this.database, this.log)} WHERE seq = 0`);
    return true;
  }

  /** The nodes with a session each, the connected one first; read again when the membership changed, null while it cannot be read. */
  private async current(): Promise<{ name: string; pool: Pool }[] | null> {
    const first = this.nodes?.[0];
    if (first) {
      const [[row]] = await first.pool.query<RowDataPacket[]>("SHOW GLOBAL STATUS LIKE 'wsrep_cluster_conf_id'");
      if (String(row?.Value) === this.conf) return this.nodes;
    }
    await this.close();
    let members: GaleraMember[];
    try {
      members = await this.members();
    } catch {
      return null; // a node joining or unreachable: no horizon until it is Synced
    }
    if (members.length === 0) return null;
    const nodes = members.map((m) => ({ name: m.name, pool: createPool(m.target, 1) }));
    const [[row]] = await nodes[0].pool.query<RowDataPacket[]>("SHOW GLOBAL STATUS LIKE 'wsrep_cluster_conf_id'");
    this.conf = String(row?.Value);
    this.nodes = nodes;
    return nodes;
  }

  async close(): Promise<void> {
    const nodes = this.nodes ?? [];
    this.nodes = null;
    this.conf = null;
    await Promise.all(nodes.map(({ pool }) => pool.end().catch(() => {})));
  }
}
