import { restoreStorageOptions, yieldAutovacuum } from '../server/autovacuum.js';
import type pg from 'pg';
import type { CutoverOptions, CutoverResult } from '../../../core/types.js';
import { asLockTimeout, ident, isRolledBack, isTransientPgError, PgSession, qualified, type Client } from '../server/connect.js';
import type { Copier } from '../copy/copy.js';
import type { PgTriggerLog } from '../capture/trigger/log.js';
import type { PgDetail } from '../schema/plan.js';
import { definitionOf, firstDifference } from '../schema/inspect.js';
import { expectPartitionTree } from '../schema/partitions.js';
import { lostSwapSession, UnknownSwapError, UserError } from '../../../core/errors.js';
import { addChecks } from '../schema/not-valid-checks.js';
import { nameLikeNative } from '../schema/generated-names.js';
import { columnPairs, matchRights } from '../schema/rights.js';

/** One table's part of a swap: several make a set's, in one transaction. */
export interface SwapPart {
  copier: Copier;
  catchUp: CutoverOptions['catchUp'];
  triggers: PgTriggerLog | null;
}

/** What is read under the lock for one table, before any name changes. */
interface Carried {
  part: SwapPart;
  statements: string[];
  before: string[];
  indexRenames: PgDetail['indexRenames'];
  withIndexes: string[];
  leaving: { publication: string; relation: string }[];
  identities: { original: SequenceName; shadow: SequenceName }[];
  foreignKeys: ForeignKey[];
}

/**
 * One transaction: lock both tables, drain the stream to the LSN taken under the lock, swap the
 * names, and carry over what is bound to the original's OID rather than its name. Any failure rolls
 * all of it back, leaving the original in place and serving (invariant 5). Several tables (a set)
 * swap in the same transaction: every one is locked and caught up before any name changes, so a
 * reader sees either every old table or every new one. A foreign key between two of them is read
 * from both sides and re-added once, between the new tables.
 * The ACCESS EXCLUSIVE request queues every later reader behind it, so `lock_timeout` must be short:
 * it bounds how long anyone waits on us, and the runner retries.
 */
