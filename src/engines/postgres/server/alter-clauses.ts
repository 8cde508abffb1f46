import { UserError } from '../../../core/engine/errors.js';

const NAME_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;

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
    // A `$` that continues a name (`price$eur`) starts no dollar quote; a tag is a name without `$`.
    if (ch === '$' && !NAME_CHAR.test(alter[i - 1] ?? '')) {
      const tag = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(alter.slice(i))?.[0];
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
