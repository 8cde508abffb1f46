import type { CaptureChoice, MigrationCapture } from './ports/capture.js';
import type { MigrationCleanup } from './ports/cleanup.js';
import type { MigrationCopy } from './ports/copy.js';
import type { MigrationCutover } from './ports/cutover.js';
import type { MigrationPreflight } from './ports/preflight.js';
import type { MigrationResume } from './ports/resume.js';
import type { MigrationRevert } from './ports/revert.js';
import type { MigrationThrottle } from './ports/throttle.js';
import type { MigrationVerification } from './ports/verification.js';

/**
 * One migration of one table, holding its plan: everything the phases ask of the server. An engine
 * implements it as one object; core code that needs one concern takes that port alone (ports/).
 */
export interface Migration
  extends
    MigrationPreflight,
    MigrationCopy,
    MigrationCapture,
    MigrationVerification,
    MigrationCutover,
    MigrationRevert,
    MigrationResume,
    MigrationCleanup,
    MigrationThrottle {
  readonly plan: Plan;
  /**
   * After the swap: the migration back (`Plan.reverse`), read from the catalogs as they are now. Its
   * `changes` is the reverse capture, opened with a position (never installed again); its `cutover`
   * swaps the tables back, with the new table going to `<table>__new`. Declared here rather than in
   * the revert port because it returns a whole `Migration`.
   */
  reversed(): Promise<Migration>;
}

/**
 * Everything the runner needs to know about a migration; `detail` is the engine's own. Plain JSON:
 * the checkpoint carries it, and a resumed run gets its migration back from it (`Engine.resume`).
 */
export interface Plan<Detail = unknown> {
  /** e.g. `shop.orders` */
  table: string;
  shadowTable: string;
  oldTable: string;
  alter: string;
  keyColumns: string[];
  estimatedRows: number;
  /** The change source the run uses; a resumed run keeps its dead run's (checkpoints from before triggers have none: the stream). */
  capture?: CaptureChoice;
  /** Human lines describing the column mapping and anything notable (printed by the dry run). */
  summary: string[];
  /**
   * The way back of a run with a revert window (`Migration.reversed`): the new table is this plan's
   * original, the old table its shadow (already level), and `<table>__new` where the new table goes
   * when the revert swaps them back. Its change source is the reverse capture on the new table.
   */
  reverse?: true;
  detail: Detail;
}
