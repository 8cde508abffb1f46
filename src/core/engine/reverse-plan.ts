import type { Plan } from './types.js';

/**
 * The way back's plan around an engine's detail: the forward run's old table is its shadow, the
 * forward shadow's name is where a revert puts the new table, and its change source is always the
 * triggers installed on the shadow before the swap (they follow the new table from the swap's very
 * instant; a change stream has no position that stands for that instant to hand over).
 */
export function reversePlan<Detail>(
  forward: Plan<Detail>,
  way: { keyColumns: string[]; estimatedRows: number; summary: string[]; detail: Detail },
): Plan<Detail> {
  return {
    table: forward.table,
    shadowTable: forward.oldTable,
    oldTable: forward.shadowTable,
    alter: forward.alter,
    capture: { kind: 'trigger', why: 'the revert window follows the new table through triggers installed on it before the swap' },
    reverse: true,
    ...way,
  };
}