export async function cutover(
  pool: pg.Pool,
  parts: SwapPart[],
  lockTimeoutMs: number,
  /** A comment for the table that steps aside (a revert's: the new table, which must not pass for a dead run's shadow); null keeps its own. */
  asideComment: string | null,
): Promise<CutoverResult> {
  await yieldAutovacuum(
    pool,
    parts.flatMap((p) => [p.copier.original, p.copier.shadow]),
  );
  const client = await pool.connect();
  let failure: Error | undefined;
  let committing = false;
  const began = performance.now();
  try {
    await client.query('BEGIN');
    await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
    // Re-adding the tables' own foreign keys locks the tables they reference (SHARE ROW EXCLUSIVE).
    // Take those first: an application's cascade locks parent then child, and the opposite order
    // here would deadlock with it, with the application's transaction as a possible victim.
    const oids = parts.map((p) => p.copier.d.oid);
    const parents = await client.query(
      `SELECT DISTINCT confrelid::regclass::text AS t FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY ($1::oid[]) AND NOT confrelid = ANY ($1::oid[])`,
      [oids],
    );
    if (parents.rows.length) await client.query(`LOCK TABLE ${parents.rows.map((r) => r.t).join(', ')} IN SHARE ROW EXCLUSIVE MODE`);
    const dependents = await dependentRelations(client, parts);
    await client.query(`LOCK TABLE ${[...parts.map((p) => `${p.copier.original}, ${p.copier.shadow}`), ...dependents].join(', ')} IN ACCESS EXCLUSIVE MODE`);
    for (const part of parts) {
      const d = part.copier.d;
      // The stream reports another session's DDL only when a change to the table follows it; under
      // this lock nothing can follow, so look at the columns themselves before swapping.
      const changed = firstDifference(d.definition, await definitionOf(client, d.oid));
      if (changed !== null) {
        throw new UserError(`${d.schema}.${d.name} was altered during the migration (${changed}); start again`);
      }
      await expectPartitionTree(client, d);
      await part.catchUp(new PgSession(client, true));
      // Trigger capture: the log is drained, and nothing more can be written under this lock. Gone with
      // the swap, and back with a rollback; left on the old table, they would slow its writers for nothing.
      await part.triggers?.removeAtCutover(client);
    }

    const carried: Carried[] = [];
    for (const part of parts) carried.push(await carriedOf(client, part));
    const foreignKeys = new Map<string, ForeignKey>();
    for (const fk of carried.flatMap((c) => c.foreignKeys)) foreignKeys.set(`${fk.table}\0${fk.name}`, fk);
    // Rules move with the table: left on the old one, they would fire again for what follows it back.
    for (const statement of carried.flatMap((c) => c.before)) await client.query(statement);
    for (const fk of foreignKeys.values()) await client.query(`ALTER TABLE ${fk.table} DROP CONSTRAINT ${ident(fk.name)}`);
    for (const { part } of carried) await swapStatistics(client, part.copier.d);
    // Every old tree steps aside before any of the new ones takes its names.
    for (const { part } of carried) {
      const d = part.copier.d;
      await client.query(`ALTER TABLE ${part.copier.original} RENAME TO ${ident(d.old)}`);
      for (const p of d.partitions ?? []) await client.query(`ALTER TABLE ${qualified(d.schema, p.name)} RENAME TO ${ident(p.old)}`);
    }
    for (const { part } of carried) {
      const d = part.copier.d;
      await client.query(`ALTER TABLE ${part.copier.shadow} RENAME TO ${ident(d.name)}`);
      for (const p of d.partitions ?? []) await client.query(`ALTER TABLE ${qualified(d.schema, p.shadow)} RENAME TO ${ident(p.name)}`);
    }
    // From here each original's name (`copier.original`) means its new table.
    for (const c of carried) await finishSwap(client, c);
    // A view or rule that names two tables of a set is made once.
    for (const statement of new Set(carried.flatMap((c) => [...c.statements, ...c.withIndexes]))) await client.query(statement);
    // Exactly the old table's rights (and each partition's), grants made on it during the run
    // included, and nothing the migrating role's default privileges gave the shadow.
    for (const { part } of carried) {
      const d = part.copier.d;
      for (const r of [{ oid: d.oid, name: d.name }, ...(d.partitions ?? [])])
        await matchRights(client, r.oid, qualified(d.schema, r.name), columnPairs(d.columns));
    }
    for (const { part } of carried) await addChecks(client, part.copier.original, part.copier.d.notValidChecks ?? []);
    for (const { part } of carried) if (part.copier.d.autovacuum) await restoreStorageOptions(client, part.copier.original, part.copier.d.autovacuum);
    for (const { part } of carried) await nameLikeNative(client, part.copier.d, part.copier.d.generatedNames ?? []);
    // Validated after the commit (in cleanup), without holding the lock.
    for (const fk of foreignKeys.values()) {
      await client.query(`ALTER TABLE ${fk.table} ADD CONSTRAINT ${ident(fk.name)} ${fk.def}${fk.validated ? ' NOT VALID' : ''}`);
      if (fk.comment !== null) await client.query(`COMMENT ON CONSTRAINT ${ident(fk.name)} ON ${fk.table} IS ${literal(fk.comment)}`);
    }
    for (const c of carried) await afterSwap(client, c);
    if (asideComment !== null) {
      for (const { part } of carried) await client.query(`COMMENT ON TABLE ${qualified(part.copier.d.schema, part.copier.d.old)} IS ${literal(asideComment)}`);
    }
    committing = true;
    await client.query('COMMIT');
    return { lockedMs: Math.round(performance.now() - began) };
  } catch (error) {
    failure = error as Error;
    await client.query('ROLLBACK').catch(() => {});
    // A session lost before its COMMIT was sent took the whole transaction with it: the original is
    // as it was, and the next attempt starts clean. Lost during the COMMIT, the outcome is unknown
    // (unless the server answered that it rolled back): the run stops as it is, and a resumed run
    // finds out which it was.
    if (isTransientPgError(error)) throw committing && !isRolledBack(error) ? new UnknownSwapError(error) : lostSwapSession(error);
    throw asLockTimeout(error, 'cut-over');
  } finally {
    client.release(failure); // discarded after a failure, in case its connection broke
  }
}

/**
 * The other relations the swap alters once the tables are caught up (the tables whose foreign keys
 * reference them or their partitions, views and rules that name them), locked with them, at once.
 * Asked for only then, each lock would be waited for after the catch-up: a writer of a child queued
 * behind our lock on the parent (its key check) while holding the child would be in a cycle with us
 * that its own deadlock check, past deadlock_timeout (1 s), found first, and the application's
 * statement would be the one aborted (an INSERT into the child failing with "deadlock detected").
 * Asked for here, each of our waits ends within lock_timeout of the last grant, below deadlock_timeout.
 */
