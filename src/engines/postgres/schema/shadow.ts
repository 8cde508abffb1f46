import { generatedNames, type GeneratedName } from './generated-names.js';
import { UserError } from '../../../core/engine/errors.js';
import { isTransientPgError } from '../server/errors.js';
import { usingExpressions } from './alter.js';
import { asUser, type Client } from '../server/connect.js';
import { ident, qualified } from '../server/sql.js';
import { readColumns, type Column, type TableInfo } from './inspect.js';
import { createShadowPartitions, type Partition } from './partitions.js';
import { rightsLikeOriginal } from './rights.js';
import { markLikeOriginal, setAside, type NotValidCheck } from './not-valid-checks.js';
import { addHelperKey, carryIndexMarks, keyedBy, shadowIndexes, shadowMarks, type IndexMarks, type ShadowIndex } from './shadow-indexes.js';
import { alterOnCopy, droppedConstraints, pairIndexes } from '../server/alter-names.js';

/** A partitioned original's tree: the shadow gets the same key and every partition with its bound. */
export interface ShadowTree {
  partitionBy: string;
  partitions: Partition[];
  /** The twin's name of each partition (the probe's differ from the real shadow's). */
  nameOf: (p: Partition) => string;
}

/** One column the copy fills: `source` is SQL over the original's row, `target` the shadow's column. */
export interface ColumnMap {
  source: string;
  target: string;
  /** The target's type (`format_type`), so checksums compare the original converted the same way. */
  type: string;
  /** The original's column it comes from (a USING expression names it only inside); absent in plans saved before revert windows. */
  column?: string;
  /**
   * The way back's only: the new table's type of `column`. Its assignment cast into the old type
   * rounds a numeric and cuts trailing spaces without an error, and the checksum's cast does the
   * same to the new value: the old value converted up again must equal it too.
   */
  back?: string;
}

/**
 * The copy's column mapping as an INSERT head: `from` is read as the original. OVERRIDING SYSTEM
 * VALUE: identity columns GENERATED ALWAYS take the original's values.
 */
export function copyInto(target: string, d: { columns: ColumnMap[] }, from: string): string {
  const targets = d.columns.map((c) => ident(c.target)).join(', ');
  const sources = d.columns.map((c) => c.source).join(', ');
  return `INSERT INTO ${target} (${targets}) OVERRIDING SYSTEM VALUE SELECT ${sources} FROM ${from}`;
}

export interface ShadowLayout {
  columns: ColumnMap[];
  shadowKey: string[];
  indexes: ShadowIndex[];
  /** The key's own index (a primary key or the unique index the table is keyed by). */
  keyIndex: ShadowIndex;
  indexRenames: { original: string; shadow: string }[];
  /** Original columns dropped, renamed or retyped. */
  changedColumns: string[];
  /** Original columns only renamed, with their new names. */
  renamedColumns: { from: string; to: string }[];
  /** The replica identity and CLUSTER mark the ALTER leaves, set by the cut-over. */
  marks: IndexMarks;
  /** Original statistics object -> the shadow's (LIKE names its own), swapped at cut-over like the indexes. */
  statistics: { original: string; shadow: string }[];
  /** NOT VALID CHECKs, kept off the shadow while the old rows go in and added at the cut-over. */
  notValidChecks: NotValidCheck[];
  /** Constraints the ALTER added under names the server made from the shadow's: renamed like the native ALTER's at the cut-over. */
  generatedNames: GeneratedName[];
  /** The shadow's own unique index on the original's key, when the ALTER dropped the key's index: dropped at the cut-over. */
  helperKey?: string;
  /** The original's indexes whose constraints the ALTER drops: they step aside with the old table at the cut-over. */
  droppedIndexes: string[];
  summary: string[];
}

