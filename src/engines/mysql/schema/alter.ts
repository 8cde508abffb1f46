import { UserError } from '../../../core/engine/errors.js';

/** What an ALTER clause does to columns, as far as the copy needs to know. */
export interface AlterEffects {
  /** new name -> old name, from CHANGE and RENAME COLUMN */
  renamed: Map<string, string>;
  /** columns dropped (and possibly added again: then they start from their default, as in a native ALTER) */
  dropped: Set<string>;
  addsForeignKey: boolean;
  /** DROP FOREIGN KEY parts: the shadow (CREATE TABLE ... LIKE) has no foreign keys to drop. */
  droppedForeignKeys: { name: string; ifExists: boolean }[];
  /**
   * ALGORITHM= and LOCK= parts: how the server should make the change on the table itself. The copy
   * makes it on a new table, so they are left out of what the shadow and the probes take.
   */
  serverHints: string[];
  /** The clause without those parts, as the shadow and the probes take it (FORCE when nothing is left). */
  shadowClause: string;
}

const SERVER_HINT = /^(ALGORITHM|LOCK)\s*(=\s*)?[A-Za-z]+$/i;

const NAME = '(?:`((?:[^`]|``)+)`|([A-Za-z0-9_$\\u0080-\\uffff]+))';

function nameOf(m: RegExpMatchArray, at: number): string {
  return m[at] !== undefined ? m[at].replace(/``/g, '`') : m[at + 1];
}

/**
 * Splits at top-level commas, ignoring commas inside parentheses, quotes and comments. A line
 * comment (`-- `, `#`) is left out of the parts: the parts are joined again with commas (the
 * shadow's clause, the in-place ALTER), where it would swallow every part after it.
 */
export function splitClauses(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let part = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      if (ch === '\\' && quote !== '`') part += text[i++];
      else if (ch === quote) quote = null;
      part += text[i] ?? '';
      continue;
    }
    if (ch === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) throw new UserError('--alter has an unclosed /* comment');
      part += text.slice(i, end + 2);
      i = end + 1;
      continue;
    }
    if (ch === '#' || (ch === '-' && text[i + 1] === '-' && /^\s?$/.test(text[i + 2] ?? ''))) {
      const end = text.indexOf('\n', i);
      i = end < 0 ? text.length : end - 1;
      continue;
    }
    if (ch === "'" || ch === '"' || ch === '`') quote = ch;
    else if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === ',' && depth === 0) {
      parts.push(part.trim());
      part = '';
      continue;
    }
    part += ch;
  }
  if (quote || depth !== 0) throw new UserError('--alter has an unbalanced quote or parenthesis');
  parts.push(part.trim());
  return parts.filter((p) => p.length > 0);
}

/**
 * Reads the column-level effects of an ALTER clause. The server, not this parser, is the judge of
 * validity (the clause is tried on a probe table); this only finds what a name-based mapping
 * cannot see: renames, and drop-then-add of the same name.
 */
export function analyseAlter(clause: string): AlterEffects {
  const text = clause.trim().replace(/;\s*$/, '');
  if (!text) throw new UserError('--alter is empty; give what follows ALTER TABLE <name>, e.g. "ADD COLUMN note TEXT"');
  if (/^\s*ALTER\s+TABLE\b/i.test(text)) {
    throw new UserError('--alter takes only the clause after ALTER TABLE <name>, e.g. "ADD COLUMN note TEXT"');
  }
  const effects: AlterEffects = { renamed: new Map(), dropped: new Set(), addsForeignKey: false, droppedForeignKeys: [], serverHints: [], shadowClause: '' };
  const kept: string[] = [];
  for (const part of splitClauses(text)) {
    let m: RegExpMatchArray | null;
    if ((m = part.match(new RegExp(`^DROP\\s+FOREIGN\\s+KEY\\s+(IF\\s+EXISTS\\s+)?${NAME}$`, 'i')))) {
      effects.droppedForeignKeys.push({ name: nameOf(m, 2), ifExists: m[1] !== undefined });
      continue;
    }
    if (SERVER_HINT.test(part)) {
      effects.serverHints.push(part);
      continue;
    }
    kept.push(part);
    if (/^RENAME\s+(?:TO\b|AS\b|(?!COLUMN\b|INDEX\b|KEY\b))/i.test(part)) {
      throw new UserError('--alter renames the table; shadowcut changes a table in place, rename it separately');
    }
    if ((m = part.match(new RegExp(`^CHANGE\\s+(?:COLUMN\\s+)?(?:IF\\s+EXISTS\\s+)?${NAME}\\s+${NAME}`, 'i')))) {
      const from = nameOf(m, 1);
      const to = nameOf(m, 3);
      if (from.toLowerCase() !== to.toLowerCase()) effects.renamed.set(to.toLowerCase(), from);
    } else if ((m = part.match(new RegExp(`^RENAME\\s+COLUMN\\s+${NAME}\\s+TO\\s+${NAME}`, 'i')))) {
      effects.renamed.set(nameOf(m, 3).toLowerCase(), nameOf(m, 1));
    } else if (
      (m = part.match(new RegExp(`^DROP\\s+(?:COLUMN\\s+)?(?:IF\\s+EXISTS\\s+)?(?!(?:INDEX|KEY|PRIMARY|FOREIGN|CONSTRAINT|CHECK|PARTITION)\\b)${NAME}`, 'i')))
    ) {
      effects.dropped.add(nameOf(m, 1).toLowerCase());
    }
    if (/\bFOREIGN\s+KEY\b/i.test(part) && /^ADD\b/i.test(part)) effects.addsForeignKey = true;
  }
  effects.shadowClause = kept.length ? kept.join(', ') : 'FORCE';
  return effects;
}
