import type pg from 'pg';
import { UserError } from '../../../core/engine/errors.js';
import { breakingChanges, classification, type ColumnShape } from '../../../core/engine/in-place-rules.js';
import type { AlterClassification, AlterPart, InPlaceStep } from '../../../core/engine/ports/in-place.js';
import { splitClauses } from '../server/alter-clauses.js';
import { asUser, type Client } from '../server/connect.js';
import { errorCode, isTransientPgError } from '../server/errors.js';
import { ident, isTrue, qualified } from '../server/sql.js';
import { inRolledBackTransaction } from '../server/transactions.js';
import { inspectTable } from '../schema/inspect.js';
import { inPlaceSteps, LOCKS, type Probed } from './in-place-steps.js';
import { partKind, type PartKind } from './part-kind.js';
import { buildProbe, emptyProbe, type ProbeShape } from './probe-shape.js';
import { claimFreeNames } from './step-names.js';
import { describeWork, isIdle, readWork, workBetween, type Work } from './probe-work.js';

/**
 * Part by part on a probe of the table's shape (probe-shape.ts: TEMPORARY copies under the same
 * names, partitions and children included, with a few real rows), in a transaction that is rolled
 * back. The server's own counters say what each part cost (probe-work.ts): a part is `instant` only
 * when the server neither rewrote, nor read, nor rebuilt anything of the probe for it. A part that
 * reads rows has an online form only when it is a constraint (added NOT VALID, validated while
 * writers go on) or a unique index (built CONCURRENTLY); anything else that works is the copy.
 */
export async function classifyPgAlter(pool: pg.Pool, schema: string, name: string, alter: string): Promise<AlterClassification> {
  if (/^\s*ALTER\s+TABLE\b/i.test(alter)) throw new UserError('--alter takes only the clause after ALTER TABLE <name>, e.g. "ADD COLUMN note text"');
  const clauses = splitClauses(alter);
  if (clauses.length === 0) throw new UserError('--alter is empty; give what follows ALTER TABLE <name>, e.g. "ADD COLUMN note text"');
  const t = await inspectTable(pool, schema, name);
  return inRolledBackTransaction(pool, 2000, async (client) => {
    const shape = await buildProbe(client, schema, name, t.oid);
    if (typeof shape === 'string') {
      const parts = clauses.map((clause) => ({ clause, class: 'copy' as const, reason: shape, locks: LOCKS.copy, breaking: [] }));
      return classification(parts, [], `the in-place classifier cannot prove what the server does: ${shape}`);
    }
    await client.query('SAVEPOINT shape');
    const rows = shape.rows;
    const probed: Probed[] = [];
    for (const clause of clauses) probed.push(await classifyPart(client, shape, name, clause, probed));
    await claimFreeNames(client, schema, name, t.oid, probed);
    const parts = probed.map((p) => p.part);
    const planned = inPlaceSteps(qualified(schema, name), schema, name, probed);
    if (typeof planned === 'string') return classification(parts, [], planned);
    if (parts.some((p) => p.class === 'copy')) return classification(parts, planned);
    await client.query('ROLLBACK TO SAVEPOINT shape');
    shape.rows = rows;
    const together = await proveLastStep(
      client,
      shape,
      inPlaceSteps(
        shape.probe,
        'pg_temp',
        name,
        probed.filter((p) => !p.untried),
      ) as InPlaceStep[],
    );
    return classification(parts, planned, together);
  });
}

