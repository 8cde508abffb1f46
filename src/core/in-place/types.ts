/**
 * What the server can do to a table without copying it, part by part. The engines decide the
 * classes (asking the server where it can tell); the core only orders, runs and explains them.
 */

/**
 * - `instant`: metadata only, under a brief exclusive lock;
 * - `online-index`: an index built without blocking writers (PostgreSQL CREATE INDEX CONCURRENTLY);
 * - `validate-later`: a constraint added NOT VALID (brief lock) and validated while writers go on;
 * - `copy`: the server would rewrite the table, build an index or scan it under a lock: shadowcut's copy.
 */
export type PartClass = 'instant' | 'online-index' | 'validate-later' | 'copy';

/** A change that breaks code written for the old schema while it is still running. */
export type BreakingChange =
  | { kind: 'rename-column'; from: string; to: string; type: string }
  | { kind: 'type-change'; column: string; from: string; to: string }
  | { kind: 'drop-column'; column: string; type: string }
  | { kind: 'not-null'; column: string; type: string };

export interface AlterPart {
  /** The part as the user wrote it. */
  clause: string;
  class: PartClass;
  /** Why this class, in the server's words where it gave them. */
  reason: string;
  /** What the in-place statements for this part lock, and for how long. */
  locks: string;
  breaking: BreakingChange[];
}

/**
 * One step of the in-place path: its statements run together (in one transaction where
 * `transaction`), each waiting at most the lock timeout for its locks.
 */
export interface InPlaceStep {
  /** For messages: what this step does. */
  what: string;
  sql: string[];
  /** False for what cannot run in a transaction (CREATE INDEX CONCURRENTLY). */
  transaction: boolean;
  /** Run, best effort, when the step fails or gives up: leaves the table as it was before the step. */
  undo: string[];
}

/**
 * Waits for work, not for locks: a CONCURRENTLY build waits for every transaction older than it to
 * end, and is not failed by the lock timeout for that; it says whom it waits for and gives up after
 * its own bound.
 */
export interface WorkWaits {
  snapshotWaitMs: number;
  report(message: string): void;
}

export interface AlterClassification {
  parts: AlterPart[];
  path: 'in-place' | 'copy';
  /** Why the copy, when it is. */
  why: string;
  /** The in-place path's steps, in order (empty when the path is the copy). */
  steps: InPlaceStep[];
}

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