/**
 * Creates the shadow on `client` (inside the caller's transaction) and applies the ALTER to it.
 * LIKE ... INCLUDING ALL keeps defaults, NOT NULL, CHECKs, identity, generated columns, storage,
 * comments and indexes; the ALTER then acts on all of them as it would in place. The catalog before
 * and after tells renames (same attnum, new name), drops and type changes without parsing SQL.
 * With `drop` 'secondary', indexes other than the key are dropped and returned to be built after the
 * copy; with 'all', the key's index too (the copy then fills a bare heap: copy/deferred-indexes.ts).
 */
export async function buildShadow(
  client: Client,
  t: TableInfo,
  alter: string,
  shadowName: string,
  drop: 'none' | 'secondary' | 'all',
  tree: ShadowTree | null,
): Promise<ShadowLayout> {
  const original = qualified(t.schema, t.name);
  const shadow = qualified(t.schema, shadowName);
  const using = usingExpressions(alter);
  const options = `${t.reloptions ? ` WITH (${t.reloptions})` : ''}${t.tablespace ? ` TABLESPACE ${ident(t.tablespace)}` : ''}`;
  const by = tree ? ` PARTITION BY ${tree.partitionBy}` : '';
  await client.query(`CREATE TABLE ${shadow} (LIKE ${original} INCLUDING ALL)${by}${options}`);
  // The original's rights and no one else's, before the transaction ends and the shadow can be seen.
  await rightsLikeOriginal(client, original, shadow);
  // Partitions before the ALTER, which then reaches them as it would reach the original's.
  if (tree) await createShadowPartitions(client, t.schema, { original: t.name, shadow: shadowName }, tree.partitions, tree.nameOf);
  const oid: string = (await client.query(`SELECT $1::regclass::oid AS oid`, [shadow])).rows[0].oid;
  const before = await readColumns(client, oid);
  const pairs = await pairIndexes(client, t.oid, oid);
  await carryUnlikeable(client, t.oid, oid, shadow);
  await carryIndexMarks(client, t.schema, t.oid, shadow, pairs);
  const statistics = await pairStatistics(client, t.oid, oid);
  await markLikeOriginal(client, original, shadow);
  const constraintsOf = async () =>
    (await client.query(`SELECT conname FROM pg_constraint WHERE conrelid = $1 ORDER BY oid`, [oid])).rows.map((r) => String(r.conname));
  const named = new Set(await constraintsOf());

  // The ALTER names the original's indexes; the shadow's are their twins, named after it.
  const onShadow = await alterOnCopy(client, alter, t.oid, shadow);
  try {
    if (onShadow !== null) await asUser(client, () => client.query(`ALTER TABLE ${shadow} ${onShadow}`));
  } catch (error) {
    // A lost session is not the ALTER's refusal: the run retries it.
    throw isTransientPgError(error) ? error : new UserError(`the ALTER fails: ${(error as Error).message}`);
  }
  const still = await client.query(`SELECT 1 FROM pg_class WHERE oid = $1 AND relname = $2`, [oid, shadowName]);
  if (still.rowCount === 0) throw new UserError('the ALTER renames or moves the table itself; that is not an online change');
  // A twin the ALTER dropped is no twin any more, whatever now has its name.
  const droppedIndexes: string[] = [];
  for (const original of droppedConstraints(alter)) {
    if (!pairs.has(original)) continue;
    droppedIndexes.push(original);
    named.delete(pairs.get(original)!);
    pairs.delete(original);
  }
  const after = await readColumns(client, oid);
  const added = (await constraintsOf()).filter((name) => !named.has(name));
  const notValidChecks = await setAside(client, shadow);
  const kept = new Set((await client.query(`SELECT stxname FROM pg_statistic_ext WHERE stxrelid = $1`, [oid])).rows.map((r) => String(r.stxname)));

  const { columns, summary, changed, renamed } = mapColumns(t.columns, before, after, using);
  const targetOf = new Map(columns.map((c) => [c.source, c.target]));
  const shadowKey = t.key!.columns.map((k) => targetOf.get(ident(k)));
  if (shadowKey.some((k) => k === undefined)) {
    throw new UserError(`the ALTER drops, computes or converts key column(s) ${t.key!.columns.join(', ')}; the copy needs them unchanged`);
  }

  // The ALTER dropped or replaced the key's index (a new primary key, or none): the shadow gets one of
  // its own on the original's key columns for the run, which the cut-over drops (helperKey).
  const pairedKey = pairs.get(t.key!.index);
  const helperKey = (await keyedBy(client, oid, pairedKey, shadowKey as string[]))
    ? undefined
    : await addHelperKey(client, t.schema, shadowName, shadowKey as string[]);
  const keyName = helperKey ?? pairedKey;
  const all = await shadowIndexes(client, t.schema, shadow, oid, pairs);
  const keyIndex = all.find((i) => i.shadow === keyName)!;
  const indexes = all.filter((i) => i !== keyIndex);
  const renames = [...pairs].filter(([, s]) => s === keyName || indexes.some((i) => i.shadow === s));
  // Read before the indexes they mark are dropped for the copy.
  const marks = await shadowMarks(
    client,
    shadow,
    renames.map(([original, s]) => ({ original, shadow: s })),
  );
  if (drop !== 'none') {
    for (const index of indexes) await client.query(index.drop);
  }
  if (drop === 'all') await client.query(keyIndex.drop);
  summary.push(`key (${shadowKey.join(', ')}); ${indexes.length} secondary index(es)`);
  if (helperKey) summary.push(`the ALTER drops the key's index ${t.key!.index}: the copy keys the shadow by ${helperKey}, dropped at the cut-over`);
  if (notValidChecks.length) summary.push(`CHECK ${notValidChecks.map((c) => c.name).join(', ')} NOT VALID: added at the cut-over, after the old rows`);
  return {
    columns,
    shadowKey: shadowKey as string[],
    indexes: indexes.map(({ drop: _, ...index }) => index),
    keyIndex: { shadow: keyIndex.shadow, original: keyIndex.original, create: keyIndex.create, tablespace: keyIndex.tablespace, after: keyIndex.after },
    indexRenames: renames.map(([original, s]) => ({ original, shadow: s })),
    marks,
    changedColumns: changed,
    renamedColumns: renamed,
    // A statistics object the ALTER dropped (with a column it covered) has nothing to swap.
    statistics: [...statistics].filter(([, s]) => s !== undefined && kept.has(s.stxname)).map(([original, s]) => ({ original, shadow: s!.stxname })),
    notValidChecks,
    generatedNames: generatedNames(added, shadowName),
    ...(helperKey ? { helperKey } : {}),
    droppedIndexes,
    summary,
  };
}

