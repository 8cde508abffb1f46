import type pg from 'pg';
import { HELPER_MARK, helperComment, helperProblems, refuseUnlessOwn, type HelperFacts } from '../../../core/engine/helper-objects.js';
import { inTransaction } from './transactions.js';
import { isTrue, qualified } from './sql.js';
import { PINNED_SEARCH_PATH, type Client } from './connect.js';

/**
 * A transaction of shadowcut's own statements, with the search_path pinned for its length: the
 * engine's pool is pinned already, but a URL's own `?options=` could have set another.
 */
export function helperTransaction<T>(pool: pg.Pool, fn: (client: Client) => Promise<T>): Promise<T> {
  return inTransaction(pool, async (client) => {
    await client.query(`SET LOCAL search_path = ${PINNED_SEARCH_PATH}`);
    return fn(client);
  });
}

/**
 * Inside the caller's transaction (a backfill batch, which ran the user's UPDATE): pinned for `fn`,
 * then the caller's search_path again, so whatever runs later in it (deferred triggers at COMMIT)
 * sees the user's. On an error the transaction rolls back, and the setting with it.
 */
export async function pinnedWithin<T>(client: Client, fn: () => Promise<T>): Promise<T> {
  const { rows } = await client.query(`SELECT pg_catalog.current_setting('search_path') AS path`);
  await client.query(`SELECT pg_catalog.set_config('search_path', $1, true)`, [PINNED_SEARCH_PATH]);
  const result = await fn();
  await client.query(`SELECT pg_catalog.set_config('search_path', $1, true)`, [rows[0].path]);
  return result;
}

/**
 * The rights that let a role change what a helper holds, or put code on it (a trigger; a foreign
 * key's locks and actions): SELECT alone steers nothing. MAINTAIN (PostgreSQL 17) writes no row.
 */
const WRITE_RIGHTS = `('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER', 'REFERENCES')`;

/**
 * The facts about `schema.name` (any kind of relation), or null when there is none. Run with the
 * search_path pinned. `logFor` names the table whose trigger-capture log this is: its owner's
 * capture function writes the log, so that owner's INSERT (shadowcut's own grant) is expected.
 */
async function helperFacts(client: Client, schema: string, name: string, logFor?: string): Promise<HelperFacts | null> {
  const { rows } = await client.query(
    `SELECT c.relkind, pg_get_userbyid(c.relowner) AS owner, c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) AS ours,
            coalesce(obj_description(c.oid, 'pg_class'), '') AS comment, c.relrowsecurity OR c.relforcerowsecurity AS rls,
            ARRAY(SELECT tgname::text FROM pg_trigger WHERE tgrelid = c.oid ORDER BY 1) AS triggers,
            ARRAY(SELECT rulename::text FROM pg_rewrite WHERE ev_class = c.oid AND rulename <> '_RETURN' ORDER BY 1) AS rules,
            ARRAY(SELECT polname::text FROM pg_policy WHERE polrelid = c.oid ORDER BY 1) AS policies,
            ARRAY(SELECT format('%s (%s)', CASE WHEN w.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(w.grantee)::text END,
                                string_agg(DISTINCT w.privilege_type, ', ' ORDER BY w.privilege_type))
                    FROM (SELECT g.grantee, g.privilege_type FROM aclexplode(c.relacl) g
                          UNION ALL
                          SELECT g.grantee, g.privilege_type FROM pg_attribute a, aclexplode(a.attacl) g
                           WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) w
                   WHERE w.grantee <> c.relowner AND w.privilege_type IN ${WRITE_RIGHTS}
                     AND NOT (w.privilege_type = 'INSERT' AND w.grantee IS NOT DISTINCT FROM (SELECT relowner FROM pg_class WHERE oid = to_regclass($3)))
                   GROUP BY w.grantee ORDER BY 1) AS writers
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2`,
    [schema, name, logFor ?? null],
  );
  if (rows.length === 0) return null;
  const r = rows[0];
  const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : parseTextArray(String(v)));
  return {
    otherKind: r.relkind === 'r' ? null : (RELKINDS[r.relkind] ?? `relation of kind ${r.relkind}`),
    marked: String(r.comment).startsWith(HELPER_MARK),
    foreignOwner: r.ours === true || r.ours === 't' ? null : String(r.owner),
    triggers: list(r.triggers),
    rules: list(r.rules),
    policies: list(r.policies),
    rowSecurity: r.rls === true || r.rls === 't',
    unreadable: null,
    writers: list(r.writers),
  };
}

const RELKINDS: Record<string, string> = {
  v: 'view',
  m: 'materialized view',
  p: 'partitioned table',
  f: 'foreign table',
  S: 'sequence',
  i: 'index',
  c: 'composite type',
};

