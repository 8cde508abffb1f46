import type { ContractCheck } from '../ports/contract.js';

/** The flag that drops a unique index's guarantee along with the index; --force never does. */
export const DROP_UNIQUE_FLAG = '--drop-unique';

/**
 * A unique index is an integrity guarantee, not only a read path: the server checks every insert and
 * key update against it, and those checks are not counted as index scans or reads. "No scan since
 * the statistics were reset" therefore says nothing about whether it is needed, and once it is gone
 * duplicates go in silently. So a unique index is kept unless the operator names the guarantee
 * with a flag of its own (`dropsUniqueness`), whether a constraint backs it or it was made with
 * CREATE UNIQUE INDEX.
 */
export function uniquenessCheck(table: string, index: string, columns: string, unique: boolean): ContractCheck {
  if (!unique) return { name: 'uniqueness', ok: true, message: `index ${index} is not unique: no integrity guarantee goes with it` };
  return {
    name: 'uniqueness',
    ok: false,
    dropsUniqueness: true,
    message:
      `index ${index} of ${table} is UNIQUE: without it the server accepts duplicate (${columns}) ` +
      `(uniqueness checks are not counted as index use, so "unused" does not apply); ` +
      `${DROP_UNIQUE_FLAG} to drop the guarantee with it (--force does not)`,
  };
}
