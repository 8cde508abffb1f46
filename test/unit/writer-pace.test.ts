// WriterPace (src/core/run/writer-pace.ts): --max-writer-slowdown, the copy paced by a stand-in writer's
// latency (the heartbeat's writes) against its latency before the copy; and how Pacing rests and shortens chunks by it. The
// clock is passed in; nothing sleeps for real.
import { describe, expect, it } from 'vitest';
import { Pacing, type Waiting } from '../../src/core/run/pacing.js';
import type { Throttler } from '../../src/core/run/throttler.js';
import { WriterPace } from '../../src/core/run/writer-pace.js';
import { runState } from '../support/run.js';

/** A pace with `factor`, its baseline taken from `base` (ms, one probe each), the copy started. */
function paced(factor: number, base: number[]) {
  const setting = { factor };
  const pace = new WriterPace(() => setting.factor);
  for (const ms of base) pace.record(ms);
  pace.startCopy();
  return { pace, setting };
}

const calm = Array.from({ length: 10 }, (_, i) => 1 + i / 10); // 1.0-1.9 ms: p90 1.8 ms

describe('WriterPace', () => {
  it('is off at 0: no limit, no rest, the operator chunk time', () => {
    const { pace } = paced(0, calm);
    for (const ms of [50, 60, 70]) pace.record(ms);
    expect(pace.limitMs()).toBeNull();
    expect(pace.restAfter(100, 5000)).toBe(0);
    expect(pace.chunkTimeMs(100)).toBe(100);
  });

  it('judges nothing until ten probes made the baseline', () => {
    const { pace } = paced(2, calm.slice(0, 9));
    for (const ms of [50, 60, 70]) pace.record(ms);
    expect(pace.limitMs()).toBeNull();
    expect(pace.restAfter(100, 5000)).toBe(0);
  });

  it("sets the limit at the factor times the baseline's 90th percentile, never under baseline + 1 ms", () => {
    expect(paced(2, calm).pace.limitMs()).toBeCloseTo(3.6);
    expect(paced(1.1, calm).pace.limitMs()).toBeCloseTo(2.8);
  });

  it('takes the baseline afresh just before the copy: the setup before it is not the writers normal', () => {
    const pace = new WriterPace(() => 2);
    for (let i = 0; i < 10; i++) pace.record(80);
    pace.startBaseline();
    expect(pace.baselineReady).toBe(false);
    for (const ms of calm) pace.record(ms);
    pace.startCopy();
    expect(pace.baselineMs()).toBeCloseTo(1.8);
  });

  it('rests more, and shortens chunks, while the writers are slowed; at most once a second; then eases off', () => {
    const { pace } = paced(2, calm);
    for (const ms of [9, 9, 9]) pace.record(ms);
    expect(pace.restAfter(100, 1000)).toBe(25); // level 0.25
    expect(pace.restAfter(100, 1500)).toBe(25); // within the second: unchanged
    expect(pace.restAfter(100, 2000)).toBe(50); // still slowed: doubled
    expect(pace.chunkTimeMs(100)).toBeCloseTo(100 / 1.5);
    for (let t = 3000; t <= 8000; t += 1000) pace.restAfter(100, t);
    expect(pace.currentLevel).toBe(8); // capped
    expect(pace.chunkTimeMs(100)).toBeCloseTo(100 / 9);
    expect(pace.chunkTimeMs(50)).toBe(10); // never under 10 ms
    // The writers recover: the window's 90th percentile falls under the limit.
    for (let i = 0; i < 10; i++) pace.record(1.5);
    expect(pace.restAfter(100, 9000)).toBe(400);
    expect(pace.restAfter(100, 10000)).toBe(200);
    for (let t = 11000; t <= 15000; t += 1000) pace.restAfter(100, t);
    expect(pace.currentLevel).toBe(0);
    expect(pace.chunkTimeMs(100)).toBe(100);
  });

  it('does not act on one slow probe among calm ones', () => {
    const { pace } = paced(2, calm);
    for (const ms of [1.2, 1.1, 1.3, 1.2, 1.4, 1.1, 1.2, 1.3, 1.2, 40]) pace.record(ms);
    expect(pace.restAfter(100, 1000)).toBe(0);
  });

  it('takes no sample from a write another session held off before the copy, and remembers why until the baseline starts again', () => {
    const pace = new WriterPace(() => 2);
    pace.startBaseline();
    pace.held('another session holds the row');
    for (const ms of calm.slice(0, 9)) pace.record(ms);
    expect(pace.baselineReady).toBe(false);
    // A write made since does not clear it: the baseline is waited for however long that takes.
    expect(pace.baselineHeld).toBe('another session holds the row');
    pace.startBaseline();
    expect(pace.baselineHeld).toBeNull();
  });

  it('reads writes held off during the copy as slowed writers: the copy rests, never eases off', () => {
    const { pace } = paced(2, calm);
    for (const ms of [1.2, 1.1, 1.3]) pace.record(ms);
    pace.held('another session holds the row');
    pace.held('another session holds the row');
    expect(pace.restAfter(100, 1000)).toBe(25);
    for (let i = 0; i < 10; i++) pace.held('another session holds the row');
    expect(pace.restAfter(100, 2000)).toBe(50);
  });

  it('follows the operator: turned off mid-copy, the rest stops at once', () => {
    const { pace, setting } = paced(2, calm);
    for (const ms of [9, 9, 9]) pace.record(ms);
    expect(pace.restAfter(100, 1000)).toBe(25);
    setting.factor = 0;
    expect(pace.restAfter(100, 1100)).toBe(0);
    expect(pace.chunkTimeMs(100)).toBe(100);
  });
});

describe('Pacing with a WriterPace', () => {
  function pacing(factor: number) {
    const state = runState('t', 'ADD x int', 'mysql', { maxWriterSlowdown: factor });
    const rests: number[] = [];
    const waiting: Waiting = { check: async () => {}, held: async () => {}, rest: async (ms) => void rests.push(ms) };
    const throttler = { hold: async () => null } as unknown as Throttler;
    const ctx = { state, report: { phase() {}, progress() {}, info() {}, warn() {}, close() {} }, checkAbort: () => {} };
    const writers = new WriterPace(() => state.settings.maxWriterSlowdown);
    return { p: new Pacing(ctx, throttler, waiting, { update: () => {} }, writers), writers, state, rests };
  }

  it('waits for the baseline before the copy, resting meanwhile, and counts the writers rest by its kind', async () => {
    const f = pacing(2);
    let probes = 0;
    // Each of the pacing's rests lets the fake probe answer once.
    const p = f.p;
    const rest = (ms: number) => {
      f.rests.push(ms);
      f.writers.record(1);
      probes++;
      return Promise.resolve();
    };
    (p as unknown as { waiting: Waiting }).waiting.rest = rest;
    await p.startCopy();
    expect(probes).toBe(10);
    expect(f.writers.baselineReady).toBe(true);
    for (const ms of [9, 9, 9]) f.writers.record(ms);
    await p.afterChunk(1000, 200);
    expect(f.rests.at(-1)).toBe(50);
    expect(f.state.status.throttledMs.writers).toBe(50);
    expect(p.chunkTimeMs()).toBeCloseTo(f.state.settings.chunkTimeMs / 1.25);
  });

  it('does not wait for a baseline when the setting is off', async () => {
    const f = pacing(0);
    await f.p.startCopy();
    expect(f.rests).toEqual([]);
    await f.p.afterChunk(1000, 200);
    expect(f.rests).toEqual([]);
  });
});
