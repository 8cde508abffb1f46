import { UserError } from '../errors.js';
import type { Fragment, KeysetSql } from '../keyset.js';
import type { Key, KeyRange } from '../types.js';
import type { ComparisonView, Expectation } from '../ports/comparison.js';

/**
 * Splits `a = lower(b), c IS NOT NULL` into expectations. Commas and `=` count only at the top
 * level: outside parentheses, quotes ('...', "...", `...`) and comparison operators (`<=`, `>=`,
 * `!=`, `<=>`, `:=`, `==`). A part with one such `=` compares its two sides; a part with none is a
 * condition every row must make true (NULL fails it), as plan's NOT NULL stage writes
 * `c IS NOT NULL`. More than one is ambiguous and refused; the server judges the SQL.
 */
export function parseExpectations(text: string): Expectation[] {
  const parts = splitTopLevel(text, ',');
  if (parts.every((p) => p.trim() === ''))
    throw new UserError('--expect is empty; give lhs = rhs or a condition, e.g. "email_new = lower(email)" or "c IS NOT NULL"');
  return parts.map((part) => {
    const sides = splitTopLevel(part, '=');
    if (sides.length === 1 && sides[0].trim()) return { lhs: sides[0].trim(), rhs: 'TRUE', condition: true };
    if (sides.length !== 2 || !sides[0].trim() || !sides[1].trim()) {
      throw new UserError(`--expect "${part.trim()}" is neither lhs = rhs (one top-level =) nor a condition; separate several with commas`);
    }
    return { lhs: sides[0].trim(), rhs: sides[1].trim() };
  });
}

/** An expectation as the operator wrote it. */
export function describeExpectation(e: Expectation): string {
  return e.condition ? e.lhs : `${e.lhs} = ${e.rhs}`;
}

/** `text` cut at each top-level `separator` (a `=` only where it is not part of another operator). */
function splitTopLevel(text: string, separator: ',' | '='): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote && text[i + 1] === quote) i++;
      else if (c === quote) quote = null;
      else if (c === '\\' && quote === "'") i++;
      continue;
    }
    if (c === "'" || c === '"' || c === '`') quote = c;
    else if (c === '(' || c === '[') depth++;
    else if (c === ')' || c === ']') depth--;
    else if (c === separator && depth === 0) {
      if (separator === '=' && (/[<>!:=]/.test(text[i - 1] ?? '') || /[=>]/.test(text[i + 1] ?? ''))) continue;
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (quote || depth !== 0) throw new UserError(`--expect has an unclosed ${quote ? 'quote' : 'parenthesis'}: ${text}`);
  parts.push(text.slice(start));
  return parts;
}

/**
 * The view of `verify --expect` on one reader, the same on both engines. The engine supplies the
 * two statements, over rows selected by a keyset fragment: how many rows there are and how many
 * fail the expectation, and the keys of the failing ones in key order.
 */
export function expectationView(
  keys: KeysetSql,
  expectations: Expectation[],
  sql: { count(where: Fragment): Promise<{ rows: number; failing: number }>; failing(where: Fragment): Promise<Key[]> },
): ComparisonView & { what: string } {
  return {
    what: expectations.map(describeExpectation).join(', '),
    async survey(range: KeyRange) {
      const { rows, failing } = await sql.count(keys.range(range));
      return { rows, clean: failing === 0 };
    },
    differingKeys: (range: KeyRange) => sql.failing(keys.range(range)),
    compareKeys: (list: Key[]) => sql.failing(keys.keyIn(list)),
  };
}
