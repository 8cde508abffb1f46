import { UserError } from '../errors.js';

/**
 * A backfill walks the primary key, never another unique key. The walk trusts that a row it has
 * passed stays behind its cursor: a row whose key moves ahead of the cursor is reached again and
 * the SET applied twice (`n = n + 1` gives 2), one that moves behind is never reached. Unique keys
 * are application data and change; primary keys almost never do. What is guaranteed, precisely,
 * is in docs/backfill.md ("Exactly once, precisely").
 */
export function noPrimaryKey(table: string): UserError {
  return new UserError(
    `${table} has no PRIMARY KEY: backfill walks the primary key, because a row whose unique key changes while it runs could be updated twice or skipped; add a primary key first`,
  );
}
