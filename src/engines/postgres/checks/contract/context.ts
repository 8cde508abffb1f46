import type pg from 'pg';
import type { TableInfo } from '../../schema/inspect.js';

/** What goes, with the names (and column numbers) as the catalog has them. */
export type Dropped =
  { kind: 'column'; columns: string[]; attnums: number[] } | { kind: 'index'; index: string; oid: string; definition: string } | { kind: 'table' };

/** What `shadowcut contract`'s checks read on PostgreSQL. */
export interface ContractContext {
  pool: pg.Pool;
  t: TableInfo;
  dropped: Dropped;
}

/** The names a definition must mention to use what goes: the dropped columns, or the table itself. */
export function droppedNames({ t, dropped }: ContractContext): string[] {
  return dropped.kind === 'column' ? dropped.columns : dropped.kind === 'table' ? [t.name] : [dropped.index];
}
