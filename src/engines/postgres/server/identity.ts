import type pg from 'pg';

/**
 * A table's identity as no other role can give a table of its own: its oid (kept by a RENAME, never
 * shared by two tables at once) and its owner's (a role with CREATE on the schema owns what it makes).
 * Null when there is no table of that name.
 */
export async function pgTableIdentity(pool: pg.Pool, schema: string, name: string): Promise<string | null> {
  const { rows } = await pool.query(
    `SELECT c.oid::text AS oid, c.relowner::text AS owner FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2`,
    [schema, name],
  );
  return rows.length ? `oid ${rows[0].oid}, owner oid ${rows[0].owner}` : null;
}
