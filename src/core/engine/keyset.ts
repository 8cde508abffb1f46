import type { Key, KeyRange, KeyValue } from './types.js';

/**
 * SQL text for keyset ranges over a (possibly composite) key, shared by both engines.
 * Row-value comparisons like `(a, b) > (?, ?)` are not turned into index ranges by every server
 * (MariaDB scans), so composite comparisons are expanded into `a > ? OR (a = ? AND b > ?)`.
 */
export interface Dialect {
  /** Quote an identifier. */
  ident(name: string): string;
  /**
   * Placeholder for the n-th parameter (1-based), of the key column's `type` when the engine gave
   * the keyset its columns' types: a parameter whose type the server infers can be inferred
   * otherwise once a cast is added (PostgreSQL: an implicit cast can turn `k > $1` into a
   * comparison of text).
   */
  param(n: number, type?: string): string;
}

export interface Fragment {
  sql: string;
  params: KeyValue[];
}

/** Builds fragments whose placeholders continue the numbering of `params` already collected. */
export class KeysetSql {
  /**
   * `rowValues`: compare a composite key as one row value, `(a, b) > ($1, $2)`, which PostgreSQL
   * turns into a single index range (MariaDB does not, hence the expanded form by default).
   * `types`: each key column's type, for the dialect to type its parameters with.
   */
  constructor(
    private readonly dialect: Dialect,
    readonly columns: string[],
    private readonly rowValues = false,
    private readonly types?: readonly string[],
  ) {}

  /** `key > value` (strict) or `key <= value` over the key columns, in key order. */
  compare(op: '>' | '<=', key: Key, startAt: number): Fragment {
    const cols = this.columns.map((c) => this.dialect.ident(c));
    const params: KeyValue[] = [];
    const p = (v: KeyValue, column: number) => {
      params.push(v);
      return this.dialect.param(startAt + params.length, this.types?.[column]);
    };
    if (this.rowValues && cols.length > 1) {
      const values = key.map((v, i) => p(v, i));
      return { sql: `(${cols.join(', ')}) ${op} (${values.join(', ')})`, params };
    }
    const strict = op === '>' ? '>' : '<';
    const alternatives: string[] = [];
    for (let i = 0; i < cols.length; i++) {
      const equalities = cols.slice(0, i).map((c, j) => `${c} = ${p(key[j], j)}`);
      const last = i === cols.length - 1 && op === '<=' ? '<=' : strict;
      alternatives.push([...equalities, `${cols[i]} ${last} ${p(key[i], i)}`].join(' AND '));
    }
    return { sql: alternatives.map((a) => `(${a})`).join(' OR '), params };
  }

  /** WHERE-clause body for a range, `TRUE` when unbounded on both sides. */
  range(range: KeyRange, startAt = 0): Fragment {
    const parts: string[] = [];
    const params: KeyValue[] = [];
    if (range.after) {
      const f = this.compare('>', range.after, startAt);
      parts.push(`(${f.sql})`);
      params.push(...f.params);
    }
    if (range.upTo) {
      const f = this.compare('<=', range.upTo, startAt + params.length);
      parts.push(`(${f.sql})`);
      params.push(...f.params);
    }
    return { sql: parts.length ? parts.join(' AND ') : '1=1', params };
  }

  /** `(a, b) IN ((?, ?), ...)` for a set of keys. */
  keyIn(keys: Key[], startAt = 0): Fragment {
    const params: KeyValue[] = [];
    const cols = this.columns.map((c) => this.dialect.ident(c));
    const tuples = keys.map((key) => {
      const ph = key.map((v, i) => {
        params.push(v);
        return this.dialect.param(startAt + params.length, this.types?.[i]);
      });
      return cols.length === 1 ? ph[0] : `(${ph.join(', ')})`;
    });
    const lhs = cols.length === 1 ? cols[0] : `(${cols.join(', ')})`;
    return { sql: `${lhs} IN (${tuples.join(', ')})`, params };
  }

  orderBy(): string {
    return this.columns.map((c) => this.dialect.ident(c)).join(', ');
  }
}
