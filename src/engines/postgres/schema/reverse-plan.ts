import type pg from 'pg';
import { UserError } from '../../../core/engine/errors.js';
import { KEPT_BY_REVERT } from '../../../core/engine/kept-by-revert.js';
import { reversePlan } from '../../../core/engine/reverse-plan.js';
import type { Plan } from '../../../core/engine/types.js';
import { helperNames, slotOn } from '../server/helper-names.js';
import { ident, isTrue, qualified } from '../server/sql.js';
import { definitionOf, inspectTable, readColumns, type Column } from './inspect.js';
import type { PgDetail } from './plan.js';
import type { ColumnMap } from './shadow.js';
import { keyTypes } from '../server/key-types.js';

/**
 * The way back, column by column: each column of the old table filled from the new table's column
 * it was copied into (renames followed), converted by the server's assignment cast into the old
 * type, which errors rather than truncates. Columns the ALTER added are not carried back; a column
 * of the old table with nothing to come from is `lost` (dropped by the ALTER). Generated columns
 * the server computes again.
 */
export function reverseColumns(forward: ColumnMap[], old: Pick<Column, 'name' | 'type' | 'generated'>[]): { columns: ColumnMap[]; lost: string[] } {
  const columns: ColumnMap[] = [];
  const lost: string[] = [];
  for (const col of old) {
    if (col.generated !== '') continue;
    const copied = forward.find((c) => c.column === col.name);
    if (copied) columns.push({ source: ident(copied.target), target: col.name, type: col.type, column: copied.target, back: copied.type });
    else lost.push(col.name);
  }
  return { columns, lost };
}

/**
 * Why the old table could not follow the new one back, from the forward plan alone (docs/postgres.md,
 * "Revert window"). What the ALTER does to values (a narrower type) is proven on rows instead.
 */
export function reverseRefusals(d: PgDetail): string[] {
  const reasons: string[] = [];
  // The original's columns as planned: generated ones are computed again, so these are the ones to fill.
  const old = d.streamColumns.map((c) => ({ name: c.name, type: '', generated: '' }));
  for (const name of reverseColumns(d.columns, old).lost) reasons.push(`column ${name} is dropped: values written after the cut-over could not come back`);
  // Copied although generated in the original: the ALTER dropped its expression, and the old table would compute it again.
  const computed = d.columns.filter((c) => c.column !== undefined && !old.some((o) => o.name === c.column));
  for (const c of computed) reasons.push(`column ${c.column} is no longer generated: values written after the cut-over could not come back`);
  const changedKey = d.originalKey.filter((k) => d.changedColumns.includes(k) && !integerRetyped(d, k));
  if (d.helperKey)
    reasons.push(`the ALTER drops the key's index ${d.helperKey.original}: the new table has no unique index the old table's rows could be found by`);
  if (changedKey.length) reasons.push(`key column(s) ${changedKey.join(', ')} renamed or retyped: the old table's rows are found by the new table's keys`);
  // The revert's swap carries the new table's keys back as the forward one carried the old table's;
  // one the ALTER added would land on the old table, which never had it. Plans from before the
  // distinction say only that there are keys.
  const added = d.addedForeignKeys ?? (d.foreignKeys?.length ? d.foreignKeys : d.validatedForeignKeys);
  if (added.length) reasons.push(`foreign keys ${added.join(', ')} added by the ALTER: the revert would carry them onto the old table`);
  if (d.triggers?.length) reasons.push(`triggers ${d.triggers.join(', ')}: the old table's own would fire again for every change it follows`);
  // The window writes into the old table for days, and its capture function is the owner's: the owner
  // could give either a trigger, rule or body of its own that our writes would then run with our rights.
  if (d.foreignOwner) reasons.push(`the table belongs to role ${d.foreignOwner}: run shadowcut as ${d.foreignOwner} for a revert window`);
  if (d.partitionBy) reasons.push('a partitioned table: the revert does not carry partitions');
  // The window's repair of a range puts the old table's own rows back into it, where a NOT VALID
  // CHECK, which they need not meet, judges every insert.
  const notValid = d.originalNotValid ?? [];
  if (notValid.length) reasons.push(`CHECK ${notValid.join(', ')} NOT VALID: rows the old table holds without meeting it could not be put back into it`);
  reasons.push(...(d.loosened ?? []));
  return reasons;
}

/** smallint, integer, bigint: one order and one equality, so a key retyped among them finds the same rows either way. */
const INTEGER_TYPES = new Map([
  ['21', 'smallint'],
  ['23', 'integer'],
  ['20', 'bigint'],
]);

/**
 * A key column only retyped among the integer types (the copy refuses a key computed by USING): the
 * old table's rows are found by the new table's keys, and one the old type cannot hold fails the
 * window on its way back.
 */
function integerRetyped(d: PgDetail, key: string): boolean {
  const copied = d.columns.find((c) => c.column === key);
  const old = d.streamColumns.find((c) => c.name === key);
  if (!copied || !old || copied.target !== key) return false;
  return INTEGER_TYPES.has(String(old.typeOid)) && [...INTEGER_TYPES.values()].includes(copied.type);
}

/**
 * After the forward swap: the new table `T` is the original, the old table (the forward plan's
 * `old`, `T__old` or `T__old_<n>`) the shadow (level at the swap), and `T__new` is where the new
 * table goes when the revert swaps them back.
 * Read from the catalogs as they are now; the definition compared under the revert's lock is the
 * new table's as it is now.
 */
