import { ident } from '../server/sql.js';
import type { Client } from '../server/connect.js';

/**
 * The new table's rights (docs/invariants.md, invariant 19): the native ALTER keeps the table's ACL and its
 * columns' ACLs as they are, so the shadow must have exactly those, from its CREATE on, and the new
 * table again at the swap. A table the migrating role makes gets that role's default privileges
 * (ALTER DEFAULT PRIVILEGES ... GRANT SELECT ON TABLES TO app): after `REVOKE ALL ON secret FROM
 * app`, app could read the shadow during the copy and the new table after it. So every entry is
 * compared, not only added: what the original lacks is revoked.
 */

/** A column of the target and the original's column it carries (null: a column the ALTER added, which has no grants). */
export interface ColumnPair {
  source: string | null;
  target: string;
}

interface Entry {
  verb: 'GRANT' | 'REVOKE';
  target: string | null;
  grantor: string;
  /** The grantor is the target's owner: GRANT and REVOKE as the owner (or a superuser, which acts as the owner) record it so. */
  byOwner: boolean;
  grantee: string;
  priv: string;
  grantable: boolean;
  /** The target is a sequence, which GRANT names as one (USAGE is no table's right). */
  sequence: boolean;
}

/**
 * The entries of `to`'s ACL (the table's, and each column's) that differ from `from`'s, each to
 * revoke or to grant (a sequence's too: identity sequences are made anew with the shadow). The
 * ACL is read through acldefault when it was never set, so a NULL
 * and the owner's explicit default are the same rights. While the owners differ (the shadow is the
 * migrating role's until the swap), the original's owner stands for the shadow's, and neither
 * owner's own entry is compared: the migrating role keeps what it needs to copy, and the table's
 * owner gets the table only with the swap, as ALTER TABLE ... OWNER TO does.
 */
const DIFFERENCE = `
WITH f AS (SELECT relowner AS owner FROM pg_catalog.pg_class WHERE oid = $1),
     t AS (SELECT oid AS rel, relowner AS owner, relkind = 'S' AS sequence FROM pg_catalog.pg_class WHERE oid = $2::regclass),
     pairs AS (SELECT NULL::text AS source, NULL::text AS target
               UNION ALL SELECT m.source, m.target FROM pg_catalog.json_to_recordset($3::json) m(source text, target text)),
     want AS (
       SELECT p.target,
              CASE WHEN a.grantor = f.owner THEN t.owner ELSE a.grantor END AS grantor,
              CASE WHEN a.grantee = f.owner THEN t.owner ELSE a.grantee END AS grantee, a.privilege_type AS priv, a.is_grantable AS grantable
         FROM f, t, pairs p CROSS JOIN LATERAL pg_catalog.aclexplode(CASE WHEN p.target IS NULL
              THEN (SELECT coalesce(c.relacl, pg_catalog.acldefault((CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::"char", c.relowner)) FROM pg_catalog.pg_class c WHERE c.oid = $1)
              ELSE (SELECT a.attacl FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1 AND a.attname = p.source AND NOT a.attisdropped) END) a
        WHERE f.owner = t.owner OR a.grantee NOT IN (f.owner, t.owner)),
     have AS (
       SELECT p.target, a.grantor, a.grantee, a.privilege_type AS priv, a.is_grantable AS grantable
         FROM f, t, pairs p CROSS JOIN LATERAL pg_catalog.aclexplode(CASE WHEN p.target IS NULL
              THEN (SELECT coalesce(c.relacl, pg_catalog.acldefault((CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::"char", c.relowner)) FROM pg_catalog.pg_class c WHERE c.oid = t.rel)
              ELSE (SELECT a.attacl FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.rel AND a.attname = p.target AND NOT a.attisdropped) END) a
        WHERE f.owner = t.owner OR a.grantee <> t.owner),
     diff AS (SELECT 'REVOKE' AS verb, * FROM (SELECT * FROM have EXCEPT SELECT * FROM want) x
              UNION ALL SELECT 'GRANT', * FROM (SELECT * FROM want EXCEPT SELECT * FROM have) y)
SELECT d.verb, d.target, pg_catalog.pg_get_userbyid(d.grantor) AS grantor, d.grantor = t.owner AS by_owner,
       CASE WHEN d.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(d.grantee)) END AS grantee,
       d.priv, d.grantable, t.sequence
  FROM diff d, t
 ORDER BY d.verb DESC, d.grantor <> t.owner, d.target NULLS FIRST, 5, 6`;

