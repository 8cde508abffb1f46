import type { MappingProof } from './proofs.js';
import type { RevertVerdict } from './proofs.js';
import { silentReporter, type Reporter } from '../report/reporter.js';
import { RunState, settingsOf, type Settings } from './run-state.js';
import type { ThrottleOptions } from './throttler.js';
import type { AlterPart } from '../engine/ports/in-place.js';
import type { CheckResult, Plan } from '../engine/types.js';
import { DEFAULT_CHUNK_TIME_MS, DEFAULT_SNAPSHOT_WAIT_MS } from '../engine/defaults.js';
import { NO_SEAMS, type FailureSeams } from '../engine/failure-seams.js';

/** What the cut-over does when transactions older than it still hold their snapshot at the end of its wait. */
export type OldSnapshotPolicy = 'fail' | 'postpone' | 'proceed';

export const OLD_SNAPSHOT_POLICIES: readonly OldSnapshotPolicy[] = ['fail', 'postpone', 'proceed'];

export type HookEvent =
  'startup' | 'before-copy' | 'copy-complete' | 'before-cutover' | 'before-revert' | 'after-revert' | 'before-backfill' | 'success' | 'failure';

/**
 * What a run does, fixed when it starts. The settings an operator can change while it runs (chunk
 * time, lag, load, rate, nice ratio) are not here: they live in the run's RunState only.
 */
export interface MigrateConfig extends ThrottleOptions {
  execute: boolean;
  /** Continue a crashed run from its checkpoint (same table, same ALTER). */
  resume: boolean;
  /**
   * A member of a resumed set that had saved no checkpoint: the dead run may have made its shadow or
   * capture before it died (the other members had saved theirs), so those go before it starts afresh.
   * The set's own stream stays: the resumed members follow it. Set by sets/migrate-set.ts only.
   */
  discardUnsaved?: boolean;
  /** How long the cut-over (and the checksum's brief lock) may wait for its locks. */
  lockTimeoutMs: number;
  /** Where tests make the cut-over die, wait or fail: the CLI's are read from its environment; none by default. */
  seams: FailureSeams;
  cutoverAttempts: number;
  /**
   * In place: how long an online index build may wait for transactions older than it (PostgreSQL's
   * CONCURRENTLY waits for every older snapshot in the database). Work waits, not lock waits: the
   * lock timeout does not bound them, this does.
   */
  snapshotWaitMs?: number;
  dropOld: boolean;
  /**
   * Checksum each chunk in its copy's transaction, and at verification only what changed since
   * (see ../migrate/copy-proof.ts): faster on tables larger than memory, but a write to the shadow
   * that bypasses shadowcut, or a change the stream lost, after a chunk's copy goes unseen.
   */
  checksumWhileCopying: boolean;
  /** Copy chunks run at once, each on its own session (`--threads`). */
  copyThreads: number;
  /** Keys applied per statement. */
  applyBatch: number;
  /** Rows per checksum chunk. */
  checksumChunkRows: number;
  /** Replica URLs whose lag holds the copy back. */
  replicas: string[];
  /** Keep the shadow in sync after verification until a cut-over is requested. */
  postponeCutover: boolean;
  /** While this file exists, the cut-over is postponed (as with postponeCutover). */
  postponeFlagFile?: string;
  /**
   * A target of a fleet's joint cut-over: verified, it stays in sync until the fleet releases it
   * (`RunState.fleetReleased`), whatever `shadowcut cutover` or the flags say to it alone; the fleet
   * weighs those for all its targets (core/fleet/joint-swap.ts).
   */
  jointFleet?: boolean;
  /** Take the copy even when the server could make every part of the ALTER in place. */
  forceCopy?: boolean;
  /** When this file appears, the run stops at the next safe point and removes its helper objects. */
  panicFlagFile?: string;
  /**
   * After the cut-over, the old table follows the new one this long (through triggers on the new
   * table), so that `shadowcut revert` can swap them back without losing a write. Absent: no window.
   */
  revertWindowMs?: number;
  /** How long the cut-over waits for transactions holding a snapshot older than it (see ../migrate/cutover/old-snapshots.ts). */
  oldSnapshotWaitMs: number;
  /** What it does with those still there when that wait is up. */
  oldSnapshots: OldSnapshotPolicy;
}

/** How the caller watches and steers a run. */
export interface RunServices {
  reporter: Reporter;
  /** Shared live state (control endpoint, metrics); made from the settings when absent. Its settings then rule. */
  state?: RunState;
  /** Runs the operator's hook for an event (with the error, on failure); a rejection before the cut-over stops the run. */
  hook?: (event: HookEvent, state: RunState, error?: unknown) => Promise<void>;
  /** Ctrl-C: stops the run, helper objects are removed. */
  signal?: AbortSignal;
  /**
   * A revert window is open (the way back proven level): the table's history says so now, not only
   * when the run ends, which may be days later. A failure to record is the callee's to report.
   */
  windowOpened?: (until: string) => Promise<void>;
}