/** The engine pool reads every type as text: `{a,"b c"}`. Names here are plain identifiers, quoted only when they need it. */
function parseTextArray(text: string): string[] {
  const inner = text.replace(/^\{|\}$/g, '');
  if (inner === '') return [];
  return (inner.match(/"((?:[^"\\]|\\.)*)"|[^,]+/g) ?? []).map((s) => (s.startsWith('"') ? s.slice(1, -1).replace(/\\(.)/g, '$1') : s));
}

/**
 * Refuses `schema.name` when it exists and is not shadowcut's own. Unmarked is accepted: the owner
 * check already proves the migrating role made it (an older version did not mark its tables).
 * `logFor`: see helperFacts.
 */
export async function checkHelper(client: Client, schema: string, name: string, logFor?: string): Promise<boolean> {
  const facts = await helperFacts(client, schema, name, logFor);
  if (facts === null) return false;
  refuseUnlessOwn(`${schema}.${name}`, facts, true);
  return true;
}

/**
 * Makes the helper table when it is missing, and proves it is shadowcut's own either way before
 * anyone writes into it: in one transaction, so a refusal leaves nothing behind. Checked after the
 * CREATE ... IF NOT EXISTS, so a table another role makes in between is seen too. Two sessions making
 * the same helper at once (two runs of one schema writing their first history entries) would both
 * pass the IF NOT EXISTS and one fail on the catalog's unique names: a transaction lock on the
 * helper's name makes them one after the other, held to the commit, so what the caller does next in
 * the transaction (an index on it) is made once too.
 */
export async function ensureHelperTable(pool: pg.Pool, schema: string, name: string, columns: string, purpose: string): Promise<void> {
  await helperTransaction(pool, (client) => ensureHelperTableIn(client, schema, name, columns, purpose));
}

/** `ensureHelperTable` inside the caller's transaction (search_path pinned), for a helper made together with other objects. */
export async function ensureHelperTableIn(client: Client, schema: string, name: string, columns: string, purpose: string, logFor?: string): Promise<void> {
  const table = qualified(schema, name);
  await client.query(`SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended($1, 0))`, [`shadowcut helper ${table}`]);
  const existed = (await client.query('SELECT pg_catalog.to_regclass($1) IS NOT NULL AS e', [table])).rows[0].e;
  await client.query(`CREATE TABLE IF NOT EXISTS ${table} (${columns})`);
  // One this CREATE made (the lock keeps other runs out; a role that made it since is not the owner, so refused below).
  if (!isTrue(existed) && (await helperFacts(client, schema, name))!.foreignOwner === null) await revokeFromOthers(client, table);
  const facts = await helperFacts(client, schema, name, logFor);
  refuseUnlessOwn(`${schema}.${name}`, facts!, true);
  if (!facts!.marked) await client.query(`COMMENT ON TABLE ${table} IS '${helperComment(purpose).replace(/'/g, "''")}'`);
}

/**
 * Takes every right on `table` (one shadowcut just made, in the same transaction: nobody has used
 * them yet) from everyone but its owner. ALTER DEFAULT PRIVILEGES hands the migrating role's new
 * tables to other roles (`GRANT SELECT, INSERT, UPDATE ON TABLES TO app` is common); a helper
 * another role can write would have its rows read back as shadowcut's. Columns have no default
 * privileges, and a table just made has no column grants.
 */
export async function revokeFromOthers(client: Client, table: string): Promise<void> {
  // Its identity sequence too (made with it, and given the default privileges for sequences): UPDATE there is setval.
  const { rows } = await client.query(
    `SELECT DISTINCT c.relkind = 'S' AS sequence, c.oid::regclass::text AS object,
            CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END AS grantee
       FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) g
      WHERE (c.oid = $1::regclass
             OR c.oid IN (SELECT objid FROM pg_catalog.pg_depend WHERE classid = 'pg_catalog.pg_class'::regclass
                             AND refclassid = 'pg_catalog.pg_class'::regclass AND refobjid = $1::regclass AND deptype IN ('a', 'i')))
        AND g.grantee <> c.relowner`,
    [table],
  );
  for (const r of rows) await client.query(`REVOKE ALL ON ${isTrue(r.sequence) ? 'SEQUENCE ' : ''}${r.object} FROM ${r.grantee} CASCADE`);
}

/** Drops the helper only when it is shadowcut's own: one that was refused is left to whoever made it. */
export async function dropOwnHelper(pool: pg.Pool, schema: string, name: string, logFor?: string): Promise<void> {
  await helperTransaction(pool, async (client) => {
    const facts = await helperFacts(client, schema, name, logFor);
    if (facts && helperProblems(facts, true).length === 0) await client.query(`DROP TABLE ${qualified(schema, name)}`);
  });
}
