import type { Database, Session } from './database.js';
import { waitFor } from './run.js';

export interface WorkloadStats {
  transactions: number;
  errors: string[];
  /** Longest single write transaction, ms: the worst stall an application saw. Logged, never asserted. */
  maxLatencyMs: number;
  p99LatencyMs: number;
}

/**
 * One write, run on the table and on its mirror: `{t}` stands for each table's name, and the
 * placeholders are the engine's own (`db.param(n)`). `serial` writes are taken one at a time across
 * writers, so values the tables draw themselves (identity, AUTO_INCREMENT) come in the same order.
 */
export type Statement = { sql: string; values: unknown[]; serial?: boolean };

// A session lock for MySQL (released after the transaction), a transaction lock for PostgreSQL.
const serialize = {
  mysql: { take: "SELECT GET_LOCK('shadowcut_mirror', 60)", give: "DO RELEASE_LOCK('shadowcut_mirror')" },
  postgres: { take: 'SELECT pg_advisory_xact_lock(4242)', give: null },
};

/**
 * Concurrent writers. Each transaction runs the same statement against the table and its mirror,
 * so the mirror is the ground truth a correct migration must reproduce. `next` gives each writer
 * rows of its own (worker w owning the keys congruent to w mod 3, say), so writers never conflict
 * or deadlock one another: any error is shadowcut's doing.
 */
export class MirrorWorkload {
  private running = false;
  private loops: Promise<void>[] = [];
  private latencies: number[] = [];
  readonly stats: WorkloadStats = { transactions: 0, errors: [], maxLatencyMs: 0, p99LatencyMs: 0 };

  constructor(
    private readonly db: Database,
    private readonly tables: [string, string],
    private readonly next: (worker: number) => Statement,
    private readonly workers = 3,
    /**
     * After a failed transaction, a new connection: for a test whose fault ends the writers'
     * sessions too (a server restarted). Each transaction writes the table and the mirror, so one
     * whose COMMIT was lost with its connection is in both or in neither.
     */
    private readonly reconnect = false,
  ) {}

  start(): void {
    this.running = true;
    for (let w = 0; w < this.workers; w++) this.loops.push(this.loop(w));
  }

  /**
   * Until `count` more transactions have ended than when called: writes made from this moment on (the
   * writers under way before a run, or the new table taking writes after a cut-over). A wait on the
   * writers' own count, so a slow machine waits longer instead of checking fewer writes.
   */
  async untilMoreWrites(count = 30, ms = 60_000): Promise<void> {
    const from = this.stats.transactions;
    await waitFor(
      `${count} more writes on ${this.tables[0]}`,
      () => {
        if (!this.running) throw new Error(`the writers on ${this.tables[0]} were stopped`);
        return this.stats.transactions >= from + count;
      },
      null,
      ms,
    );
  }

  async stop(): Promise<WorkloadStats> {
    this.running = false;
    await Promise.all(this.loops);
    const sorted = [...this.latencies].sort((a, b) => a - b);
    this.stats.p99LatencyMs = sorted.length ? sorted[Math.floor(sorted.length * 0.99)] : 0;
    return this.stats;
  }

  private async loop(worker: number): Promise<void> {
    let session: Session | null = await this.db.session();
    const name = (table: string) => (this.db.kind === 'mysql' ? `\`${table}\`` : table);
    const lock = serialize[this.db.kind];
    try {
      while (this.running && session) {
        const statement = this.next(worker);
        const t0 = performance.now();
        try {
          await session.query('BEGIN');
          if (statement.serial) await session.query(lock.take);
          for (const table of this.tables) await session.query(statement.sql.replaceAll('{t}', name(table)), statement.values);
          await session.query('COMMIT');
        } catch (error) {
          await session.query('ROLLBACK').catch(() => {});
          this.stats.errors.push((error as Error).message);
          if (this.reconnect) {
            session.release(true);
            // Null when the writers stopped while the server was away: the loop ends.
            session = await this.renewed();
          }
        } finally {
          if (statement.serial && lock.give) await session?.query(lock.give).catch(() => {});
        }
        const ms = performance.now() - t0;
        this.latencies.push(ms);
        this.stats.maxLatencyMs = Math.max(this.stats.maxLatencyMs, ms);
        this.stats.transactions++;
        await new Promise((r) => setTimeout(r, 2));
      }
    } finally {
      session?.release();
    }
  }

  /** A connection in place of one that failed, tried every 100 ms while the server is away; null once the writers stop. */
  private async renewed(): Promise<Session | null> {
    while (this.running) {
      try {
        return await this.db.session();
      } catch {
        await new Promise((r) => setTimeout(r, 100)); // the server is still starting: its refusal is the wait's reason
      }
    }
    return null;
  }
}

const rnd = (n: number) => Math.floor(Math.random() * n);

/**
 * Integer ids owned by worker `id % 3`, so writers never touch each other's rows: the seeded
 * 1..seed, and the fresh ones a worker makes, above `above`.
 */
export class OwnedIds {
  private readonly ids: number[][] = [[], [], []];
  private next: number;
  constructor(seed: number, above = seed) {
    for (let id = 1; id <= seed; id++) this.ids[id % 3].push(id);
    this.next = above;
  }
  size(w: number): number {
    return this.ids[w].length;
  }
  pick(w: number): number {
    return this.ids[w][rnd(this.ids[w].length)];
  }
  /** A new id, owned by `w` from now on. */
  fresh(w: number): number {
    do this.next++;
    while (this.next % 3 !== w);
    this.ids[w].push(this.next);
    return this.next;
  }
  /** One of `w`'s ids, no longer owned (deleted or re-keyed). */
  remove(w: number): number {
    return this.ids[w].splice(rnd(this.ids[w].length), 1)[0];
  }
}
