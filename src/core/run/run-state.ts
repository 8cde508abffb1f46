import { RunSamples } from './run-samples.js';
import type { OldSnapshot } from '../engine/types.js';
import type { Phase } from '../report/phase.js';

/**
 * The live state of one run, shared by the runner (which updates it and obeys it), the control
 * endpoint (which reads it and sends commands), the metrics endpoint and the final report.
 */
export interface Settings {
  chunkTimeMs: number;
  /** Replica lag above which copying holds back. */
  maxLagMs: number;
  /** e.g. { Threads_running: 25 }: at or above any of these, copying holds back. */
  maxLoad: Record<string, number>;
  /** At or above any of these, the run aborts cleanly. */
  criticalLoad: Record<string, number>;
  /** 0 = unlimited. */
  maxRowsPerSec: number;
  /** After each chunk, rest this many times the chunk's own duration (gh-ost's --nice-ratio). */
  niceRatio: number;
  /** Redo log fill (percent, `Probes.redoFill`) at which copying holds back until it is 10 points lower; 0 = never. */
  maxRedoFill: number;
  /**
   * The copy keeps the table probe's latency within this multiple of its latency before the copy,
   * resting and shortening its chunks as needed (core/run/writer-pace.ts); 0 = off.
   */
  maxWriterSlowdown: number;
}

/** The settings part of a larger options object, so nothing else leaks into the live state. */
export function settingsOf(o: Settings): Settings {
  return {
    chunkTimeMs: o.chunkTimeMs,
    maxLagMs: o.maxLagMs,
    maxLoad: o.maxLoad,
    criticalLoad: o.criticalLoad,
    maxRowsPerSec: o.maxRowsPerSec,
    niceRatio: o.niceRatio,
    maxRedoFill: o.maxRedoFill,
    // Only migrate has the probe it works by; the other commands' options leave it out.
    maxWriterSlowdown: o.maxWriterSlowdown ?? 0,
  };
}

export type { Phase };

export interface Status {
  table: string;
  /** What runs: a migration (`alter` is its ALTER) or a backfill (`alter` is its `SET ... [WHERE ...]`, rowsCopied its rows scanned). */
  command: 'migrate' | 'backfill';
  alter: string;
  engine: string;
  phase: Phase;
  state: 'running' | 'throttled' | 'paused' | 'postponed' | 'revert-window' | 'done' | 'failed';
  startedAt: string;
  rowsCopied: number;
  rowsEstimated: number;
  percent: number;
  rowsPerSec: number;
  etaSeconds: number | null;
  changesApplied: number;
  /** A backfill's rows changed so far (its rowsCopied counts the rows scanned); 0 for a migration. */
  rowsUpdated: number;
  /** Changed keys not yet applied: in the buffer, and for trigger capture also in the log. */
  backlog: number;
  /** How a migration follows changes (`--capture`, as chosen); null until its plan is made, and for other commands. */
  capture: 'stream' | 'trigger' | null;
  /** Worst replica lag at the last probe, null when no replica is watched. */
  lagMs: number | null;
  maxLagSeenMs: number;
  throttleReason: string | null;
  /** A step waiting out a lost connection: what failed, and when it is tried again; null otherwise (absent from older runs). */
  retrying?: string | null;
  /** The kind of that reason (see throttler.ts HoldKind): the label of metrics and the key of throttledMs. */
  throttleKind: string | null;
  throttledMs: Record<string, number>;
  cutoverAttempts: number;
  cutoverLockedMs: number | null;
  /** The end of a revert window (`--revert-window`) while the old table follows the new one; null otherwise. */
  revertWindowUntil: string | null;
  timeline: { event: string; at: string }[];
  /** Transactions older than the cut-over that it waited for, or cut over under (--old-snapshots). */
  oldSnapshots: OldSnapshotRecord[];
  /** A set's tables (several tables, one cut-over), this one among them; absent for a table alone. */
  set?: string[];
  /**
   * Flag files that are there but belong to another OS user, so do not count (flag-files.ts): by
   * option, the warning `status` shows for as long as it is so.
   */
  untrustedFlags: Record<string, string>;
}

