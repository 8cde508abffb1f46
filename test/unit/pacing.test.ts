// Pacing (src/core/run/pacing.ts) and Throttler (src/core/run/throttler.ts): how a loop of chunks is held back
// and slowed, against fake probes and a fake throttler. Fake timers stand in for the clock and the
// holds' sleeps; nothing sleeps for real.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AbortedError } from '../../src/core/engine/errors.js';
import { Pacing, type Waiting } from '../../src/core/run/pacing.js';
import type { Probes } from '../../src/core/engine/ports/throttle.js';
import type { Reporter } from '../../src/core/report/reporter.js';
import type { Settings } from '../../src/core/run/run-state.js';
import { Throttler, type Hold } from '../../src/core/run/throttler.js';
import { runState } from '../support/run.js';

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(new Date(2024, 2, 1, 12, 0, 0));
});

afterEach(() => {
  vi.useRealTimers();
});

function recordingReporter(): Reporter & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    phase() {},
    progress() {},
    info: (m) => void lines.push(`info: ${m}`),
    warn: (m) => void lines.push(`warn: ${m}`),
    close() {},
  };
}

function pacing(holds: (Hold | null)[], settings: Partial<Settings> = {}) {
  const state = runState('t', 'ADD x int', 'mysql', settings);
  const report = recordingReporter();
  const calls: string[] = [];
  const seen: string[] = [];
  const waiting: Waiting = {
    check: async () => void calls.push('check'),
    held: async () => void calls.push('held'),
    rest: async (ms) => {
      calls.push(`rest ${ms}`);
      await vi.advanceTimersByTimeAsync(ms);
    },
  };
  let asked = 0;
  const throttler = {
    hold: async () => {
      seen.push(state.status.state);
      return holds[asked++] ?? null;
    },
  } as unknown as Throttler;
  let updates = 0;
  const aborts = { reason: null as string | null };
  const ctx = {
    state,
    report,
    checkAbort: () => {
      if (aborts.reason) throw new AbortedError(aborts.reason);
    },
  };
  const p = new Pacing(ctx, throttler, waiting, { update: () => updates++ });
  return { p, state, report, calls, seen, aborts, asked: () => asked, updates: () => updates };
}

/** Runs `step` to its end while the fake clock moves. */
async function settle<T>(step: Promise<T>): Promise<T> {
  let done = false;
  const result = step.finally(() => (done = true));
  for (let i = 0; i < 1000 && !done; i++) await vi.advanceTimersByTimeAsync(50);
  return result;
}

describe('Pacing.holdWhileThrottled', () => {
  it('holds while the throttler names a reason, doing the background work each round, and counts the time by kind', async () => {
    const load: Hold = { kind: 'load', message: 'load: Threads_running=40 >= 25' };
    const lag: Hold = { kind: 'replica', message: 'replica lag 3000 ms > 1500 ms' };
    const f = pacing([load, load, lag, null]);
    await settle(f.p.holdWhileThrottled());
    expect(f.calls).toEqual(['check', 'held', 'check', 'held', 'check', 'held', 'check']);
    expect(f.asked()).toBe(4);
    // Announced once per reason, and once when it goes on.
    expect(f.report.lines).toEqual([`warn: holding back: ${load.message}`, `warn: holding back: ${lag.message}`, 'info: going on: no longer held back']);
    expect(f.state.status.throttledMs).toEqual({ load: 500, replica: 250 });
    expect(f.seen).toEqual(['running', 'throttled', 'throttled', 'throttled']);
    expect(f.state.status.state).toBe('running');
    expect(f.updates()).toBe(3);
  });

  it('goes on at once, saying nothing, when nothing holds it back', async () => {
    const f = pacing([null]);
    await f.p.holdWhileThrottled();
    expect(f.calls).toEqual(['check']);
    expect(f.report.lines).toEqual([]);
    expect(f.state.status.throttledMs).toEqual({});
  });

  it("an operator's pause holds without asking the throttler, as 'paused'", async () => {
    const f = pacing([]);
    f.state.paused = true;
    const held = f.p.holdWhileThrottled();
    await vi.advanceTimersByTimeAsync(1000);
    expect(f.asked()).toBe(0);
    expect(f.state.status.state).toBe('paused');
    f.state.paused = false;
    await settle(held);
    // Four rounds of 250 ms held, and the fifth, begun as the pause ended, finishes its round.
    expect(f.state.status.throttledMs.paused).toBe(1250);
    expect(f.report.lines[0]).toBe('warn: holding back: paused by operator');
  });

  it('stops at its safe point when the run is aborted during a hold, and when the background work failed', async () => {
    const f = pacing(Array(100).fill({ kind: 'flag', message: 'flag file /tmp/x exists' }));
    const held = f.p.holdWhileThrottled().catch((e: Error) => e);
    await vi.advanceTimersByTimeAsync(600);
    f.aborts.reason = 'panic flag file /tmp/p exists';
    const error = await settle(held);
    expect(error).toBeInstanceOf(AbortedError);
    const g = pacing([null]);
    const failing = new Pacing(
      { state: g.state, report: g.report, checkAbort: () => {} },
      { hold: async () => null } as unknown as Throttler,
      {
        check: () => Promise.reject(new Error('stream lost')),
        held: async () => {},
        rest: async () => {},
      },
      { update: () => {} },
    );
    await expect(failing.holdWhileThrottled()).rejects.toThrow('stream lost');
  });
});

