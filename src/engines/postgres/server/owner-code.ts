import type pg from 'pg';
import { UserError, ALWAYS_ROLLED_BACK, ignoreFailure } from '../../../core/engine/errors.js';
import { asUser, type Client } from './connect.js';
import { ident, isTrue } from './sql.js';
import { ownerProbe } from './owner-probe.js';
import { describeThirdRoleCode, foreignTypes, thirdRoleCalls, type ForeignCode } from './third-role-code.js';

/** Relations whose stored expressions and column types are the run's: the table, its partitions, the probe shadow. */
export interface CodeScope {
  relations: string[];
  /** Also the types of these (a shadow's new types are already among its relations'). */
  types?: string[];
  /** Whether the relations' policies filter the migrating role's reads and writes. */
  policies: boolean;
  /** Whether the run writes the relations themselves (a backfill): their own triggers fire then. */
  triggers?: boolean;
  /** Objects (a temporary function whose body is the user's SQL) whose dependencies are the user's expressions, each with what it was. */
  expressions?: { oid: string; what: string }[];
  /** Types the run converts a column from or to: a cast between them is looked up at every statement. */
  converted?: string[];
}

/**
 * The table's own code (DEFAULTs, CHECKs, triggers) escalates only when its owner is neither the
 * migrating role nor a superuser: otherwise it already runs with rights at least ours (or ours are
 * the owner's). Null then, else the owner's name. A third role's types, casts and functions that
 * our statements reach are looked at whoever owns the table (`thirdRoleCalls`).
 */
export async function foreignOwner(client: Client, table: string): Promise<string | null> {
  const { rows } = await client.query(
    `SELECT pg_get_userbyid(c.relowner) AS owner, c.relowner <> r.oid AND NOT o.rolsuper AS foreign
       FROM pg_class c JOIN pg_roles o ON o.oid = c.relowner, pg_roles r WHERE c.oid = $1::regclass AND r.rolname = current_user`,
    [table],
  );
  return rows.length && isTrue(rows[0].foreign) ? String(rows[0].owner) : null;
}

/**
 * A run that writes the table itself (a backfill, a restore) fires whatever its owner adds to it
 * at any moment (a trigger, a NOT VALID CHECK, a generated column, an expression index), with the
 * migrating role's rights: no look before the run can vouch for the hours after it. So only the
 * owner's own role, or a superuser on a superuser's table, writes it.
 */
export async function refuseForeignWrites(pool: pg.Pool, table: string, command: string): Promise<void> {
  const client = await pool.connect();
  try {
    const owner = await foreignOwner(client, table);
    if (owner === null) return;
    const { rows } = await client.query('SELECT $1::regclass::text AS name, current_user AS role', [table]);
    throw new UserError(
      `${command} writes table ${String(rows[0].name)} itself: its owner ${owner} can give it a trigger, a CHECK or a generated column at any moment, ` +
        `which would run with the rights of ${String(rows[0].role)}; run shadowcut ${command} as ${owner}`,
    );
  } finally {
    client.release();
  }
}

/**
 * A schema's owner may drop any table in it: shadowcut's shadow, log, checkpoint and heartbeat too,
 * and put its own in their place, with a trigger that the copy or the heartbeat would then fire with
 * the migrating role's rights. So the table's schema must be ours or a superuser's (`public` of
 * PostgreSQL 15 belongs to pg_database_owner: the database's owner). The refusal's line, or null.
 */
async function foreignSchemaOwner(client: Client, table: string): Promise<string | null> {
  const { rows } = await client.query(
    `SELECT n.nspname, pg_get_userbyid(o.oid) AS owner, o.oid <> r.oid AND NOT o.rolsuper AS foreign, current_user AS role
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_database d ON d.datname = current_database()
       JOIN pg_roles o ON o.oid = CASE WHEN n.nspowner = 'pg_database_owner'::regrole THEN d.datdba ELSE n.nspowner END,
       pg_roles r
      WHERE c.oid = $1::regclass AND r.rolname = current_user`,
    [table],
  );
  if (!rows.length || !isTrue(rows[0].foreign)) return null;
  const r = rows[0];
  return (
    `schema ${String(r.nspname)} belongs to role ${String(r.owner)}, which can drop shadowcut's helper tables there and make its own, ` +
    `with triggers that would run with the rights of ${String(r.role)}; run shadowcut as ${String(r.owner)}`
  );
}

