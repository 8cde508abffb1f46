import type { ChangeSource, Reference } from './change-source.js';
import type { Key, Session } from '../primitives.js';

/**
 * The writes made to the original while the copy runs: where they come from, and how the shadow's
 * rows for the keys they touched are made equal to the original's again. Core's applier reads the
 * source and decides when to apply; the engine reads the rows and writes the shadow.
 */
export interface MigrationCapture {
  /** Where changes to the original table come from while the copy runs (see change-source.ts). */
  readonly changes: ChangeSource;
  /**
   * Make the shadow's rows for these keys equal to the original's current committed rows: all of the
   * keys' old rows are removed before any is inserted, so values moving between these keys never conflict.
   * Throws UniqueViolationError on a unique key conflict.
   */
  applyKeys(keys: Key[], session?: Session): Promise<void>;
  /**
   * The keys of the rows these references reach (ChangeSink.references), read on `session` under a
   * lock; present where the change source reports references.
   */
  keysReferencing?(references: Reference[], session?: Session): Promise<Key[]>;
  /**
   * The shadow has no key yet (PostgreSQL's copy fills a bare heap): no change can be applied to
   * it, so the applier holds them (bounded by its buffer) until `buildKey` has run.
   */
  readonly holdsChanges?: boolean;
  /** Builds the shadow's key if it has none; the first thing after the copy, before any apply. */
  buildKey?(): Promise<void>;
}

/** How changes to the original are followed while the copy runs (`--capture`). */
export type CaptureMode = 'auto' | 'stream' | 'trigger';

/** The source a run uses, and why: the dry run and `plan` print it, the checkpoint keeps it. */
export interface CaptureChoice {
  kind: 'stream' | 'trigger';
  why: string;
}
