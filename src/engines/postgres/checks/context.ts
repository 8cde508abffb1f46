import type pg from 'pg';
import type { CaptureChoice } from '../../../core/engine/ports/capture.js';
import type { MigrationRequest } from '../../../core/engine/types.js';
import type { TableInfo } from '../schema/inspect.js';
import type { PgDetail } from '../schema/plan.js';

/** What PostgreSQL's checks read: the table as it is now, the plan `prepare` built, and the request. */
export interface PgCheckContext {
  pool: pg.Pool;
  table: TableInfo;
  detail: PgDetail;
  resuming: boolean;
  /** A member of a resumed set with no checkpoint: the set's slot and publication are the resumed members', not leftovers. */
  discardUnsaved?: boolean;
  /** The request `prepare` was given; null for a resumed run, whose options were judged when it began. */
  request: MigrationRequest | null;
  /** The plan's change source: the stream's server settings and privileges are checked only when it is used. */
  capture: CaptureChoice['kind'];
}
