/**
 * A value as text through its type's output function, never through a cast. `::text` looks up
 * pg_cast, and the owner of a type (an enum, a composite, their arrays) can give it a cast to text
 * at any time, hours into a run, whose function would then run with the migrating role's rights
 * (docs/invariants.md, invariant 16). `format` and `concat` call the output function, which an owner of
 * such a type cannot replace.
 */

/** Exact and never null: a NULL is the word NULL, a value is quoted (`'NULL'` is another text). */
export const quotedText = (value: string): string => `pg_catalog.format('%L', ${value})`;

/** A value that is never NULL (a key column) as its plain text, as `::text` would give it. */
export const keyText = (value: string): string => `pg_catalog.concat(${value})`;

/** A value as its plain text, NULL as NULL: for a person to read (an example of a difference). */
export const plainText = (value: string): string => `CASE WHEN (${value}) IS NULL THEN NULL ELSE pg_catalog.concat(${value}) END`;
