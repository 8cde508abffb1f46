import type pg from 'pg';
import { UserError } from '../../core/errors.js';
import { breakingChanges, classification, type AlterClassification, type AlterPart, type ColumnShape, type InPlaceStep } from '../../core/in-place/types.js';
import { splitClauses } from './alter.js';
import { ident, inRolledBackTransaction, isTrue, qualified, type Client } from './connect.js';
import { inspectTable } from './inspect.js';
import { pairIndexes } from './shadow.js';
import { partKind, type PartKind } from './part-kind.js';

const LOCKS = {
  brief: 'ACCESS EXCLUSIVE for milliseconds (waits at most --lock-timeout-ms, retried with backoff); rows untouched',
  validate: 'SHARE UPDATE EXCLUSIVE while the rows are checked (writers go on); ACCESS EXCLUSIVE for milliseconds to add the constraint NOT VALID',
  notNull: 'ACCESS EXCLUSIVE for milliseconds, twice (the CHECK added NOT VALID, then SET NOT NULL on the validated CHECK); SHARE UPDATE EXCLUSIVE while the rows are checked',
  index: 'SHARE UPDATE EXCLUSIVE for the whole build (writers go on; waits for transactions already running); ACCESS EXCLUSIVE for milliseconds to attach the constraint',
  copy: "none on the table during the copy; the cut-over's ACCESS EXCLUSIVE for at most --lock-timeout-ms per attempt",
};

interface Probed {
  part: AlterPart;
  kind: PartKind;
  /** The index an ADD ... UNIQUE made on the probe, as `pg_get_indexdef` and its constraint's name. */
  index?: { create: string; name: string; deferrable: string };
  /** The constraint an ADD CHECK / FOREIGN KEY gets (the name the server chose on the probe, or will choose). */
  constraint?: string;
}

/**
 * Part by part on a TEMPORARY copy of the table under the same name (so generated constraint and
 * index names come out as on the table), in a transaction that is rolled back. The server tells
 * what it rewrote: a part that gives the table or one of its indexes new storage (relfilenode)
 * rewrote it, which is what a volatile default or a type change that is not binary-coercible does.
 * Other kinds are classified by what PostgreSQL is documented to do for them (part-kind.ts).
 */
export async function classifyPgAlter(pool: pg.Pool, schema: string, name: string, alter: string): Promise<AlterClassification> {
  if (/^\s*ALTER\s+TABLE\b/i.test(alter)) throw new UserError('--alter takes only the clause after ALTER TABLE <name>, e.g. "ADD COLUMN note text"');
  const clauses = splitClauses(alter);
  if (clauses.length === 0) throw new UserError('--alter is empty; give what follows ALTER TABLE <name>, e.g. "ADD COLUMN note text"');
  const t = await inspectTable(pool, schema, name);
  return inRolledBackTransaction(pool, 2000, async (client) => {
    const probe = `pg_temp.${ident(name)}`;
    await client.query(`CREATE TEMPORARY TABLE ${ident(name)} (LIKE ${qualified(schema, name)} INCLUDING ALL)`);
    const probeOid: string = (await client.query(`SELECT $1::regclass::oid AS oid`, [probe])).rows[0].oid;
    // LIKE names the copies' indexes itself; given the originals' names, DROP/RENAME CONSTRAINT find them.
    for (const [original, copy] of await pairIndexes(client, t.oid, probeOid)) {
      if (original !== copy) await client.query(`ALTER INDEX pg_temp.${ident(copy)} RENAME TO ${ident(original)}`);
    }
    const probed: Probed[] = [];
    for (const clause of clauses) probed.push(await classifyPart(client, probe, probeOid, name, clause));
    return classification(
      probed.map((p) => p.part),
      steps(qualified(schema, name), schema, name, probed),
    );
  });
}