async function dependentRelations(client: Client, parts: SwapPart[]): Promise<string[]> {
  const oids = parts.flatMap((p) => [p.copier.d.oid, ...(p.copier.d.partitions ?? []).map((q) => q.oid)]);
  const { rows } = await client.query(
    `SELECT c.oid::regclass::text AS t FROM pg_class c
      WHERE NOT c.oid = ANY ($1::oid[])
        AND (c.oid IN (SELECT conrelid FROM pg_constraint WHERE contype = 'f' AND confrelid = ANY ($1::oid[]))
         OR EXISTS (SELECT 1 FROM pg_depend dep JOIN pg_rewrite r ON r.oid = dep.objid
                     WHERE dep.classid = 'pg_rewrite'::regclass AND dep.refclassid = 'pg_class'::regclass AND dep.refobjid = ANY ($1::oid[])
                       AND r.ev_class = c.oid AND (r.rulename <> '_RETURN' OR c.relkind = 'v')))
      ORDER BY c.oid`,
    [oids],
  );
  return rows.map((r: { t: string }) => r.t);
}

/** Everything bound to one original (and its partitions) rather than to its name, read before the renames. */
async function carriedOf(client: pg.PoolClient, part: SwapPart): Promise<Carried> {
  const d = part.copier.d;
  const root = await boundToOriginal(client, d, { oid: d.oid, name: d.name, shadow: d.shadow }, true);
  const indexRenames: PgDetail['indexRenames'] = [...d.indexRenames, ...(await partitionIndexPairs(client, d))];
  for (const p of d.partitions ?? []) {
    const c = await boundToOriginal(client, d, { oid: p.oid, name: p.name, shadow: p.shadow }, false);
    root.statements.push(...c.statements);
    root.before.push(...c.before);
    root.foreignKeys.push(...c.foreignKeys);
  }
  return {
    part,
    ...root,
    indexRenames,
    withIndexes: await boundToIndexes(client, d, indexRenames),
    leaving: await publicationsLeft(client, d),
    identities: await identitySequences(client, d),
  };
}

/** The indexes' names, after the tables': the old ones step aside, the new ones take theirs. */
async function finishSwap(client: pg.PoolClient, { part, indexRenames }: Carried): Promise<void> {
  const d = part.copier.d;
  for (const index of indexRenames) {
    const name = await freeRelationName(client, d.schema, index.aside ?? `${index.original.slice(0, 55)}__old`);
    await client.query(`ALTER INDEX ${qualified(d.schema, index.original)} RENAME TO ${ident(name)}`);
  }
  for (const index of indexRenames) {
    await client.query(`ALTER INDEX ${qualified(d.schema, index.shadow)} RENAME TO ${ident(index.original)}`);
  }
}

/** Publications and identity sequences, after the statements that name them as they were. */
async function afterSwap(client: pg.PoolClient, { leaving, identities }: Carried): Promise<void> {
  // The table that steps aside is not the user's table any more: their subscribers must not get its rows.
  for (const { publication, relation } of leaving) await client.query(`ALTER PUBLICATION ${ident(publication)} DROP TABLE ${relation}`);
  for (const { original, shadow } of identities) {
    const aside = await freeRelationName(client, original.schema, `${original.name.slice(0, 55)}__old`);
    await client.query(`ALTER SEQUENCE ${qualified(original.schema, original.name)} RENAME TO ${ident(aside)}`);
    await client.query(`ALTER SEQUENCE ${qualified(shadow.schema, shadow.name)} RENAME TO ${ident(original.name)}`);
    // A new sequence got the migrating role's default privileges for sequences: it takes the old one's rights.
    const old = (await client.query('SELECT $1::regclass::oid AS oid', [qualified(original.schema, aside)])).rows[0].oid;
    await matchRights(client, String(old), qualified(original.schema, original.name), []);
  }
}

/**
 * The old table's indexes step aside under names of their own. A fixed name can be taken, for one
 * by the indexes of a table an operator swapped back after an earlier run, so the first free one
 * of `base`, `base_2`, `base_3`... is used.
 */
