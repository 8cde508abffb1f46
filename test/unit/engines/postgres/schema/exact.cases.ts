// PostgreSQL types sorted into the exact comparison's families and each form's SQL
// (src/engines/postgres/schema/exact.ts): nothing cast down, a wall clock read in UTC.
import { describe, expect, it } from 'vitest';
import { pgColumn, pgExactValue } from '../../../../../src/engines/postgres/schema/exact.js';

describe('pgColumn', () => {
  it.each([
    ['bigint', { family: 'integer' }],
    ['numeric(12,2)', { family: 'decimal' }],
    ['numeric', { family: 'decimal' }],
    ['double precision', { family: 'float' }],
    ['character varying(20)', { family: 'text' }],
    ['character(3)', { family: 'text' }],
    ['bytea', { family: 'binary' }],
    ['timestamp without time zone', { family: 'datetime', fraction: 6 }],
    ['timestamp(3) with time zone', { family: 'instant', fraction: 3 }],
    ['time(0) without time zone', { family: 'time', fraction: 0 }],
    ['time with time zone', { family: 'other' }],
    ['integer[]', { family: 'other' }],
    ['jsonb', { family: 'other' }],
  ])('%s', (type, family) => {
    expect(pgColumn(type).family).toEqual(family);
  });
});

describe('pgExactValue', () => {
  it('compares one type as it is, but a float by its bytes (which tell -0 from 0 and ignore extra_float_digits)', () => {
    expect(pgExactValue({ form: 'same' }, '"n"', pgColumn('numeric(10,2)'))).toEqual({ value: '"n"', type: 'numeric(10,2)' });
    expect(pgExactValue({ form: 'same' }, '"f"', pgColumn('real'))).toEqual({ value: 'float8send(("f")::float8)', type: 'bytea' });
  });

  it('widens: integers to bigint, decimals to their value at any scale', () => {
    expect(pgExactValue({ form: 'integer' }, 'a', pgColumn('smallint'))).toEqual({ value: '(a)::bigint', type: 'bigint' });
    expect(pgExactValue({ form: 'decimal' }, 'a', pgColumn('integer'))).toEqual({ value: 'trim_scale((a)::numeric)', type: 'numeric' });
  });

  it('reads a wall clock as UTC when the other side is an instant, and keeps an instant as it is', () => {
    expect(pgExactValue({ form: 'instant', fraction: 6 }, 'ts', pgColumn('timestamp without time zone')).value).toBe("((ts)::timestamp AT TIME ZONE 'UTC')");
    expect(pgExactValue({ form: 'instant', fraction: 6 }, 'ts', pgColumn('timestamp with time zone')).value).toBe('(ts)::timestamptz');
  });
});
