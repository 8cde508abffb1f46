// The plan's foreign keys: other tables' keys to the table, the table's own keys that move at the
// cut-over, and those whose parents' changes cascade into it. The cut-over moves them
// (../cutover/child-keys.ts, ../cutover/parent-keys.ts) and the capture follows the cascades
// (../capture/cascades.ts); the plan, which every job reads, carries them.

/**
 * A foreign key of another table that references the migrated one, as the plan saw it: enough to
 * make it again, under the same name, on whichever of original and shadow it must reference.
 */
export interface ChildKey {
  database: string;
  table: string;
  name: string;
  columns: string[];
  referencedColumns: string[];
  onDelete: string;
  onUpdate: string;
}

/**
 * A key of a table of a set to another table of the set (`parent`, in the same database, and its
 * shadow); or, in `parentKeys`, a table's key to a table outside its set (../cutover/parent-keys.ts), whose
 * `parentShadow` is the parent itself (the table's own shadow for a key to itself).
 */
export interface SetKey extends ChildKey {
  parent: string;
  parentShadow: string;
  /** The parent's old table, as the parent's own plan chose it (absent in an older checkpoint, whose was `<parent>__old`). */
  parentOld?: string;
  /** A parent in another database (a key outside the set only); absent: the table's own. */
  parentDatabase?: string;
}

/** Every key that moves from the original to the shadow at the cut-over: a set's between its tables, and those to tables outside it. */
export function movedKeys(plan: { setKeys?: SetKey[]; parentKeys?: SetKey[] }): SetKey[] {
  return [...(plan.setKeys ?? []), ...(plan.parentKeys ?? [])];
}

/**
 * A key of the table whose parent's changes the server carries into the table itself (ON DELETE
 * CASCADE or SET NULL, ON UPDATE CASCADE or SET NULL). InnoDB makes those changes inside the
 * parent's statement: they reach the binlog as no row event and fire no trigger. So the run follows
 * the parent's row events too, and each change to a referenced value becomes a Reference: the rows
 * of the table that held the old values are found in the shadow (through the index the key needs
 * there), and, where the key's columns are part of the table's own key, the rows that hold the new
 * values in the original; each is then applied as any changed key (docs/invariants.md, invariant 3).
 */
export interface Cascade {
  name: string;
  parentDatabase: string;
  parent: string;
  /** The table's columns, in the original and as the shadow names them (null: the ALTER drops one). */
  columns: string[];
  shadowColumns: (string | null)[];
  referencedColumns: string[];
  onDelete: string;
  onUpdate: string;
  /** An ON UPDATE CASCADE rewrites the table's own key: its rows' new keys are read from the original. */
  movesKeys: boolean;
  /**
   * The tables whose own cascades reach the parent, level by level (the parent itself where a key of
   * its own to itself cascades), each with the columns those keys reference: their row events stand
   * for changes of the parent that no log records (../capture/cascade-chains.ts). Absent in an older
   * checkpoint's plan, which had none.
   */
  ancestors?: Ancestor[];
  /** The referenced columns of the parent that a cascade into the parent rewrites: no event gives their new values. */
  rewrittenInParent?: string[];
  /** A key to the table itself: the referenced columns as the shadow names them (null: the ALTER drops one). */
  shadowReferencedColumns?: (string | null)[];
}

/** A table whose row events may change, by cascades, the rows of a cascade's parent. */
export interface Ancestor {
  database: string;
  table: string;
  /** The columns that the cascading keys into the chain reference. */
  columns: string[];
}

/** The tables whose row events stand for cascades into the table: the parents and their ancestors, each once. */
export function cascadeSources(plan: { cascades?: Cascade[] }): { database: string; table: string }[] {
  const all = (plan.cascades ?? []).flatMap((c) => [{ database: c.parentDatabase, table: c.parent }, ...(c.ancestors ?? [])]);
  return all.filter((t, i) => all.findIndex((u) => u.database === t.database && u.table === t.table) === i).map(({ database, table }) => ({ database, table }));
}
