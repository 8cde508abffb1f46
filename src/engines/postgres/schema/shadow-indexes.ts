import { UserError } from '../../../core/engine/errors.js';
import { ident, isTrue, qualified } from '../server/sql.js';
import type { Client } from '../server/connect.js';

/**
 * An index of the shadow built after the copy; `original` is the index of the original it replaces.
 * `create` builds it as the ALTER left it on the shadow, storage options included; `tablespace` is
 * where it lives (its `default_tablespace` during the build, '' for the database's own) and `after`
 * sets what a CREATE cannot say: an expression's statistics target. Both absent in older plans.
 */
export interface ShadowIndex {
  shadow: string;
  original: string | null;
  create: string;
  tablespace?: string;
  after?: string[];
}

/** The statements that build `index`, in one transaction: a build then lands where the ALTER left it. */
export function indexStatements(index: ShadowIndex): string[] {
  return [
    ...(index.tablespace === undefined ? [] : [`SET LOCAL default_tablespace = ${index.tablespace ? ident(index.tablespace) : "''"}`]),
    index.create,
    ...(index.after ?? []),
  ];
}

/** `ALTER INDEX ... SET STATISTICS` for each expression of `index` whose statistics target is set. */
const STATISTICS_TARGETS = (index: string, as: string) =>
  `SELECT format('ALTER INDEX %s ALTER COLUMN %s SET STATISTICS %s', ${as}, a.attnum, a.attstattarget) AS sql
     FROM pg_attribute a WHERE a.attrelid = ${index} AND a.attnum > 0 AND a.attstattarget >= 0 ORDER BY a.attnum`;

/**
 * What LIKE leaves behind of the original's indexes, put on the shadow's twins before the ALTER: an
 * expression's statistics target, the CLUSTER mark and the replica identity. The ALTER then keeps
 * or changes them as the native ALTER would (a statistics target is lost with an index it rebuilds;
 * `CLUSTER ON`, `SET WITHOUT CLUSTER`, `REPLICA IDENTITY` act on the marks).
 */
export async function carryIndexMarks(client: Client, schema: string, originalOid: string, shadow: string, pairs: Map<string, string>): Promise<void> {
  for (const [original, twin] of pairs) {
    const { rows } = await client.query(STATISTICS_TARGETS('$1::regclass', '$2::text'), [qualified(schema, original), qualified(schema, twin)]);
    for (const r of rows) await client.query(r.sql);
  }
  const { rows } = await client.query(
    `SELECT t.relreplident, (SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = t.oid AND i.indisreplident) AS identity,
            (SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = t.oid AND i.indisclustered) AS clustered
       FROM pg_class t WHERE t.oid = $1`,
    [originalOid],
  );
  const r = rows[0] as { relreplident: string; identity: string | null; clustered: string | null };
  const twinOf = (name: string | null) => (name === null ? undefined : pairs.get(name));
  if (twinOf(r.clustered) !== undefined) await client.query(`ALTER TABLE ${shadow} CLUSTER ON ${ident(twinOf(r.clustered)!)}`);
  const identity = { f: 'FULL', n: 'NOTHING', i: twinOf(r.identity) === undefined ? null : `USING INDEX ${ident(twinOf(r.identity)!)}` }[r.relreplident];
  if (identity) await client.query(`ALTER TABLE ${shadow} REPLICA IDENTITY ${identity}`);
}

/**
 * The marks as the ALTER left them on the shadow, each index named as it will be once the cut-over
 * gave the new table's indexes their names (`renames`). The replica identity goes back to DEFAULT
 * on the shadow, where FULL would log whole rows for every apply: the cut-over sets it.
 */
export async function shadowMarks(client: Client, shadow: string, renames: { original: string; shadow: string }[]): Promise<IndexMarks> {
  const { rows } = await client.query(
    `SELECT t.relreplident, (SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = t.oid AND i.indisreplident) AS identity,
            (SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = t.oid AND i.indisclustered) AS clustered
       FROM pg_class t WHERE t.oid = $1::regclass`,
    [shadow],
  );
  const r = rows[0] as { relreplident: string; identity: string | null; clustered: string | null };
  const named = (name: string) => renames.find((x) => x.shadow === name)?.original ?? name;
  const replicaIdentity =
    { f: 'FULL', n: 'NOTHING', i: r.identity === null ? 'NOTHING' : `USING INDEX ${ident(named(r.identity))}` }[r.relreplident] ?? 'DEFAULT';
  if (replicaIdentity !== 'DEFAULT') await client.query(`ALTER TABLE ${shadow} REPLICA IDENTITY DEFAULT`);
  return { replicaIdentity, clusterOn: r.clustered === null ? null : named(r.clustered) };
}

/** The new table's replica identity (`DEFAULT`, `FULL`, `NOTHING` or `USING INDEX name`) and clustered index, as the ALTER leaves them. */
export interface IndexMarks {
  replicaIdentity: string;
  clusterOn: string | null;
}

const ON_ONLY = /^(CREATE (?:UNIQUE )?INDEX (?:"(?:[^"]|"")+"|\S+)) ON ONLY /;

