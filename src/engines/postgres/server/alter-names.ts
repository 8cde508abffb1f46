import { splitClauses } from './alter-clauses.js';
import { ident } from './sql.js';
import type { Client } from './connect.js';

// The user's ALTER names the original's indexes and constraints; every copy of the table that the
// ALTER is applied to (the shadow, the probes) is made by LIKE, which names its own after the copy.

/**
 * LIKE creates the copy's indexes in the order of the original's index OIDs, so pairing both
 * lists by OID order tells which copy index stands for which original one.
 */
export async function pairIndexes(client: Client, originalOid: string, copyOid: string): Promise<Map<string, string>> {
  const list = async (oid: string) =>
    (
      await client.query(`SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1 ORDER BY i.indexrelid`, [oid])
    ).rows.map((r) => r.relname as string);
  const [originals, copies] = [await list(originalOid), await list(copyOid)];
  return new Map(originals.map((name, i) => [name, copies[i]]).filter(([, s]) => s !== undefined) as [string, string][]);
}

const ID = '("(?:[^"]|"")+"|[^\\s"(),]+)';
/** Each clause that names an index or a constraint: the name is the second group, between the first and the third. */
const NAMING = [
  `^(CLUSTER\\s+ON\\s+)${ID}()\\s*$`,
  `^(REPLICA\\s+IDENTITY\\s+USING\\s+INDEX\\s+)${ID}()\\s*$`,
  `^(ADD\\s+(?:CONSTRAINT\\s+${ID.replace('(', '(?:')}\\s+)?(?:UNIQUE|PRIMARY\\s+KEY)\\s+USING\\s+INDEX\\s+)${ID}([\\s\\S]*)$`,
  `^(DROP\\s+CONSTRAINT\\s+(?:IF\\s+EXISTS\\s+)?)${ID}(\\s+(?:CASCADE|RESTRICT))?\\s*$`,
  `^(ALTER\\s+CONSTRAINT\\s+)${ID}(\\s[\\s\\S]*)$`,
  `^(RENAME\\s+CONSTRAINT\\s+)${ID}(\\s+TO\\s[\\s\\S]*)$`,
  `^(VALIDATE\\s+CONSTRAINT\\s+)${ID}()\\s*$`,
].map((p) => new RegExp(p, 'i'));

const unquote = (id: string) => (id.startsWith('"') ? id.slice(1, -1).replace(/""/g, '"') : id.toLowerCase());

/** The clause's index or constraint name as the catalog spells it, and the clause with another put in its place. */
function namedIn(clause: string): { name: string; rest: string; with: (other: string) => string } | null {
  for (const pattern of NAMING) {
    const m = pattern.exec(clause);
    if (m) return { name: unquote(m[2]), rest: m[3] ?? '', with: (other) => `${m[1]}${ident(other)}${m[3] ?? ''}` };
  }
  return null;
}

/** The original's foreign keys by name: no copy has them (LIKE leaves them out), the cut-over carries them. */
async function foreignKeyNames(client: Client, original: string): Promise<Set<string>> {
  const { rows } = await client.query(`SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'f'`, [original]);
  return new Set(rows.map((r) => String(r.conname)));
}

/** A clause acting on one of the original's own foreign keys: `validates` for VALIDATE, `renamedTo` for RENAME. */
export interface ForeignKeyClause {
  sql: string;
  name: string;
  validates: boolean;
  renamedTo: string | null;
}

/**
 * The clauses of the ALTER that name one of the original's own foreign keys (DROP, ALTER, RENAME or
 * VALIDATE CONSTRAINT): the cut-over re-adds those keys on the new table, and these act on them there.
 */
export async function foreignKeyClauses(client: Client, original: string, alter: string): Promise<ForeignKeyClause[]> {
  const keys = await foreignKeyNames(client, original);
  const found: ForeignKeyClause[] = [];
  for (const sql of splitClauses(alter)) {
    const named = namedIn(sql);
    if (named === null || !keys.has(named.name) || /^(CLUSTER|REPLICA|ADD)\b/i.test(sql)) continue;
    const renamed = /^RENAME\b/i.test(sql) ? /^\s+TO\s+([\s\S]+?)\s*$/i.exec(named.rest) : null;
    found.push({ sql, name: named.name, validates: /^VALIDATE\b/i.test(sql), renamedTo: renamed ? unquote(renamed[1]) : null });
  }
  return found;
}

/**
 * The ALTER as it reads on `copy`, a LIKE copy of the original just made: each name of an original's
 * index (or of the constraint it backs) is its twin's on the copy, and the clauses that act on the
 * original's foreign keys are left to the cut-over. Null when nothing is left to apply.
 */
export async function alterOnCopy(client: Client, alter: string, original: string, copy: string): Promise<string | null> {
  const oidOf = async (relation: string): Promise<string> => (await client.query(`SELECT $1::regclass::oid AS oid`, [relation])).rows[0].oid;
  const [originalOid, copyOid] = [await oidOf(original), await oidOf(copy)];
  const twins = await pairIndexes(client, originalOid, copyOid);
  const keys = new Set((await foreignKeyClauses(client, originalOid, alter)).map((c) => c.sql));
  const clauses = splitClauses(alter)
    .filter((c) => !keys.has(c))
    .map((c) => {
      const named = namedIn(c);
      const twin = named ? twins.get(named.name) : undefined;
      return twin === undefined ? c : named!.with(twin);
    });
  return clauses.length ? clauses.join(', ') : null;
}

/**
 * The original's indexes and constraints the ALTER drops by name (`DROP CONSTRAINT t_pkey`): their
 * twins on a copy are gone, and one the ALTER adds may come back under the same generated name
 * (`t__new_pkey` again), which is a new index, not the twin.
 */
export function droppedConstraints(alter: string): Set<string> {
  const dropped = new Set<string>();
  for (const sql of splitClauses(alter)) {
    const named = /^DROP\s+CONSTRAINT\b/i.test(sql) ? namedIn(sql) : null;
    if (named) dropped.add(named.name);
  }
  return dropped;
}
