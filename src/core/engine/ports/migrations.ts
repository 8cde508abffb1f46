import type { FailureSeams } from '../failure-seams.js';
import type { CaptureMode } from './capture.js';
import type { Migration, Plan } from '../migration.js';
import type { CatchUp, CutoverResult } from './cutover.js';

/**
 * Where a migration comes from and what is left of one: a new migration from the user's request, an
 * interrupted one from its checkpoint, what a dead run left behind, and the one swap of a set's
 * migrations together. Everything else a migration does is asked of the `Migration` itself.
 */
export interface EngineMigrations {
  /** Inspect the table and parse the ALTER; throws UserError for anything unusable. */
  prepare(request: MigrationRequest): Promise<Migration>;
  /** The migration an interrupted run's checkpoint describes. */
  resume(plan: Plan): Migration;
  /** The checkpoint of an interrupted run on `table`, or null. */
  loadCheckpoint(table: string): Promise<string | null>;
  /**
   * Remove what a dead run left for `table` (shadow, sentry, stream objects; the old table only if
   * asked), or with `dryRun` only name them. A replication slot is named with the WAL it retains.
   */
  cleanupLeftovers(table: string, options: { dropOld: boolean; dryRun?: boolean }): Promise<string[]>;
  /**
   * Swaps several tables in one lock set (MySQL: one RENAME; PostgreSQL: one transaction), each
   * caught up on the locking session by its `catchUp`; LockTimeoutError as `Migration.cutover`. A
   * set's ways back (`Migration.reversed`) swap through it too, for a set's revert window.
   */
  jointCutover(parts: { migration: Migration; catchUp: CatchUp }[], lockTimeoutMs: number, seams?: FailureSeams): Promise<CutoverResult>;
}

export interface MigrationRequest {
  url: string;
  table: string;
  alter: string;
  /** Migrate a table with foreign keys to other tables; the new table has none (gh-ost's flag of the same name). */
  discardForeignKeys?: boolean;
  /** Move the table's triggers to the new table, renamed with this suffix (gh-ost's --include-triggers). */
  triggers?: { suffix: string; removeSuffixIfExists: boolean };
  /**
   * Build the new table's non-unique secondary indexes after the copy instead of maintaining them
   * row by row during it. `auto` lets the engine judge whether the build can hold up replicas.
   */
  deferIndexes?: DeferIndexes;
  /** How changes are followed during the copy; `auto` when absent. */
  capture?: CaptureMode;
  /**
   * The other tables (qualified) changed with this one in one cut-over: foreign keys between them are
   * rebuilt between the new tables instead of carried to (or refused for) the old ones.
   */
  set?: string[];
}

export type DeferIndexes = 'auto' | 'on' | 'off';