/** One of those, and how it was dealt with. */
export interface OldSnapshotRecord extends OldSnapshot {
  outcome: 'waiting' | 'ended' | 'cut over under it';
}

export class RunState {
  readonly status: Status;
  /** The run over time, for the report's and the live page's charts. */
  readonly samples = new RunSamples();
  paused = false;
  /** Set by `shadowcut cutover` (or by removing the postpone flag file) to release a postponed cut-over. */
  cutoverRequested = false;
  /** A target of a fleet's joint cut-over: set by the fleet alone, when every target swaps. */
  fleetReleased = false;
  abortReason: string | null = null;
  /** In a revert window: `shadowcut revert` (swap the tables back) or `shadowcut complete` (end the window, keep the new table). */
  revertRequested = false;
  completeRequested = false;

  constructor(
    readonly settings: Settings,
    identity: { table: string; alter: string; engine: string; command?: Status['command'] },
  ) {
    this.status = {
      command: 'migrate',
      ...identity,
      phase: 'checks',
      state: 'running',
      startedAt: new Date().toISOString(),
      rowsCopied: 0,
      rowsEstimated: 0,
      percent: 0,
      rowsPerSec: 0,
      etaSeconds: null,
      changesApplied: 0,
      rowsUpdated: 0,
      backlog: 0,
      capture: null,
      lagMs: null,
      maxLagSeenMs: 0,
      throttleReason: null,
      retrying: null,
      throttleKind: null,
      throttledMs: {},
      cutoverAttempts: 0,
      cutoverLockedMs: null,
      revertWindowUntil: null,
      timeline: [],
      oldSnapshots: [],
      untrustedFlags: {},
    };
  }

  mark(event: string): void {
    this.status.timeline.push({ event, at: new Date().toISOString() });
  }

  /** Runtime changes from the control endpoint; unknown names and bad values are refused with a reason. */
  set(name: string, value: string): void {
    // Number('') is 0, which would silently mean "no lag allowed" or "unlimited".
    const number = value.trim() === '' ? Number.NaN : Number(value);
    switch (name) {
      case 'chunk-time-ms':
      case 'max-lag-ms':
      case 'max-rows-per-sec':
      case 'nice-ratio':
      case 'max-redo-fill':
      case 'max-writer-slowdown':
        if (!Number.isFinite(number) || number < 0) throw new Error(`${name} must be a non-negative number`);
        if (name === 'max-redo-fill' && number > 100) throw new Error('max-redo-fill is a percentage (0-100)');
        if (name === 'chunk-time-ms') this.settings.chunkTimeMs = Math.max(1, number);
        else if (name === 'max-lag-ms') this.settings.maxLagMs = number;
        else if (name === 'nice-ratio') this.settings.niceRatio = number;
        else if (name === 'max-redo-fill') this.settings.maxRedoFill = number;
        else if (name === 'max-writer-slowdown') this.settings.maxWriterSlowdown = number;
        else this.settings.maxRowsPerSec = number;
        return;
      case 'max-load':
        this.settings.maxLoad = parseThresholds(value);
        return;
      case 'critical-load':
        this.settings.criticalLoad = parseThresholds(value);
        return;
      default:
        throw new Error(
          `unknown setting ${name} (chunk-time-ms, max-lag-ms, max-rows-per-sec, nice-ratio, max-redo-fill, max-writer-slowdown, max-load, critical-load)`,
        );
    }
  }
}

/** `Threads_running=25,Threads_connected=500` -> { Threads_running: 25, ... } */
export function parseThresholds(text: string): Record<string, number> {
  const result: Record<string, number> = {};
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = part.match(/^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\d+(?:\.\d+)?)$/);
    if (!m) throw new Error(`"${part}" is not NAME=NUMBER`);
    result[m[1]] = Number(m[2]);
  }
  return result;
}
