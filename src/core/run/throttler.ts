import { AbortedError, UserError } from '../engine/errors.js';
import type { RunState } from './run-state.js';
import { flagHolds } from './flag-files.js';
import type { Probes } from '../engine/types.js';

export interface ThrottleOptions {
  /** While this file exists, copying holds back. */
  flagFile?: string;
  /** Copy only inside this daily window of local time, e.g. `01:00-05:00` (may wrap midnight). */
  window?: string;
  /** gh-ost's --throttle-query: copying holds back while this returns a number above 0. */
  throttleQuery?: string;
  /** At critical load, hold back this long (then look again) instead of aborting; 0 aborts. */
  criticalLoadHibernateSeconds?: number;
}

/** What holds the copy back; the kind keys the throttled time in the status, metrics and report. */
export type HoldKind = 'paused' | 'critical' | 'load' | 'redo' | 'cluster' | 'replica' | 'query' | 'flag' | 'window' | 'rate' | 'nice' | 'writers';

export interface Hold {
  kind: HoldKind;
  message: string;
}

/**
 * Decides whether copying may go on now. Every reason is named, for the status line and the logs.
 * A replica that cannot be measured counts as lagging (fail closed): copying blind could bury it.
 */
export class Throttler {
  private readonly window: DailyWindow | null;
  private cached: { at: number; hold: Hold | null } | null = null;
  private hibernating: { until: number; hold: Hold } | null = null;
  /** Held for the redo log's fill since then, at that fill: it holds until the fill is 10 points under the limit. */
  private flushing: { since: number; fill: number } | null = null;
  private redoQuietUntil = 0;

  constructor(
    private readonly state: RunState,
    private readonly probes: Probes | null,
    private readonly options: ThrottleOptions = {},
    /** Where a flag file the run cannot trust is warned about (flag-files.ts). */
    private readonly warn: (message: string) => void = () => {},
  ) {
    this.window = options.window ? parseWindow(options.window) : null;
  }

  /** What holds the copy back now, or null. Throws AbortedError when a critical load threshold is reached. */
  async hold(now = new Date()): Promise<Hold | null> {
    if (this.cached && now.getTime() - this.cached.at < 200) return this.cached.hold;
    const hold = await this.evaluate(now);
    this.cached = { at: now.getTime(), hold };
    this.state.status.throttleReason = hold?.message ?? null;
    this.state.status.throttleKind = hold?.kind ?? null;
    return hold;
  }

  private async evaluate(now: Date): Promise<Hold | null> {
    const settings = this.state.settings;
    // Hibernating probes nothing, not even the load, until the time is up.
    if (this.hibernating && now.getTime() < this.hibernating.until) return this.hibernating.hold;
    this.hibernating = null;
    if (this.probes) {
      const critical = Object.keys(settings.criticalLoad);
      const watched = [...new Set([...Object.keys(settings.maxLoad), ...critical])];
      if (watched.length) {
        const load = await this.probes.load(watched);
        for (const [name, limit] of Object.entries(settings.criticalLoad)) {
          if ((load[name] ?? 0) < limit) continue;
          const what = `critical load: ${name}=${load[name]} reached ${limit}`;
          const seconds = this.options.criticalLoadHibernateSeconds ?? 0;
          if (seconds <= 0) throw new AbortedError(what);
          this.hibernating = { until: now.getTime() + seconds * 1000, hold: { kind: 'critical', message: `${what}; hibernating ${seconds} s` } };
          return this.hibernating.hold;
        }
        for (const [name, limit] of Object.entries(settings.maxLoad)) {
          if ((load[name] ?? 0) >= limit) return { kind: 'load', message: `load: ${name}=${load[name]} >= ${limit}` };
        }
      }
      const redo = await this.redoHold();
      if (redo) return redo;
      const pressure = this.probes.clusterPressure ? await this.probes.clusterPressure() : null;
      if (pressure) return { kind: 'cluster', message: pressure };
      const lags = await this.probes.replicaLag();
      if (lags.length) {
        const unknown = lags.find((l) => l.lagMs === null);
        const worst = Math.max(...lags.map((l) => l.lagMs ?? 0));
        this.state.status.lagMs = worst;
        this.state.status.maxLagSeenMs = Math.max(this.state.status.maxLagSeenMs, worst);
        if (unknown) return { kind: 'replica', message: `replica ${unknown.replica} cannot be measured (${unknown.error ?? 'unreachable'})` };
        if (worst > settings.maxLagMs) return { kind: 'replica', message: `replica lag ${worst} ms > ${settings.maxLagMs} ms` };
      }
    }
    if (this.options.throttleQuery && this.probes) {
      // A query that stops working holds the copy back (fail closed), as an unreachable replica does.
      const value = await throttleQueryValue(this.probes, this.options.throttleQuery).catch((error: Error) => error);
      if (value instanceof Error) return { kind: 'query', message: `throttle query failed: ${value.message}` };
      if (value > 0) return { kind: 'query', message: `throttle query returned ${value}` };
    }
    const flag = this.options.flagFile;
    if (flag && flagHolds('--throttle-flag-file', flag, this.state, this.warn))
      return { kind: 'flag', message: this.state.status.untrustedFlags['--throttle-flag-file'] ?? `flag file ${flag} exists` };
    if (this.window && !inWindow(this.window, now)) return { kind: 'window', message: `outside the window ${this.options.window}` };
    return null;
  }

