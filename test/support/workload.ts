import type mysql from 'mysql2/promise';

export interface WorkloadStats {
  transactions: number;
  errors: string[];
  /** Longest single write transaction, ms: the worst stall an application saw. */
  maxLatencyMs: number;
  p99LatencyMs: number;
}

export type Statement = { sql: string; values: unknown[] };

/**
 * Concurrent writers. Each transaction runs the same statement against the table and its mirror,
 * so the mirror is the ground truth a correct migration must reproduce. Writers own disjoint id
 * sets so they never deadlock one another: any error is shadowcut's doing.
 */
export class MirrorWorkload {
  private running = false;
  private loops: Promise<void>[] = [];
  private latencies: number[] = [];
  readonly stats: WorkloadStats = { transactions: 0, errors: [], maxLatencyMs: 0, p99LatencyMs: 0 };

  constructor(
    private readonly db: mysql.Pool,
    private readonly tables: [string, string],
    private readonly next: (worker: number, ids: Set<number>) => Statement,
    private readonly ownedIds: (worker: number) => Set<number>,
    private readonly workers = 3,
  ) {}

  start(): void {
    this.running = true;
    for (let w = 0; w < this.workers; w++) this.loops.push(this.loop(w));
  }

  async stop(): Promise<WorkloadStats> {
    this.running = false;
    await Promise.all(this.loops);
    const sorted = [...this.latencies].sort((a, b) => a - b);
    this.stats.p99LatencyMs = sorted.length ? sorted[Math.floor(sorted.length * 0.99)] : 0;
    return this.stats;
  }

  private async loop(worker: number): Promise<void> {
    const ids = this.ownedIds(worker);
    const conn = await this.db.getConnection();
    try {
      while (this.running) {
        const stmt = this.next(worker, ids);
        const t0 = performance.now();
        try {
          await conn.beginTransaction();
          for (const table of this.tables) await conn.query(stmt.sql.replaceAll('{t}', `\`${table}\``), stmt.values);
          await conn.commit();
        } catch (error) {
          await conn.rollback().catch(() => {});
          this.stats.errors.push((error as Error).message);
        }
        const ms = performance.now() - t0;
        this.latencies.push(ms);
        this.stats.maxLatencyMs = Math.max(this.stats.maxLatencyMs, ms);
        this.stats.transactions++;
        await new Promise((r) => setTimeout(r, 2));
      }
    } finally {
      conn.release();
    }
  }
}
