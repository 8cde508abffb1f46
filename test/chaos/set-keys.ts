/**
 * The keyed seeds of the set path (set-scenario.ts): which of the parent's children join the set, with
 * what ALTER, and the server's own ALTERs on the mirrors as a DBA must make them.
 *
 * Most keyed seeds take the RESTRICT child (`_cr`) into the set with an ALTER of its own. On MySQL one
 * in two whose parent's key starts with an INT widen it to BIGINT, as a key running out of INT is, and
 * then both children join the set with their key columns widened too: the cascading one (`_cc`, ON
 * DELETE CASCADE) among them, whose rows the parent's deletes take with no row event of theirs.
 */
import type { ChaosDb } from './database.js';
import { childTables, ident, parentColumns, type EngineKind, type TableSpec } from './grammar.js';
import type { Prng } from './prng.js';
import { nativeAlter } from './scenario.js';

export interface Member {
  name: string;
  mirror: string;
  alter: string;
}

/** What the set's child of the keyed seeds may be changed by. */
export const CHILD_ALTERS = {
  mysql: ['MODIFY w BIGINT NOT NULL DEFAULT 0', 'ADD COLUMN x INT NULL', 'ADD INDEX ix_w (w)', 'MODIFY w BIGINT NOT NULL DEFAULT 0, ADD INDEX ix_w (w)'],
  postgres: ['ALTER COLUMN w TYPE bigint', 'ADD COLUMN x int', 'ALTER COLUMN w SET DEFAULT 5', 'ALTER COLUMN w TYPE bigint, ADD COLUMN x text'],
} as const;

/**
 * A member's ALTER as run on `target` (the table or its mirror). On PostgreSQL a UNIQUE, PRIMARY KEY
 * or EXCLUDE constraint is an index, whose name is the schema's: the mirror could not take the name
 * the migrated table already holds, so each gets its constraint under its own name, which the
 * comparison takes out (`definition` drops the table's name from a constraint's).
 */
export function alterOf(db: ChaosDb, m: Member, target: string): string {
  if (db.kind !== 'postgres') return m.alter;
  return m.alter.replace(
    /ADD CONSTRAINT "([^"]+)" (UNIQUE|PRIMARY KEY|EXCLUDE)/g,
    (_, name: string, kind: string) => `ADD CONSTRAINT "${target}_${name}" ${kind}`,
  );
}

/** Whether a keyed seed widens its parent's key (drawn from `r`, a generator of its own). */
export function widensKey(kind: EngineKind, parent: TableSpec, r: Prng): boolean {
  return r.chance(0.5) && kind === 'mysql' && parent.key[0].type.sql === 'INT';
}

/**
 * The children that join the set, and the parent's ALTER widened with them when `widen` (and its own
 * ALTER leaves the key column alone).
 */
export function setChildren(parent: Member, childAlter: string, widen: boolean): Member[] {
  const [cc, cr] = [0, 1].map((i) => ({ name: childTables(parent.name)[i], mirror: childTables(parent.mirror)[i] }));
  if (!widen || /\bk1\b/.test(parent.alter)) return [{ ...cr, alter: childAlter }];
  parent.alter = `MODIFY k1 BIGINT NOT NULL, ${parent.alter}`;
  return [
    { ...cc, alter: 'MODIFY p_k1 BIGINT NOT NULL' },
    { ...cr, alter: `MODIFY p_k1 BIGINT NULL, ${childAlter}` },
  ];
}

/**
 * The server's own ALTERs on the mirrors, in set order; the first error, or null. The children's keys
 * in the set are dropped first and added back after, as a DBA must on MariaDB (its ALTER refuses to
 * change a type a key uses, whatever foreign_key_checks says); a key the changed tables cannot hold fails.
 */
export async function nativeSet(db: ChaosDb, set: Member[], children: Member[], parent: TableSpec): Promise<string | null> {
  const id = (n: string) => ident(db.kind, n);
  const fk = (child: Member) => id(`${child.mirror}_fk`);
  const session = await db.session();
  try {
    for (const child of children)
      await session.query(`ALTER TABLE ${id(child.mirror)} ${db.kind === 'mysql' ? 'DROP FOREIGN KEY' : 'DROP CONSTRAINT'} ${fk(child)}`);
    for (const m of set) {
      const native = await nativeAlter(db, alterOf(db, m, m.mirror), m.mirror);
      if (native !== null) return `${m.mirror}: ${native}`;
    }
    for (const child of children) {
      const columns = parentColumns(parent).map(id).join(', ');
      const key = parent.key.map((c) => id(c.name)).join(', ');
      const cascade = child.name.endsWith('_cc') ? ' ON DELETE CASCADE' : '';
      await session.query(
        `ALTER TABLE ${id(child.mirror)} ADD CONSTRAINT ${fk(child)} FOREIGN KEY (${columns}) REFERENCES ${id(set[0].mirror)} (${key})${cascade}`,
      );
    }
    return null;
  } catch (error) {
    return `${children.map((c) => c.mirror).join(', ') || 'a mirror'}'s key: ${(error as Error).message.split('\n')[0]}`;
  } finally {
    await session.close();
  }
}
