// What the copy writes into a new NOT NULL column without a DEFAULT (src/engines/mysql/schema/implicit-default.ts):
// the type's implicit default, as the native ALTER gives existing rows, or nothing (the server's error).
import { describe, expect, it } from 'vitest';
import { fillLists, implicitDefault, implicitFills } from '../../../../../src/engines/mysql/schema/implicit-default.js';
import type { MysqlColumn } from '../../../../../src/engines/mysql/schema/inspect.js';

describe('implicitDefault', () => {
  it.each([
    ['bigint(20) unsigned', '0'],
    ['decimal(12,2)', '0'],
    ['bit(8)', '0'],
    ['year', '0'],
    ["enum('x','y')", '1'],
    ["set('x','y')", "''"],
    ['varbinary(16)', "''"],
    ['date', "'0000-00-00'"],
    ['datetime(6)', "'0000-00-00 00:00:00'"],
    ['timestamp', "'0000-00-00 00:00:00'"],
    ['time(3)', "'00:00:00'"],
    ['json', "CAST('null' AS JSON)"],
    ['uuid', "'00000000-0000-0000-0000-000000000000'"],
    ['inet6', "'::'"],
    ['geometry', null],
    ['point', null],
  ])('%s: %s', (type, value) => {
    expect(implicitDefault(type)).toBe(value);
  });
});

describe('implicitFills', () => {
  const column = (name: string, type: string): MysqlColumn => ({ name, type, collation: null, nullable: false, generated: false });

  it('fills only NOT NULL columns without a DEFAULT that no copied column fills, and none it has no value for', () => {
    const shadow = [column('id', 'int'), column('Copied', 'int'), column('n', 'int'), column('e', "enum('a')"), column('g', 'geometry'), column('d', 'int')];
    const fills = implicitFills(shadow, ['id', 'Copied', 'n', 'e', 'g'], ['id', 'copied']);
    expect(fills).toEqual([
      { target: 'n', value: '0' },
      { target: 'e', value: '1' },
    ]);
    expect(fillLists(fills)).toEqual({ targets: ['`n`', '`e`'], values: ['0', '1'] });
    expect(fillLists(undefined)).toEqual({ targets: [], values: [] });
  });
});
