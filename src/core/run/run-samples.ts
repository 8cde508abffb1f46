/** What the run looked like over one sampling period: the points the report's and the live page's charts draw. */
export interface Sample {
  /** Milliseconds from the run's start to the period's end. */
  t: number;
  phase: string;
  rowsCopied: number;
  rowsPerSec: number;
  /** Changed keys not yet applied: the most seen in the period. */
  backlog: number;
  /** The worst replica lag seen in the period; null when none is watched. */
  lagMs: number | null;
  /** The kind of hold (throttler.ts HoldKind) if the copy was held back in the period (the first, if several). */
  held: string | null;
  /** The longest a timed statement on the table took in the period, counting one still waiting; null when none ran. */
  probeMs: number | null;
}

/** The parts of a run's status (run-state.ts) that are sampled. */
export interface SampledStatus {
  startedAt: string;
  phase: string;
  state: string;
  rowsCopied: number;
  rowsPerSec: number;
  backlog: number;
  lagMs: number | null;
  throttleKind: string | null;
}

/** At most this many points are kept: a night's run keeps its whole shape, at a coarser period. */
const MAX_SAMPLES = 1200;

/**
 * The run's samples, one per period, in memory of a fixed size: when full, neighbours are merged in
 * pairs and the period doubles, keeping each pair's worst (backlog, lag, probe, a hold) so a stall
 * is never averaged away.
 */
export class RunSamples {
  private readonly points: Sample[] = [];
  private periodMs: number;
  private nextAt = 0;
  private probeMax: number | null = null;
  /** The worst seen since the last point, by the calls between points. */
  private worst: { backlog: number; lagMs: number | null; held: string | null } = { backlog: 0, lagMs: null, held: null };
  private readonly inFlight = new Set<{ began: number }>();

  constructor(periodMs = 1000) {
    this.periodMs = periodMs;
  }

  /** A timed statement on the table begins; call what it returns when it ends (with false: it measured nothing). */
  timeProbe(): (measured?: boolean) => void {
    const token = { began: performance.now() };
    this.inFlight.add(token);
    return (measured = true) => {
      this.inFlight.delete(token);
      if (measured) this.probeMax = Math.max(this.probeMax ?? 0, performance.now() - token.began);
    };
  }

  /**
   * Looks at the status now (call it more often than the period): a point is made once a period has
   * passed since the last (or with `force`, at the end), with the worst seen since.
   */
  take(status: SampledStatus, now = Date.now(), force = false): void {
    const t = Math.max(0, now - Date.parse(status.startedAt));
    const held = status.state === 'throttled' || status.state === 'paused' ? (status.throttleKind ?? status.state) : null;
    const worst = this.worst;
    worst.backlog = Math.max(worst.backlog, status.backlog);
    worst.lagMs = worstOf(worst.lagMs, status.lagMs);
    worst.held ??= held;
    if (!force && t < this.nextAt) return;
    this.nextAt = t + this.periodMs;
    this.worst = { backlog: 0, lagMs: null, held: null };
    const waiting = [...this.inFlight].map((p) => performance.now() - p.began);
    const probe = waiting.length > 0 ? Math.max(this.probeMax ?? 0, ...waiting) : this.probeMax;
    this.probeMax = null;
    this.points.push({
      t,
      phase: status.phase,
      rowsCopied: status.rowsCopied,
      rowsPerSec: status.rowsPerSec,
      backlog: worst.backlog,
      lagMs: worst.lagMs,
      held: worst.held,
      probeMs: probe === null ? null : Math.round(probe * 10) / 10,
    });
    if (this.points.length > MAX_SAMPLES) this.halve();
  }

  /** The points so far (copies), and the period between them. */
  series(): { periodMs: number; samples: Sample[] } {
    return { periodMs: this.periodMs, samples: this.points.map((p) => ({ ...p })) };
  }

  private halve(): void {
    const merged: Sample[] = [];
    for (let i = 0; i < this.points.length; i += 2) {
      const [a, b] = [this.points[i], this.points[i + 1]];
      merged.push(b === undefined ? a : mergePair(a, b));
    }
    this.points.splice(0, this.points.length, ...merged);
    this.periodMs *= 2;
  }
}

function worstOf(x: number | null, y: number | null): number | null {
  return x === null ? y : y === null ? x : Math.max(x, y);
}

function mergePair(a: Sample, b: Sample): Sample {
  return {
    t: b.t,
    phase: b.phase,
    rowsCopied: b.rowsCopied,
    rowsPerSec: Math.round((a.rowsPerSec + b.rowsPerSec) / 2),
    backlog: Math.max(a.backlog, b.backlog),
    lagMs: worstOf(a.lagMs, b.lagMs),
    held: a.held ?? b.held,
    probeMs: worstOf(a.probeMs, b.probeMs),
  };
}