describe('Pacing after a chunk', () => {
  it('takes at most a quarter second of --max-rows-per-sec per chunk, shared by the threads, at least one row', () => {
    expect(pacing([]).p.chunkRows(1)).toBe(Number.POSITIVE_INFINITY);
    expect(pacing([], { maxRowsPerSec: 500 }).p.chunkRows(1)).toBe(125);
    expect(pacing([], { maxRowsPerSec: 500 }).p.chunkRows(4)).toBe(32);
    expect(pacing([], { maxRowsPerSec: 2 }).p.chunkRows(8)).toBe(1);
  });

  it('rests to the row rate and for the nice ratio, and counts each', async () => {
    const f = pacing([], { maxRowsPerSec: 500, niceRatio: 2 });
    await f.p.afterChunk(1000, 300); // 1000 rows at 500/s take 2000 ms: 1700 more; then 2 x 300 ms
    expect(f.calls).toEqual(['rest 1700', 'rest 600']);
    expect(f.state.status.throttledMs).toEqual({ rate: 1700, nice: 600 });
    await f.p.afterChunk(100, 500); // slower than the rate already: only the nice ratio
    expect(f.calls.slice(2)).toEqual(['rest 1000']);
  });

  it('never rests without a limit or a ratio', async () => {
    const f = pacing([]);
    await f.p.afterChunk(1_000_000, 10);
    expect(f.calls).toEqual([]);
  });
});

/** Probes whose readings the test sets; counts each look. */
function probes(readings: { load?: Record<string, number>; lags?: { replica: string; lagMs: number | null; error?: string }[]; redo?: number | null }) {
  const looks: string[] = [];
  const rows: { value: unknown[][] | Error } = { value: [[0]] };
  const p: Probes = {
    replicaLag: async () => (looks.push('lag'), readings.lags ?? []),
    load: async (names) => (looks.push(`load ${names.join(',')}`), readings.load ?? {}),
    rows: async () => {
      looks.push('rows');
      if (rows.value instanceof Error) throw rows.value;
      return rows.value;
    },
    redoFill: async () => (looks.push('redo'), readings.redo ?? null),
    close: async () => {},
  };
  return { p, looks, readings, rows };
}