/**
 * The scope's untrusted functions, each once with its first reason. One recursive query over the
 * catalog, in the caller's transaction (a rolled-back probe's shadow is visible to it).
 */
export async function foreignCode(client: Client, scope: CodeScope): Promise<ForeignCode[]> {
  const { rows } = await client.query(FOREIGN_CODE_SQL, [
    scope.relations,
    scope.types ?? [],
    scope.policies,
    (scope.expressions ?? []).map((e) => e.oid),
    (scope.expressions ?? []).map((e) => e.what),
    scope.triggers === true,
    scope.converted ?? [],
  ]);
  return rows.map((r) => ({ fn: String(r.fn), owner: String(r.owner), why: String(r.why) }));
}

/**
 * `sql` (a statement on the user's search_path) as the body of a temporary SQL function, created and
 * never called: the server parses it and records what it calls in pg_depend without running any of
 * it (a view would do for a SELECT; this takes the UPDATE of --set too, and nothing is planned, so
 * no immutable function is folded). The caller's transaction must be rolled back.
 */
export async function parsedExpression(client: Client, sql: string, n: number): Promise<string> {
  const name = `pg_temp.${ident(`shadowcut_expr_${n}`)}`;
  await client.query(`CREATE FUNCTION ${name}() RETURNS void LANGUAGE sql BEGIN ATOMIC ${sql}; END`);
  const { rows } = await client.query(`SELECT $1::regprocedure::oid AS oid`, [`${name}()`]);
  return String(rows[0].oid);
}

/**
 * A user's statement the server cannot parse never runs, and the stage's own check refuses it in its
 * own words: left out here, in a savepoint so the caller's transaction and search_path survive.
 */
async function parsedOrNull(client: Client, sql: string, n: number): Promise<string | null> {
  await client.query('SAVEPOINT shadowcut_parse'); // never released: the caller's transaction is rolled back whole
  try {
    return await asUser(client, () => parsedExpression(client, sql, n));
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== 'string' || !code.startsWith('42')) throw error;
    await client.query('ROLLBACK TO SAVEPOINT shadowcut_parse');
    return null;
  }
}

/** One line for a refusal: each function, its owner and why it would run with `role`'s rights. */
export function describeForeignCode(table: string, found: ForeignCode[], role: string, owner: string): string {
  const list = found.map((f) => `${f.fn} (${f.why}), owned by role ${f.owner}`).join('; ');
  return `table ${table}: ${list}, would run with the rights of ${role}; run shadowcut as ${owner}, the table's owner`;
}

