import type { Pool } from 'mysql2/promise';
import type { Check } from '../../../../core/check.js';
import type { MysqlIndex, TableShape } from '../../inspect.js';
import { digests } from './digests.js';
import { foreignKeys } from './foreign-keys.js';
import { generatedColumns } from './generated-columns.js';
import { indexes } from './indexes.js';
import { routines } from './routines.js';
import { triggers } from './triggers.js';
import { views } from './views.js';

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

/** Dependencies the server enforces first (never overridden), then what statistics and text saw (--force may override). */
export const contractChecks: readonly Check<ContractContext>[] = [views, generatedColumns, triggers, foreignKeys, indexes, routines, digests];
