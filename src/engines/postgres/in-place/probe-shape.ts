import { ident, qualified } from '../server/sql.js';
import type { Client } from '../server/connect.js';
import { pairIndexes } from '../server/alter-names.js';

/** How many real rows each probe relation gets: enough for the server's scans to read rows. */
const SAMPLE_ROWS = 5;

/** A relation of the probe: the table's temporary copy, or one of its partitions' or children's. */
export interface ProbeRelation {
  oid: string;
  /** Its name in pg_temp (the real relation's own name). */
  name: string;
  /** The real relation it copies, qualified. */
  real: string;
  /** Whether it holds rows itself (a partitioned table does not). */
  storage: boolean;
}

export interface ProbeShape {
  /** The probe of the table itself, `pg_temp."name"`. */
  probe: string;
  oid: string;
  partitioned: boolean;
  /** The probe and every descendant of it, parents before children. */
  relations: ProbeRelation[];
  /** Real rows copied into the probe, over all its relations. */
  rows: number;
}

interface Descendant {
  oid: string;
  parentOid: string;
  schema: string;
  name: string;
  relkind: string;
  bound: string | null;
}

/**
 * The table's shape as TEMPORARY tables under the same names, in the caller's transaction: the table
 * (partitioned the same way), each partition and inheritance child with its own CHECKs and indexes,
 * attached or inheriting as on the table, and a few real rows in each (real rows satisfy the
 * table's constraints), so that whatever the server scans or rewrites for a part on the table it
 * scans or rewrites on the probe. Returns a reason instead when the shape cannot be reproduced.
 */
/**
 * INHERIT wants every column NOT NULL on the parent NOT NULL on the child too, but a child may have
 * dropped it since it inherited (PostgreSQL before 17 allows that): such columns are NOT NULL for
 * the INHERIT (the copy has no rows yet) and nullable again after, as on the child.
 */
async function inherit(client: Client, child: string, parent: string): Promise<void> {
  const { rows } = await client.query(
    `SELECT c.attname FROM pg_attribute c
       JOIN pg_attribute p ON p.attrelid = $2::regclass AND p.attname = c.attname AND p.attnotnull AND NOT p.attisdropped
      WHERE c.attrelid = $1::regclass AND c.attnum > 0 AND NOT c.attisdropped AND NOT c.attnotnull`,
    [child, parent],
  );
  const loosened = rows.map((r) => ident(String(r.attname)));
  const each = (what: string) => loosened.map((c) => `ALTER COLUMN ${c} ${what} NOT NULL`).join(', ');
  if (loosened.length) await client.query(`ALTER TABLE ${child} ${each('SET')}`);
  await client.query(`ALTER TABLE ${child} INHERIT ${parent}`);
  if (loosened.length) await client.query(`ALTER TABLE ${child} ${each('DROP')}`);
}

export async function buildProbe(client: Client, schema: string, name: string, oid: string): Promise<ProbeShape | string> {
  const descendants = await readDescendants(client, oid);
  const foreign = descendants.find((d) => d.relkind !== 'r' && d.relkind !== 'p');
  if (foreign) return `${qualified(foreign.schema, foreign.name)} (a partition or child of the table) is not a plain table: the probe cannot reproduce it`;
  const names = [name, ...descendants.map((d) => d.name)];
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) return `two relations of the table's hierarchy are named ${ident(twice)}: the probe cannot reproduce them side by side`;
  const relkind: string = (await client.query(`SELECT relkind FROM pg_class WHERE oid = $1`, [oid])).rows[0].relkind;
  const probe = `pg_temp.${ident(name)}`;
  const top = await createCopy(client, schema, name, oid, relkind);
  // LIKE names the copies' indexes itself; given the originals' names, DROP/RENAME CONSTRAINT and USING INDEX find them.
  for (const [original, copy] of await pairIndexes(client, oid, top)) {
    if (original !== copy) await client.query(`ALTER INDEX pg_temp.${ident(copy)} RENAME TO ${ident(original)}`);
  }
  const relations: ProbeRelation[] = [{ oid: top, name, real: qualified(schema, name), storage: relkind !== 'p' }];
  const probeOf = new Map([[oid, name]]);
  const kindOf = new Map([[oid, relkind]]);
  for (const d of descendants) {
    const copy = await createCopy(client, d.schema, d.name, d.oid, d.relkind);
    const parent = `pg_temp.${ident(probeOf.get(d.parentOid)!)}`;
    if (kindOf.get(d.parentOid) === 'p') await client.query(`ALTER TABLE ${parent} ATTACH PARTITION pg_temp.${ident(d.name)} ${d.bound}`);
    else await inherit(client, `pg_temp.${ident(d.name)}`, parent);
    probeOf.set(d.oid, d.name);
    kindOf.set(d.oid, d.relkind);
    relations.push({ oid: copy, name: d.name, real: qualified(d.schema, d.name), storage: d.relkind !== 'p' });
  }
  let rows = 0;
  for (const r of relations) if (r.storage) rows += await copyRows(client, r);
  return { probe, oid: top, partitioned: relkind === 'p', relations, rows };
}

