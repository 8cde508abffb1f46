import type { ExactForm, TypedColumn, TypeFamily } from '../../../core/engine/compare/exact.js';

/** A column's type (`format_type`) sorted into the families core/engine/compare/exact.ts decides over. */
export function pgColumn(type: string): TypedColumn {
  return { type, family: pgFamily(type) };
}

const fractionOf = (type: string) => Number(/\((\d)\)/.exec(type)?.[1] ?? 6);

function pgFamily(type: string): TypeFamily {
  if (/^(smallint|integer|bigint)$/.test(type)) return { family: 'integer' };
  if (/^numeric(\(\d+(,\d+)?\))?$/.test(type)) return { family: 'decimal' };
  if (/^(real|double precision)$/.test(type)) return { family: 'float' };
  if (/^(text|character varying(\(\d+\))?|character(\(\d+\))?)$/.test(type)) return { family: 'text' };
  if (type === 'bytea') return { family: 'binary' };
  if (type === 'date') return { family: 'date' };
  if (/^time(\(\d\))? without time zone$/.test(type)) return { family: 'time', fraction: fractionOf(type) };
  if (/^timestamp(\(\d\))? without time zone$/.test(type)) return { family: 'datetime', fraction: fractionOf(type) };
  if (/^timestamp(\(\d\))? with time zone$/.test(type)) return { family: 'instant', fraction: fractionOf(type) };
  return { family: 'other' };
}

/**
 * One side's value in `form`, and the type of the result (the checksum hashes some types as values,
 * the rest as text). Casts here only ever widen: to a type without a typmod, to bigint, numeric or
 * double precision; a wall clock becomes an instant read in UTC, whatever the session's zone.
 */
export function pgExactValue(form: ExactForm, value: string, column: TypedColumn): { value: string; type: string } {
  const v = `(${value})`;
  switch (form.form) {
    case 'same':
      // A float's text depends on extra_float_digits; its bytes do not, and tell -0 from 0.
      return column.family.family === 'float' ? { value: `float8send(${v}::float8)`, type: 'bytea' } : { value, type: column.type };
    case 'integer':
      return { value: `${v}::bigint`, type: 'bigint' };
    case 'decimal':
      // The number, whatever its scale: 10.00 and 10.0 are one value, 10.0049 another.
      return { value: `trim_scale(${v}::numeric)`, type: 'numeric' };
    case 'float':
      return { value: `float8send(${v}::float8)`, type: 'bytea' };
    case 'text':
      return { value: `${v}::text`, type: 'text' };
    case 'binary':
      return { value: `${v}::bytea`, type: 'bytea' };
    case 'time':
      return { value: `${v}::time`, type: 'time without time zone' };
    case 'datetime':
      return { value: `${v}::timestamp`, type: 'timestamp without time zone' };
    case 'instant':
      return column.family.family === 'instant'
        ? { value: `${v}::timestamptz`, type: 'timestamp with time zone' }
        : { value: `(${v}::timestamp AT TIME ZONE 'UTC')`, type: 'timestamp with time zone' };
  }
}
