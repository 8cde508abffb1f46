import { UserError } from '../../../core/engine/errors.js';

/**
 * The few things read from the user's ALTER clause itself. Everything else (renames, drops, new
 * types) is learnt from the catalog after applying the clause to the shadow, which is exact.
 */

/** Splits at top-level commas, outside quotes, dollar quotes and parentheses. */
export function splitClauses(alter: string): string[] {
  const clauses: string[] = [];
  let depth = 0;
  let start = 0;
  let i = 0;
  while (i < alter.length) {
    const ch = alter[i];
    if (ch === "'" || ch === '"') {
      const close = closingQuote(alter, i, ch);
      i = close + 1;
      continue;
    }
    if (ch === '$') {
      const tag = /^\$[A-Za-z_]*\$/.exec(alter.slice(i))?.[0];
      if (tag) {
        const close = alter.indexOf(tag, i + tag.length);
        if (close < 0) throw new UserError('unterminated dollar quote in --alter');
        i = close + tag.length;
        continue;
      }
    }
    if (ch === '(' || ch === '[') depth++;
    else if (ch === ')' || ch === ']') depth--;
    else if (ch === ',' && depth === 0) {
      clauses.push(alter.slice(start, i).trim());
      start = i + 1;
    } else if (ch === ';' && alter.slice(i + 1).trim() !== '') {
      throw new UserError('--alter takes one ALTER TABLE clause list, not several statements (found ";")');
    }
    i++;
  }
  clauses.push(alter.slice(start).replace(/;\s*$/, '').trim());
  return clauses.filter((c) => c !== '');
}

function closingQuote(text: string, open: number, quote: string): number {
  let i = open + 1;
  for (;;) {
    const close = text.indexOf(quote, i);
    if (close < 0) throw new UserError(`unterminated ${quote} quote in --alter`);
    if (text[close + 1] !== quote) return close;
    i = close + 2;
  }
}

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
