/**
 * Adapts the number of rows per chunk so each chunk takes about `targetMs`.
 * Short chunks keep row locks and replica bursts small; the target, not a fixed row count,
 * is what the operator cares about, because row width varies by orders of magnitude.
 */
export class ChunkSizer {
  private size: number;

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
    const perRow = Math.max(elapsedMs, 0.1) / rows;
    const ideal = this.targetMs / perRow;
    const next = Math.min(Math.max(ideal, this.size / 2), this.size * 2);
    this.size = Math.round(Math.min(Math.max(next, this.min), this.max));
  }
}