/** Partitions and inheritance children at every depth, parents first. */
async function readDescendants(client: Client, oid: string): Promise<Descendant[]> {
  const { rows } = await client.query(
    `WITH RECURSIVE tree AS (
       SELECT inhrelid AS oid, inhparent AS parent, 1 AS depth FROM pg_inherits WHERE inhparent = $1
       UNION ALL SELECT i.inhrelid, i.inhparent, t.depth + 1 FROM pg_inherits i JOIN tree t ON i.inhparent = t.oid)
     SELECT t.oid, t.parent, n.nspname, c.relname, c.relkind, pg_get_expr(c.relpartbound, c.oid) AS bound
       FROM tree t JOIN pg_class c ON c.oid = t.oid JOIN pg_namespace n ON n.oid = c.relnamespace ORDER BY t.depth, c.oid`,
    [oid],
  );
  return rows.map((r) => ({ oid: String(r.oid), parentOid: String(r.parent), schema: r.nspname, name: r.relname, relkind: r.relkind, bound: r.bound }));
}

async function createCopy(client: Client, schema: string, name: string, oid: string, relkind: string): Promise<string> {
  const partitioned = relkind === 'p' ? ` PARTITION BY ${(await client.query(`SELECT pg_get_partkeydef($1) AS k`, [oid])).rows[0].k}` : '';
  await client.query(`CREATE TEMPORARY TABLE ${ident(name)} (LIKE ${qualified(schema, name)} INCLUDING ALL)${partitioned}`);
  return String((await client.query(`SELECT $1::regclass::oid AS oid`, [`pg_temp.${ident(name)}`])).rows[0].oid);
}

/**
 * A few of the real relation's own rows; none when they cannot be read (a column without SELECT
 * privilege): the counters still show a scan of an empty relation, only not the rows it read.
 */
async function copyRows(client: Client, r: ProbeRelation): Promise<number> {
  const { rows } = await client.query(
    `SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum`,
    [r.oid],
  );
  const columns = rows.map((c) => ident(c.attname)).join(', ');
  await client.query('SAVEPOINT probe_rows');
  try {
    const done = await client.query(
      `INSERT INTO pg_temp.${ident(r.name)} (${columns}) OVERRIDING SYSTEM VALUE SELECT ${columns} FROM ONLY ${r.real} LIMIT ${SAMPLE_ROWS}`,
    );
    await client.query('RELEASE SAVEPOINT probe_rows');
    return done.rowCount ?? 0;
  } catch {
    await client.query('ROLLBACK TO SAVEPOINT probe_rows');
    return 0;
  }
}

/** Empties the probe, for a part the sampled rows make fail: the scans still show on an empty probe. */
export async function emptyProbe(client: Client, shape: ProbeShape): Promise<void> {
  for (const r of shape.relations) if (r.storage) await client.query(`DELETE FROM ONLY pg_temp.${ident(r.name)}`);
  shape.rows = 0;
}