  /**
   * Near a full redo log, InnoDB makes every writer wait while it flushes pages to move its
   * checkpoint (the application's stalls of 0.5-2 s under a copy): the copy, the biggest writer,
   * steps aside before that point, and goes on once the flushing has made room, so that it does not
   * run at the edge, in and out of the stall (opt-in: see docs/performance.md for what it cost). When holding does not bring the fill down, the
   * application's own writes keep it there: the copy then goes on for a while, rather than wait
   * for room it is not taking (1,000 writes/s on 5M rows held it for good).
   */
  private async redoHold(): Promise<Hold | null> {
    const limit = this.state.settings.maxRedoFill;
    const now = Date.now();
    const fill = limit > 0 && this.probes && now >= this.redoQuietUntil ? await this.probes.redoFill() : null;
    if (fill === null) {
      this.flushing = null;
      return null;
    }
    const low = Math.max(0, limit - 10);
    if (!this.flushing) {
      if (fill < limit) return null;
      this.flushing = { since: now, fill };
    } else if (fill < low) {
      this.flushing = null;
      return null;
    } else if (now - this.flushing.since >= REDO_RELIEF_MS && fill > this.flushing.fill - REDO_RELIEF_POINTS) {
      this.flushing = null;
      this.redoQuietUntil = now + REDO_QUIET_MS;
      return null;
    }
    return { kind: 'redo', message: `redo log ${limit}% full: letting the server flush it down to ${low}%` };
  }
}

/** A hold on the redo log that has not brought its fill down this many points in this long gives way... */
const REDO_RELIEF_MS = 2000;
const REDO_RELIEF_POINTS = 5;
/** ...for this long, before the fill is looked at again. */
const REDO_QUIET_MS = 10_000;

/** The one number the operator's throttle query must return; anything else is refused up front. */
export async function throttleQueryValue(probes: Probes, sql: string): Promise<number> {
  const rows = await probes.rows(sql);
  const value = rows.length === 1 && rows[0].length === 1 ? Number(rows[0][0]) : Number.NaN;
  if (!Number.isFinite(value)) throw new Error('it must return one row with one number');
  return value;
}

/**
 * `01:00-05:00` -> seconds since midnight. Seconds may be given too (`01:00:30-01:00:45`): a test can
 * drive a window by the clock.
 */
/** A daily window of local time: one or more ranges, in seconds since midnight (an end before its start runs past midnight). */
export type DailyWindow = { from: number; to: number }[];

/** `HH:MM[:SS]-HH:MM[:SS]`, or several of those separated by commas (e.g. a lunch hour and the night). */
export function parseWindow(text: string): DailyWindow {
  const seconds = (h: string, mm: string, ss = '0') => Number(h) * 3600 + Number(mm) * 60 + Number(ss);
  const bad = (h: string, mm: string, ss = '0', end = false) =>
    Number(h) > (end ? 24 : 23) || Number(mm) > 59 || Number(ss) > 59 || (Number(h) === 24 && (Number(mm) > 0 || Number(ss) > 0));
  return text.split(',').map((range) => {
    const m = range.trim().match(/^(\d{1,2}):(\d{2})(?::(\d{2}))?-(\d{1,2}):(\d{2})(?::(\d{2}))?$/);
    if (!m || bad(m[1], m[2], m[3]) || bad(m[4], m[5], m[6], true)) {
      throw new UserError(`--window ${text} is not HH:MM-HH:MM (local time), e.g. 01:00-05:00, or several separated by commas`);
    }
    return { from: seconds(m[1], m[2], m[3]), to: seconds(m[4], m[5], m[6]) };
  });
}

/** Whether `t` (seconds since midnight) falls in the range. */
export function inRange(range: { from: number; to: number }, t: number): boolean {
  return range.from <= range.to ? t >= range.from && t < range.to : t >= range.from || t < range.to;
}

export function inWindow(window: DailyWindow, now: Date): boolean {
  const t = now.getHours() * 3600 + now.getMinutes() * 60 + now.getSeconds();
  return window.some((range) => inRange(range, t));
}
