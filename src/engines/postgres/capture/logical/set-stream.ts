import { createHash } from 'node:crypto';
import type pg from 'pg';
import { UserError } from '../../../../core/engine/errors.js';
import { qualified } from '../../server/sql.js';
import { slotOn } from '../../server/helper-names.js';

/** The slot, publication and tables of a table's change stream. */
export interface StreamNames {
  slot: string;
  publication: string;
  /** Absent for a table alone. */
  streamTables?: string[];
}

/**
 * A set's tables (several tables, one cut-over) share one slot and one publication: named from all of
 * them, in one order, so every table's plan names the same, and a resumed set finds them again. The
 * others come as the engine qualified them (`schema.name`, unquoted): each is looked up as exactly that.
 */
export async function streamNames(pool: pg.Pool, schema: string, name: string, own: StreamNames, set: string[] | undefined): Promise<StreamNames> {
  if (!set?.length) return { slot: await slotOn(pool, own.slot), publication: own.publication };
  const tables = [qualified(schema, name)];
  for (const other of set) {
    const { rows } = await pool.query(
      `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname || '.' || c.relname = $1`,
      [other],
    );
    if (rows.length !== 1) throw new UserError(`table ${other} of the set ${rows.length ? 'is ambiguous' : 'does not exist'}`);
    tables.push(qualified(String(rows[0].nspname), String(rows[0].relname)));
  }
  tables.sort();
  const stream = `shadowcut_set_${createHash('md5').update(tables.join('\n')).digest('hex').slice(0, 16)}`;
  return { slot: await slotOn(pool, stream), publication: stream, streamTables: tables };
}

/**
 * The streams of the sets `schema.name` belongs to, found by their publications: a set's run killed
 * after the publication and the slot were made but before its checkpoint named them leaves them with
 * no other trace, and a slot left behind retains WAL until the disk fills. The publication comes
 * first (the slot's name is the same, with the database's hash: server/helper-names.ts slotName), lists every
 * table of the set, and must be the migrating role's.
 */
export async function setStreamsOf(pool: pg.Pool, schema: string, name: string): Promise<StreamNames[]> {
  const { rows } = await pool.query(
    `SELECT p.pubname FROM pg_publication p JOIN pg_publication_rel r ON r.prpubid = p.oid
      WHERE p.pubname LIKE 'shadowcut\\_set\\_%' AND p.pubowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
        AND r.prrelid = (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2)`,
    [schema, name],
  );
  const found: StreamNames[] = [];
  for (const r of rows) found.push({ slot: await slotOn(pool, String(r.pubname)), publication: String(r.pubname) });
  return found;
}
