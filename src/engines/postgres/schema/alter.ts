import { splitClauses } from '../server/alter-clauses.js';

/**
 * The few things read from the user's ALTER clause itself. Everything else (renames, drops, new
 * types) is learnt from the catalog after applying the clause to the shadow, which is exact.
 */

// Spaces around USING are optional next to parentheses and quotes: `numeric(12,2)USING(a*100)`.
const typeChange = /^ALTER\s+(?:COLUMN\s+)?("(?:[^"]|"")+"|[^\s"]+)\s+(?:SET\s+DATA\s+)?TYPE\s[\s\S]*?(?<=[\s)"])USING\b\s*([\s\S]+)$/i;

/**
 * `ALTER COLUMN c TYPE t USING expr`: the copy must convert with `expr` too, evaluated over the
 * original's row, so the shadow gets what the ALTER would have produced in place.
 * Returns original column name -> expression.
 */
export function usingExpressions(alter: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const clause of splitClauses(alter)) {
    const m = typeChange.exec(clause);
    if (!m) continue;
    const column = m[1].startsWith('"') ? m[1].slice(1, -1).replace(/""/g, '"') : m[1].toLowerCase();
    found.set(column, m[2].trim());
  }
  return found;
}