async function classifyPart(client: Client, shape: ProbeShape, table: string, clause: string, earlier: Probed[]): Promise<Probed> {
  const kind = partKind(clause);
  const part = (cls: AlterPart['class'], reason: string, locks: string): AlterPart => ({ clause, class: cls, reason, locks, breaking: [] });
  const before = await columns(client, shape.oid);
  if (kind.kind === 'add-foreign-key') {
    // A temporary table cannot reference a permanent one: the server checks this part when it runs.
    const constraint = kind.name ?? `${table}_${kind.columns.join('_')}_fkey`.slice(0, 63);
    const reads = kind.columns.map((c) => before.find((b) => b.name === c)?.id ?? `new:${c}`);
    return kind.notValid
      ? { kind, reads: [], changes: [], untried: true, part: part('instant', 'NOT VALID: only rows written from now on are checked', LOCKS.brief) }
      : {
          kind,
          constraint,
          reads,
          changes: [],
          untried: true,
          part: part('validate-later', 'added NOT VALID, then validated while writers go on', LOCKS.validate),
        };
  }
  const indexesBefore = new Set((await indexes(client, shape.oid)).map((i) => i.name));
  const constraintsBefore = new Set(await constraintOids(client, shape.oid));
  const run = await tryOnProbe(client, shape, clause);
  if (run instanceof Error) {
    // A constraint the copy does not have (a foreign key): the server judges this part when it runs.
    if (kind.kind === 'drop-constraint' || kind.kind === 'rename-constraint')
      return { kind, reads: [], changes: [], untried: true, part: part('instant', 'metadata only', LOCKS.brief) };
    // Parts are tried one after another, but every USING of one ALTER reads the old row: one that
    // fails on a column an earlier part already converted is judged whole, by the copy's shadow.
    if (kind.kind === 'type' && earlier.some((p) => p.changes.length > 0))
      return {
        kind,
        reads: [],
        changes: [],
        untried: true,
        part: part('copy', 'its USING reads a column another part converts: the copy evaluates every USING over the old row', LOCKS.copy),
      };
    throw new UserError(`the ALTER fails: ${run.message.replace(/pg_temp_\d+\./g, '')}`);
  }
  const after = await columns(client, shape.oid);
  const probed: Probed = { kind, reads: [], changes: changedColumns(before, after), part: classOf(kind, run, shape, part) };
  if (kind.kind === 'add-unique' && probed.part.class === 'online-index') {
    const made = (await indexes(client, shape.oid)).find((i) => !indexesBefore.has(i.name));
    if (!made) throw new UserError(`the ALTER fails: "${clause}" made no index`);
    probed.index = made;
    probed.reads = await columnsUsedBy(client, 'pg_class', made.oid, shape.oid);
  }
  if (kind.kind === 'add-check' && probed.part.class === 'validate-later') {
    const made = (await constraintOids(client, shape.oid)).find((c) => !constraintsBefore.has(c));
    if (made) {
      probed.constraint = (await client.query(`SELECT conname FROM pg_constraint WHERE oid = $1`, [made])).rows[0].conname;
      probed.reads = await columnsUsedBy(client, 'pg_constraint', made, shape.oid);
    }
  }
  if (kind.kind === 'set-not-null') probed.reads = before.filter((c) => c.name === kind.column).map((c) => c.id);
  probed.part.breaking = breakingChanges(before, after, probed.part.class === 'copy');
  return probed;
}

/**
 * The part on the probe, and what the server did for it. Sampled rows can make a part fail that
 * the table's other rows might not (a CHECK, SET NOT NULL, a USING cast): then it is measured again
 * on the emptied probe, where a scan still counts.
 */
async function tryOnProbe(client: Client, shape: ProbeShape, clause: string): Promise<Work | Error> {
  for (let emptied = false; ; emptied = true) {
    const before = await readWork(client, shape);
    await client.query('SAVEPOINT part');
    try {
      await asUser(client, () => client.query(`ALTER TABLE ${shape.probe} ${clause}`));
      await client.query('RELEASE SAVEPOINT part');
      return workBetween(before, await readWork(client, shape));
    } catch (error) {
      await client.query('ROLLBACK TO SAVEPOINT part');
      const onTheRows = /^2[23]/.test(errorCode(error) ?? '');
      if (emptied || !onTheRows || shape.rows === 0) return error as Error;
      await emptyProbe(client, shape);
    }
  }
}

/**
 * The steps themselves on the probe (each build without CONCURRENTLY, which a transaction cannot
 * run), the last one measured: the parts together must still make the server read, rewrite and
 * rebuild nothing under the last step's ACCESS EXCLUSIVE lock. Returns why not, when they do.
 */
async function proveLastStep(client: Client, shape: ProbeShape, steps: InPlaceStep[]): Promise<string | undefined> {
  const last = steps.at(-1);
  if (!last?.transaction) return undefined;
  for (let emptied = false; ; emptied = true) {
    await client.query('SAVEPOINT steps');
    try {
      await asUser(client, async () => {
        for (const step of steps.slice(0, -1)) for (const sql of step.sql) await client.query(sql.replace(/\bCONCURRENTLY\s+/i, ''));
      });
      const before = await readWork(client, shape);
      await asUser(client, async () => {
        for (const sql of last.sql) await client.query(sql);
      });
      const work = workBetween(before, await readWork(client, shape));
      await client.query('RELEASE SAVEPOINT steps');
      if (isIdle(work)) return undefined;
      return `for the parts together, the server ${describeWork(work)} under the last step's ACCESS EXCLUSIVE lock (on a probe of the table's shape)`;
    } catch (error) {
      await client.query('ROLLBACK TO SAVEPOINT steps');
      if (isTransientPgError(error)) throw error; // a lost session, not the ALTER's refusal
      if (emptied || !/^2[23]/.test(errorCode(error) ?? '') || shape.rows === 0)
        throw new UserError(`the ALTER fails: ${(error as Error).message.replace(/pg_temp_\d+\./g, '')}`);
      await emptyProbe(client, shape);
    }
  }
}

