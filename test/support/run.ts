import { RunState, type Settings } from '../../src/core/run-state.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The run in the background: its outcome is recorded, so a wait can fail at once with the run's own error. */
export function background(run: Promise<unknown>): { settled: boolean; error?: unknown } {
  const outcome: { settled: boolean; error?: unknown } = { settled: false };
  run.then(
    () => (outcome.settled = true),
    (error) => Object.assign(outcome, { settled: true, error }),
  );
  return outcome;
}

/** Polls `check` until it holds; bounded, and stops early if the run (when given) ended. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  run: { settled: boolean; error?: unknown } | null,
  ms = 30_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (run?.settled) throw new Error(`the run ended before ${what}: ${String(run.error ?? 'success')}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A RunState to watch (and steer) a run from the test; its settings are the run's live settings. */
export function runState(table: string, alter: string, engine: 'mysql' | 'postgres', settings: Partial<Settings> = {}): RunState {
  return new RunState(
    { chunkTimeMs: 50, maxLagMs: 1500, maxLoad: {}, criticalLoad: {}, maxRowsPerSec: 0, niceRatio: 0, ...settings },
    { table, alter, engine },
  );
}
