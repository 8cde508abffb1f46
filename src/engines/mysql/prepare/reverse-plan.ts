import type { Pool, RowDataPacket } from 'mysql2/promise';
import { UserError } from '../../../core/engine/errors.js';
import { reversePlan } from '../../../core/engine/reverse-plan.js';
import type { Plan } from '../../../core/engine/types.js';
import { describeTable, tableFacts, type MysqlColumn, type TableShape } from '../schema/inspect.js';
import { reverseCapture } from '../capture/trigger/capture-target.js';
import { ownCaptureTriggers } from '../capture/trigger/capture-triggers.js';
import { oldTableName } from '../../../core/engine/old-table.js';
import { checksumPair, type ColumnPair } from '../schema/column-map.js';
import { keyCandidates } from '../schema/key-choice.js';
import { foreignKeyName, helperNames, keysOutsideSet, type MysqlPlan } from '../schema/plan.js';

const lower = (names: string[]) => names.map((n) => n.toLowerCase());
const sameList = (a: string[], b: string[]) => lower(a).join('\0') === lower(b).join('\0');

/** The new table's unique NOT NULL key on exactly the forward key's columns, in order: the way back walks and matches rows by it. */
function reverseKey(shape: TableShape, columns: string[]): string | null {
  return keyCandidates(shape).find((i) => sameList(i.columns, columns))?.name ?? null;
}

/**
 * Why the old table could not follow the new one, from the forward plan alone; one short line each.
 * Values are the proof's (`proveReverse`): these are the shapes no sample could show.
 */
export function revertRefusals(plan: MysqlPlan): string[] {
  const reasons: string[] = [];
  const copied = new Map(plan.columns.map((c) => [c.source.toLowerCase(), c.target.toLowerCase()]));
  const newColumns = new Map(plan.shadowShape.columns.map((c) => [c.name.toLowerCase(), c]));
  for (const c of plan.original.columns) {
    if (c.generated) continue; // computed again by the old table from what comes back
    const target = copied.get(c.name.toLowerCase());
    if (target === undefined) reasons.push(`column ${c.name} is dropped: values written after the cut-over could not come back`);
    else if (!c.nullable && newColumns.get(target)?.nullable) {
      reasons.push(`column ${c.name} becomes nullable: a NULL written after the cut-over could not go back into the old table`);
    }
  }
  if (!reverseKey(plan.shadowShape, plan.shadowKeyColumns)) {
    reasons.push(`the key ${plan.keyIndex} (${plan.keyColumns.join(', ')}) is not a unique key of the new table on the same columns`);
  }
  reasons.push(...uniqueKeysLost(plan));
  if (plan.children.length) {
    reasons.push(
      `other tables' foreign keys reference the table (${plan.children.map((k) => `${k.table}.${k.name}`).join(', ')}): the revert does not move them back`,
    );
  }
  // A set's keys between its tables go back with them, moved under the revert's lock as on the way forward.
  const out = keysOutsideSet(plan).map(foreignKeyName);
  const moved = (plan.parentKeys ?? []).map((k) => k.name);
  if (moved.length) {
    reasons.push(`the table's foreign keys to other tables (${moved.join(', ')}) move to the new table at the cut-over: the revert does not move them back`);
  }
  if (out.length) reasons.push(`the table has foreign keys (${out.join(', ')}) the new table lacks: rows written after the cut-over could break them`);
  for (const name of plan.loosenedChecks ?? []) {
    reasons.push(`check ${name} is dropped or changed: rows written after the cut-over could break it`);
  }
  // InnoDB's cascades fire no trigger: the way back's triggers on the new table would miss them.
  if (plan.cascades?.length) {
    reasons.push(
      `changes cascade into the table (${plan.cascades.map((c) => `${c.name} -> ${c.parent}`).join(', ')}): the way back's triggers would not see them`,
    );
  }
  if (plan.triggers.length) reasons.push('triggers are moved to the new table (--include-triggers): the revert does not move them back');
  return reasons;
}

/**
 * A unique key of the old table the new one does not enforce (on the same columns or fewer): the new
 * table could take rows the old one refuses. So does one on a column whose collation now tells apart
 * what the old one held equal ('a' and 'A' under _ci and _bin; 'a' and 'a ' under PAD SPACE and NO
 * PAD); only the collation's rules count, not its character set (utf8mb3_bin and utf8mb4_bin agree).
 */
