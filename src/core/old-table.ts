/**
 * The name a migration keeps the original under after the cut-over, the same on both engines: a
 * contract that drops such a table is dropping what a migration of `<table>` kept for its way back,
 * so the soak and that migration's revert window apply to it (`contract/old-table.ts`).
 */
export const OLD_TABLE_SUFFIX = '__old';

export const oldTableName = (table: string): string => `${table}${OLD_TABLE_SUFFIX}`;

/** The table whose migration keeps `name` as its old table (`shop.orders` for `shop.orders__old`), or null. */
export function migratedFrom(name: string): string | null {
  if (!name.endsWith(OLD_TABLE_SUFFIX) || name.length === OLD_TABLE_SUFFIX.length) return null;
  const base = name.slice(0, -OLD_TABLE_SUFFIX.length);
  return base.endsWith('.') ? null : base;
}
