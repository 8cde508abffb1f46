import { UserError } from '../../../core/engine/errors.js';
import type { Dialect } from '../../../core/engine/keyset.js';

/** SQL text in and out: names quoted into shadowcut's statements, a table name read from the user, catalog values read back. */

export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function qualified(schema: string, name: string): string {
  return `${ident(schema)}.${ident(name)}`;
}

export const dialect: Dialect = { ident, param: (n, type) => (type === undefined ? `$${n}` : `$${n}::${type}`) };

/** Catalog booleans arrive as the server's text. */
export const isTrue = (v: unknown) => v === 't' || v === true;

/** Splits `schema.name` (either part may be double-quoted; unquoted parts fold to lower case as in SQL). */
export function parseTableName(input: string): { schema: string; name: string } {
  const bad = () => new UserError(`cannot read table name "${input}"; use name or schema.name`);
  const text = input.trim();
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    let part = '';
    if (text[i] === '"') {
      let j = i + 1;
      for (;;) {
        const close = text.indexOf('"', j);
        if (close < 0) throw bad();
        part += text.slice(j, close);
        if (text[close + 1] !== '"') {
          i = close + 1;
          break;
        }
        part += '"';
        j = close + 2;
      }
    } else {
      const dot = text.indexOf('.', i);
      const end = dot < 0 ? text.length : dot;
      part = text.slice(i, end).toLowerCase();
      if (/["\s]/.test(part)) throw bad();
      i = end;
    }
    if (!part) throw bad();
    parts.push(part);
    if (i === text.length) break;
    if (text[i] !== '.' || parts.length === 2) throw bad();
    i++;
  }
  return parts.length === 2 ? { schema: parts[0], name: parts[1] } : { schema: 'public', name: parts[0] };
}