function uniqueKeysLost(plan: MysqlPlan): string[] {
  const toNew = new Map(plan.columns.map((c) => [c.source.toLowerCase(), c.target.toLowerCase()]));
  const newUnique = plan.shadowShape.indexes.filter((i) => i.unique).map((i) => lower(i.columns));
  const rules = (shape: TableShape, column: string) => {
    const collation = shape.columns.find((c) => c.name.toLowerCase() === column)?.collation ?? '';
    return collation.toLowerCase().replace(/^[^_]*_/, '');
  };
  const reasons: string[] = [];
  for (const i of plan.original.indexes.filter((x) => x.unique)) {
    // A prefix part (`name(10)`) keeps its length under the column's new name.
    const parts = lower(i.columns).map((c) => {
      const [, column, prefix] = /^(.*?)(\(\d+\))?$/.exec(c)!;
      return { column, target: toNew.get(column), prefix: prefix ?? '' };
    });
    if (parts.some((p) => p.target === undefined)) continue; // a dropped column: refused above
    const mapped = parts.map((p) => p.target! + p.prefix);
    const listed = `unique key ${i.name} (${i.columns.join(', ')})`;
    if (!newUnique.some((u) => u.every((c) => mapped.includes(c)))) {
      reasons.push(`${listed} is not enforced by the new table: rows written after the cut-over could break it`);
      continue;
    }
    const recollated = parts.filter((p) => rules(plan.original, p.column) !== rules(plan.shadowShape, p.target!)).map((p) => p.column);
    if (recollated.length) {
      reasons.push(`${listed}: the new table compares ${recollated.join(', ')} under another collation, so rows written after the cut-over could break it`);
    }
  }
  return reasons;
}

/**
 * The way back of a run that has swapped (`Plan.reverse`), read from the catalogs after the swap: the
 * new table is the original, the old table the shadow, and `<table>__new` where the new table goes
 * when the revert swaps back (and the sentry's name meanwhile: it sorts after the table, as the
 * cut-over's lock order needs). Each old column is filled from the new column it was copied into,
 * converted by the server; columns the ALTER added stay behind.
 */
export async function buildReversePlan(pool: Pool, forward: Plan<MysqlPlan>): Promise<Plan<MysqlPlan>> {
  const f = forward.detail;
  const facts = await tableFacts(pool, f.database, f.table);
  if (!facts) throw new UserError(`table ${f.database}.${f.table} does not exist`);
  const current = await describeTable(pool, f.database, f.table);
  const old = await describeTable(pool, f.database, f.old);
  // A trigger left on the old table (a forward capture's a cleanup could not drop) would fire for every row the window writes there.
  const [oldTriggers] = await pool.query<RowDataPacket[]>(
    'SELECT TRIGGER_NAME AS n FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? ORDER BY 1',
    [f.database, f.old],
  );
  if (oldTriggers.length) {
    const names = oldTriggers.map((t) => String(t.n)).join(', ');
    throw new UserError(`${f.database}.${f.old} has triggers (${names}), which would fire for every row the revert window writes there: drop them first`);
  }
  const keyIndex = reverseKey(current, f.shadowKeyColumns);
  if (!keyIndex)
    throw new UserError(`${f.database}.${f.table} has no unique key on (${f.shadowKeyColumns.join(', ')}) any more: the old table cannot follow it`);
  const find = (shape: TableShape, name: string): MysqlColumn | undefined => shape.columns.find((c) => c.name.toLowerCase() === name.toLowerCase());
  const columns: ColumnPair[] = [];
  for (const pair of f.columns) {
    const from = find(current, pair.target);
    const into = find(old, pair.source);
    if (!from || !into || into.generated) continue;
    columns.push({ source: from.name, target: into.name, checksum: checksumPair(from, into) });
  }
  const names = helperNames(f.table);
  const detail: MysqlPlan = {
    database: f.database,
    table: f.table,
    shadow: f.old,
    old: f.shadow,
    keyIndex,
    keyColumns: f.shadowKeyColumns,
    shadowKeyColumns: f.keyColumns,
    columns,
    facts,
    discardForeignKeys: false,
    droppedForeignKeys: [],
    shadowAlter: '',
    children: [],
    // The set's keys between the new tables move to the old ones under the revert's lock, each
    // referencing its parent's old table until the RENAMEs carry it to the parent's name.
    ...(f.setKeys ? { setKeys: f.setKeys.map((k) => ({ ...k, parentShadow: k.parentOld ?? oldTableName(k.parent) })), setChildren: f.setChildren ?? [] } : {}),
    triggers: [],
    original: current,
    shadowShape: old,
    deferredIndexes: [],
    log: names.reverseLog,
  };
  // Its own capture's triggers are no trigger of the table's to move; one of their names on a trigger
  // of another body (another account's) is not ours, and stays listed for the triggers check to refuse.
  const own = await ownCaptureTriggers(pool, reverseCapture(detail));
  facts.triggers = facts.triggers.filter((t) => !own.includes(t));
  const excluded = columns.filter((c) => c.checksum === null).map((c) => c.target);
  return reversePlan(forward, {
    keyColumns: f.shadowKeyColumns,
    estimatedRows: facts.estimatedRows,
    summary: [
      `the way back: ${f.old} follows ${f.table} (triggers logging into ${names.reverseLog})`,
      `key: ${keyIndex} (${f.shadowKeyColumns.join(', ')})`,
      `columns carried back: ${columns.map((c) => (c.source === c.target ? c.source : `${c.source} -> ${c.target}`)).join(', ')}`,
      ...(excluded.length ? [`not checksummed (type changed to an incomparable type): ${excluded.join(', ')}`] : []),
    ],
    detail,
  });
}
