import type pg from 'pg';
import type { Check } from '../../../core/check.js';
import type { MigrationRequest } from '../../../core/types.js';
import type { TableInfo } from '../inspect.js';
import type { PgDetail } from '../plan.js';
import { dependentViews } from './dependent-views.js';
import { leftovers } from './leftovers.js';
import { mysqlOptions } from './mysql-options.js';
import { notes } from './notes.js';
import { privileges } from './privileges.js';
import { rowIdentity } from './row-identity.js';
import { rowSecurity } from './row-security.js';
import { server } from './server.js';
import { tableKind } from './table-kind.js';

/** What PostgreSQL's checks read: the table as it is now, the plan `prepare` built, and the request. */
export interface PgCheckContext {
  pool: pg.Pool;
  table: TableInfo;
  detail: PgDetail;
  resuming: boolean;
  /** The request `prepare` was given; null for a resumed run, whose options were judged when it began. */
  request: MigrationRequest | null;
}

/** In the order a dry run lists them: the options and the server, then the table, then what an earlier run left. */
export const pgChecks: readonly Check<PgCheckContext>[] = [
  mysqlOptions,
  server,
  tableKind,
  rowSecurity,
  dependentViews,
  rowIdentity,
  notes,
  privileges,
  leftovers,
];
