import type { ChangeSource, Reference } from './change-source.js';
import type { Key, Session } from '../contract-values.js';
import type { KeylessShadow } from './keyless-shadow.js';

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
  /** Present where the copy fills a shadow without its key (PostgreSQL's bare heap): see keyless-shadow.ts. */
  readonly keylessShadow?: KeylessShadow;
}

/** How changes to the original are followed while the copy runs (`--capture`). */
export type CaptureMode = 'auto' | 'stream' | 'trigger';

/** The source a run uses, and why: the dry run and `plan` print it, the checkpoint keeps it. */
export interface CaptureChoice {
  kind: 'stream' | 'trigger';
  why: string;
}
