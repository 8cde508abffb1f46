import { UserError } from '../errors.js';

/**
 * How two columns are compared without losing anything (docs/invariants.md, invariant 12). Each engine sorts
 * its column types into these families; this table picks, for a pair, the form both values are
 * compared in, and the engine writes that form's SQL. A narrower value always goes up to the wider
 * form (a DATETIME to microseconds, an integer to an exact decimal, a FLOAT to a DOUBLE); nothing is
 * ever cast down, rounded, or printed with fewer digits than it holds. A pair with no such form is
 * refused.
 */
export type TypeFamily =
  | { family: 'integer' }
  | { family: 'decimal' }
  | { family: 'float' }
  | { family: 'text' }
  | { family: 'binary' }
  | { family: 'date' }
  /** A time of day, with `fraction` digits of seconds. */
  | { family: 'time'; fraction: number }
  /** A wall-clock date and time (PostgreSQL timestamp, MySQL DATETIME). */
  | { family: 'datetime'; fraction: number }
  /** A point in time (PostgreSQL timestamptz, MySQL TIMESTAMP). */
  | { family: 'instant'; fraction: number }
  /** Anything else: compared with the very same type only, by the engine's exact form for it. */
  | { family: 'other' };

export interface TypedColumn {
  /** The type as the engine spells it, collation included where it matters: equal spellings are one type. */
  type: string;
  family: TypeFamily;
}

/**
 * What both values are turned into before they are compared:
 * - `same`: one type on both sides, compared by the engine's exact form for it (identity: 1.50 is not 1.5);
 * - `integer`, `decimal`: the number's exact value (10.00 = 10.0, 10.0049 is not 10.00);
 * - `float`: both as double precision, in a form that gives the double back bit for bit;
 * - `text`: the characters, compared as code points, no collation folding nor padding rules;
 * - `binary`: the bytes;
 * - `time`, `datetime`: with `fraction` digits of seconds, the wider side's;
 * - `instant`: both as a point in time; a wall-clock side is read in UTC (the engine pins it).
 */
export type ExactForm = { form: 'same' | 'integer' | 'decimal' | 'float' | 'text' | 'binary' } | { form: 'time' | 'datetime' | 'instant'; fraction: number };

export type ExactChoice = { form: ExactForm } | { refused: string };

const fraction = (f: TypeFamily) => ('fraction' in f ? f.fraction : 0);

/** The form a pair of columns is compared in, or why it cannot be compared exactly. */
export function exactForm(a: TypedColumn, b: TypedColumn): ExactChoice {
  if (a.type === b.type) return { form: { form: 'same' } };
  const x = a.family.family;
  const y = b.family.family;
  const both = (f: string, g = f) => (x === f && y === g) || (x === g && y === f);
  const widest = Math.max(fraction(a.family), fraction(b.family));
  if (both('integer')) return { form: { form: 'integer' } };
  if (both('decimal') || both('integer', 'decimal')) return { form: { form: 'decimal' } };
  if (both('float')) return { form: { form: 'float' } };
  if (both('text')) return { form: { form: 'text' } };
  if (both('binary')) return { form: { form: 'binary' } };
  if (both('time')) return { form: { form: 'time', fraction: widest } };
  if (both('datetime') || both('date', 'datetime')) return { form: { form: 'datetime', fraction: widest } };
  if (both('instant') || both('date', 'instant') || both('datetime', 'instant')) return { form: { form: 'instant', fraction: widest } };
  return { refused: `${a.type} and ${b.type} have no form both convert to without loss` };
}

/** `exactForm`, or one line naming the column and why it is refused. */
export function exactFormOrRefuse(column: string, a: TypedColumn, b: TypedColumn, where: [string, string]): ExactForm {
  const choice = exactForm(a, b);
  if ('refused' in choice) {
    throw new UserError(
      `column ${column} cannot be compared exactly: ${a.type} in ${where[0]}, ${b.type} in ${where[1]} (${choice.refused}); leave it out with --columns`,
    );
  }
  return choice.form;
}

const SAID: Record<ExactForm['form'], string> = {
  same: 'as it is',
  integer: 'as its number',
  decimal: 'as its exact value, whatever the scale',
  float: 'as a double, every bit',
  text: 'as its characters, no collation',
  binary: 'as its bytes',
  time: 'as a time',
  datetime: 'as a date and time',
  instant: 'as a point in time (a wall clock read in UTC)',
};

/** How a column of two different types is compared, for a person: `e as its exact value, whatever the scale`. */
export function describeForm(column: string, form: ExactForm): string {
  return `${column} ${SAID[form.form]}${'fraction' in form ? ` with ${form.fraction} fractional digit(s)` : ''}`;
}

/** For the summary: the columns whose types differ, and the form each is compared in (`how` null: one type). */
export function howCompared(columns: { how: string | null }[]): string {
  const hows = columns.map((c) => c.how).filter((h) => h !== null);
  return hows.length ? `; types differ: ${hows.join('; ')}` : '';
}
