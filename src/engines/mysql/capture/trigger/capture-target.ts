import { helperNames, type MysqlPlan } from '../../schema/plan.js';
import type { TableShape } from '../../schema/inspect.js';

// What a trigger log follows and under which names: a run's capture on its original, a revert
// window's on the new table (and its prelock triggers on the table the shadow replaces).

export type RowEvent = 'INSERT' | 'UPDATE' | 'DELETE';
export const EVENTS: RowEvent[] = ['INSERT', 'UPDATE', 'DELETE'];

/**
 * What one log follows, and under which names: a run's capture on its original, or a revert window's
 * on the new table (installed while that table is still the shadow, under names of its own).
 */
export interface CaptureTarget {
  database: string;
  /** The table whose rows the triggers log, as it is named when they are made. */
  table: string;
  keyColumns: string[];
  /** The table's definition: the log's key types, and what it must still be under the lock. */
  shape: TableShape;
  log: string;
  triggers: Record<RowEvent, string>;
  /** Where else the triggers may sit, having moved with their table at a RENAME. */
  movedTo: string[];
  /** What the operator can do instead when a privilege is missing, for the messages. */
  instead: string;
  /** A revert window's: triggers on the table the shadow replaces, that name the log and never write it (see prelockBody). */
  prelock?: { table: string; movedTo: string[]; triggers: Record<RowEvent, string> };
}

/** A run's trigger capture, on its original (after the swap the triggers sit on the old table). */
export function forwardCapture(plan: MysqlPlan): CaptureTarget {
  return {
    database: plan.database,
    table: plan.table,
    keyColumns: plan.keyColumns,
    shape: plan.original,
    log: plan.log!,
    triggers: helperNames(plan.table).captureTriggers,
    movedTo: [plan.old],
    instead: 'use --capture stream',
  };
}

/** A revert window's log and triggers: names of their own, as a forward run's capture may still exist beside them. */
function windowCapture(plan: MysqlPlan, on: Pick<CaptureTarget, 'table' | 'keyColumns' | 'shape' | 'movedTo'>): CaptureTarget {
  const names = helperNames(plan.table);
  return { database: plan.database, ...on, log: names.reverseLog, triggers: names.reverseTriggers, instead: 'run without --revert-window' };
}

/**
 * Made by the forward run on its shadow before the cut-over: the shadow becomes the table at the
 * RENAME and takes the triggers along, so the log follows the new table from the swap's very instant.
 */
export function reverseCaptureOnShadow(plan: MysqlPlan): CaptureTarget {
  return {
    ...windowCapture(plan, { table: plan.shadow, keyColumns: plan.shadowKeyColumns, shape: plan.shadowShape, movedTo: [plan.table] }),
    prelock: { table: plan.table, movedTo: [plan.old], triggers: helperNames(plan.table).reversePrelockTriggers },
  };
}

/** The same log and triggers as the way back (`Plan.reverse`) sees them: on its original, the new table; after the revert on `<table>__new`. */
export function reverseCapture(reverse: MysqlPlan): CaptureTarget {
  return windowCapture(reverse, { table: reverse.table, keyColumns: reverse.keyColumns, shape: reverse.original, movedTo: [reverse.old] });
}