const FOREIGN_CODE_SQL = `
WITH RECURSIVE
-- In the order given: a reason on the table is named before the same on the probe shadow.
rels AS (SELECT r.oid, r.ord FROM unnest($1::oid[]) WITH ORDINALITY r(oid, ord)),
-- Expressions stored with the relations, each with what it is for.
exprs(classid, objid, why, ord) AS (
  SELECT 'pg_attrdef'::regclass, d.oid,
         CASE WHEN a.attgenerated <> '' THEN 'generated column ' ELSE 'DEFAULT of column ' END || quote_ident(a.attname), r.ord
    FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum JOIN rels r ON r.oid = d.adrelid
  UNION ALL
  SELECT 'pg_constraint'::regclass, c.oid, 'constraint ' || quote_ident(c.conname), r.ord FROM pg_constraint c JOIN rels r ON r.oid = c.conrelid
  UNION ALL
  SELECT 'pg_class'::regclass, i.indexrelid, 'index ' || quote_ident(x.relname), r.ord
    FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid JOIN rels r ON r.oid = i.indrelid
  UNION ALL
  SELECT 'pg_policy'::regclass, p.oid, 'policy ' || quote_ident(p.polname), r.ord FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
    JOIN rels r ON r.oid = p.polrelid WHERE $3 AND c.relrowsecurity
  UNION ALL
  SELECT 'pg_trigger'::regclass, g.oid, 'WHEN of trigger ' || quote_ident(g.tgname), r.ord FROM pg_trigger g JOIN rels r ON r.oid = g.tgrelid
   WHERE $6 AND NOT g.tgisinternal AND g.tgenabled <> 'D'
  UNION ALL
  SELECT 'pg_proc'::regclass, x.oid, x.what, 0 FROM unnest($4::oid[], $5::text[]) x(oid, what)
),
deps AS (SELECT d.refclassid, d.refobjid, e.why, e.ord FROM exprs e JOIN pg_depend d ON d.classid = e.classid AND d.objid = e.objid),
-- Every type a value of the run can be: the columns', those the expressions name, and what they are made of.
types(oid) AS (
  SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid IN (SELECT oid FROM rels) AND a.attnum > 0 AND NOT a.attisdropped
  UNION SELECT unnest($2::oid[])
  UNION SELECT refobjid FROM deps WHERE refclassid = 'pg_type'::regclass
  UNION
  -- What each is made of: a domain's base type and the types its constraints name, an array's
  -- element, a range's subtype, a multirange's range, a composite's attributes.
  SELECT u.oid FROM types s JOIN pg_type t ON t.oid = s.oid
    CROSS JOIN LATERAL (
      SELECT t.typbasetype UNION ALL SELECT t.typelem
      UNION ALL SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = t.oid
      UNION ALL SELECT r.rngtypid FROM pg_range r WHERE r.rngmultitypid = t.oid
      UNION ALL SELECT a.atttypid FROM pg_attribute a WHERE t.typrelid <> 0 AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
      UNION ALL SELECT d.refobjid FROM pg_constraint c JOIN pg_depend d ON d.classid = 'pg_constraint'::regclass AND d.objid = c.oid
                 WHERE c.contypid = t.oid AND d.refclassid = 'pg_type'::regclass) u(oid)
   WHERE u.oid <> 0
),
calls(fn, why, ord) AS (
  SELECT refobjid, why, ord FROM deps WHERE refclassid = 'pg_proc'::regclass
  UNION ALL
  SELECT g.tgfoid, 'trigger ' || quote_ident(g.tgname), r.ord FROM pg_trigger g JOIN rels r ON r.oid = g.tgrelid
   WHERE $6 AND NOT g.tgisinternal AND g.tgenabled <> 'D'
  UNION ALL
  SELECT o.oprcode::oid, d.why || ', operator ' || o.oid::regoperator::text, d.ord FROM deps d JOIN pg_operator o ON o.oid = d.refobjid WHERE d.refclassid = 'pg_operator'::regclass
  UNION ALL
  SELECT f.fn, f.why || ' of type ' || format_type(t.oid, NULL), 0 FROM types s JOIN pg_type t ON t.oid = s.oid
    CROSS JOIN LATERAL (VALUES (t.typinput::oid, 'input function'), (t.typoutput, 'output function'), (t.typreceive, 'receive function'),
                               (t.typsend, 'send function'), (t.typmodin, 'typmod input function'), (t.typmodout, 'typmod output function'),
                               (t.typanalyze, 'analyze function'), (t.typsubscript, 'subscript function')) f(fn, why)
  UNION ALL
  SELECT f.fn, f.why || ' of range type ' || format_type(r.rngtypid, NULL), 0 FROM types s JOIN pg_range r ON r.rngtypid = s.oid
    CROSS JOIN LATERAL (VALUES (r.rngcanonical::oid, 'canonical function'), (r.rngsubdiff, 'subtype_diff function')) f(fn, why)
  UNION ALL
  SELECT c.castfunc, 'cast ' || format_type(c.castsource, NULL) || ' -> ' || format_type(c.casttarget, NULL), 0
    FROM pg_cast c WHERE c.castfunc <> 0 AND (c.castsource IN (SELECT oid FROM types) OR c.casttarget IN (SELECT oid FROM types))
  UNION ALL
  SELECT o.oprcode::oid, 'operator ' || o.oid::regoperator::text, 0 FROM pg_operator o
   WHERE o.oprcode <> 0 AND (o.oprleft IN (SELECT oid FROM types) OR o.oprright IN (SELECT oid FROM types))
  UNION ALL
  SELECT d.refobjid, 'constraint ' || quote_ident(c.conname) || ' of domain ' || format_type(c.contypid, NULL), 0
    FROM types s JOIN pg_constraint c ON c.contypid = s.oid JOIN pg_depend d ON d.classid = 'pg_constraint'::regclass AND d.objid = c.oid
   WHERE d.refclassid = 'pg_proc'::regclass
  UNION ALL
  -- A domain's DEFAULT: a column of it that an INSERT leaves out takes it.
  SELECT d.refobjid, 'DEFAULT of domain ' || format_type(s.oid, NULL), 0
    FROM types s JOIN pg_depend d ON d.classid = 'pg_type'::regclass AND d.objid = s.oid WHERE d.refclassid = 'pg_proc'::regclass
  UNION ALL
  SELECT o.oprcode::oid, 'constraint ' || quote_ident(c.conname) || ' of domain ' || format_type(c.contypid, NULL) || ', operator ' || o.oid::regoperator::text, 0
    FROM types s JOIN pg_constraint c ON c.contypid = s.oid JOIN pg_depend d ON d.classid = 'pg_constraint'::regclass AND d.objid = c.oid
    JOIN pg_operator o ON o.oid = d.refobjid WHERE d.refclassid = 'pg_operator'::regclass
)
-- Trusted by who owns it, never by what it is now: its owner can make a SECURITY DEFINER function
-- SECURITY INVOKER, replace its body, or give a domain a constraint, at any moment of a run that
-- takes hours after this look.
SELECT fn, owner, why FROM (
  SELECT * FROM (
    SELECT DISTINCT ON (p.oid) 'function ' || p.oid::regprocedure::text AS fn, pg_get_userbyid(p.proowner) AS owner, c.why, 0 AS kind, p.oid AS oid
      FROM calls c JOIN pg_proc p ON p.oid = c.fn JOIN pg_roles o ON o.oid = p.proowner
     WHERE c.fn <> 0 AND NOT o.rolsuper AND o.rolname <> current_user
     ORDER BY p.oid, c.ord, c.why) f
  UNION ALL
  -- A domain: its owner can add a constraint (NOT VALID: checked on every later write, the copy's
  -- into the shadow too) calling anything, at any time.
  SELECT 'domain ' || format_type(t.oid, NULL), pg_get_userbyid(t.typowner), 'its owner can give it a constraint at any time', 1, t.oid
    FROM (SELECT DISTINCT oid FROM types) s JOIN pg_type t ON t.oid = s.oid JOIN pg_roles o ON o.oid = t.typowner
   WHERE t.typtype = 'd' AND NOT o.rolsuper AND o.rolname <> current_user
  UNION ALL
  -- A type a column is converted from or to (an array's element with it): the conversion's cast is
  -- looked up in pg_cast at every statement, and the type's owner can add one at any time.
  SELECT 'type ' || format_type(t.oid, NULL), pg_get_userbyid(t.typowner), 'a column is converted from or to it, and its owner can give it a cast at any time', 2, t.oid
    FROM pg_type t JOIN pg_roles o ON o.oid = t.typowner
   WHERE (t.oid = ANY ($7::oid[]) OR t.oid IN (SELECT unnest(ARRAY[typelem, typbasetype]) FROM pg_type WHERE oid = ANY ($7::oid[])))
     AND NOT o.rolsuper AND o.rolname <> current_user) x
ORDER BY kind, oid`;

