import type { Client } from './connect.js';

/**
 * What the server can call with the migrating role's rights when shadowcut reads, copies into,
 * checks or compares a table, found in the catalog as an allowlist (docs/invariants.md, invariant 16): the
 * functions behind its defaults and generated columns, CHECKs, index expressions and predicates,
 * policies (when they apply to the migrating role), every type its columns can hold (domains and
 * their constraints, base, element, range and composite types: their I/O functions, every cast to
 * or from them and every operator on them), and the user's own expressions. A function or a domain
 * is trusted only when a superuser or the migrating role owns it: any other owner could change it
 * (a SECURITY DEFINER function made INVOKER, a constraint added to a domain) while the run goes on.
 */
export interface ForeignCode {
  /** `function schema.name(args)` or `domain schema.name`. */
  fn: string;
  owner: string;
  /** Why it would run: "cast a -> b", "DEFAULT of column c", ... */
  why: string;
}

/**
 * Types another role owns (neither a superuser nor us) that shadowcut's statements or the user's,
 * parsed again at every chunk or batch, compare or convert: their owner can add a cast at any time,
 * and an implicit one changes how a comparison parses (`k > $1` with an untyped parameter, `c =
 * 'x'`: the string category wins, so `text > text` is taken through the owner's cast, whose function
 * then runs on every row with our rights). The key columns (every keyset predicate); the columns
 * and types the user's statements use; and those of the CHECKs and DEFAULTs the ALTER adds (the
 * probe's that the table lacks: the real shadow parses them again when it is made). With each type,
 * what it is made of (a domain's base, an array's element, a range's subtype).
 */
export async function foreignTypes(
  client: Client,
  table: string,
  probe: string | null,
  keyColumns: string[],
  statements: { oid: string; what: string }[],
  reparsed: boolean,
  /** Types a column is converted from or to, when nothing else judges them (the table's owner is ours or a superuser's). */
  converted: string[] = [],
): Promise<ForeignCode[]> {
  const { rows } = await client.query(FOREIGN_TYPES_SQL, [
    table,
    probe,
    keyColumns,
    statements.map((s) => s.oid),
    statements.map((s) => s.what),
    reparsed,
    converted,
  ]);
  return rows.map((r) => ({ fn: String(r.fn), owner: String(r.owner), why: String(r.why) }));
}

const FOREIGN_TYPES_SQL = `
WITH RECURSIVE
-- The probe's CHECKs, exclusion constraints and DEFAULTs the table has not (by their text): what
-- the ALTER adds; with the table's expression indexes and CHECKs when those are parsed again.
added(classid, objid, why) AS (
  SELECT 'pg_constraint'::regclass, c.oid, 'constraint ' || quote_ident(c.conname) || ' the ALTER adds'
    FROM pg_constraint c WHERE c.conrelid = $2::regclass AND c.contype IN ('c', 'x')
     AND NOT EXISTS (SELECT 1 FROM pg_constraint t WHERE t.conrelid = $1::regclass AND t.conname = c.conname
                        AND pg_get_constraintdef(t.oid) = pg_get_constraintdef(c.oid))
  UNION ALL
  SELECT 'pg_constraint'::regclass, c.oid, 'constraint ' || quote_ident(c.conname) || ', made again from its text'
    FROM pg_constraint c WHERE $6 AND c.conrelid = $1::regclass AND c.contype IN ('c', 'x')
  UNION ALL
  SELECT 'pg_class'::regclass, i.indexrelid, 'index ' || quote_ident(x.relname) || ', built again from its text'
    FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
   WHERE $6 AND i.indrelid = $1::regclass AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL)
  UNION ALL
  SELECT 'pg_attrdef'::regclass, d.oid, 'DEFAULT of column ' || quote_ident(a.attname) || ' the ALTER sets'
    FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
   WHERE d.adrelid = $2::regclass
     AND pg_get_expr(d.adbin, d.adrelid) IS DISTINCT FROM
         (SELECT pg_get_expr(o.adbin, o.adrelid) FROM pg_attribute b JOIN pg_attrdef o ON o.adrelid = b.attrelid AND o.adnum = b.attnum
           WHERE b.attrelid = $1::regclass AND b.attname = a.attname)
  UNION ALL
  SELECT 'pg_proc'::regclass, x.oid, x.what FROM unnest($4::oid[], $5::text[]) x(oid, what)
),
uses(typ, why) AS (
  SELECT a.atttypid, 'key column ' || quote_ident(a.attname) FROM pg_attribute a
   WHERE a.attrelid = $1::regclass AND a.attname = ANY ($3::text[])
  UNION ALL
  -- A DEFAULT's tie to its own column is no use of it.
  SELECT a.atttypid, 'column ' || quote_ident(a.attname) || ' in ' || x.why
    FROM added x JOIN pg_depend d ON d.classid = x.classid AND d.objid = x.objid
    JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
   WHERE d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0
     AND NOT (x.classid = 'pg_attrdef'::regclass AND d.refobjsubid = (SELECT adnum FROM pg_attrdef WHERE oid = x.objid))
  UNION ALL
  -- The types the user's statements name (an explicit cast of a constant is looked up again too).
  -- Not those of the ALTER's DEFAULTs and CHECKs: there a constant of the type ('new' for a
  -- column of it) is read by its input function, never a cast, and is the common case.
  SELECT d.refobjid, x.why FROM added x JOIN pg_depend d ON d.classid = x.classid AND d.objid = x.objid
   WHERE x.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_type'::regclass
  UNION ALL
  -- A type a column is converted from or to: the conversion's cast is looked up at every statement.
  SELECT u.oid, 'a column converted from or to it' FROM unnest($7::oid[]) u(oid)
),
made(typ, why) AS (
  SELECT typ, why FROM uses
  UNION
  SELECT u.oid, m.why FROM made m JOIN pg_type t ON t.oid = m.typ
    CROSS JOIN LATERAL (SELECT t.typbasetype UNION ALL SELECT t.typelem
                        UNION ALL SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = t.oid) u(oid)
   WHERE u.oid <> 0
)
SELECT DISTINCT ON (t.oid) 'type ' || format_type(t.oid, NULL) AS fn, pg_get_userbyid(t.typowner) AS owner,
       m.why || ', compared or converted at every chunk: its owner can give it a cast at any time' AS why
  FROM made m JOIN pg_type t ON t.oid = m.typ JOIN pg_roles o ON o.oid = t.typowner
 WHERE NOT o.rolsuper AND o.rolname <> current_user
 ORDER BY t.oid, m.why`;

