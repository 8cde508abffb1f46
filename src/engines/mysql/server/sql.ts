import type { RowDataPacket } from 'mysql2/promise';
import type { Dialect } from '../../../core/engine/keyset.js';
import type { KeyValue } from '../../../core/engine/contract-values.js';

export function ident(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}

/**
 * The values of a row read with `rowsAsArray: true`, in the SELECT's order, as the pool's typeCast
 * leaves them (text, numbers, Buffers, NULL). mysql2 types every row as a RowDataPacket (values
 * `any`); at run time such a row is an array, whose values are its elements in order.
 */
export function rowValues(row: RowDataPacket): KeyValue[] {
  return Object.values(row);
}

export const mysqlDialect: Dialect = { ident, param: () => '?' };

export function qualified(database: string, table: string): string {
  return `${ident(database)}.${ident(table)}`;
}

/** Why `SET SESSION information_schema_stats_expiry = 0` may fail: the reason given where it is ignored. */
export const STATS_EXPIRY_MYSQL_8 = 'MySQL 8 only: MariaDB and MySQL 5.7 have no such variable, and do not cache the statistics';

/** Why a KILL may fail: the reason given where it is ignored. */
export const NOTHING_TO_KILL = 'the statement or session may have ended already, and then there is nothing to kill';