export interface OwnerCodeOptions {
  /** The run writes the table: its triggers fire (a backfill). */
  triggers?: boolean;
  /**
   * The run only reads these columns (a contract's backup): their types' code is evaluated, not
   * the table's defaults, constraints or indexes.
   */
  columns?: string[];
  /** The user's ALTER: what it adds is looked at too, on an empty probe the owner makes (`owner-probe.ts`). */
  alter?: string;
  /** The columns the run walks and compares keys by (the copy's, the backfill's, the comparison's keyset). */
  keyColumns?: string[];
  /**
   * The table's expression indexes and CHECKs are parsed again from their text (the copy's indexes
   * built after it, an ALTER ... TYPE rebuilding what depends on a column).
   */
  reparsed?: boolean;
}

/** A user's statement, parsed and never run; `compares` false when it only names columns (the copy's INSERT: its conversions are `converted`'s). */
export interface UserStatement {
  sql: string;
  what: string;
  compares?: boolean;
}

async function columnTypes(client: Client, table: string, columns: string[]): Promise<string[]> {
  const { rows } = await client.query('SELECT atttypid FROM pg_attribute WHERE attrelid = $1::regclass AND attname = ANY ($2::text[])', [table, columns]);
  return rows.map((r) => String(r.atttypid));
}

/**
 * The one-line refusal for a run on `table` (an oid) that evaluates the code of `relations` (the
 * table, its partitions, a probe shadow: pg_partition_tree of each) and the user's `statements`
 * (parsed, never run), or null when none of it is another role's. In the caller's transaction,
 * which must be rolled back.
 */
