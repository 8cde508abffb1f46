import type { Dialect } from '../../core/keyset.js';

export function ident(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}

export const mysqlDialect: Dialect = { ident, param: () => '?' };

export function qualified(database: string, table: string): string {
  return `${ident(database)}.${ident(table)}`;
}
