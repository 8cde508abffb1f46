import type { RowDataPacket } from 'mysql2/promise';
import type { Dialect } from '../../../core/keyset.js';
import type { KeyValue } from '../../../core/primitives.js';

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
