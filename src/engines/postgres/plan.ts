import type { Plan } from '../../core/types.js';

/** One column the copy fills: `source` is SQL over the original's row, `target` the shadow's column. */
export interface ColumnMap {
  source: string;
  target: string;
  /** The target's type (`format_type`), so checksums compare the original converted the same way. */
  type: string;
}

/** An index of the shadow built after the copy; `original` is the index of the original it replaces. */
export interface ShadowIndex {
  shadow: string;
  original: string | null;
  create: string;
}

/** The engine's part of a Plan; plain JSON so a resumed run can read it back. */
export interface PgDetail {
  oid: string;
  schema: string;
  name: string;
  shadow: string;
  old: string;
  slot: string;
  publication: string;
  originalKey: string[];
  shadowKey: string[];
  columns: ColumnMap[];
  /** The original's columns as the change stream describes them; a difference means concurrent DDL. */
  streamColumns: { name: string; typeOid: string; typeMod: string }[];
  /** The original's definition when planned (inspect.ts definitionOf), compared again under the cut-over lock. */
  definition: string;
  /** Secondary indexes, built in afterCopy; dropped from the shadow for the copy when `deferIndexes`. */
  indexes: ShadowIndex[];
  deferIndexes: boolean;
  /** Original index name -> shadow index name, swapped at cut-over so the table keeps its index names. */
  indexRenames: { original: string; shadow: string }[];
  /** Original columns the ALTER drops, renames or retypes (views using them are refused). */
  changedColumns: string[];
  /** Validated foreign keys from or to the table: re-added NOT VALID at cut-over, validated in cleanup. */
  validatedForeignKeys: string[];
}

export function detailOf(plan: Plan): PgDetail {
  return plan.detail as PgDetail;
}

/** Columns as the change stream sees them (generated ones are not sent); a difference means someone else's DDL. */
export function columnSignature(columns: { name: string; typeOid: string | number; typeMod: string | number }[]): string {
  return columns.map((c) => `${c.name}:${c.typeOid}:${c.typeMod}`).join(',');
}
