// KeysetSql (src/core/engine/keyset.ts): the WHERE fragments both engines build ranges and key lists from.
// Exact text and parameters, in the MySQL style (`?`) and the PostgreSQL style (`$n`, typed or not).
import { describe, expect, it } from 'vitest';
import { KeysetSql, type Dialect } from '../../src/core/engine/keyset.js';

const mysql: Dialect = { ident: (n) => `\`${n}\``, param: () => '?' };
const postgres: Dialect = { ident: (n) => `"${n}"`, param: (n, type) => (type ? `$${n}::${type}` : `$${n}`) };

describe('KeysetSql.range', () => {
  it('is always true without bounds', () => {
    expect(new KeysetSql(mysql, ['id']).range({ after: null, upTo: null })).toEqual({ sql: '1=1', params: [] });
  });

  it('bounds a one-column key: after exclusive, up to inclusive', () => {
    const k = new KeysetSql(mysql, ['id']);
    expect(k.range({ after: [5], upTo: [10] })).toEqual({ sql: '((`id` > ?)) AND ((`id` <= ?))', params: [5, 10] });
    expect(k.range({ after: null, upTo: [10] })).toEqual({ sql: '((`id` <= ?))', params: [10] });
    expect(k.range({ after: [5], upTo: null })).toEqual({ sql: '((`id` > ?))', params: [5] });
  });

  it('expands a composite key into ORs of equalities, numbering on from startAt', () => {
    const k = new KeysetSql(postgres, ['a', 'b']);
    expect(k.range({ after: [1, 'x'], upTo: [2, 'y'] }, 2)).toEqual({
      sql: '(("a" > $3) OR ("a" = $4 AND "b" > $5)) AND (("a" < $6) OR ("a" = $7 AND "b" <= $8))',
      params: [1, 1, 'x', 2, 2, 'y'],
    });
  });

  it('expands three columns with the inclusive comparison on the last one only', () => {
    const k = new KeysetSql(mysql, ['a', 'b', 'c']);
    expect(k.compare('<=', [1, 2, 3], 0)).toEqual({
      sql: '(`a` < ?) OR (`a` = ? AND `b` < ?) OR (`a` = ? AND `b` = ? AND `c` <= ?)',
      params: [1, 1, 2, 1, 2, 3],
    });
  });

  it('compares a composite key as one row value when asked, with typed parameters', () => {
    const k = new KeysetSql(postgres, ['a', 'b'], true, ['bigint', 'text']);
    expect(k.range({ after: [1, 'x'], upTo: [1, 'z'] })).toEqual({
      sql: '(("a", "b") > ($1::bigint, $2::text)) AND (("a", "b") <= ($3::bigint, $4::text))',
      params: [1, 'x', 1, 'z'],
    });
  });

  it('types each parameter by its own column in the expanded form', () => {
    const k = new KeysetSql(postgres, ['a', 'b'], false, ['int', 'uuid']);
    expect(k.compare('>', [7, 'u'], 0)).toEqual({ sql: '("a" > $1::int) OR ("a" = $2::int AND "b" > $3::uuid)', params: [7, 7, 'u'] });
  });

  it('uses the expanded form for a one-column key even with row values', () => {
    expect(new KeysetSql(postgres, ['id'], true).compare('>', [3], 0)).toEqual({ sql: '("id" > $1)', params: [3] });
  });

  it('passes values through untouched: buffers, nulls, big numbers as text', () => {
    const bytes = Buffer.from([0, 255]);
    const f = new KeysetSql(mysql, ['a', 'b']).compare('>', [bytes, '18446744073709551615'], 0);
    expect(f.params).toEqual([bytes, bytes, '18446744073709551615']);
    expect(f.params[0]).toBe(bytes);
  });
});

describe('KeysetSql.keyIn', () => {
  it('lists single-column keys', () => {
    expect(new KeysetSql(mysql, ['id']).keyIn([[1], [2], [3]])).toEqual({ sql: '`id` IN (?, ?, ?)', params: [1, 2, 3] });
  });

  it('lists composite keys as tuples, numbering on from startAt', () => {
    expect(
      new KeysetSql(postgres, ['a', 'b'], false, ['int', 'text']).keyIn(
        [
          [1, 'x'],
          [2, null],
        ],
        1,
      ),
    ).toEqual({ sql: '("a", "b") IN (($2::int, $3::text), ($4::int, $5::text))', params: [1, 'x', 2, null] });
  });
});

describe('KeysetSql.orderBy', () => {
  it('orders by the key columns, quoted, in key order', () => {
    expect(new KeysetSql(postgres, ['b', 'a']).orderBy()).toBe('"b", "a"');
    expect(new KeysetSql(mysql, ['id']).orderBy()).toBe('`id`');
  });
});