async function freeRelationName(client: pg.PoolClient, schema: string, base: string): Promise<string> {
  for (let n = 1; ; n++) {
    const name = n === 1 ? base : `${base}_${n}`;
    const { rowCount } = await client.query('SELECT 1 FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = $1 AND c.relname = $2', [
      schema,
      name,
    ]);
    if (rowCount === 0) return name;
  }
}

/**
 * The partitions' own indexes, paired through the index of the root each one belongs to (whose
 * pair the plan knows), so the new partitions take the names the old ones had. Read before the
 * renames; an index the ALTER added or dropped has no pair and keeps its name.
 */
async function partitionIndexPairs(client: Client, d: PgDetail): Promise<{ original: string; shadow: string }[]> {
  const partitions = d.partitions ?? [];
  if (partitions.length === 0) return [];
  const { rows } = await client.query(
    `WITH RECURSIVE up(idx, anc) AS (
       SELECT i.indexrelid, i.indexrelid FROM pg_index i WHERE i.indrelid = ANY ($1::regclass[])
       UNION ALL
       SELECT up.idx, h.inhparent FROM up JOIN pg_inherits h ON h.inhrelid = up.anc)
     SELECT t.relname AS partition, c.relname AS index, a.relname AS root_index
       FROM up JOIN pg_index i ON i.indexrelid = up.idx JOIN pg_class c ON c.oid = up.idx JOIN pg_class a ON a.oid = up.anc
       JOIN pg_class t ON t.oid = i.indrelid
      WHERE NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = up.anc)`,
    [partitions.flatMap((p) => [qualified(d.schema, p.name), qualified(d.schema, p.shadow)])],
  );
  const originalOf = new Map([
    ...d.indexRenames.map((r) => [r.shadow, r.original] as [string, string]),
    ...partitions.map((p) => [p.shadow, p.name] as [string, string]),
  ]);
  const originals = new Map<string, string>();
  for (const r of rows) originals.set(`${r.partition}\0${r.root_index}`, r.index);
  const pairs: { original: string; shadow: string }[] = [];
  for (const r of rows) {
    const partition = originalOf.get(r.partition);
    const rootIndex = originalOf.get(r.root_index);
    if (partition === undefined || rootIndex === undefined) continue;
    const original = originals.get(`${partition}\0${rootIndex}`);
    if (original !== undefined) pairs.push({ original, shadow: r.index });
  }
  return pairs;
}

interface ForeignKey {
  table: string;
  name: string;
  def: string;
  validated: boolean;
  comment: string | null;
}

const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;

/**
 * Read under the lock, before the rename, with `search_path` set to pg_catalog so every name in the
 * generated text is schema-qualified. The statements name the table by its original name, which
 * after the rename is the new table.
 */
