// The key the copy walks and the applier identifies rows by (src/engines/mysql/schema/key-choice.ts),
// and the plan's name rules (plan.ts): which keys qualify, which the ALTER may change, refusals.
import { describe, expect, it } from 'vitest';
import { chooseKey, keyCandidates } from '../../../../../src/engines/mysql/schema/key-choice.js';
import { helperNames, keysOutsideSet, parseTableName } from '../../../../../src/engines/mysql/schema/plan.js';
import type { ColumnPair } from '../../../../../src/engines/mysql/schema/column-map.js';
import type { TableFacts, TableShape } from '../../../../../src/engines/mysql/schema/inspect.js';

const shape = (notNull: string[], nullable: string[], indexes: [string, boolean, string[]][]): TableShape => ({
  columns: [
    ...notNull.map((name) => ({ name, type: 'int', collation: null, nullable: false, generated: false })),
    ...nullable.map((name) => ({ name, type: 'int', collation: null, nullable: true, generated: false })),
  ],
  indexes: indexes.map(([name, unique, columns]) => ({ name, unique, columns })),
});
const same = (...names: string[]): ColumnPair[] => names.map((n) => ({ source: n, target: n, checksum: null }));

describe('keyCandidates', () => {
  it('keeps unique keys on NOT NULL columns only, PRIMARY first, then the narrowest', () => {
    const t = shape(
      ['a', 'b', 'c', 'name'],
      ['n'],
      [
        ['wide', true, ['a', 'b', 'c']],
        ['nullable', true, ['n']],
        ['plain', false, ['a']],
        ['prefix', true, ['name(10)']],
        ['narrow', true, ['b']],
        ['PRIMARY', true, ['a', 'b']],
      ],
    );
    expect(keyCandidates(t).map((i) => i.name)).toEqual(['PRIMARY', 'narrow', 'wide']);
  });
});

describe('chooseKey', () => {
  const original = shape(
    ['id', 'code'],
    [],
    [
      ['PRIMARY', true, ['id']],
      ['by_code', true, ['code']],
    ],
  );

  it('keeps the PRIMARY KEY when the shadow has it, or a unique key over more columns', () => {
    const shadow = shape(['id', 'code', 'i'], [], [['PRIMARY', true, ['id', 'i']]]);
    expect(chooseKey(original, shadow, same('id', 'code'))).toEqual({ index: 'PRIMARY', columns: ['id'], shadowColumns: ['id'] });
  });

  it('falls back to another unique key when the ALTER changes the PRIMARY KEY, following a rename', () => {
    // The new PRIMARY KEY is (ref): the original's (id) is no longer unique there, its (code), renamed ref, is.
    const shadow = shape(['id', 'ref'], [], [['PRIMARY', true, ['ref']]]);
    const columns: ColumnPair[] = [
      { source: 'id', target: 'id', checksum: null },
      { source: 'code', target: 'ref', checksum: null },
    ];
    expect(chooseKey(original, shadow, columns)).toEqual({ index: 'by_code', columns: ['code'], shadowColumns: ['ref'] });
  });

  it("keeps the PRIMARY KEY through an index of the shadow's own when the ALTER leaves no unique key on it, named clear of the shadow's", () => {
    const shadow = shape(['id', 'code'], [], [['by_both', false, ['id', 'code']]]);
    expect(chooseKey(original, shadow, same('id', 'code'))).toEqual({
      index: 'PRIMARY',
      columns: ['id'],
      shadowColumns: ['id'],
      helper: { name: 'shadowcut_key', columns: ['id'] },
    });
    const taken = shape(['id', 'code'], [], [['ShadowCut_Key', false, ['code']]]);
    expect(chooseKey(original, taken, same('id', 'code')).helper).toEqual({ name: 'shadowcut_key_2', columns: ['id'] });
  });

  it('takes an index of its own where the shadow keeps the key only behind another column, and never for a key the ALTER converts', () => {
    // (tenant_id, id) finds no row by id alone: every delete by the key would read the whole shadow.
    const behind = shape(['id', 'code', 'tenant_id'], [], [['PRIMARY', true, ['tenant_id', 'id']]]);
    expect(chooseKey(original, behind, same('id', 'code')).helper).toEqual({ name: 'shadowcut_key', columns: ['id'] });
    // DECIMAL keys made INT: 1.00 and 1.40 become one value, which a plain index would find twice.
    const converted: TableShape = {
      ...shape([], [], [['PRIMARY', true, ['surrogate']]]),
      columns: [
        { name: 'id', type: 'int', collation: null, nullable: false, generated: false },
        { name: 'code', type: 'bigint', collation: null, nullable: false, generated: false },
        { name: 'surrogate', type: 'int', collation: null, nullable: false, generated: false },
      ],
    };
    const decimalKeys: TableShape = { ...original, columns: original.columns.map((c) => ({ ...c, type: 'decimal(10,2)' })) };
    expect(() => chooseKey(decimalKeys, converted, same('id', 'code'))).toThrow(/drops or converts a column of every PRIMARY\/NOT NULL UNIQUE key/);
  });

  it('refuses a table without a usable key', () => {
    const keyless = shape(['id'], ['code'], [['by_code', true, ['code']]]);
    expect(() => chooseKey(keyless, keyless, same('id', 'code'))).toThrow(/has no PRIMARY KEY or NOT NULL UNIQUE key/);
  });

  it('takes the next key when the ALTER drops a column of the first, and refuses when it drops one of every key', () => {
    const shadow = shape(['code'], [], [['by_code', false, ['code']]]);
    expect(chooseKey(original, shadow, same('code'))).toMatchObject({ index: 'by_code', helper: { columns: ['code'] } });
    const neither = shape(['note'], [], []);
    expect(() => chooseKey(original, neither, same('note'))).toThrow(/drops or converts a column of every PRIMARY\/NOT NULL UNIQUE key/);
  });
});

describe('plan names', () => {
  it('names helpers with suffixes, so that the shadow sorts after the table (the RENAME queues on the original)', () => {
    const names = helperNames('orders');
    expect([names.shadow, names.old, names.log, names.captureTriggers.UPDATE]).toEqual(['orders__new', 'orders__old', 'orders__log', 'orders__tu']);
    expect(names.shadow > 'orders').toBe(true);
  });

  it("reads --table, refusing another database than the URL's and more than two parts", () => {
    expect(parseTableName('shop.orders', 'shop')).toBe('orders');
    expect(parseTableName('orders', 'shop')).toBe('orders');
    expect(() => parseTableName('other.orders', 'shop')).toThrow(/names database other, but --url connects to shop/);
    expect(() => parseTableName('a.b.c', 'shop')).toThrow(/is not a table name/);
    expect(() => parseTableName('', 'shop')).toThrow(/is not a table name/);
  });

  it('lists the foreign keys the new table will not have: all but those the cut-over moves', () => {
    const facts = { foreignKeys: ['fk_a -> parent', 'fk_b -> other', 'odd -> name -> third'] } as TableFacts;
    const moved = {
      database: 'shop',
      table: 'orders',
      name: 'fk_a',
      columns: [],
      referencedColumns: [],
      onDelete: '',
      onUpdate: '',
      parent: 'parent',
      parentShadow: 'parent__new',
    };
    expect(keysOutsideSet({ facts, setKeys: [moved], parentKeys: [{ ...moved, name: 'odd -> name' }] })).toEqual(['fk_b -> other']);
  });
});
