import type pg from 'pg';
import type { CutoverOptions } from '../../../core/engine/types.js';
import type { PgTriggerLog } from '../capture/trigger/log.js';
import type { Copier } from '../copy/copy.js';
import type { PgDetail } from '../schema/plan.js';
import { matchRights } from '../schema/rights.js';
import { ident, qualified } from '../server/sql.js';
import type { Client } from '../server/connect.js';
import { boundToOriginal, type ForeignKey } from './bound-to-original.js';
import { boundToIndexes, freeRelationName, partitionIndexPairs, relationExists } from './index-names.js';
import { nameSequencesAfter } from './sequence-names.js';

// What the swap carries from each original to its new table: read under the lock before any name
// changes, since afterwards the names mean the new tables.

/** One table's part of a swap: several make a set's, in one transaction. */
export interface SwapPart {
  copier: Copier;
  catchUp: CutoverOptions['catchUp'];
  triggers: PgTriggerLog | null;
}

/** What is read under the lock for one table, before any name changes. */
export interface Carried {
  part: SwapPart;
  statements: string[];
  before: string[];
  indexRenames: PgDetail['indexRenames'];
  withIndexes: string[];
  leaving: { publication: string; relation: string }[];
  identities: { original: SequenceName; shadow: SequenceName }[];
  foreignKeys: ForeignKey[];
}

/** Everything bound to one original (and its partitions) rather than to its name, read before the renames. */
export async function carriedOf(client: pg.PoolClient, part: SwapPart, d: PgDetail = part.copier.d): Promise<Carried> {
  const root = await boundToOriginal(client, d, { oid: d.oid, name: d.name, shadow: d.shadow }, true);
  const indexRenames: PgDetail['indexRenames'] = [...d.indexRenames, ...(await partitionIndexPairs(client, d))];
  for (const p of d.partitions ?? []) {
    const c = await boundToOriginal(client, d, { oid: p.oid, name: p.name, shadow: p.shadow }, false);
    root.statements.push(...c.statements);
    root.before.push(...c.before);
    root.foreignKeys.push(...c.foreignKeys);
  }
  return {
    part,
    ...root,
    indexRenames,
    withIndexes: await boundToIndexes(client, d, indexRenames),
    leaving: await publicationsLeft(client, d),
    identities: await identitySequences(client, d),
  };
}

/** The indexes' names, after the tables': the old ones step aside, the new ones take theirs. */
export async function finishSwap(client: pg.PoolClient, { part, indexRenames }: Carried): Promise<void> {
  const d = part.copier.d;
  // The indexes the ALTER dropped step aside with the old table: one it adds takes the name the native ALTER gives it.
  const dropped = (d.droppedIndexes ?? []).filter((name) => !indexRenames.some((r) => r.original === name)).map((original) => ({ original }));
  for (const index of [...indexRenames, ...dropped] as { original: string; aside?: string }[]) {
    // A revert's entry for an index the forward ALTER dropped: the new table may have nothing under that name.
    if (!(await relationExists(client, d.schema, index.original))) continue;
    const name = await freeRelationName(client, d.schema, index.aside ?? `${index.original.slice(0, 55)}__old`);
    await client.query(`ALTER INDEX ${qualified(d.schema, index.original)} RENAME TO ${ident(name)}`);
  }
  for (const index of indexRenames) {
    await client.query(`ALTER INDEX ${qualified(d.schema, index.shadow)} RENAME TO ${ident(index.original)}`);
  }
}

/** Publications and sequences, after the statements that name them as they were. */
export async function afterSwap(client: pg.PoolClient, { part, leaving, identities }: Carried): Promise<void> {
  const d = part.copier.d;
  // The table that steps aside is not the user's table any more: their subscribers must not get its rows.
  for (const { publication, relation } of leaving) await client.query(`ALTER PUBLICATION ${ident(publication)} DROP TABLE ${relation}`);
  for (const { original, shadow } of identities) {
    const aside = await freeRelationName(client, original.schema, `${original.name.slice(0, 55)}__old`);
    await client.query(`ALTER SEQUENCE ${qualified(original.schema, original.name)} RENAME TO ${ident(aside)}`);
    await client.query(`ALTER SEQUENCE ${qualified(shadow.schema, shadow.name)} RENAME TO ${ident(original.name)}`);
    // A new sequence got the migrating role's default privileges for sequences: it takes the old one's rights.
    const old = (await client.query('SELECT $1::regclass::oid AS oid', [qualified(original.schema, aside)])).rows[0].oid;
    await matchRights(client, String(old), qualified(original.schema, original.name), []);
  }
  // The old table's own (a column the ALTER drops, or a revert's new table going back to `__new`)
  // step aside first: the new table's then take the names the native ALTER gave them.
  await nameSequencesAfter(client, d.schema, d.old, d.name);
  await nameSequencesAfter(client, d.schema, d.name, d.shadow);
}

/** The user's publications that list the table or one of its partitions, each with the name that relation steps aside to. */
async function publicationsLeft(client: Client, d: PgDetail): Promise<{ publication: string; relation: string }[]> {
  const left: { publication: string; relation: string }[] = [];
  for (const r of [{ oid: d.oid, old: d.old }, ...(d.partitions ?? [])]) {
    const { rows } = await client.query(
      `SELECT p.pubname FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid WHERE pr.prrelid = $1 AND p.pubname <> $2 ORDER BY 1`,
      [r.oid, d.publication],
    );
    for (const row of rows) left.push({ publication: row.pubname, relation: qualified(d.schema, r.old) });
  }
  return left;
}

interface SequenceName {
  schema: string;
  name: string;
}

/**
 * The identity columns' sequences, the original's with the shadow's: the new table's were named
 * after the shadow (`orders__new_id_seq`), and take the original names once those stepped aside.
 */
async function identitySequences(client: Client, d: PgDetail): Promise<{ original: SequenceName; shadow: SequenceName }[]> {
  const { rows } = await client.query(
    `SELECT o.relnamespace::regnamespace::text AS o_schema, o.relname AS o_name, s.relnamespace::regnamespace::text AS s_schema, s.relname AS s_name
       FROM pg_attribute a JOIN json_to_recordset($3::json) m(source text, target text) ON m.source = '"' || replace(a.attname, '"', '""') || '"'
       JOIN pg_attribute t ON t.attrelid = $2::regclass AND t.attname = m.target AND t.attidentity <> ''
       JOIN pg_class o ON o.oid = pg_get_serial_sequence($1::text, a.attname)::regclass
       JOIN pg_class s ON s.oid = pg_get_serial_sequence($2::text, t.attname)::regclass
      WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity <> '' AND o.oid <> s.oid`,
    [qualified(d.schema, d.name), qualified(d.schema, d.shadow), JSON.stringify(d.columns.map((c) => ({ source: c.source, target: c.target })))],
  );
  // regnamespace text is quoted when it must be; qualified() quotes again, so unquote it here.
  const unquote = (n: string) => (n.startsWith('"') ? n.slice(1, -1).replace(/""/g, '"') : n);
  return rows.map((r) => ({ original: { schema: unquote(r.o_schema), name: r.o_name }, shadow: { schema: unquote(r.s_schema), name: r.s_name } }));
}