export async function buildReversePlan(pool: pg.Pool, forward: Plan<PgDetail>): Promise<Plan<PgDetail>> {
  const f = forward.detail;
  const names = helperNames(f.schema, f.name);
  const { rows } = await pool.query('SELECT to_regclass($1)::oid AS old', [qualified(f.schema, f.old)]);
  if (String(rows[0].old) !== f.oid) {
    throw new UserError(`${f.schema}.${f.old} is not the table this run swapped out (dropped or replaced since); there is no way back`);
  }
  const t = await inspectTable(pool, f.schema, f.name);
  if (t.key?.columns.join(',') !== f.shadowKey.join(',')) {
    throw new UserError(`the key of ${f.schema}.${f.name} is not (${f.shadowKey.join(', ')}) any more; there is no way back`);
  }
  const oldColumns = await readColumns(pool, f.oid);
  const { columns, lost } = reverseColumns(f.columns, oldColumns);
  if (lost.length) throw new UserError(`column(s) ${lost.join(', ')} of ${f.schema}.${f.old} have no column of the new table to come from`);
  const carried = new Map(columns.map((c) => [c.column, c]));
  const changed = t.columns.filter((c) => {
    const back = carried.get(c.name);
    return !back || back.target !== c.name || back.type !== c.type;
  });
  const detail: PgDetail = {
    oid: t.oid,
    schema: f.schema,
    name: f.name,
    shadow: f.old,
    old: names.shadow,
    slot: await slotOn(pool, names.slot),
    publication: names.publication,
    originalKey: f.shadowKey,
    shadowKey: f.originalKey,
    keyTypes: await keyTypes(pool, t.oid, f.shadowKey),
    columns,
    streamColumns: t.columns.filter((c) => c.generated === '').map((c) => ({ name: c.name, typeOid: c.typeOid, typeMod: c.typeMod })),
    definition: await definitionOf(pool, t.oid),
    indexes: [],
    deferIndexes: false,
    indexRenames: await reverseIndexRenames(pool, f),
    statistics: await reverseStatistics(pool, f),
    changedColumns: changed.map((c) => c.name),
    // What is bound to a column the forward ALTER only renamed goes back under its old name too.
    ...(f.renamedColumns?.length ? { renamedColumns: f.renamedColumns.map((r) => ({ from: r.to, to: r.from })) } : {}),
    // The forward run validated them before the window opened; the revert's swap re-adds them NOT VALID, and its cleanup validates them again.
    validatedForeignKeys: (
      await pool.query(`SELECT conname FROM pg_constraint WHERE contype = 'f' AND convalidated AND (conrelid = $1 OR confrelid = $1)`, [t.oid])
    ).rows.map((r) => String(r.conname)),
  };
  return reversePlan(forward, {
    keyColumns: f.shadowKey,
    estimatedRows: t.estimatedRows,
    summary: [
      `the way back: ${detail.shadow} follows ${f.name}, which a revert renames to ${names.shadow}`,
      ...changed.map((c) => {
        const back = carried.get(c.name);
        return back ? `column ${c.name} ${c.type} goes back into ${back.target} ${back.type}` : `column ${c.name} is not carried back`;
      }),
    ],
    detail,
  });
}

/**
 * The forward cut-over renamed the old table's indexes to `<name>__old` (or the first free
 * `<name>__old_N`, in the original's index order) and gave their names to the new table's: the
 * revert gives them back, and the new table's step aside to the names they had as the shadow's.
 */
async function reverseIndexRenames(pool: pg.Pool, f: PgDetail): Promise<PgDetail['indexRenames']> {
  const { rows } = await pool.query(`SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1 ORDER BY i.indexrelid`, [
    f.oid,
  ]);
  // One the forward ALTER dropped takes its name back too; what the new table has under that name
  // (the ALTER's own, named natively) steps aside beside it.
  const dropped = (f.droppedIndexes ?? []).map((original) => ({ original, shadow: `${original.slice(0, 55)}__new` }));
  return takenBack(
    rows.map((r) => String(r.relname)),
    [...f.indexRenames, ...dropped],
  );
}

/** The statistics objects likewise: the old table's `<name>__old` (or `__old_N`) take their names back. */
async function reverseStatistics(pool: pg.Pool, f: PgDetail): Promise<PgDetail['statistics']> {
  const { rows } = await pool.query(`SELECT stxname FROM pg_statistic_ext WHERE stxrelid = $1 ORDER BY oid`, [f.oid]);
  return takenBack(
    rows.map((r) => String(r.stxname)),
    f.statistics ?? [],
  );
}

/**
 * Each forward rename the other way: the old table's object that stepped aside as `<original>__old`
 * (or `__old_N`, when that was taken), found among `free` (each matched once), takes its name back,
 * and the new table's steps aside to the name it had as the shadow's.
 */
function takenBack(free: string[], forward: { original: string; shadow: string }[]): { original: string; shadow: string; aside: string }[] {
  const renames: { original: string; shadow: string; aside: string }[] = [];
  for (const item of forward) {
    const base = `${item.original.slice(0, 55)}__old`;
    const at = free.findIndex((name) => name === base || (name.startsWith(`${base}_`) && /^\d+$/.test(name.slice(base.length + 1))));
    if (at === -1) continue;
    renames.push({ original: item.original, shadow: free[at], aside: item.shadow });
    free.splice(at, 1);
  }
  return renames;
}

/** Whether `schema.name` is the new table a revert kept (its comment says so; the revert set it in the swap's transaction). */
export async function keptByRevert(db: pg.Pool, schema: string, name: string): Promise<boolean> {
  const { rows } = await db.query(`SELECT starts_with(coalesce(obj_description(to_regclass($1), 'pg_class'), ''), $2) AS kept`, [
    qualified(schema, name),
    KEPT_BY_REVERT,
  ]);
  return isTrue(rows[0].kept);
}