async function boundToOriginal(
  client: Client,
  d: PgDetail,
  relation: { oid: string; name: string; shadow: string },
  root: boolean,
): Promise<{ foreignKeys: ForeignKey[]; statements: string[]; before: string[] }> {
  const path = (await client.query(`SELECT current_setting('search_path') AS p`)).rows[0].p;
  await client.query(`SET LOCAL search_path = pg_catalog, pg_temp`);
  const table = qualified(d.schema, relation.name);
  const shadow = qualified(d.schema, relation.shadow);
  // A partition's own foreign keys are refused (partitions.ts refuseUncarried), and those to it with a
  // parent constraint are clones of keys to the root, which come back with the root's. Left: keys
  // from other tables to this partition alone.
  const foreignKeys = (
    await client.query(
      `SELECT conrelid::regclass::text AS table, conname AS name, pg_get_constraintdef(oid) AS def, convalidated,
              obj_description(oid, 'pg_constraint') AS comment
         FROM pg_constraint WHERE contype = 'f' AND ${root ? '(conrelid = $1 OR confrelid = $1)' : 'confrelid = $1 AND conparentid = 0'} ORDER BY oid`,
      [relation.oid],
    )
  ).rows.map((r) => ({ table: r.table, name: r.name, def: r.def, validated: r.convalidated === 't', comment: r.comment }));
  const generators = [
    // The owner before the rights (matchRights, after these): grants are then recorded as the right owner's.
    `SELECT format('ALTER TABLE %s OWNER TO %I', $2, pg_get_userbyid(o.relowner))
       FROM pg_class o, pg_class s WHERE o.oid = $1 AND s.oid = $3::regclass AND o.relowner <> s.relowner`,
    `SELECT format('COMMENT ON TABLE %s IS %L', $2, obj_description($1, 'pg_class'))
      WHERE obj_description($1, 'pg_class') IS NOT NULL`,
    // Rules name the table as the new one once renamed; a revert's shadow (the old table) kept its own.
    `SELECT pg_get_ruledef(r.oid) FROM pg_rewrite r WHERE r.ev_class = $1 AND r.rulename <> '_RETURN'
        AND NOT EXISTS (SELECT 1 FROM pg_rewrite x WHERE x.ev_class = $3::regclass AND x.rulename = r.rulename) ORDER BY r.oid`,
    `SELECT format('ALTER TABLE %s %s RULE %I', $2, CASE ev_enabled WHEN 'D' THEN 'DISABLE' WHEN 'R' THEN 'ENABLE REPLICA' ELSE 'ENABLE ALWAYS' END, rulename)
       FROM pg_rewrite WHERE ev_class = $1 AND rulename <> '_RETURN' AND ev_enabled <> 'O' ORDER BY oid`,
    // A trigger cloned from a partitioned parent's comes back with the parent's.
    `SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal AND tgparentid = 0 ORDER BY oid`,
    // A trigger is created enabled; one the operator disabled, or set to fire only on replicas or always, stays so.
    `SELECT format('ALTER TABLE %s %s TRIGGER %I', $2,
                   CASE tgenabled WHEN 'D' THEN 'DISABLE' WHEN 'R' THEN 'ENABLE REPLICA' ELSE 'ENABLE ALWAYS' END, tgname)
       FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal AND tgparentid = 0 AND tgenabled <> 'O' ORDER BY oid`,
    `SELECT format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', $2) FROM pg_class WHERE oid = $1 AND relrowsecurity`,
    `SELECT format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', $2) FROM pg_class WHERE oid = $1 AND relforcerowsecurity`,
    // A revert's shadow is the old table, which kept its own policies and publications: those stay as they are.
    `SELECT format('CREATE POLICY %I ON %s AS %s FOR %s TO %s', p.polname, $2,
                   CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                   CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                   CASE WHEN p.polroles = '{0}' THEN 'PUBLIC'
                        ELSE (SELECT string_agg(quote_ident(rolname), ', ' ORDER BY rolname) FROM pg_roles WHERE oid = ANY (p.polroles)) END)
           || coalesce(' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')', '')
           || coalesce(' WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')', '')
       FROM pg_policy p WHERE p.polrelid = $1
        AND NOT EXISTS (SELECT 1 FROM pg_policy x WHERE x.polrelid = $3::regclass AND x.polname = p.polname) ORDER BY p.oid`,
    // Views keep their OID (and so their own grants and dependants) with CREATE OR REPLACE.
    `SELECT DISTINCT format('CREATE OR REPLACE VIEW %s%s AS %s', v.oid::regclass,
                   ' WITH (' || array_to_string(v.reloptions, ', ') || ')', pg_get_viewdef(v.oid))
       FROM pg_depend dep JOIN pg_rewrite r ON r.oid = dep.objid JOIN pg_class v ON v.oid = r.ev_class
      WHERE dep.classid = 'pg_rewrite'::regclass AND dep.refclassid = 'pg_class'::regclass
        AND dep.refobjid = $1 AND v.oid <> $1 AND v.relkind = 'v'`,
    // Rules of other relations that name the table (an updatable view's INSTEAD rule, a rule on
    // another table writing into it): their text names it as the new table once renamed. CREATE OR
    // REPLACE keeps their OID; CREATE OR REPLACE VIEW above left them bound to the old table.
    `SELECT DISTINCT regexp_replace(pg_get_ruledef(r.oid), '^CREATE RULE ', 'CREATE OR REPLACE RULE ')
       FROM pg_depend dep JOIN pg_rewrite r ON r.oid = dep.objid
      WHERE dep.classid = 'pg_rewrite'::regclass AND dep.refclassid = 'pg_class'::regclass
        AND dep.refobjid = $1 AND r.ev_class <> $1 AND r.rulename <> '_RETURN'`,
    `SELECT format('ALTER PUBLICATION %I ADD TABLE %s', p.pubname, $2)
       FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
      WHERE pr.prrelid = $1 AND p.pubname <> $5
        AND NOT EXISTS (SELECT 1 FROM pg_publication_rel x WHERE x.prpubid = p.oid AND x.prrelid = $3::regclass)`,
    `SELECT format('ALTER TABLE %s REPLICA IDENTITY %s', $2, CASE relreplident WHEN 'f' THEN 'FULL' ELSE 'NOTHING' END)
       FROM pg_class WHERE oid = $1 AND relreplident IN ('f', 'n')`,
    `SELECT format('ALTER TABLE %s REPLICA IDENTITY USING INDEX %I', $2, c.relname)
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1 AND i.indisreplident`,
  ];
  // A partition's columns, and so their sequences, are its root's.
  if (root) {
    generators.push(
      // serial columns: the sequence is shared through the default, but dropping the old table would drop it.
      `SELECT format('ALTER SEQUENCE %s OWNED BY %s.%I', s.oid::regclass, $2, m.target)
       FROM pg_depend dep JOIN pg_class s ON s.oid = dep.objid AND s.relkind = 'S'
       JOIN pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
       JOIN json_to_recordset($4::json) m(source text, target text) ON m.source = '"' || replace(a.attname, '"', '""') || '"'
      WHERE dep.classid = 'pg_class'::regclass AND dep.refobjid = $1 AND dep.deptype = 'a'`,
      // Identity columns of the shadow have their own sequence: continue where the original's stopped.
      // A dropped column keeps its pg_attribute row under a name no function can look up: left out.
      `SELECT format('SELECT setval(%L, last_value, is_called) FROM %s',
                   pg_get_serial_sequence($3, s.attname), pg_get_serial_sequence($2, a.attname))
       FROM pg_attribute a JOIN json_to_recordset($4::json) m(source text, target text) ON m.source = '"' || replace(a.attname, '"', '""') || '"'
       JOIN pg_attribute s ON s.attrelid = $3::regclass AND s.attname = m.target AND s.attidentity <> ''
      WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND pg_get_serial_sequence($2, a.attname) IS NOT NULL`,
    );
  }
  // Every generator gets all five parameters; the CTE gives each a type even where it is unused.
  const params = `WITH params AS (SELECT $1::oid, $2::text, $3::text, $4::json, $5::text) `;
  const mapping = JSON.stringify(d.columns.map((c) => ({ source: c.source, target: c.target })));
  const statements: string[] = [];
  for (const sql of generators) {
    const { rows } = await client.query({ text: params + sql, values: [relation.oid, table, shadow, mapping, d.publication], rowMode: 'array' });
    statements.push(...rows.map((r) => r[0] as string));
  }
  const rules = await client.query(
    `SELECT format('DROP RULE %I ON %s', rulename, $2::text) AS sql FROM pg_rewrite WHERE ev_class = $1 AND rulename <> '_RETURN'`,
    [relation.oid, table],
  );
  await client.query(`SELECT set_config('search_path', $1, true)`, [path]);
  return { foreignKeys, statements, before: rules.rows.map((r) => String(r.sql)) };
}