type Part = (cls: AlterPart['class'], reason: string, locks: string) => AlterPart;

function classOf(kind: PartKind, work: Work, shape: ProbeShape, part: Part): AlterPart {
  const seen = `on a probe of the table's shape (${shape.relations.length} relation(s), ${shape.rows} real row(s))`;
  const did = describeWork(work);
  if (work.rewritten.length) return part('copy', `the server ${did} for it ${seen}`, LOCKS.copy);
  switch (kind.kind) {
    case 'add-unique':
      if (shape.partitioned) return part('copy', 'a unique index on a partitioned table cannot be built CONCURRENTLY', LOCKS.copy);
      return part('online-index', 'the index is built with CREATE UNIQUE INDEX CONCURRENTLY, then attached as the constraint', LOCKS.index);
    case 'add-check':
      if (!kind.notValid) return part('validate-later', 'added NOT VALID, then validated while writers go on', LOCKS.validate);
      break;
    case 'set-not-null':
      if (!isIdle(work))
        return part(
          'validate-later',
          'a CHECK (c IS NOT NULL) added NOT VALID and validated while writers go on, then SET NOT NULL uses it instead of a scan under lock',
          LOCKS.notNull,
        );
      break;
  }
  if (!isIdle(work)) return part('copy', `the server ${did} for it under its ACCESS EXCLUSIVE lock ${seen}`, LOCKS.copy);
  return part('instant', `metadata only: the server rewrote, read and rebuilt nothing for it ${seen}`, LOCKS.brief);
}

/** Columns (by attnum) a part adds, drops, renames or gives another type. */
function changedColumns(before: ColumnShape[], after: ColumnShape[]): string[] {
  const was = new Map(before.map((c) => [c.id, c]));
  const now = new Map(after.map((c) => [c.id, c]));
  const changed = before.filter((c) => !now.has(c.id) || now.get(c.id)!.name !== c.name || now.get(c.id)!.type !== c.type).map((c) => c.id);
  return [...changed, ...after.filter((c) => !was.has(c.id)).map((c) => c.id)];
}

/**
 * The table's columns (attnums) an index or constraint depends on, expressions and predicates
 * included. An index made for a constraint has its column dependencies on the constraint's row.
 */
async function columnsUsedBy(client: Client, catalog: 'pg_class' | 'pg_constraint', oid: string, table: string): Promise<string[]> {
  const { rows } = await client.query(
    `WITH objects AS (SELECT '${catalog}'::regclass AS classid, $1::oid AS objid
                      UNION ALL SELECT 'pg_constraint'::regclass, oid FROM pg_constraint WHERE '${catalog}' = 'pg_class' AND conindid = $1)
     SELECT DISTINCT d.refobjsubid FROM pg_depend d JOIN objects o ON o.classid = d.classid AND o.objid = d.objid
      WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $2 AND d.refobjsubid > 0`,
    [oid, table],
  );
  return rows.map((r) => String(r.refobjsubid));
}

async function indexes(client: Client, oid: string): Promise<NonNullable<Probed['index']>[]> {
  const { rows } = await client.query(
    // pg_get_indexdef leaves out the tablespace the ALTER named (USING INDEX TABLESPACE). The probe
    // is temporary: its index is elsewhere than the database's only when named or in temp_tablespaces.
    `SELECT c.oid, c.relname, pg_get_indexdef(i.indexrelid) AS def, con.condeferrable, con.condeferred, s.spcname AS tablespace
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
       LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
       LEFT JOIN pg_tablespace s ON s.oid = c.reltablespace
             AND NOT s.spcname = ANY (string_to_array(replace(current_setting('temp_tablespaces'), ' ', ''), ','))
      WHERE i.indrelid = $1`,
    [oid],
  );
  return rows.map((r) => ({
    oid: String(r.oid),
    name: r.relname,
    // A constraint's index: no WHERE, so the tablespace comes last.
    create: `${r.def}${r.tablespace === null ? '' : ` TABLESPACE ${ident(r.tablespace)}`}`,
    deferrable: isTrue(r.condeferrable) ? (isTrue(r.condeferred) ? ' DEFERRABLE INITIALLY DEFERRED' : ' DEFERRABLE') : '',
  }));
}

async function constraintOids(client: Client, oid: string): Promise<string[]> {
  const { rows } = await client.query(`SELECT oid FROM pg_constraint WHERE conrelid = $1 AND contype = 'c'`, [oid]);
  return rows.map((r) => String(r.oid));
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
