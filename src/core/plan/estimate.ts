import { ChunkSizer } from '../run/chunk-sizer.js';
import type { KeyRange } from '../engine/contract-values.js';
import type { CopySample } from './types.js';
import type { SampleProbe } from '../engine/ports/preflight.js';
import type { TableSize } from '../engine/ports/sizing.js';

/**
 * Rows timed by default: enough that scaling to the table does not turn a scheduling hiccup into
 * seconds (20k rows were 0.3-0.5 s of work, so one 100 ms stall moved a 1M-row estimate by 25%),
 * and a bounded share of a large table so the plan itself stays short.
 */
export function defaultSampleRows(size: TableSize): number {
  return Math.round(Math.min(500_000, Math.max(50_000, size.rows * 0.02)));
}

/**
 * Work the plan does not time, whatever the table's size: the mapping proof on a few thousand rows
 * before the copy and again at verification (0.1-0.3 s each), creating the shadow, the cut-over's
 * lock and swap, and cleanup (0.3-0.7 s together on the bench's servers). The proof stays out of the
 * plan: it would stop the plan where only the run should be refused.
 */
export const UNTIMED_MS = 1000;

/**
 * The run's phases on the table's first `rows` rows, each with the run's own statements: the copy
 * in chunks of the run's chunk time (each chunk its boundary query, then delete and insert), the
 * index builds the run defers, and the verification's digests of both sides, each side on its own
 * session at once as the run's checksum view reads them.
 */
export async function timeSample(probe: SampleProbe, rows: number, chunkTimeMs: number): Promise<CopySample> {
  const sizer = new ChunkSizer(chunkTimeMs);
  const chunks: { rows: number; ms: number }[] = [];
  let copied = 0;
  const sampled: KeyRange = { after: null, upTo: null };
  for (;;) {
    const start = performance.now();
    const upTo = await probe.nextBoundary(sampled.upTo, Math.min(sizer.rows, rows - copied));
    const n = await probe.copy({ after: sampled.upTo, upTo });
    const ms = performance.now() - start;
    sizer.record(n, ms);
    chunks.push({ rows: n, ms });
    copied += n;
    sampled.upTo = upTo;
    if (upTo === null || copied >= rows) break;
  }
  const indexMs = await timed(() => probe.buildIndexes());
  const settleMs = await timed(() => probe.settle());
  const verifyMs = await timed(() => Promise.all([probe.digest('original', sampled), probe.digest('shadow', sampled)]));
  return {
    rows: copied,
    chunks: chunks.length,
    copyMs: sum(chunks, 'ms'),
    copyRowsPerMs: steadyRate(chunks),
    indexes: indexMs.value,
    indexMs: indexMs.ms,
    settleMs: settleMs.ms,
    verifyMs: verifyMs.ms,
  };
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - start };
}

const sum = <T extends Record<K, number>, K extends keyof T>(items: T[], key: K) => items.reduce((total, item) => total + item[key], 0);

/** The copy's rate over the chunks past the first quarter of the rows, by when the chunk size has settled. */
function steadyRate(chunks: { rows: number; ms: number }[]): number {
  const total = sum(chunks, 'rows');
  let seen = 0;
  const steady = chunks.filter((c) => (seen += c.rows) > total / 4);
  const ms = sum(steady, 'ms');
  return ms > 0 ? sum(steady, 'rows') / ms : total / Math.max(sum(chunks, 'ms'), 1);
}

/** What the plan prints and returns as the run's duration, each part as the run has it. */
/** What migrate was told to pace its copy with, which the estimate counts. */
export interface CopyPacing {
  maxRowsPerSec?: number;
  niceRatio?: number;
}

export interface Estimate {
  sample: CopySample;
  copyMs: number;
  indexMs: number;
  verifyMs: number;
  /** Start-up and preflight checks, as the plan itself just ran them, and `UNTIMED_MS`. */
  fixedMs: number;
  totalMs: number;
}

/**
 * The sample scaled to the table's estimated rows. Index builds sort, so they grow a little faster
 * than the rows; at these sizes linear is within the noise. One checksum round: a round that finds
 * differences only happens under writes, which the plan says add to it.
 */
export function scale(sample: CopySample, size: TableSize, preflightMs: number, pacing: CopyPacing = {}): Estimate {
  const rows = Math.max(size.rows, sample.rows);
  const factor = sample.rows > 0 ? rows / sample.rows : 0;
  const timed = sample.copyRowsPerMs > 0 ? rows / sample.copyRowsPerMs : 0;
  // The run's own pacing: at most --max-rows-per-sec, and --nice-ratio's rest after each chunk.
  const capped = pacing.maxRowsPerSec ? Math.max(timed, (rows / pacing.maxRowsPerSec) * 1000) : timed;
  const copyMs = capped * (1 + (pacing.niceRatio ?? 0));
  const indexMs = sample.indexMs * factor + sample.settleMs;
  const verifyMs = sample.verifyMs * factor;
  const fixedMs = preflightMs + UNTIMED_MS;
  return { sample, copyMs, indexMs, verifyMs, fixedMs, totalMs: copyMs + indexMs + verifyMs + fixedMs };
}