describe('Throttler', () => {
  it('holds at --max-load, names the indicator, and keeps the reason in the status', async () => {
    const state = runState('t', 'x', 'mysql', { maxLoad: { Threads_running: 25 } });
    const { p, readings } = probes({ load: { Threads_running: 25 } });
    const t = new Throttler(state, p);
    expect(await t.hold()).toEqual({ kind: 'load', message: 'load: Threads_running=25 >= 25' });
    expect([state.status.throttleKind, state.status.throttleReason]).toEqual(['load', 'load: Threads_running=25 >= 25']);
    readings.load = { Threads_running: 24 };
    expect(await t.hold(new Date(Date.now() + 1000))).toBeNull();
    expect(state.status.throttleReason).toBeNull();
  });

  it('answers from its last look for 200 ms', async () => {
    const state = runState('t', 'x', 'mysql', { maxLoad: { Threads_running: 25 } });
    const { p, looks } = probes({ load: { Threads_running: 1 } });
    const t = new Throttler(state, p);
    const now = Date.now();
    await t.hold(new Date(now));
    await t.hold(new Date(now + 199));
    expect(looks.filter((l) => l.startsWith('load'))).toHaveLength(1);
    await t.hold(new Date(now + 200));
    expect(looks.filter((l) => l.startsWith('load'))).toHaveLength(2);
  });

  it('aborts at critical load, or hibernates without probing anything when asked to', async () => {
    const state = runState('t', 'x', 'mysql', { criticalLoad: { Threads_running: 100 } });
    const { p, looks } = probes({ load: { Threads_running: 100 } });
    await expect(new Throttler(state, p).hold()).rejects.toThrow(AbortedError);
    const t = new Throttler(state, p, { criticalLoadHibernateSeconds: 60 });
    const now = Date.now();
    expect(await t.hold(new Date(now))).toEqual({ kind: 'critical', message: 'critical load: Threads_running=100 reached 100; hibernating 60 s' });
    const before = looks.length;
    expect((await t.hold(new Date(now + 59_000)))?.kind).toBe('critical');
    expect(looks).toHaveLength(before);
    expect((await t.hold(new Date(now + 60_000)))?.kind).toBe('critical'); // looked again: still critical
    expect(looks.length).toBeGreaterThan(before);
  });

  it('fails closed on a replica it cannot measure, and holds over --max-lag, keeping the worst lag seen', async () => {
    const state = runState('t', 'x', 'mysql', { maxLagMs: 1500 });
    const { p, readings } = probes({
      lags: [
        { replica: 'r1', lagMs: 100 },
        { replica: 'r2', lagMs: null, error: 'connect ECONNREFUSED' },
      ],
    });
    const t = new Throttler(state, p);
    const now = Date.now();
    expect(await t.hold(new Date(now))).toEqual({ kind: 'replica', message: 'replica r2 cannot be measured (connect ECONNREFUSED)' });
    readings.lags = [{ replica: 'r1', lagMs: 2000 }];
    expect(await t.hold(new Date(now + 1000))).toEqual({ kind: 'replica', message: 'replica lag 2000 ms > 1500 ms' });
    readings.lags = [{ replica: 'r1', lagMs: 1500 }];
    expect(await t.hold(new Date(now + 2000))).toBeNull();
    expect([state.status.lagMs, state.status.maxLagSeenMs]).toEqual([1500, 2000]);
  });

  it('holds while the throttle query returns more than 0, and when it fails or returns anything but one number', async () => {
    const state = runState('t', 'x', 'mysql');
    const { p, rows } = probes({});
    const t = new Throttler(state, p, { throttleQuery: 'SELECT busy FROM ops' });
    let now = Date.now();
    const at = () => new Date((now += 1000));
    expect(await t.hold(at())).toBeNull();
    rows.value = [['3']];
    expect(await t.hold(at())).toEqual({ kind: 'query', message: 'throttle query returned 3' });
    rows.value = [[1], [2]];
    expect(await t.hold(at())).toEqual({ kind: 'query', message: 'throttle query failed: it must return one row with one number' });
    rows.value = new Error('no such table ops');
    expect(await t.hold(at())).toEqual({ kind: 'query', message: 'throttle query failed: no such table ops' });
  });

  it('holds outside its window (local time)', async () => {
    const t = new Throttler(runState('t', 'x', 'mysql'), null, { window: '01:00-05:00' });
    expect(await t.hold(new Date(2024, 2, 1, 12, 0))).toEqual({ kind: 'window', message: 'outside the window 01:00-05:00' });
    expect(await t.hold(new Date(2024, 2, 2, 1, 0))).toBeNull();
  });

  it('steps aside at --max-redo-fill until the fill is 10 points lower, and gives way when holding does not bring it down', async () => {
    const state = runState('t', 'x', 'mysql', { maxRedoFill: 80 });
    const { p, readings, looks } = probes({ redo: 79 });
    const t = new Throttler(state, p);
    const step = async (ms: number) => {
      vi.advanceTimersByTime(ms);
      return (await t.hold())?.kind ?? null;
    };
    expect(await step(0)).toBeNull();
    readings.redo = 80;
    expect(await step(1000)).toBe('redo');
    readings.redo = 72; // under the limit, not 10 under it: still held
    expect(await step(1000)).toBe('redo');
    readings.redo = 69;
    expect(await step(1000)).toBeNull();
    // Held for 2 s with the fill not 5 points down: the copy goes on, and the fill is not read for 10 s.
    readings.redo = 90;
    expect(await step(1000)).toBe('redo');
    readings.redo = 88;
    expect(await step(1000)).toBe('redo');
    expect(await step(1000)).toBeNull();
    const reads = looks.filter((l) => l === 'redo').length;
    expect(await step(5000)).toBeNull();
    expect(looks.filter((l) => l === 'redo')).toHaveLength(reads);
    expect(await step(5000)).toBe('redo');
  });
});