/**
 * When the table is ours or a superuser's, its own code (DEFAULTs, CHECKs, triggers) is the owner's
 * and runs with rights no stronger than the owner's, as in the native ALTER. What is left is code a
 * third role (neither the table's owner, nor us, nor a superuser) defines and our statements reach:
 * the types `foreignTypes` finds (their owner can add an implicit cast at any time, which would then
 * decide how a comparison parses); what the user's statements and the copy's call as parsed now
 * (their functions and the functions behind their operators and casts: the function's owner can
 * replace its body at any time); and an implicit cast from a key column's type to a type of ours or
 * a superuser's whose function another role owns (a comparison of the key could be taken through it).
 * Operators themselves are found in pg_catalog only (shadowcut's statements pin the search_path),
 * where no other role can make one.
 */
export async function thirdRoleCalls(client: Client, table: string, keyColumns: string[], statements: { oid: string; what: string }[]): Promise<ForeignCode[]> {
  const { rows } = await client.query(THIRD_ROLE_CALLS_SQL, [table, keyColumns, statements.map((s) => s.oid), statements.map((s) => s.what)]);
  return rows.map((r) => ({ fn: String(r.fn), owner: String(r.owner), why: String(r.why) }));
}

const THIRD_ROLE_CALLS_SQL = `
WITH RECURSIVE
keytypes(typ) AS (
  SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attname = ANY ($2::text[]) AND a.attnum > 0 AND NOT a.attisdropped
  UNION
  SELECT u.oid FROM keytypes k JOIN pg_type t ON t.oid = k.typ CROSS JOIN LATERAL (SELECT t.typbasetype UNION ALL SELECT t.typelem) u(oid) WHERE u.oid <> 0
),
parsed(oid, what) AS (SELECT * FROM unnest($3::oid[], $4::text[])),
calls(fn, why) AS (
  SELECT d.refobjid, x.what FROM parsed x JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = x.oid
   WHERE d.refclassid = 'pg_proc'::regclass
  UNION ALL
  SELECT o.oprcode::oid, x.what || ', operator ' || o.oid::regoperator::text
    FROM parsed x JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = x.oid JOIN pg_operator o ON o.oid = d.refobjid
   WHERE d.refclassid = 'pg_operator'::regclass
  UNION ALL
  SELECT c.castfunc, 'implicit cast ' || format_type(c.castsource, NULL) || ' -> ' || format_type(c.casttarget, NULL) || ' of a key column'
    FROM pg_cast c JOIN pg_type t ON t.oid = c.casttarget JOIN pg_roles o ON o.oid = t.typowner
   WHERE c.castcontext = 'i' AND c.castfunc <> 0 AND c.castsource IN (SELECT typ FROM keytypes) AND (o.rolsuper OR o.rolname = current_user)
)
SELECT DISTINCT ON (p.oid) 'function ' || p.oid::regprocedure::text AS fn, pg_get_userbyid(p.proowner) AS owner, c.why
  FROM calls c JOIN pg_proc p ON p.oid = c.fn JOIN pg_roles o ON o.oid = p.proowner
 WHERE c.fn <> 0 AND NOT o.rolsuper AND o.rolname <> current_user
 ORDER BY p.oid, c.why`;

/** One line for a refusal on a table of ours or a superuser's: each thing a third role owns, and whom to give it to. */
export function describeThirdRoleCode(table: string, found: ForeignCode[], role: string, owner: string): string {
  const list = found.map((f) => `${f.fn} (${f.why}), owned by role ${f.owner}`).join('; ');
  return (
    `table ${table}: ${list}; a role that is neither the table's owner nor a superuser can change these at any time, ` +
    `and they would run with the rights of ${role}; make the table's owner ${owner} (or a superuser) their owner`
  );
}
