import { UserError } from '../../../core/engine/errors.js';

/** What one part of a PostgreSQL ALTER does, as far as choosing how to make it in place needs. */
export type PartKind =
  | { kind: 'add-column'; constrained: boolean }
  | { kind: 'type' }
  | { kind: 'set-not-null'; column: string }
  | { kind: 'add-check'; notValid: boolean }
  | { kind: 'add-foreign-key'; notValid: boolean; name: string | null; columns: string[] }
  | { kind: 'add-unique' }
  /** DROP COLUMN, SET/DROP DEFAULT, DROP NOT NULL, SET STATISTICS/STORAGE/COMPRESSION, ADD ... USING INDEX */
  | { kind: 'metadata' }
  | { kind: 'rename-column' }
  | { kind: 'rename-constraint' }
  | { kind: 'drop-constraint' }
  | { kind: 'other' };

const ID = '("(?:[^"]|"")+"|[^\\s"(),]+)';
const CONSTRAINT = `^ADD\\s+(?:CONSTRAINT\\s+${ID}\\s+)?`;
const COLUMN = `^ALTER\\s+(?:COLUMN\\s+)?${ID}\\s+`;

/** An identifier as the catalog spells it: quoted as written, unquoted folded to lower case. */
export function unquote(id: string): string {
  return id.startsWith('"') ? id.slice(1, -1).replace(/""/g, '"') : id.toLowerCase();
}

export function partKind(clause: string): PartKind {
  const c = clause.trim();
  const m = (pattern: string) => new RegExp(pattern, 'i').exec(c);
  const notValid = /\bNOT\s+VALID\s*$/i.test(c);
  let found: RegExpExecArray | null;
  if (m('^RENAME\\s+TO\\b') || m('^SET\\s+SCHEMA\\b'))
    throw new UserError('--alter renames or moves the table; shadowcut changes a table where it is, rename it separately');
  if ((found = m(`${CONSTRAINT}FOREIGN\\s+KEY\\s*\\(([^)]*)\\)`))) {
    return { kind: 'add-foreign-key', notValid, name: found[1] ? unquote(found[1]) : null, columns: found[2].split(',').map((s) => unquote(s.trim())) };
  }
  if (m(`${CONSTRAINT}CHECK\\b`)) return { kind: 'add-check', notValid };
  if (m(`${CONSTRAINT}(?:UNIQUE|PRIMARY\\s+KEY)\\s+USING\\s+INDEX\\b`)) return { kind: 'metadata' };
  if (m(`${CONSTRAINT}UNIQUE\\b`)) return { kind: 'add-unique' };
  if (m(`${CONSTRAINT}(?:PRIMARY|EXCLUDE)\\b`)) return { kind: 'other' };
  if (m('^ADD\\b')) return { kind: 'add-column', constrained: /\b(CHECK|REFERENCES|UNIQUE|PRIMARY\s+KEY)\b/i.test(c) };
  if (m('^DROP\\s+CONSTRAINT\\b')) return { kind: 'drop-constraint' };
  if (m('^DROP\\b')) return { kind: 'metadata' };
  if (m(`${COLUMN}(?:SET\\s+DATA\\s+)?TYPE\\b`)) return { kind: 'type' };
  if ((found = m(`${COLUMN}SET\\s+NOT\\s+NULL$`))) return { kind: 'set-not-null', column: unquote(found[1]) };
  if (m(`${COLUMN}(?:SET\\s+DEFAULT|DROP\\s+DEFAULT|DROP\\s+NOT\\s+NULL|SET\\s+(?:STATISTICS|STORAGE|COMPRESSION))\\b`)) return { kind: 'metadata' };
  if (m('^RENAME\\s+CONSTRAINT\\b')) return { kind: 'rename-constraint' };
  if (m(`^RENAME\\s+(?:COLUMN\\s+)?${ID}\\s+TO\\b`)) return { kind: 'rename-column' };
  return { kind: 'other' };
}
