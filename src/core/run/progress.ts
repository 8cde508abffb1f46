import type { Reporter } from '../report/reporter.js';
import type { RunState } from './run-state.js';

/** Where a loop of chunks stands: rows done of rows estimated, and what a migration's stream adds. */
export interface Counts {
  /** Rows copied (migrate) or scanned (backfill) so far, resumed runs' rows included. */
  done: number;
  estimated: number;
  /** Nothing is left to do: the ETA is 0. */
  finished: boolean;
  changesApplied: number;
  backlog: number;
  /** A backfill's rows changed by its UPDATEs; absent for a migration. */
  rowsUpdated?: number;
}

/** Rows, rate and ETA for the status line, the control endpoint and the metrics. */
export class Progress {
  private started = Date.now();
  private doneAtStart = 0;

  constructor(
    private readonly ctx: { readonly state: RunState; readonly report: Reporter },
    private readonly counts: () => Counts,
  ) {}

  /** The rate counts only this process's rows, not those a resumed run found done. */
  copyStarting(): void {
    this.started = Date.now();
    this.doneAtStart = this.counts().done;
  }

  update(): void {
    const c = this.counts();
    const elapsed = (Date.now() - this.started) / 1000;
    const rate = elapsed > 0 ? (c.done - this.doneAtStart) / elapsed : 0;
    const estimated = Math.max(c.estimated, c.done);
    const remaining = c.finished ? 0 : Math.max(0, estimated - c.done);
    const s = this.ctx.state.status;
    s.rowsCopied = c.done;
    s.rowsEstimated = estimated;
    s.percent = estimated > 0 ? Math.min(100, (100 * c.done) / estimated) : 100;
    s.rowsPerSec = Math.round(rate);
    s.etaSeconds = rate > 0 ? Math.round(remaining / rate) : null;
    s.changesApplied = c.changesApplied;
    s.backlog = c.backlog;
    if (c.rowsUpdated !== undefined) s.rowsUpdated = c.rowsUpdated;
    this.ctx.report.progress({
      phase: s.phase,
      rowsCopied: c.done,
      rowsEstimated: estimated,
      rowsPerSec: s.rowsPerSec,
      etaSeconds: s.etaSeconds,
      changesApplied: s.changesApplied,
      backlog: s.backlog,
      throttle: s.state === 'running' ? null : (s.throttleReason ?? s.state),
      lagMs: s.lagMs,
      ...(s.retrying ? { retrying: s.retrying } : {}),
      ...(c.rowsUpdated === undefined ? {} : { rowsUpdated: c.rowsUpdated }),
    });
  }
}
