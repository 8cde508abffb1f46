import type pg from 'pg';
import { freeOldTableName, migratedFrom } from '../../../core/engine/old-table.js';
import type { Client } from '../server/connect.js';

/** PostgreSQL's limit on a name, in bytes (NAMEDATALEN - 1): a longer one is cut short, silently, by the server. */
const NAME_BYTES = 63;

/**
 * The names of `name`'s old-table family taken in `schema` (`<name>__old`, `<name>__old_<n>`): by a
 * relation of any kind (relations share one namespace with indexes, sequences and views) or by a type
 * (a table's row type takes its name, so a RENAME onto a type's name fails). The originals earlier
 * runs kept, or a user's objects: never a leftover to refuse or drop.
 */
export async function oldTables(db: pg.Pool | Client, schema: string, name: string): Promise<string[]> {
  const like = `${name.replace(/[\\%_]/g, '\\$&')}\\_\\_old%`;
  const { rows } = await db.query(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname LIKE $2
      UNION SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = $1 AND t.typname LIKE $2`,
    [schema, like],
  );
  return rows.map((r) => String(r.name)).filter((taken) => migratedFrom(taken) === name);
}

/** The name the plan keeps the original (or one of its partitions) under: the first of its family nothing in the schema has. */
export async function chooseOldTable(db: pg.Pool | Client, schema: string, name: string): Promise<string> {
  return freeOldTableName(name, await oldTables(db, schema, name), (candidate) => Buffer.byteLength(candidate) <= NAME_BYTES, `${schema}.${name}`);
}
