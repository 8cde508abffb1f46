/**
 * A reader of the original table for the whole run: the application's cheapest query, one after
 * another on a connection of its own, each timed. A lock request queues every later reader behind
 * it (PostgreSQL's ACCESS EXCLUSIVE, MySQL's exclusive metadata lock), so the longest of these waits
 * is what the migration cost readers: the oracle bounds it (scenario.ts, readerBoundMs).
 */
import type { ChaosDb, Session } from './database.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ReaderReport {
  queries: number;
  /** The longest query, in ms, and when it began (ms since the reader started). */
  longestMs: number;
  longestAt: number;
  /** Queries that failed, and the first message: a reader should never see an error. */
  errors: number;
  /** Galera: statements a DDL on the table aborted (ChaosDb.abortsOnDdl), not counted as errors. */
  abortedByDdl: number;
  /** Queries that met a restart of the server by the tester (ChaosDb.own): failed or slow, neither counted. */
  metRestart: number;
  firstError: string | null;
}

export class Reader {
  private running = true;
  private loop: Promise<void> = Promise.resolve();
  private readonly began = performance.now();
  readonly report: ReaderReport = { queries: 0, longestMs: 0, longestAt: 0, errors: 0, abortedByDdl: 0, metRestart: 0, firstError: null };

  constructor(
    private readonly db: ChaosDb,
    private readonly table: string,
    /** Another query than the cheapest one (the set path's, over all its tables), and what is asked of each row it returns. */
    private readonly custom: { statement: string; judge?: (row: unknown[]) => void } | null = null,
  ) {}

  async start(): Promise<void> {
    const session = await this.db.session();
    this.loop = this.read(session).finally(() => session.close());
  }

  /** Ends the loop after the query in flight, which a lock may still hold. */
  async stop(): Promise<ReaderReport> {
    this.running = false;
    await this.loop;
    return this.report;
  }

  private async read(session: Session): Promise<void> {
    const name = this.db.kind === 'mysql' ? `\`${this.table}\`` : `"${this.table}"`;
    const statement = this.custom?.statement ?? `SELECT 1 FROM ${name} LIMIT 1`;
    while (this.running) {
      const start = performance.now();
      let failure: unknown = null;
      try {
        const [row] = await session.query(statement);
        if (row) this.custom?.judge?.(row);
      } catch (error) {
        failure = error;
      }
      const took = performance.now() - start;
      this.report.queries++;
      // The tester's own restart of the server: what it did to a query is the restart's, not the run's.
      if (this.db.own?.outages.covers(start, start + took)) {
        this.report.metRestart++;
        await sleep(20);
        continue;
      }
      if (failure !== null) {
        // On Galera a DDL on the table aborts the statements holding it, as the native ALTER's would.
        if (this.db.abortsOnDdl && (failure as { code?: string }).code === 'ER_LOCK_DEADLOCK') this.report.abortedByDdl++;
        else {
          this.report.errors++;
          this.report.firstError ??= (failure as Error).message.split('\n')[0];
        }
      }
      if (took > this.report.longestMs) Object.assign(this.report, { longestMs: Math.round(took), longestAt: Math.round(start - this.began) });
      await sleep(20);
    }
  }
}