async function differences(client: Client, from: string, table: string, columns: ColumnPair[]): Promise<Entry[]> {
  const { rows } = await client.query(DIFFERENCE, [from, table, JSON.stringify(columns)]);
  return rows.map((r) => ({
    verb: r.verb,
    target: r.target ?? null,
    grantor: String(r.grantor),
    byOwner: r.by_owner === true || r.by_owner === 't',
    grantee: String(r.grantee),
    priv: String(r.priv),
    grantable: r.grantable === true || r.grantable === 't',
    sequence: r.sequence === true || r.sequence === 't',
  }));
}

function statement(e: Entry, table: string): string {
  const on = `${e.priv}${e.target === null ? '' : ` (${ident(e.target)})`} ON ${e.sequence ? 'SEQUENCE ' : ''}${table}`;
  // CASCADE: a grant option taken back takes what was granted with it, which the next round gives back if it is wanted.
  return e.verb === 'REVOKE' ? `REVOKE ${on} FROM ${e.grantee} CASCADE` : `GRANT ${on} TO ${e.grantee}${e.grantable ? ' WITH GRANT OPTION' : ''}`;
}

/**
 * Makes the rights on `table` (qualified) those of the relation with oid `from`, in the caller's
 * transaction. An entry granted by a role other than the owner (who held a grant option) is made
 * as that role, which only a superuser or a member of it can be; otherwise it is granted by the
 * owner instead: the grantee's rights are the same, only the grantor recorded differs. Rounds,
 * because a REVOKE ... CASCADE can take entries that are wanted.
 */
export async function matchRights(client: Client, from: string, table: string, columns: ColumnPair[]): Promise<void> {
  const me = String((await client.query('SELECT pg_catalog.quote_ident(current_user::text) AS me')).rows[0].me);
  for (let round = 0; round < 4; round++) {
    const entries = await differences(client, from, table, columns);
    if (entries.length === 0) return;
    for (const e of entries) {
      if (e.byOwner) {
        await client.query(statement(e, table));
        continue;
      }
      await client.query('SAVEPOINT shadowcut_rights');
      try {
        await client.query(`SET LOCAL ROLE ${ident(e.grantor)}`);
        await client.query(statement(e, table));
        await client.query(`SET LOCAL ROLE ${me}`);
        await client.query('RELEASE SAVEPOINT shadowcut_rights');
      } catch {
        await client.query('ROLLBACK TO SAVEPOINT shadowcut_rights');
        if (e.verb === 'GRANT') await client.query(statement(e, table));
      }
    }
  }
}

/**
 * The shadow's rights, right after its CREATE in the same transaction (before anyone else can see
 * it) and before the ALTER: its columns still have the original's names, and the ALTER then keeps,
 * renames and drops their grants as it does on the original.
 */
export async function rightsLikeOriginal(client: Client, original: string, shadow: string): Promise<void> {
  const { rows } = await client.query(
    `SELECT $1::regclass::oid AS f,
            (SELECT pg_catalog.json_agg(pg_catalog.json_build_object('source', attname, 'target', attname)) FROM pg_catalog.pg_attribute
              WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped) AS columns`,
    [original],
  );
  const columns = (typeof rows[0].columns === 'string' ? JSON.parse(rows[0].columns) : rows[0].columns) as ColumnPair[] | null;
  await matchRights(client, String(rows[0].f), shadow, columns ?? []);
}

/**
 * The copy's columns as pairs for matchRights: each target column with the original's column it
 * comes from (a USING conversion keeps the column's grants, as ALTER ... TYPE does). Plans saved
 * before `column` was recorded name it in `source` when it is copied as it is.
 */
export function columnPairs(columns: { source: string; target: string; column?: string }[]): ColumnPair[] {
  return columns.map((c) => {
    const plain = /^"((?:[^"]|"")*)"$/.exec(c.source);
    return { source: c.column ?? (plain ? plain[1].replace(/""/g, '"') : null), target: c.target };
  });
}