/**
 * What LIKE ... INCLUDING ALL leaves behind, put on the shadow before the ALTER so that the ALTER acts
 * on it as it would on the original: each column's statistics target and options (`SET STATISTICS`,
 * `SET (n_distinct = ...)`), an identity sequence's type, and each statistics object's target (paired
 * as `pairStatistics` does).
 * The TOAST table's options come with the table's (`inspect.ts` reloptions).
 */
async function carryUnlikeable(client: Client, originalOid: string, shadowOid: string, shadow: string): Promise<void> {
  const { rows } = await client.query(
    // attstattarget is -1 for the default before PostgreSQL 17, NULL from 17 on.
    `SELECT format('ALTER TABLE %s ', $2::text) || string_agg(x.part, ', ') AS sql FROM (
       SELECT format('ALTER COLUMN %I SET STATISTICS %s', a.attname, a.attstattarget) AS part, a.attnum, 1 AS o FROM pg_attribute a
        WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attstattarget >= 0
       UNION ALL
       SELECT format('ALTER COLUMN %I SET (%s)', a.attname, array_to_string(a.attoptions, ', ')), a.attnum, 2 FROM pg_attribute a
        WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attoptions IS NOT NULL
       ORDER BY 2, 3) x HAVING count(*) > 0`,
    [originalOid, shadow],
  );
  if (rows.length) await client.query(rows[0].sql);
  // LIKE makes an identity column's sequence a bigint whatever the column's type (its limits stay
  // the column's); the original's is of the column's type, which an ALTER ... TYPE then changes.
  const sequences = await client.query(
    `SELECT format('ALTER SEQUENCE %s AS %s', n.seqrelid::regclass, format_type(o.seqtypid, NULL)) AS sql
       FROM pg_attribute a
       JOIN pg_sequence o ON o.seqrelid = pg_get_serial_sequence($1::regclass::text, a.attname)::regclass
       JOIN pg_sequence n ON n.seqrelid = pg_get_serial_sequence($2::text, a.attname)::regclass
      WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity <> '' AND o.seqtypid <> n.seqtypid`,
    [originalOid, shadow],
  );
  for (const r of sequences.rows) await client.query(r.sql);
  for (const [, s] of await pairStatistics(client, originalOid, shadowOid)) {
    if (s !== undefined && s.target !== null) await client.query(`ALTER STATISTICS ${qualified(s.schema, s.stxname)} SET STATISTICS ${s.target}`);
  }
}

