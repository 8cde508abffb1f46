/**
 * The rules both engines apply to the server's answers about an ALTER's parts. The classes and steps
 * themselves are the engine contract's (engine/ports/in-place.ts), since an engine returns them.
 */
import type { AlterClassification, AlterPart, BreakingChange, InPlaceStep } from './ports/in-place.js';

/** The path follows from the parts: in place only when every part is. */
export function classification(parts: AlterPart[], steps: InPlaceStep[], refused?: string): AlterClassification {
  const copying = parts.filter((p) => p.class === 'copy');
  if (copying.length || refused) {
    const why = refused ?? `${copying.map((p) => `"${p.clause}"`).join(', ')} ${copying.length > 1 ? 'need' : 'needs'} the copy`;
    return { parts, path: 'copy', why, steps: [] };
  }
  return { parts, path: 'in-place', why: 'every part can be made in place', steps };
}

/** A column as the breaking-change rules need it; `id` is the same before and after a rename. */
export interface ColumnShape {
  id: string;
  name: string;
  type: string;
  nullable: boolean;
  hasDefault: boolean;
}

/**
 * Old code breaks on a renamed or dropped column, a column it reads as another type, and a column
 * made NOT NULL that it does not write (no default to fall back on). A type the server widens in
 * place (VARCHAR(20) -> VARCHAR(40)) reads and writes as before, so only `typeBreaks` types count.
 */
export function breakingChanges(before: ColumnShape[], after: ColumnShape[], typeBreaks: boolean): BreakingChange[] {
  const now = new Map(after.map((c) => [c.id, c]));
  const found: BreakingChange[] = [];
  for (const old of before) {
    const c = now.get(old.id);
    if (!c) {
      found.push({ kind: 'drop-column', column: old.name, type: old.type });
      continue;
    }
    if (c.name !== old.name) found.push({ kind: 'rename-column', from: old.name, to: c.name, type: c.type });
    if (c.type !== old.type && typeBreaks) found.push({ kind: 'type-change', column: c.name, from: old.type, to: c.type });
    if (old.nullable && !c.nullable && !c.hasDefault) found.push({ kind: 'not-null', column: c.name, type: c.type });
  }
  return found;
}
