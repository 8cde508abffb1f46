import type { Check } from '../../../core/engine/checks/check.js';
import type { PgCheckContext } from './context.js';
import { dependentViews } from './dependent-views.js';
import { leftovers } from './leftovers.js';
import { mysqlOptions } from './mysql-only-flags.js';
import { notes } from './notes.js';
import { ownerCode } from './owner-code.js';
import { privileges } from './privileges.js';
import { rowIdentity } from './row-identity.js';
import { rowSecurity } from './row-security.js';
import { server } from './server.js';
import { tableKind } from './table-kind.js';

/** In the order a dry run lists them: the options and the server, then the table, then what an earlier run left. */
export const pgChecks: readonly Check<PgCheckContext>[] = [
  mysqlOptions,
  server,
  tableKind,
  rowSecurity,
  ownerCode,
  dependentViews,
  rowIdentity,
  notes,
  privileges,
  leftovers,
];