/**
 * LIKE creates the shadow's statistics objects in the order of the original's OIDs (and names them
 * after the shadow), so pairing both lists in that order tells which stands for which. The pair is
 * read by name after the ALTER: one that rebuilds an object keeps its name.
 */
interface Statistics {
  stxname: string;
  schema: string;
  target: number | null;
}

async function pairStatistics(client: Client, originalOid: string, shadowOid: string): Promise<Map<string, Statistics | undefined>> {
  const list = async (oid: string) =>
    (
      await client.query(
        // stxstattarget is -1 for the default before PostgreSQL 17, NULL from 17 on.
        `SELECT s.stxname, n.nspname AS schema, CASE WHEN s.stxstattarget >= 0 THEN s.stxstattarget END AS target
           FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace WHERE s.stxrelid = $1 ORDER BY s.oid`,
        [oid],
      )
    ).rows as Statistics[];
  const [originals, shadows] = [await list(originalOid), await list(shadowOid)];
  return new Map(originals.map((o, i) => [o.stxname, shadows[i]]));
}

function mapColumns(original: Column[], before: Column[], after: Column[], using: Map<string, string>) {
  const beforeByName = new Map(before.map((c) => [c.name, c.attnum]));
  const afterByNum = new Map(after.map((c) => [c.attnum, c]));
  const columns: ColumnMap[] = [];
  const summary: string[] = [];
  const kept = new Set<number>();
  /** Original columns dropped, renamed or retyped: a view using one cannot be moved to the new table. */
  const changed: string[] = [];
  /** Columns only renamed (same type): what is bound to them moves under their new names (cutover/renamed-columns.ts). */
  const renamed: { from: string; to: string }[] = [];
  for (const col of original) {
    const target = afterByNum.get(beforeByName.get(col.name)!);
    if (!target) {
      summary.push(`column ${col.name} dropped`);
      changed.push(col.name);
      continue;
    }
    kept.add(target.attnum);
    if (target.name !== col.name) summary.push(`column ${col.name} renamed to ${target.name}`);
    if (target.type !== col.type) summary.push(`column ${target.name}: ${col.type} -> ${target.type}`);
    if (target.name !== col.name || target.type !== col.type) changed.push(col.name);
    if (target.name !== col.name && target.type === col.type) renamed.push({ from: col.name, to: target.name });
    // A stored generated column is computed by the server from the copied columns.
    if (target.generated === 's') continue;
    columns.push({ source: using.get(col.name) ?? ident(col.name), target: target.name, type: target.type, column: col.name });
  }
  for (const col of after) if (!kept.has(col.attnum)) summary.push(`column ${col.name} ${col.type} added`);
  return { columns, summary, changed, renamed };
}