/**
 * What belongs to each index that steps aside, for its twin on the new table once it has the name:
 * its comment, its constraint's comment (a renamed index renames its constraint too) and the CLUSTER
 * mark. LIKE copies comments only for indexes it builds, and the copy's own build has none of them.
 * Read before the renames; the statements run after them.
 */
async function boundToIndexes(client: Client, d: PgDetail, pairs: { original: string }[]): Promise<string[]> {
  if (pairs.length === 0) return [];
  const { rows } = await client.query(
    `SELECT format('COMMENT ON INDEX %I.%I IS %L', $1::text, c.relname, obj_description(c.oid, 'pg_class')) AS sql, 1 AS o
       FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relname = ANY ($2) AND obj_description(c.oid, 'pg_class') IS NOT NULL
     UNION ALL
     SELECT format('COMMENT ON CONSTRAINT %I ON %I.%I IS %L', c.relname, $1::text, t.relname, obj_description(k.oid, 'pg_constraint')), 2
       FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid JOIN pg_class t ON t.oid = i.indrelid
       -- The index's own constraint: a foreign key that uses it as its referenced key names it too.
       JOIN pg_constraint k ON k.conindid = c.oid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x')
      WHERE c.relnamespace = $1::regnamespace AND c.relname = ANY ($2) AND obj_description(k.oid, 'pg_constraint') IS NOT NULL
     UNION ALL
     SELECT format('ALTER TABLE %I.%I CLUSTER ON %I', $1::text, t.relname, c.relname), 3
       FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid JOIN pg_class t ON t.oid = i.indrelid
      WHERE c.relnamespace = $1::regnamespace AND c.relname = ANY ($2) AND i.indisclustered
     ORDER BY 2, 1`,
    [d.schema, pairs.map((p) => p.original)],
  );
  return rows.map((r) => String(r.sql));
}

