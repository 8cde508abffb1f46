import { defaultSettings, type RunServices } from '../run/config.js';
import { silentReporter } from '../report/reporter.js';
import type { RunState, Settings } from '../run/run-state.js';
import type { ThrottleOptions } from '../run/throttler.js';
import type { CheckResult } from '../engine/types.js';

/** What a backfill does, fixed when it starts; the live settings (chunk time, lag, load, rate, nice ratio) are its RunState's. */
export interface BackfillConfig extends ThrottleOptions {
  execute: boolean;
  /** Continue a killed backfill after its last committed batch (same --set and --where). */
  resume: boolean;
  /** Rows per batch, fixed; absent, the batch size adapts to the chunk time (--chunk-time-ms). */
  batchRows?: number;
  /** Replica URLs whose lag holds the batches back. */
  replicas: string[];
  /** When this file appears, the run stops at the next batch boundary. */
  panicFlagFile?: string;
}

/** What callers pass: one flat object, as for migrate, with migrate's services (reporter, state, hook, signal). */
export type BackfillOptions = BackfillConfig & Settings & RunServices;

export const backfillDefaults: Readonly<BackfillConfig & Settings> = Object.freeze({
  ...defaultSettings,
  execute: false,
  resume: false,
  replicas: [],
});

export const defaultBackfillOptions: Readonly<BackfillOptions> = Object.freeze({ ...backfillDefaults, reporter: silentReporter });

/**
 * What a backfill returns, plain enough for the table's history: the outcome, the rows it changed,
 * every check, human lines, and the figures.
 */
export interface BackfillResult {
  /** `dry-run`: nothing changed, and the run would go ahead; `success`: every batch committed. A failure throws. */
  outcome: 'dry-run' | 'success';
  /** Rows the UPDATEs matched, batches of the interrupted run it resumed included. */
  rowsTouched: number;
  checks: CheckResult[];
  summary: string[];
  detail: {
    table: string;
    key: string;
    keyColumns: string[];
    set: string;
    where: string | null;
    estimatedRows: number;
    /** The server's estimate of the rows that match --where, before the run. */
    estimatedMatching: number;
    rowsScanned: number;
    batches: number;
    resumed: boolean;
    durationMs: number;
  };
  state: RunState;
}
