import { UserError } from './errors.js';

/**
 * The name a migration keeps the original under after the cut-over, the same on both engines: a
 * contract that drops such a table is dropping what a migration of `<table>` kept for its way back,
 * so the soak and that migration's revert window apply to it (`../contract/old-table.ts`).
 *
 * A table migrated twice keeps two originals, so the name is chosen when the plan is made, as
 * pt-online-schema-change does: `<table>__old` when that name is free, else the first free
 * `<table>__old_2`, `<table>__old_3`, ... The plan (and so the checkpoint) records it, and everything
 * after the plan uses the recorded name: the choice is made once, before anything is created.
 */
export const OLD_TABLE_SUFFIX = '__old';

/** The `n`-th name of the family: `<table>__old` first, then `<table>__old_<n>`. */
export const oldTableName = (table: string, n = 1): string => (n === 1 ? `${table}${OLD_TABLE_SUFFIX}` : `${table}${OLD_TABLE_SUFFIX}_${n}`);

const FAMILY = /^(.+)__old(?:_([1-9]\d*))?$/s;

/** The table whose migration keeps `name` as its old table (`shop.orders` for `shop.orders__old` or `shop.orders__old_2`), or null. */
export function migratedFrom(name: string): string | null {
  const m = FAMILY.exec(name);
  // `_1` is never chosen (the first is `__old`), so `t__old_1` is nobody's old table.
  if (!m || m[2] === '1' || m[1].endsWith('.')) return null;
  return m[1];
}

/**
 * The first name of `table`'s family not among `taken` (compared without case: a name that differs
 * only in case is passed over, which costs nothing where the server tells them apart). `fits` says
 * whether a name is within the server's identifier limit; `what` names the table in the refusal,
 * given when the next free name would be too long, so the run is refused before anything is made.
 */
export function freeOldTableName(table: string, taken: Iterable<string>, fits: (name: string) => boolean, what: string): string {
  const used = new Set([...taken].map((name) => name.toLowerCase()));
  for (let n = 1; ; n++) {
    const name = oldTableName(table, n);
    if (!fits(name)) {
      const before = n === 1 ? '' : n === 2 ? `: ${oldTableName(table)} is taken` : `: ${oldTableName(table)} to ${oldTableName(table, n - 1)} are taken`;
      throw new UserError(`no name is left for the old table of ${what}${before}, and ${name} is too long for the server; drop or rename an old table first`);
    }
    if (!used.has(name.toLowerCase())) return name;
  }
}