export async function ownerCodeRefusal(
  client: Client,
  table: string,
  roots: string[],
  statements: UserStatement[],
  { triggers = false, columns, keyColumns = [], reparsed = false }: OwnerCodeOptions = {},
): Promise<string | null> {
  const schema = await foreignSchemaOwner(client, table);
  if (schema !== null) return schema;
  const owner = await foreignOwner(client, table);
  const { rows } = await client.query(
    `WITH roots AS (SELECT r.root::oid AS oid, r.ord FROM unnest($1::regclass[]) WITH ORDINALITY r(root, ord)),
          rels AS (SELECT oid, ord FROM roots UNION SELECT t.relid, r.ord FROM roots r, pg_partition_tree(r.oid) t)
     SELECT (SELECT array_agg(oid ORDER BY ord) FROM rels) AS rels,
            (SELECT bool_or(relrowsecurity) FROM pg_class WHERE oid IN (SELECT oid FROM rels)) AND NOT (r.rolsuper OR r.rolbypassrls) AS policies,
            (SELECT format('%I.%I', n.nspname, x.relname) FROM pg_class x JOIN pg_namespace n ON n.oid = x.relnamespace WHERE x.oid = $2::regclass) AS name,
            current_user AS role,
            (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = $2::regclass) AS owner,
            -- Matched by name: PostgreSQL renames a column only in an ALTER of its own.
            (SELECT array_agg(DISTINCT u.oid) FROM pg_attribute a JOIN pg_attribute b ON b.attname = a.attname AND b.atttypid <> a.atttypid,
                    unnest(ARRAY[a.atttypid, b.atttypid]) u(oid)
              WHERE a.attrelid = ($1::regclass[])[1] AND b.attrelid = ($1::regclass[])[2] AND a.attnum > 0 AND b.attnum > 0
                AND NOT a.attisdropped AND NOT b.attisdropped) AS converted
       FROM pg_roles r WHERE r.rolname = current_user`,
    [roots, table],
  );
  const parsed = [];
  for (const [i, s] of statements.entries()) {
    const oid = await parsedOrNull(client, s.sql, i);
    if (oid !== null) parsed.push({ oid, what: s.what, compares: s.compares !== false });
  }
  const expressions = parsed.map(({ oid, what }) => ({ oid, what }));
  const compared = parsed.filter((e) => e.compares).map(({ oid, what }) => ({ oid, what }));
  const converted = (rows[0].converted as string[] | null) ?? [];
  if (owner === null) {
    // The table's owner is ours or a superuser: its code runs as in the native ALTER, but a third
    // role's types, casts and functions that our statements reach are judged all the same.
    const found = [
      ...(await foreignTypes(client, table, roots[1] ?? null, keyColumns, compared, reparsed, converted)),
      ...(await thirdRoleCalls(client, table, keyColumns, expressions)),
    ];
    return found.length ? describeThirdRoleCode(String(rows[0].name), found, String(rows[0].role), String(rows[0].owner)) : null;
  }
  const types = await foreignTypes(client, table, roots[1] ?? null, keyColumns, compared, reparsed);
  const found = await foreignCode(
    client,
    columns
      ? { relations: [], types: await columnTypes(client, table, columns), policies: false, expressions }
      : {
          relations: rows[0].rels as string[],
          policies: isTrue(rows[0].policies),
          expressions,
          triggers,
          converted,
        },
  );
  found.push(...types);
  return found.length ? describeForeignCode(String(rows[0].name), found, String(rows[0].role), owner) : null;
}

/**
 * For the commands that evaluate the table's code outside a migration's plan (in place, backfill,
 * verify --expect, a contract's backup), and before the plan's own probe runs the ALTER:
 * `ownerCodeRefusal` in a transaction of its own, rolled back, thrown as the one line of a
 * UserError, before any of that code is planned or run.
 */
export async function refuseOwnerCode(pool: pg.Pool, table: string, statements: UserStatement[], options?: OwnerCodeOptions): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const roots = [table];
    const owner = options?.alter === undefined ? null : await foreignOwner(client, table);
    if (owner !== null) roots.push(await ownerProbe(client, table, owner, options!.alter!));
    const refusal = await ownerCodeRefusal(client, table, roots, statements, options);
    if (refusal !== null) throw new UserError(refusal);
  } finally {
    await client.query('ROLLBACK').catch(ignoreFailure(ALWAYS_ROLLED_BACK));
    client.release();
  }
}
