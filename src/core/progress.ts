import type { RunContext } from './context.js';

/** Rows, rate and ETA for the status line, the control endpoint and the metrics. */
export class Progress {
  private copyStarted = Date.now();
  private copiedAtStart = 0;

  constructor(
    private readonly ctx: RunContext,
    private readonly backlog: () => number,
    private readonly copyDone: () => boolean,
  ) {}

  /** The rate counts only this process's rows, not those a resumed run found copied. */
  copyStarting(): void {
    this.copyStarted = Date.now();
    this.copiedAtStart = this.ctx.result.rowsCopied;
  }

  update(): void {
    const elapsed = (Date.now() - this.copyStarted) / 1000;
    const copied = this.ctx.result.rowsCopied;
    const rate = elapsed > 0 ? (copied - this.copiedAtStart) / elapsed : 0;
    const estimated = Math.max(this.ctx.plan.estimatedRows, copied);
    const remaining = this.copyDone() ? 0 : Math.max(0, estimated - copied);
    const s = this.ctx.state.status;
    s.rowsCopied = copied;
    s.rowsEstimated = estimated;
    s.percent = estimated > 0 ? Math.min(100, (100 * copied) / estimated) : 100;
    s.rowsPerSec = Math.round(rate);
    s.etaSeconds = rate > 0 ? Math.round(remaining / rate) : null;
    s.changesApplied = this.ctx.result.changesApplied;
    s.backlog = this.backlog();
    this.ctx.report.progress({
      phase: s.phase,
      rowsCopied: copied,
      rowsEstimated: estimated,
      rowsPerSec: s.rowsPerSec,
      etaSeconds: s.etaSeconds,
      changesApplied: s.changesApplied,
      backlog: s.backlog,
      throttle: s.state === 'running' ? null : (s.throttleReason ?? s.state),
      lagMs: s.lagMs,
    });
  }
}
