import { UserError } from '../core/engine/errors.js';

/** A repeatable option (--table, --alter): each occurrence appended, in order. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** The n-th --alter is the n-th --table's: as many of one as of the other, or one line. */
export function tableAlterPairs(tables: string[], alters: string[]): { table: string; alter: string }[] {
  if (tables.length !== alters.length) throw new UserError(`give one --alter for each --table (${tables.length} --table, ${alters.length} --alter)`);
  return tables.map((table, i) => ({ table, alter: alters[i] }));
}
