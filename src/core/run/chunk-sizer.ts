/**
 * Adapts the number of rows per chunk so each chunk takes about `targetMs`.
 * Short chunks keep row locks and replica bursts small; the target, not a fixed row count,
 * is what the operator cares about, because row width varies by orders of magnitude.
 *
 * A chunk's time has a part that grows with its rows and a fixed part: its round trips and its
 * commit, which on a durable server waits for the disk together with every other commit of the
 * moment. Sized by the whole time as if it all grew with the rows, chunks shrank until the rows'
 * part was what the commit left of the target, and to 10 rows once a commit alone took longer: the
 * copy crawled (1M rows in 225 s against the floor's 27 s under 1,000 writes a second) while the
 * writers waited as before, since they wait for that commit with or without the copy. So the parts
 * are told apart by a straight line through the recent chunks (time = fixed + rows x per row): the
 * rows' part is given the target less the fixed part, but never less than the fixed part (which is
 * then at most half a chunk) nor more than the target.
 */
export class ChunkSizer {
  private size: number;
  private readonly recent: { rows: number; ms: number }[] = [];
  /** The last fit of the recent chunks, kept while they are too alike to fit again. */
  private line: { fixedMs: number; perRowMs: number } | null = null;

  constructor(
    private targetMs: number,
    initial = 1000,
    private readonly min = 10,
    private readonly max = 200_000,
  ) {
    this.size = initial;
  }

  get rows(): number {
    return this.size;
  }

  /** The operator may change the target while the copy runs. */
  target(ms: number): void {
    this.targetMs = ms;
  }

  /** Feed back how long a chunk of `rows` took; the next size moves towards the target, at most 2x per step. */
  record(rows: number, elapsedMs: number): void {
    if (rows <= 0) return;
    const ms = Math.max(elapsedMs, 0.1);
    this.recent.push({ rows, ms });
    if (this.recent.length > WINDOW) this.recent.shift();
    const { fixedMs, perRowMs } = this.fit(rows, ms);
    const ideal = Math.min(Math.max(this.targetMs - fixedMs, fixedMs), this.targetMs) / perRowMs;
    const next = Math.min(Math.max(ideal, this.size / 2), this.size * 2);
    this.size = Math.round(Math.min(Math.max(next, this.min), this.max));
  }

  /**
   * The fixed and per-row parts: by least squares over the recent chunks when their sizes differ
   * enough to tell the parts apart; else the last such fit, its per-row part following this chunk;
   * else (no fit yet, or none that makes sense) all of it per row, as through the origin.
   */
  private fit(rows: number, ms: number): { fixedMs: number; perRowMs: number } {
    const sizes = this.recent.map((r) => r.rows);
    if (Math.max(...sizes) >= SPREAD * Math.min(...sizes)) {
      const n = this.recent.length;
      const mx = sizes.reduce((a, b) => a + b, 0) / n;
      const my = this.recent.reduce((a, r) => a + r.ms, 0) / n;
      const sxy = this.recent.reduce((a, r) => a + (r.rows - mx) * (r.ms - my), 0);
      const sxx = this.recent.reduce((a, r) => a + (r.rows - mx) ** 2, 0);
      const perRowMs = sxy / sxx;
      const fixedMs = my - perRowMs * mx;
      this.line = perRowMs > 0 && fixedMs >= 0 ? { fixedMs, perRowMs } : null;
    }
    if (this.line && ms > this.line.fixedMs) {
      this.line = { fixedMs: this.line.fixedMs, perRowMs: (ms - this.line.fixedMs) / rows };
      return this.line;
    }
    return { fixedMs: 0, perRowMs: ms / rows };
  }
}

/** How many recent chunks the line is fitted through. */
const WINDOW = 16;
/** The largest of them must be this many times the smallest for a fit. */
const SPREAD = 1.5;