async function classifyPart(client: Client, probe: string, oid: string, table: string, clause: string): Promise<Probed> {
  const kind = partKind(clause);
  const part = (cls: AlterPart['class'], reason: string, locks: string): AlterPart => ({ clause, class: cls, reason, locks, breaking: [] });
  if (kind.kind === 'add-foreign-key') {
    // A temporary table cannot reference a permanent one: the server checks this part when it runs.
    const constraint = kind.name ?? `${table}_${kind.columns.join('_')}_fkey`.slice(0, 63);
    return kind.notValid
      ? { kind, part: part('instant', 'NOT VALID: only rows written from now on are checked', LOCKS.brief) }
      : { kind, constraint, part: part('validate-later', 'added NOT VALID, then validated while writers go on', LOCKS.validate) };
  }
  const before = await columns(client, oid);
  const storage = await relfilenodes(client, oid);
  const indexesBefore = new Set((await indexes(client, oid)).map((i) => i.name));
  const constraintsBefore = new Set(await checkNames(client, oid));
  await client.query('SAVEPOINT part');
  try {
    await client.query(`ALTER TABLE ${probe} ${clause}`);
  } catch (error) {
    await client.query('ROLLBACK TO SAVEPOINT part');
    // A constraint the copy does not have (a foreign key): the server judges this part when it runs.
    if (kind.kind === 'drop-constraint' || kind.kind === 'rename-constraint') return { kind, part: part('instant', 'metadata only', LOCKS.brief) };
    throw new UserError(`the ALTER fails: ${(error as Error).message.replace(/pg_temp_\d+\./g, '')}`);
  }
  const now = await relfilenodes(client, oid);
  // A new index has storage of its own; only the table's and the existing indexes' count.
  const rewritten = [...storage].some(([relation, node]) => now.has(relation) ? now.get(relation) !== node : false) || now.get('') !== storage.get('');
  const after = await columns(client, oid);
  const probed: Probed = { kind, part: classOf(kind, rewritten, part) };
  if (kind.kind === 'add-unique' && probed.part.class === 'online-index') {
    const made = (await indexes(client, oid)).find((i) => !indexesBefore.has(i.name));
    if (!made) throw new UserError(`the ALTER fails: "${clause}" made no index`);
    probed.index = made;
  }
  if (kind.kind === 'add-check' && probed.part.class === 'validate-later') {
    probed.constraint = (await checkNames(client, oid)).find((c) => !constraintsBefore.has(c));
  }
  probed.part.breaking = breakingChanges(before, after, probed.part.class === 'copy');
  return probed;
}

function classOf(kind: PartKind, rewritten: boolean, part: (cls: AlterPart['class'], reason: string, locks: string) => AlterPart): AlterPart {
  switch (kind.kind) {
    case 'add-column':
      if (rewritten) return part('copy', 'the server rewrites the table for it (a volatile default, a stored generated or an identity column)', LOCKS.copy);
      if (kind.constrained) return part('copy', "the new column's constraint is checked, or its index built, under the ALTER's exclusive lock", LOCKS.copy);
      return part('instant', 'metadata only: no default, or a default the server stores once (not volatile)', LOCKS.brief);
    case 'type':
      return rewritten
        ? part('copy', 'the server rewrites the table or an index for it: the new type is not binary-coercible (or the collation changes)', LOCKS.copy)
        : part('instant', "binary-coercible: the server keeps the table's and its indexes' storage", LOCKS.brief);
    case 'set-not-null':
      return part('validate-later', 'a CHECK (c IS NOT NULL) added NOT VALID and validated while writers go on, then SET NOT NULL uses it instead of a scan under lock', LOCKS.notNull);
    case 'add-check':
      return kind.notValid
        ? part('instant', 'NOT VALID: only rows written from now on are checked', LOCKS.brief)
        : part('validate-later', 'added NOT VALID, then validated while writers go on', LOCKS.validate);
    case 'add-unique':
      return rewritten ? part('copy', 'the server rewrites the table for it', LOCKS.copy) : part('online-index', 'the index is built with CREATE UNIQUE INDEX CONCURRENTLY, then attached as the constraint', LOCKS.index);
    case 'metadata':
    case 'rename-column':
    case 'drop-constraint':
    case 'rename-constraint':
      return rewritten ? part('copy', 'the server rewrites the table for it', LOCKS.copy) : part('instant', 'metadata only', LOCKS.brief);
    default:
      return part('copy', 'not known to be in place: the server may rewrite or scan the table under its exclusive lock', LOCKS.copy);
  }
}

/**
 * The order keeps what each step needs in place before it: the brief ALTERs first, in one
 * transaction (columns exist, constraints added NOT VALID), then validations, then SET NOT NULL on
 * the validated CHECKs, then the index builds. Every step's undo leaves no half-made object.
 */