/** The user's publications that list the table or one of its partitions, each with the name that relation steps aside to. */
async function publicationsLeft(client: Client, d: PgDetail): Promise<{ publication: string; relation: string }[]> {
  const left: { publication: string; relation: string }[] = [];
  for (const r of [{ oid: d.oid, old: d.old }, ...(d.partitions ?? [])]) {
    const { rows } = await client.query(
      `SELECT p.pubname FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid WHERE pr.prrelid = $1 AND p.pubname <> $2 ORDER BY 1`,
      [r.oid, d.publication],
    );
    for (const row of rows) left.push({ publication: row.pubname, relation: qualified(d.schema, r.old) });
  }
  return left;
}

interface SequenceName {
  schema: string;
  name: string;
}

/**
 * The identity columns' sequences, the original's with the shadow's: the new table's were named
 * after the shadow (`orders__new_id_seq`), and take the original names once those stepped aside.
 */
async function identitySequences(client: Client, d: PgDetail): Promise<{ original: SequenceName; shadow: SequenceName }[]> {
  const { rows } = await client.query(
    `SELECT o.relnamespace::regnamespace::text AS o_schema, o.relname AS o_name, s.relnamespace::regnamespace::text AS s_schema, s.relname AS s_name
       FROM pg_attribute a JOIN json_to_recordset($3::json) m(source text, target text) ON m.source = '"' || replace(a.attname, '"', '""') || '"'
       JOIN pg_attribute t ON t.attrelid = $2::regclass AND t.attname = m.target AND t.attidentity <> ''
       JOIN pg_class o ON o.oid = pg_get_serial_sequence($1::text, a.attname)::regclass
       JOIN pg_class s ON s.oid = pg_get_serial_sequence($2::text, t.attname)::regclass
      WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity <> '' AND o.oid <> s.oid`,
    [qualified(d.schema, d.name), qualified(d.schema, d.shadow), JSON.stringify(d.columns.map((c) => ({ source: c.source, target: c.target })))],
  );
  // regnamespace text is quoted when it must be; qualified() quotes again, so unquote it here.
  const unquote = (n: string) => (n.startsWith('"') ? n.slice(1, -1).replace(/""/g, '"') : n);
  return rows.map((r) => ({ original: { schema: unquote(r.o_schema), name: r.o_name }, shadow: { schema: unquote(r.s_schema), name: r.s_name } }));
}

/**
 * Statistics objects are named per schema like relations: the old table's step aside (to `aside`,
 * or the first free `<name>__old`), then the new table's take their names (plan.ts `statistics`).
 */
async function swapStatistics(client: Client, d: PgDetail): Promise<void> {
  const find = async (relation: string, name: string) =>
    (
      await client.query(
        `SELECT stxnamespace::regnamespace::text AS schema, stxnamespace AS ns FROM pg_statistic_ext WHERE stxrelid = $1::regclass AND stxname = $2`,
        [relation, name],
      )
    ).rows[0] as { schema: string; ns: string } | undefined;
  for (const pair of d.statistics ?? []) {
    const [original, shadow] = [await find(qualified(d.schema, d.name), pair.original), await find(qualified(d.schema, d.shadow), pair.shadow)];
    if (!original || !shadow) continue;
    let aside = pair.aside;
    for (let n = 1; aside === undefined; n++) {
      const name = `${pair.original.slice(0, 55)}__old${n === 1 ? '' : `_${n}`}`;
      const taken = await client.query(`SELECT 1 FROM pg_statistic_ext WHERE stxnamespace = $1 AND stxname = $2`, [original.ns, name]);
      if (taken.rowCount === 0) aside = name;
    }
    await client.query(`ALTER STATISTICS ${original.schema}.${ident(pair.original)} RENAME TO ${ident(aside)}`);
    await client.query(`ALTER STATISTICS ${shadow.schema}.${ident(pair.shadow)} RENAME TO ${ident(pair.original)}`);
  }
}
