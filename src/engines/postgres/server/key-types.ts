import type pg from 'pg';
import { UserError } from '../../../core/engine/errors.js';
import { errorCode } from './errors.js';
import type { Client } from './connect.js';

/**
 * Each key column's type, as the keyset's parameters are typed with (`$1::pg_catalog."int4"`): an
 * untyped parameter takes the type the server infers, and a cast that a type's owner adds later
 * (`CREATE CAST (... AS text) ... AS IMPLICIT`) can make that `text`, so that every chunk compares
 * keys through the cast's function (docs/invariants.md, invariant 16). Schema-qualified and quoted, so that
 * no search_path (the user's, under which a USING expression's copy runs) names another type; a
 * domain's base type, so that no domain constraint (its owner's code) is evaluated on a parameter
 * and the comparison is the one the key's index orders by; no type modifier, so that nothing is
 * rounded or cut (the values came from the column).
 */
export async function keyTypes(db: pg.Pool | Client, table: string, columns: string[]): Promise<string[]> {
  const { rows } = await db.query(
    `WITH RECURSIVE base(ord, typ) AS (
       SELECT k.ord, a.atttypid FROM unnest($2::text[]) WITH ORDINALITY k(name, ord)
         JOIN pg_catalog.pg_attribute a ON a.attrelid = $1::pg_catalog.regclass AND a.attname = k.name AND a.attnum > 0 AND NOT a.attisdropped
       UNION ALL
       SELECT b.ord, t.typbasetype FROM base b JOIN pg_catalog.pg_type t ON t.oid = b.typ WHERE t.typtype = 'd')
     SELECT pg_catalog.format('%I.%I', n.nspname, t.typname) AS type
       FROM base b JOIN pg_catalog.pg_type t ON t.oid = b.typ JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
      WHERE t.typtype <> 'd' ORDER BY b.ord`,
    [table, columns],
  );
  if (rows.length !== columns.length) throw new Error(`key column(s) ${columns.join(', ')} of ${table} not found`);
  const types = rows.map((r) => String(r.type));
  for (const [i, type] of types.entries()) await comparable(db, columns[i], type);
  return types;
}

/**
 * An implicit cast from the key's type to another type with comparisons of its own makes `k = k`
 * ambiguous to the server ("operator is not unique"): every chunk, join and checksum of the run
 * would stop on it, the mapping proof first. Parsed here on NULLs, so no operator's function is
 * called, and refused in one line before anything is made.
 */
async function comparable(db: pg.Pool | Client, column: string, type: string): Promise<void> {
  const value = `NULL::${type}`;
  try {
    await db.query(`SELECT ${['=', '<', '<=', '>', '>='].map((op) => `${value} ${op} ${value}`).join(', ')}`);
  } catch (error) {
    if (errorCode(error) !== '42725') throw error;
    throw new UserError(
      `key column ${column} cannot be compared unambiguously (${(error as Error).message}): an implicit cast from its type makes its comparisons ambiguous; ` +
        `make that cast explicit (DROP CAST, then CREATE CAST without AS IMPLICIT)`,
    );
  }
}
