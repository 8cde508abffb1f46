import type { RowDataPacket } from 'mysql2/promise';
import { sleep } from '../../../core/engine/retry/backoff.js';
import { connectOne } from './connect.js';
import type { MysqlTarget } from './target.js';
import { ignoreFailure } from '../../../core/engine/errors.js';

/**
 * How long INNODB_TRX must go unread before the server fills it again: InnoDB refreshes that cache
 * only once nobody has read it for 100 ms (a margin on top). Any reader more often keeps every
 * reader's listing as it was, for as long as it goes on: a monitor reading it every 20 ms, or a set's
 * trigger logs each polling on its own, would keep it old through every cut-over attempt.
 */
const IDLE_MS = 110;
/** A listing's bound: a server that does not answer fails the listing, not the whole run's wait. */
const READ_TIMEOUT_MS = 5_000;
/** Longest `quiet` keeps the background listings back, should the look it readies never come. */
const QUIET_MAX_MS = 5_000;

/** A row of INNODB_TRX, with what PROCESSLIST says of its session. */
export interface Trx {
  thread: number;
  id: string;
  since: string | null;
  isolation: string;
  /** An autocommitted read: one statement, which can hold no older view. */
  autocommitRead: boolean;
  modified: number;
  user: string | null;
  host: string | null;
  state: string;
  /** The statement running, as PROCESSLIST has it (its first 1,000 characters). */
  info: string;
  query: string | null;
}

export interface TrxListing {
  /** When its canary began (performance.now()). */
  begunAt: number;
  /**
   * It showed its canary, so it was filled after `begunAt`: it shows every transaction open then and
   * still open. Else it is the cache as some earlier read left it.
   */
  fresh: boolean;
  /** Null without the PROCESS privilege, which the view needs to show other users' sessions. */
  trxs: Trx[] | null;
}

/**
 * Every read of one server's INNODB_TRX this process makes, which the cut-over's look for older
 * snapshots and each trigger log's horizon share. Reads are spaced by the cache's idle time, so that
 * ours alone never keep it old, and each is believed only when it shows a canary: a transaction begun
 * just before it, on its own new connection (a pooled one's id may be in an old listing already, from
 * a transaction it ran before). One read answers every caller waiting when it began.
 */
export class TrxList {
  private static readonly lists = new Map<string, TrxList>();

  /** The list for `target`'s server, one per process. */
  static of(target: MysqlTarget): TrxList {
    const { host, port, socketPath, user } = target.config;
    const key = JSON.stringify([host, port, socketPath, user]);
    let list = TrxList.lists.get(key);
    if (!list) TrxList.lists.set(key, (list = new TrxList(target)));
    return list;
  }

  private latest: TrxListing | null = null;
  private reading: Promise<TrxListing> | null = null;
  private lastReadAt = -Infinity;
  private backoffMs = 0;
  private quietUntil = 0;
  /** A background read's failure, for the next caller to see. */
  private failure: unknown = null;

  private constructor(private readonly target: MysqlTarget) {}

  /**
   * A listing begun after `since` (default now), waiting for one; after `tries` old ones, the last of
   * them, not fresh. Ends a `quiet`.
   */
  async listing(tries: number, since = performance.now()): Promise<TrxListing> {
    for (let tried = 1; ; tried++) {
      const listing = await this.next(since);
      this.quietUntil = 0;
      if (listing.fresh || listing.trxs === null || tried >= tries) return listing;
      since = performance.now();
    }
  }

  /**
   * The newest listing, if fresh and begun after `since`; else null, with one on its way (none while
   * quiet). Never waits: a trigger log's poll goes on without it.
   */
  after(since: number): TrxListing | null {
    const failure = this.failure;
    this.failure = null;
    if (failure) throw failure;
    const latest = this.latest;
    if (latest?.fresh && latest.begunAt > since) return latest;
    if (!this.reading && performance.now() >= this.quietUntil) {
      this.read().catch((error: unknown) => (this.failure = error));
    }
    return null;
  }

  /**
   * Just before a lock whose look must be quick and fresh: background reads are held back (until that
   * look, or a bound), and the cache's idle time waited out here, so the look under the lock reads at once.
   */
  async quiet(): Promise<void> {
    this.quietUntil = performance.now() + QUIET_MAX_MS;
    await this.reading?.catch(ignoreFailure('only waits for the read in flight to end: its failure is kept for whoever asked for the listing'));
    const left = this.lastReadAt + IDLE_MS + this.backoffMs - performance.now();
    if (left > 0) await sleep(left);
  }

  private async next(since: number): Promise<TrxListing> {
    for (;;) {
      // One already read after `since` answers at once: under a set's cut-over lock each table looks
      // in turn, and the first look's listing (begun after the lock) is what every later one needs,
      // where reading anew would cost each the cache's idle time while writers wait.
      const latest = this.latest;
      if (latest !== null && latest.begunAt > since) return latest;
      const listing = await (this.reading ?? this.read());
      if (listing.begunAt > since) return listing;
    }
  }

  private read(): Promise<TrxListing> {
    const reading = this.readOnce().finally(() => {
      if (this.reading === reading) this.reading = null;
    });
    this.reading = reading;
    return reading;
  }

  private async readOnce(): Promise<TrxListing> {
    const conn = await connectOne(this.target);
    try {
      const wait = this.lastReadAt + IDLE_MS + this.backoffMs - performance.now();
      if (wait > 0) await sleep(wait);
      const begunAt = performance.now();
      await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
      const rows = await conn
        .query<RowDataPacket[]>({ sql: LISTING, timeout: READ_TIMEOUT_MS })
        .then(([r]) => r)
        .catch((error: { code?: string }) => (error.code === 'ER_SPECIFIC_ACCESS_DENIED_ERROR' ? null : Promise.reject(error)))
        .finally(() => (this.lastReadAt = performance.now()));
      const fresh = rows?.some((r) => Number(r.thread) === conn.threadId) ?? false;
      // Another process's reads land between ours: a wait drawn at random lets a gap open.
      this.backoffMs = fresh ? 0 : Math.random() * IDLE_MS;
      const listing = { begunAt, fresh, trxs: rows?.filter((r) => Number(r.thread) !== conn.threadId).map(trxOf) ?? null };
      this.latest = listing;
      return listing;
    } finally {
      conn.destroy();
    }
  }
}

const LISTING = `SELECT t.trx_mysql_thread_id AS thread, t.trx_id AS id, CAST(t.trx_started AS CHAR) AS since, t.trx_isolation_level AS isolation,
       t.trx_autocommit_non_locking AS autocommit_read, t.trx_rows_modified AS modified, p.USER AS user, p.HOST AS host,
       COALESCE(p.STATE, p.COMMAND, '') AS state, LEFT(COALESCE(p.INFO, ''), 1000) AS info, LEFT(COALESCE(t.trx_query, p.INFO), 200) AS query
  FROM information_schema.INNODB_TRX t LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
 ORDER BY t.trx_started, t.trx_mysql_thread_id`;

function trxOf(r: RowDataPacket): Trx {
  return {
    thread: Number(r.thread),
    id: String(r.id),
    since: r.since ?? null,
    isolation: String(r.isolation),
    autocommitRead: Number(r.autocommit_read) !== 0,
    modified: Number(r.modified),
    user: r.user ?? null,
    host: r.host ?? null,
    state: String(r.state),
    info: String(r.info),
    query: r.query === null ? null : String(r.query).replace(/\s+/g, ' '),
  };
}