function steps(table: string, schema: string, name: string, probed: Probed[]): InPlaceStep[] {
  const brief: string[] = [];
  const later: InPlaceStep[] = [];
  const notNull: InPlaceStep[] = [];
  const builds: InPlaceStep[] = [];
  const alter = (what: string) => `ALTER TABLE ${table} ${what}`;
  let pending: string[] = [];
  const flush = () => {
    if (pending.length) brief.push(alter(pending.join(', ')));
    pending = [];
  };
  for (const { part, kind, index, constraint } of probed) {
    const clause = part.clause;
    if (kind.kind === 'rename-column' || kind.kind === 'rename-constraint') {
      // RENAME cannot share an ALTER TABLE with other subcommands.
      flush();
      brief.push(alter(clause));
    } else if (part.class === 'instant') {
      pending.push(clause);
    } else if (part.class === 'validate-later' && kind.kind === 'set-not-null') {
      const check = `${name}_${kind.column}_not_null`.slice(0, 56) + '_sc_chk';
      pending.push(`ADD CONSTRAINT ${ident(check)} CHECK (${ident(kind.column)} IS NOT NULL) NOT VALID`);
      later.push({ what: `validate ${check}`, sql: [alter(`VALIDATE CONSTRAINT ${ident(check)}`)], transaction: true, undo: [alter(`DROP CONSTRAINT IF EXISTS ${ident(check)}`)] });
      notNull.push({
        what: `SET NOT NULL on ${kind.column} (using ${check})`,
        sql: [alter(`ALTER COLUMN ${ident(kind.column)} SET NOT NULL`), alter(`DROP CONSTRAINT ${ident(check)}`)],
        transaction: true,
        undo: [alter(`DROP CONSTRAINT IF EXISTS ${ident(check)}`)],
      });
    } else if (part.class === 'validate-later') {
      const named = constraint && !/^CONSTRAINT\b/i.test(clause.replace(/^ADD\s+/i, '')) ? `ADD CONSTRAINT ${ident(constraint)} ${clause.replace(/^ADD\s+/i, '')}` : clause;
      pending.push(`${named} NOT VALID`);
      later.push({ what: `validate ${constraint}`, sql: [alter(`VALIDATE CONSTRAINT ${ident(constraint!)}`)], transaction: true, undo: [alter(`DROP CONSTRAINT IF EXISTS ${ident(constraint!)}`)] });
    } else if (part.class === 'online-index' && index) {
      const create = index.create.replace(/^CREATE UNIQUE INDEX (\S+) ON (?:ONLY )?\S+/, `CREATE UNIQUE INDEX CONCURRENTLY $1 ON ${table}`);
      const drop = `DROP INDEX CONCURRENTLY IF EXISTS ${qualified(schema, index.name)}`;
      builds.push({ what: `build ${index.name} concurrently`, sql: [create], transaction: false, undo: [drop] });
      builds.push({ what: `attach ${index.name} as a constraint`, sql: [alter(`ADD CONSTRAINT ${ident(index.name)} UNIQUE USING INDEX ${ident(index.name)}${index.deferrable}`)], transaction: true, undo: [drop] });
    }
  }
  flush();
  const first: InPlaceStep[] = brief.length ? [{ what: brief.length === 1 ? brief[0] : `${brief.length} ALTER TABLE statements in one transaction`, sql: brief, transaction: true, undo: [] }] : [];
  return [...first, ...later, ...notNull, ...builds];
}

/**
 * The table's and its indexes' storage by name: it changes when the server rewrites either. By name,
 * not OID: a binary-coercible type change recreates an index's catalog entry but keeps its storage.
 */
async function relfilenodes(client: Client, oid: string): Promise<Map<string, string>> {
  const { rows } = await client.query(
    `SELECT CASE WHEN c.oid = $1 THEN '' ELSE c.relname END AS name, c.relfilenode FROM pg_class c
      WHERE c.oid = $1 OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = $1)`,
    [oid],
  );
  return new Map(rows.map((r) => [String(r.name), String(r.relfilenode)]));
}

async function indexes(client: Client, oid: string): Promise<{ name: string; create: string; deferrable: string }[]> {
  const { rows } = await client.query(
    `SELECT c.relname, pg_get_indexdef(i.indexrelid) AS def, con.condeferrable, con.condeferred FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
       LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid WHERE i.indrelid = $1`,
    [oid],
  );
  return rows.map((r) => ({
    name: r.relname,
    create: r.def,
    deferrable: isTrue(r.condeferrable) ? (isTrue(r.condeferred) ? ' DEFERRABLE INITIALLY DEFERRED' : ' DEFERRABLE') : '',
  }));
}

async function checkNames(client: Client, oid: string): Promise<string[]> {
  const { rows } = await client.query(`SELECT conname FROM pg_constraint WHERE conrelid = $1 AND contype = 'c'`, [oid]);
  return rows.map((r) => r.conname);
}

/** Columns by attnum, which a rename keeps. */
async function columns(client: Client, oid: string): Promise<ColumnShape[]> {
  const { rows } = await client.query(
    `SELECT attnum, attname, format_type(atttypid, atttypmod) AS type, attnotnull, atthasdef, attidentity, attgenerated
       FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [oid],
  );
  return rows.map((r) => ({
    id: String(r.attnum),
    name: r.attname,
    type: r.type,
    nullable: !isTrue(r.attnotnull),
    hasDefault: isTrue(r.atthasdef) || r.attidentity !== '' || r.attgenerated !== '',
  }));
}
