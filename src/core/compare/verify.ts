import { sleep } from '../engine/retry/backoff.js';
import { AbortedError, CLOSING, ignoreFailure } from '../engine/errors.js';
import type { Reporter } from '../report/reporter.js';
import type { StageResult } from '../report/stage-result.js';
import type { Key } from '../engine/types.js';
import { walkChunks } from '../run/walk-chunks.js';
import type { ComparisonRequest, EngineComparison, RowComparison } from '../engine/ports/comparison.js';

/** Keys handed to `compareKeys` at once (each travels as a parameter, twice with another table). */
export const KEYS_PER_COMPARISON = 1000;

export interface VerifyOptions {
  /** Rows per chunk: each chunk is read in one short snapshot of its own. */
  chunkRows: number;
  /** Differing keys listed (all are counted). */
  maxDifferences: number;
  /** Times a differing key is read again, with a growing pause, before it counts. */
  rechecks: number;
  /** The first pause between re-reads; it doubles each time. */
  recheckDelayMs: number;
  reporter: Reporter;
  signal?: AbortSignal;
}

export const defaultVerifyOptions = { chunkRows: 1000, maxDifferences: 20, rechecks: 3, recheckDelayMs: 200 };

export interface VerifyResult extends StageResult {
  outcome: 'matched' | 'differences';
  detail: {
    table: string;
    mode: 'expect' | 'against';
    keyColumns: string[];
    rowsExamined: number;
    chunks: number;
    /** Chunks whose checksums (or expectation counts) showed a difference, before re-reading. */
    chunksDiffering: number;
    /** Keys that differed at first and matched when read again (writes in flight). */
    settledOnRecheck: number;
    differences: number;
    /** The first differing keys, in key order, each as its values. */
    differingKeys: Key[];
  };
}

/**
 * `shadowcut verify`: walks the table in keyset chunks, each surveyed in a short snapshot of its
 * own (no long transaction, no lock), and looks row by row only where a chunk shows a difference.
 * A difference is read again a few times, with pauses, before it counts: without one view of the
 * whole table, a write in flight can make a row differ for a moment (docs/verify.md).
 */
export async function verifyTable(engine: EngineComparison, request: ComparisonRequest, options: VerifyOptions): Promise<VerifyResult> {
  const started = Date.now();
  const { reporter } = options;
  const comparison = await engine.openComparison(request);
  const detail: VerifyResult['detail'] = {
    table: comparison.table,
    mode: request.against ? 'against' : 'expect',
    keyColumns: comparison.keyColumns,
    rowsExamined: 0,
    chunks: 0,
    chunksDiffering: 0,
    settledOnRecheck: 0,
    differences: 0,
    differingKeys: [],
  };
  try {
    for (const line of comparison.summary) reporter.info(line);
    let lastProgress = Date.now();
    await walkChunks(
      (after, rows) => comparison.nextBoundary(after, rows),
      options.chunkRows,
      async (range) => {
        if (options.signal?.aborted) throw new AbortedError(String(options.signal.reason ?? 'interrupted'));
        const { rows, keys } = await comparison.inSnapshot(async (view) => {
          const survey = await view.survey(range);
          return { rows: survey.rows, keys: survey.clean ? [] : await view.differingKeys(range) };
        });
        detail.chunks++;
        detail.rowsExamined += rows;
        if (keys.length) {
          detail.chunksDiffering++;
          // Once the list is full, differences are only counted: one immediate re-read is enough for that.
          const full = detail.differingKeys.length >= options.maxDifferences;
          const confirmed = await recheck(comparison, keys, full ? 1 : options.rechecks, full ? 0 : options.recheckDelayMs);
          detail.settledOnRecheck += keys.length - confirmed.length;
          detail.differences += confirmed.length;
          detail.differingKeys.push(...confirmed.slice(0, options.maxDifferences - detail.differingKeys.length));
        }
        if (Date.now() - lastProgress >= 2000) {
          lastProgress = Date.now();
          reporter.info(progressLine(detail, comparison), { rowsExamined: detail.rowsExamined, differences: detail.differences });
        }
      },
    );
  } finally {
    await comparison.close().catch(ignoreFailure(CLOSING));
    reporter.close();
  }
  const matched = detail.differences === 0;
  const summary = [
    `${comparison.table}: ${detail.rowsExamined} row(s) examined in ${detail.chunks} chunk(s)`,
    matched
      ? 'every row matched'
      : `${detail.differences} row(s) differ; the first ${detail.differingKeys.length} by ${comparison.keyColumns.join(', ')}: ${detail.differingKeys.map(formatKey).join('; ')}`,
    ...(detail.settledOnRecheck ? [`${detail.settledOnRecheck} row(s) differed at first and matched when read again (writes in flight)`] : []),
  ];
  return { outcome: matched ? 'matched' : 'differences', rowsTouched: detail.rowsExamined, checks: [], summary, detail, durationMs: Date.now() - started };
}

/** The keys that still differ after `times` re-reads, each in a fresh snapshot, pausing `delayMs`, then twice that, between them. */
async function recheck(comparison: RowComparison, keys: Key[], times: number, delayMs: number): Promise<Key[]> {
  let left = keys;
  for (let i = 0; i < times && left.length; i++) {
    await sleep(delayMs * 2 ** i);
    const now = left;
    left = await comparison.inSnapshot(async (view) => {
      const still: Key[] = [];
      for (let at = 0; at < now.length; at += KEYS_PER_COMPARISON) still.push(...(await view.compareKeys(now.slice(at, at + KEYS_PER_COMPARISON))));
      return still;
    });
  }
  return left;
}

function progressLine(d: VerifyResult['detail'], c: RowComparison): string {
  const pct = c.estimatedRows > 0 ? ` (${Math.min(100, (100 * d.rowsExamined) / c.estimatedRows).toFixed(1)}%)` : '';
  return `verify: ${d.rowsExamined} of ~${c.estimatedRows} row(s)${pct}, ${d.differences} differing`;
}

/** A key as a person reads it: `42`, or `(7, abc)` for a composite key; bytes in hex. */
export function formatKey(key: Key): string {
  const values = key.map((v) => (v === null ? 'NULL' : Buffer.isBuffer(v) ? `0x${v.toString('hex')}` : String(v)));
  return values.length === 1 ? values[0] : `(${values.join(', ')})`;
}
