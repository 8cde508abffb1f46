import type { Progress, Reporter } from '../core/report/reporter.js';
import type { Phase } from '../core/run/run-state.js';
import { stderr, stdout, type Output } from './output.js';

export const fmt = (n: number) => n.toLocaleString('en-US');

export function eta(seconds: number | null): string {
  if (seconds === null) return '?';
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}:${String(s).padStart(2, '0')}`;
}

export function statusLine(p: Progress): string {
  const pct = p.rowsEstimated > 0 ? Math.min(100, (100 * p.rowsCopied) / p.rowsEstimated) : 100;
  return (
    `[${p.phase}${p.table ? ` ${p.table}` : ''}] ${fmt(p.rowsCopied)}/${fmt(p.rowsEstimated)} rows ${pct.toFixed(1)}% ` +
    `${fmt(p.rowsPerSec)} rows/s ETA ${eta(p.etaSeconds)} | ` +
    (p.rowsUpdated === undefined ? `applied ${fmt(p.changesApplied)} backlog ${fmt(p.backlog)}` : `updated ${fmt(p.rowsUpdated)}`) +
    (p.lagMs === null ? '' : ` lag ${fmt(p.lagMs)} ms`) +
    (p.throttle ? ` | held back: ${p.throttle}` : '')
  );
}

/** A live status line rewritten in place, for a person at a terminal. */
export class TerminalReporter implements Reporter {
  private lastDraw = 0;
  constructor(private readonly out: Output = stderr) {}

  phase(name: Phase, table?: string): void {
    this.out.line(`phase: ${name}${table ? ` (${table})` : ''}`);
  }
  progress(p: Progress): void {
    const now = Date.now();
    if (now - this.lastDraw < 200) return;
    this.lastDraw = now;
    this.out.status(statusLine(p));
  }
  info(message: string): void {
    this.out.line(message);
  }
  warn(message: string): void {
    this.out.line(`warning: ${message}`);
  }
  close(): void {
    this.out.endStatus();
  }
}

/** Timestamped lines, progress at most every `everyMs`, for logs of scheduled jobs. */
export class PlainReporter implements Reporter {
  private lastProgress = 0;
  constructor(
    private readonly out: Output = stderr,
    private readonly everyMs = 5000,
  ) {}

  phase(name: Phase, table?: string): void {
    this.write(`phase ${name}${table ? ` (${table})` : ''}`);
  }
  progress(p: Progress): void {
    const now = Date.now();
    if (now - this.lastProgress < this.everyMs) return;
    this.lastProgress = now;
    this.write(statusLine(p));
  }
  info(message: string): void {
    this.write(message);
  }
  warn(message: string): void {
    this.write(`warning: ${message}`);
  }
  close(): void {}
  private write(text: string): void {
    this.out.line(`${new Date().toISOString()} ${text}`);
  }
}

/** One JSON object per line, for log shippers. */
export class JsonReporter implements Reporter {
  private lastProgress = 0;
  constructor(private readonly out: Output = stdout) {}

  phase(name: Phase, table?: string): void {
    this.emit({ event: 'phase', phase: name, ...(table ? { table } : {}) });
  }
  progress(p: Progress): void {
    const now = Date.now();
    if (now - this.lastProgress < 1000) return;
    this.lastProgress = now;
    this.emit({ event: 'progress', ...p });
  }
  info(message: string, fields: Record<string, unknown> = {}): void {
    this.emit({ event: 'info', message, ...fields });
  }
  warn(message: string, fields: Record<string, unknown> = {}): void {
    this.emit({ event: 'warning', message, ...fields });
  }
  close(): void {}
  emit(fields: Record<string, unknown>): void {
    this.out.json({ time: new Date().toISOString(), ...fields });
  }
}

/**
 * Holds informational lines back until the run's first phase: a run refused by its checks then
 * prints only its one-line refusal, not where its control socket or metrics would have been.
 */
export class UntilStarted implements Reporter {
  private held: [string, Record<string, unknown> | undefined][] = [];
  private started = false;

  constructor(private readonly inner: Reporter) {}

  phase(name: Phase, table?: string): void {
    if (!this.started) {
      this.started = true;
      for (const [message, fields] of this.held) this.inner.info(message, fields);
      this.held = [];
    }
    this.inner.phase(name, table);
  }
  progress(p: Progress): void {
    this.inner.progress(p);
  }
  info(message: string, fields?: Record<string, unknown>): void {
    if (this.started) this.inner.info(message, fields);
    else this.held.push([message, fields]);
  }
  warn(message: string, fields?: Record<string, unknown>): void {
    this.inner.warn(message, fields);
  }
  close(): void {
    this.inner.close();
  }
}

/** The output a one-shot command (verify, contract) writes to: JSON lines, a terminal, or log lines. */
export function outputFor(json: boolean): { json: JsonReporter | null; reporter: Reporter } {
  const emitter = json ? new JsonReporter() : null;
  return { json: emitter, reporter: emitter ?? (process.stderr.isTTY ? new TerminalReporter() : new PlainReporter()) };
}

/** Ctrl-C and SIGTERM stop a one-shot command at its next safe point. */
export function interruptSignal(): AbortSignal {
  const controller = new AbortController();
  const onSignal = (signal: string) => controller.abort(signal);
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  return controller.signal;
}
