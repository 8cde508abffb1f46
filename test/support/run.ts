import type { ChangeBuffer } from '../../src/core/migrate/capture/change-buffer.js';
import { RunState, type Settings } from '../../src/core/run/run-state.js';
import type { CatchUp, ChangeStream, ConsistentView, Key, Migration } from '../../src/core/engine/types.js';
import type { AfterCopy } from '../../src/core/engine/ports/copy.js';

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

/**
 * Polls `check` until it holds; bounded, and stops early if the run (when given) ended. `everyMs`
 * shorter than the default for a state that lasts only a moment (a statement's brief lock wait).
 */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  run: { settled: boolean; error?: unknown } | null,
  ms = 90_000,
  everyMs = 50,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (run?.settled) throw new Error(`the run ended before ${what}: ${String(run.error ?? 'success')}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/**
 * Until the run has been held back (`kind`, throttler.ts's HoldKind) `ms` longer than when called, by
 * its own account: the runner re-decides the hold and adds to `throttledMs` every 250 ms, so this waits
 * for a hold that was kept through several decisions. Fails at once if the run ends meanwhile.
 */
export async function untilHeldFor(state: RunState, kind: string, ms: number, run: { settled: boolean; error?: unknown } | null): Promise<void> {
  const held = () => state.status.throttledMs[kind] ?? 0;
  const from = held();
  await waitFor(`${ms} ms more held back (${kind})`, () => held() >= from + ms, run, ms + 60_000);
}

/** A RunState to watch (and steer) a run from the test; its settings are the run's live settings. */
export function runState(table: string, alter: string, engine: 'mysql' | 'postgres', settings: Partial<Settings> = {}): RunState {
  return new RunState(
    { chunkTimeMs: 50, maxLagMs: 1500, maxLoad: {}, criticalLoad: {}, maxRowsPerSec: 0, niceRatio: 0, maxRedoFill: 0, maxWriterSlowdown: 0, ...settings },
    { table, alter, engine },
  );
}

/** What the runner passes when it opens a source; the logical stream needs none of it. */
export const noSetup = { lockTimeoutMs: 1000, attempts: 1, warn: () => {} };

/** `afterCopy`'s steps for a test that drives the copy itself: each run once, the shadow levelled by the test's own catch-up afterwards. */
export const buildsAsIs: AfterCopy = { transient: (_what, step) => step(), catchUp: async () => {}, uniqueSafe: (step) => step() };

/** The runner's catch-up, reduced to what the engine needs: apply until the buffer has passed the stream's head. */
export function catchUpFrom(migration: Migration, stream: ChangeStream, buffer: ChangeBuffer): CatchUp {
  return async (session) => {
    const target = await stream.head(session);
    for (;;) {
      const batch = buffer.take(500);
      if (batch.keys.length) await migration.applyKeys(batch.keys, session);
      if (buffer.size === 0 && buffer.seen && migration.changes.comparePositions(buffer.seen, target) >= 0) return;
      await buffer.waitForChange(50);
    }
  };
}

/** The ranges of `rows` rows whose checksums differ, over the whole table; closes the view. */
export async function differingRanges(view: ConsistentView, rows: number): Promise<string[]> {
  const differing: string[] = [];
  try {
    for (let from: Key | null = null; ;) {
      const upTo = await view.nextBoundary(from, rows);
      const [a, b] = await view.checksum({ after: from, upTo });
      if (a.rows !== b.rows || a.digest !== b.digest) differing.push(String(upTo));
      if (upTo === null) return differing;
      from = upTo;
    }
  } finally {
    await view.close();
  }
}

/**
 * A set's run in which the operator aborts its last table once that table's copy has begun: waits
 * for the set to fail with that abort (the other tables stop with it).
 */
export async function abortLastTableDuringCopy(states: RunState[], run: Promise<unknown>): Promise<void> {
  const outcome = background(run);
  const last = states[states.length - 1];
  await waitFor(`the copy of ${last.status.table}`, () => last.status.phase === 'copy' && last.status.rowsCopied > 0, outcome);
  last.abortReason = 'aborted by the operator';
  await run.then(
    () => {
      throw new Error('the set ended without failing after one of its tables was aborted');
    },
    (error: unknown) => {
      if (!/aborted by the operator/.test((error as Error).message)) throw error;
    },
  );
}