/** What callers pass: one flat object, split once by `configure`. */
export type MigrateOptions = MigrateConfig & Settings & RunServices;

/** The live settings a run starts with, the same for every command that writes in batches. */
export const defaultSettings: Readonly<Settings> = Object.freeze({
  chunkTimeMs: DEFAULT_CHUNK_TIME_MS,
  maxLagMs: 1500,
  maxLoad: {},
  criticalLoad: {},
  maxRowsPerSec: 0,
  niceRatio: 0,
  maxRedoFill: 0,
  maxWriterSlowdown: 0,
});

export const defaultOptions: Readonly<MigrateOptions> = Object.freeze({
  ...defaultSettings,
  execute: false,
  resume: false,
  lockTimeoutMs: 500,
  seams: NO_SEAMS,
  cutoverAttempts: 10,
  snapshotWaitMs: DEFAULT_SNAPSHOT_WAIT_MS,
  dropOld: false,
  checksumWhileCopying: false,
  copyThreads: 2,
  applyBatch: 500,
  checksumChunkRows: 50_000,
  replicas: [],
  postponeCutover: false,
  oldSnapshotWaitMs: 30_000,
  // Neither cutting over under a reader nor waiting on an operator nobody asked for: a run that meets
  // one says so and removes what it made, as gh-ost and pt-online-schema-change users expect.
  oldSnapshots: 'fail',
  reporter: silentReporter,
});

export interface Configured {
  config: Readonly<MigrateConfig>;
  services: RunServices;
  /** The live settings the run starts with: the caller's state's, if it brought one. */
  settings: Settings;
  /** Made from the settings given, unless the caller brought its own. */
  makeState: (table: string, alter: string, engine: string) => RunState;
}

/** The options given, without those given as undefined: an option left out takes the default beneath it. */
export function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}

export function configure(partial: Partial<MigrateOptions>): Configured {
  const all = { ...defaultOptions, ...partial };
  const { reporter, state, hook, signal, windowOpened, ...rest } = all;
  for (const name of Object.keys(settingsOf(all))) delete (rest as Record<string, unknown>)[name];
  const settings = state?.settings ?? settingsOf(all);
  return {
    config: Object.freeze(rest),
    services: { reporter, state, hook, signal, windowOpened },
    settings,
    makeState(table, alter, engine) {
      const made = state ?? new RunState(settings, { table, alter, engine });
      // A state made by the caller (for its control endpoint or metrics) names the table as typed.
      made.status.table = table;
      return made;
    },
  };
}

export interface MigrateResult {
  /** The copy's plan; null when the change was made in place. */
  plan: Plan | null;
  /** In place when the server could make every part without a copy (and no --force-copy). */
  path: 'in-place' | 'copy';
  /** Each part of the ALTER with its class and why (empty when resuming a copy). */
  parts: AlterPart[];
  /** Why the copy, or why in place. */
  pathReason: string;
  /** The in-place path's statements: to be run (dry run) or run. */
  inPlaceStatements: string[];
  checks: CheckResult[];
  executed: boolean;
  resumed: boolean;
  rowsCopied: number;
  changesApplied: number;
  cutoverAttempts: number;
  cutoverLockedMs: number;
  /**
   * The longest a stand-in for an application's write waited at the cut-over (all attempts): queued
   * behind the lock request as well as under the lock. Null without a cut-over.
   */
  cutoverWriterWaitMs: number | null;
  checksumRounds: number;
  /**
   * Set when the round that found the tables equal was the narrowed first one of
   * `--checksum-while-copying`: the rest of the table was proven by the chunks' digests taken at copy
   * time, not by a checksum over the whole table in one view. The summary says which it was.
   */
  copyTimeProof: { chunksRechecked: number; keysCompared: number } | null;
  /** The server's proofs of the column mapping: before the copy, and at each verification. */
  mappingProofs: MappingProof[];
  /** Whether the change could be reverted: judged for a dry run and for a run with a revert window; null otherwise. */
  revert: RevertVerdict | null;
  /** How a revert window ended; null without one. */
  revertWindow: RevertWindowOutcome | null;
  /** Keys changed after the last checksum view, compared row by row (in views and under the cut-over lock). */
  keysCompared: number;
  /** Of those, the ones compared under the cut-over lock itself. */
  keysComparedAtCutover: number;
  durationMs: number;
  state: RunState;
}

export interface RevertWindowOutcome {
  /** When the window was to end. */
  until: string;
  /**
   * `reverted`: swapped back (`shadowcut revert`); `completed`: ended early (`shadowcut complete`);
   * `ended`: its time ran out; `aborted`: stopped by the operator; `failed`: ended by what it could not carry back.
   */
  outcome: 'reverted' | 'completed' | 'ended' | 'aborted' | 'failed';
  /** Why a `failed` window ended (a row of the new table the old one cannot take, say). */
  reason?: string;
  /** Changes to the new table applied to the old one. */
  changesApplied: number;
  /** The revert's swap: writers blocked this long (0 when not reverted). */
  lockedMs: number;
}
