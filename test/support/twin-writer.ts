import type mysql from 'mysql2/promise';

/** One drawn write: `{name}` stands for a table, renamed on each side. */
export interface TwinWrite {
  sql: string;
  values: unknown[];
}

/**
 * One writer, each write made on the real tables and then on their mirrors (`_m` added to every
 * `{name}`): the outcome must be the same on both, done or refused by the same foreign key rule
 * (1451, 1452). As FkTreeWriter (fk-tree.ts), for any schema: `draw` gives the next write.
 */
export class TwinWriter {
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  readonly stats = { writes: 0, refused: 0, mismatches: [] as string[], errors: [] as string[] };

  constructor(
    private readonly db: mysql.Pool,
    private readonly draw: () => TwinWrite,
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<TwinWriter['stats']> {
    this.running = false;
    await this.loop;
    return this.stats;
  }

  private async run(): Promise<void> {
    const conn = await this.db.getConnection();
    try {
      while (this.running) {
        const w = this.draw();
        const outcomes: string[] = [];
        for (const side of ['', '_m']) {
          const sql = w.sql.replace(/\{(\w+)\}/g, (_, name: string) => `${name}${side}`);
          outcomes.push(
            await conn.query(sql, w.values).then(
              () => 'ok',
              (e: { errno?: number; message: string }) => (e.errno === 1451 || e.errno === 1452 ? `refused ${e.errno}` : `error ${e.message}`),
            ),
          );
        }
        this.stats.writes++;
        if (outcomes[0].startsWith('refused')) this.stats.refused++;
        if (outcomes.some((o) => o.startsWith('error'))) this.stats.errors.push(`${w.sql}: ${outcomes.join(' / ')}`);
        else if (outcomes[0] !== outcomes[1]) this.stats.mismatches.push(`${w.sql} ${w.values.join(',')}: ${outcomes.join(' vs ')}`);
        // Well under 200 writes a second.
        await new Promise((r) => setTimeout(r, 5));
      }
    } finally {
      conn.release();
    }
  }
}
