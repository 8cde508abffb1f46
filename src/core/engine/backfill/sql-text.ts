import { UserError } from '../errors.js';

/**
 * Just enough reading of the operator's SQL text to place it safely inside our UPDATE: the server
 * judges the expressions themselves. Quoted strings and identifiers ('...', "...", `...`) and
 * comments (-- to the end of the line, /* ... *\/) are skipped; what is left is split at commas
 * outside parentheses, and parentheses must balance, so a `--where` such as `a) OR (true` can never
 * escape the batch's key range.
 */
function scan(text: string, what: string, onTop: (index: number, char: string) => void): void {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "'" || c === '"' || c === '`') {
      // A doubled quote inside is the quote itself; MySQL's backslash escapes are skipped too.
      let j = i + 1;
      for (; j < text.length; j++) {
        if (text[j] === '\\' && c === "'") j++;
        else if (text[j] === c) {
          if (text[j + 1] === c) j++;
          else break;
        }
      }
      if (j >= text.length) throw new UserError(`${what}: unterminated ${c} quote`);
      i = j;
    } else if (c === '-' && text[i + 1] === '-') {
      const end = text.indexOf('\n', i);
      i = end < 0 ? text.length : end;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) throw new UserError(`${what}: unterminated /* comment`);
      i = end + 1;
    } else if (c === '(') depth++;
    else if (c === ')') {
      if (--depth < 0) throw new UserError(`${what}: unbalanced parentheses (a ")" closes nothing)`);
    } else if (c === ';') throw new UserError(`${what}: one expression only, no ";"`);
    else if (depth === 0) onTop(i, c);
  }
  if (depth !== 0) throw new UserError(`${what}: unbalanced parentheses (a "(" is never closed)`);
}

/** Refuses text that could end our statement or its parentheses early. */
export function checkEnclosable(text: string, what: string): void {
  if (!text.trim()) throw new UserError(`${what} is empty`);
  scan(text, what, () => {});
}

export interface Assignment {
  /** The column as written, unquoted. */
  column: string;
  /** Written quoted: the name is exact, else the server folds it (PostgreSQL to lower case; MySQL compares without case). */
  quoted: boolean;
  expression: string;
}

/** `a = lower(b), "C" = 1` -> its assignments. The text itself goes to the server as it was given. */
export function parseAssignments(set: string): Assignment[] {
  checkEnclosable(set, '--set');
  const cuts: number[] = [];
  scan(set, '--set', (i, c) => c === ',' && cuts.push(i));
  const parts = [-1, ...cuts].map((start, n) => set.slice(start + 1, cuts[n] ?? set.length));
  return parts.map((part) => {
    const m = part.match(/^\s*(?:(`(?:[^`]|``)+`|"(?:[^"]|"")+")|([A-Za-z_\u0080-\uffff][\w$\u0080-\uffff]*))\s*=(?![=>])([\s\S]*)$/);
    if (!m || !m[3].trim()) throw new UserError(`--set must be "column = expression[, column = expression ...]"; cannot read "${part.trim()}"`);
    const quoted = m[1] !== undefined;
    const column = quoted ? m[1].slice(1, -1).replaceAll(m[1][0] + m[1][0], m[1][0]) : m[2];
    return { column, quoted, expression: m[3].trim() };
  });
}
