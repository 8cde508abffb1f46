import type { Pool } from 'mysql2/promise';
import type { MysqlIndex, TableShape } from '../../schema/inspect.js';

/** What goes, with the names as the server spells them. */
export type Dropped = { kind: 'column'; columns: string[] } | { kind: 'index'; index: MysqlIndex } | { kind: 'table' };

/** What `shadowcut contract`'s checks read on MySQL/MariaDB. */
export interface ContractContext {
  pool: Pool;
  database: string;
  table: string;
  shape: TableShape;
  dropped: Dropped;
}

/** The names a definition must mention to use what goes: the dropped columns, or the table itself. */
export function droppedNames(ctx: ContractContext): string[] {
  return ctx.dropped.kind === 'column' ? ctx.dropped.columns : ctx.dropped.kind === 'table' ? [ctx.table] : [];
}