/**
 * The shadow's indexes as the ALTER left them, each with how to build it again and drop it.
 * `pg_get_constraintdef` leaves out a PRIMARY KEY's or UNIQUE constraint's storage options (`WITH
 * (...)`), and no definition names its tablespace: both are read from the index itself.
 */
export async function shadowIndexes(client: Client, schema: string, shadow: string, shadowOid: string, pairs: Map<string, string>) {
  const { rows } = await client.query(
    `SELECT c.relname, pg_get_indexdef(i.indexrelid) AS indexdef, con.conname, con.contype, pg_get_constraintdef(con.oid) AS condef,
            con.condeferrable, con.condeferred,
            (SELECT string_agg(format('%s=%L', split_part(o, '=', 1), substr(o, strpos(o, '=') + 1)), ', ') FROM unnest(c.reloptions) o) AS options,
            (SELECT spcname FROM pg_tablespace WHERE oid = c.reltablespace) AS tablespace,
            (SELECT json_agg(x.sql) FROM (${STATISTICS_TARGETS('i.indexrelid', `format('%I.%I', $2::text, c.relname)`)}) x)::text AS after
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
       LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
      WHERE i.indrelid = $1 ORDER BY i.indexrelid`,
    [shadowOid, schema],
  );
  const originalOf = new Map([...pairs].map(([o, s]) => [s, o]));
  return rows.map((r) => {
    const constraint = r.conname !== null;
    return {
      shadow: r.relname as string,
      original: originalOf.get(r.relname) ?? null,
      // Constraint-backed indexes (UNIQUE, EXCLUDE) come back as constraints, keeping their semantics.
      // A partitioned table's index reads `ON ONLY`, which would build it on the root alone, invalid.
      create: constraint ? `ALTER TABLE ${shadow} ADD CONSTRAINT ${ident(r.conname)} ${withOptions(r)}` : (r.indexdef as string).replace(ON_ONLY, '$1 ON '),
      // '' is the database's own, whatever the session's default_tablespace (a partitioned index may not name it).
      tablespace: (r.tablespace ?? '') as string,
      after: (r.after === null ? [] : JSON.parse(r.after)) as string[],
      drop: constraint ? `ALTER TABLE ${shadow} DROP CONSTRAINT ${ident(r.conname)}` : `DROP INDEX ${qualified(schema, r.relname)}`,
    };
  });
}

/** A PRIMARY KEY's or UNIQUE's definition with its index's `WITH (...)`, which goes before DEFERRABLE. */
function withOptions(r: { contype: string; condef: string; options: string | null; condeferrable: unknown; condeferred: unknown }): string {
  if (!['p', 'u'].includes(r.contype) || r.options === null) return r.condef;
  const attributes = `${isTrue(r.condeferrable) ? ' DEFERRABLE' : ''}${isTrue(r.condeferred) ? ' INITIALLY DEFERRED' : ''}`;
  if (!r.condef.endsWith(attributes)) throw new Error(`unexpected definition of a constraint: ${r.condef}`);
  return `${r.condef.slice(0, r.condef.length - attributes.length)} WITH (${r.options})${attributes}`;
}

/**
 * Whether the shadow (by oid) has a unique index `name` that leads with the key's columns: the one
 * the applier finds rows by. A primary key the ALTER replaced can come back under the same name on
 * other columns (`t__new_pkey` on `code`), which finds nothing by `id`.
 */
export async function keyedBy(client: Client, shadowOid: string, name: string | undefined, columns: string[]): Promise<boolean> {
  if (name === undefined) return false;
  const { rows } = await client.query(
    `SELECT i.indisunique AND (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum WHERE k.ord <= cardinality($3::text[])) = $3::text[] AS keyed
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1 AND c.relname = $2`,
    [shadowOid, name, columns],
  );
  return rows.length === 1 && isTrue(rows[0].keyed);
}

/**
 * A unique index on the original's key columns, for a shadow whose ALTER dropped the key's own: the
 * applier finds rows by that key, and the shadow holds at most one row per key whatever the ALTER
 * made of its constraints (it is only written "delete these keys, insert them again"). Named after
 * the shadow, so that the probe's plan and the real shadow agree; the cut-over drops it.
 */
export async function addHelperKey(client: Client, schema: string, shadowName: string, columns: string[]): Promise<string> {
  let name = `${shadowName}__key`;
  while (Buffer.byteLength(name) > 63) name = `${[...name.slice(0, -5)].slice(0, -1).join('')}__key`;
  const taken = await client.query(`SELECT 1 FROM pg_class WHERE relnamespace = $1::regnamespace AND relname = $2`, [ident(schema), name]);
  if (taken.rowCount !== 0)
    throw new UserError(`${qualified(schema, name)} exists: shadowcut needs that name for the shadow's key while the ALTER replaces the key; rename it`);
  await client.query(`CREATE UNIQUE INDEX ${ident(name)} ON ${qualified(schema, shadowName)} (${columns.map(ident).join(', ')})`);
  return name;
}
