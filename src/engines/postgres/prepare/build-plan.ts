import type pg from 'pg';
import { UserError, ALWAYS_ROLLED_BACK, ignoreFailure } from '../../../core/engine/errors.js';
import { chooseCapture, describeCapture } from '../../../core/engine/capture/capture-choice.js';
import { logicalDecodingProblems } from '../checks/logical-decoding.js';
import { streamNames } from '../capture/logical/set-stream.js';
import type { MigrationRequest, Plan } from '../../../core/engine/types.js';
import { helperNames } from '../server/helper-names.js';
import { isTrue, parseTableName, qualified } from '../server/sql.js';
import { definitionOf, inspectTable } from '../schema/inspect.js';
import { loosenedRules } from '../schema/loosened-constraints.js';
import { foreignOwner, ownerCodeRefusal, refuseOwnerCode } from '../server/owner-code.js';
import { keyTypes } from '../server/key-types.js';
import { usingExpressions } from '../schema/alter.js';
import { buildShadow, copyInto } from '../schema/shadow.js';
import { foreignKeyClauses, type ForeignKeyClause } from '../server/alter-names.js';
import { storageOptions } from '../server/autovacuum.js';
import { addChecks, notValidChecks } from '../schema/not-valid-checks.js';
import { chooseOldTable } from '../schema/old-tables.js';
import { partitionKey, partitionTree, readPartitions, refuseUncarried } from '../schema/partitions.js';
import { shadowTreeOf, type PgDetail } from '../schema/plan.js';

/**
 * Builds the shadow in a transaction that is rolled back: a bad ALTER is reported by the server
 * itself, the column mapping comes from the catalog, and nothing is left behind (invariant 7).
 */
export async function buildPlan(pool: pg.Pool, request: MigrationRequest): Promise<Plan<PgDetail>> {
  const { schema, name } = parseTableName(request.table);
  const names = helperNames(schema, name);
  const t = await inspectTable(pool, schema, name);
  // An earlier run's kept original (or a user's table) under the first name is no leftover: the next name is taken.
  const old = await chooseOldTable(pool, schema, name);
  if (!t.key) throw new UserError(t.noKeyReason);
  await refuseInvalidIndexes(pool, t.oid);
  const partitioned = t.kind === 'p' ? await planPartitions(pool, schema, t.oid) : {};
  // The probe below runs the ALTER with our rights (a non-volatile DEFAULT it adds is evaluated
  // even on an empty table): what it adds is first looked at as the owner made it.
  await refuseOwnerCode(pool, t.oid, [], { alter: request.alter, keyColumns: t.key.columns, reparsed: true });
  const layout = await rolledBack(pool, async (client) => {
    const shadowName = await probeName(client, schema, names);
    // The probe beside a leftover shadow names its partitions after itself, clear of the leftover's.
    const tree = shadowTreeOf(partitioned, (p) => (shadowName === names.shadow ? p.shadow : `${shadowName}_${partitioned.partitions!.indexOf(p)}`));
    const built = await buildShadow(client, t, request.alter, shadowName, 'none', tree);
    // The probe as the new table is after the cut-over, which adds them back: nothing loosened, the ALTER's own seen as such.
    await addChecks(client, qualified(schema, shadowName), built.notValidChecks);
    const added = await client.query(`SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = $1::regclass`, [qualified(schema, shadowName)]);
    const loosened = await loosenedRules(client, qualified(schema, name), qualified(schema, shadowName), built.columns);
    // On the probe: the shadow's code is the ALTER's, and the copy's statement names its USING and casts.
    const foreignCode = await ownerCodeRefusal(
      client,
      t.oid,
      [qualified(schema, name), qualified(schema, shadowName)],
      [
        { sql: copyInto(qualified(schema, shadowName), built, qualified(schema, name)), what: "the copy (the ALTER's USING and conversions)", compares: false },
        ...[...usingExpressions(request.alter)].map(([column, using]) => ({
          sql: `SELECT (${using}) FROM ${qualified(schema, name)}`,
          what: `USING of column ${column}`,
        })),
      ],
      { keyColumns: t.key!.columns, reparsed: true },
    );
    const owner = await foreignOwner(client, t.oid);
    // A plain table's: what the new table's storage options are once the ALTER is made (the shadow's are off until the swap).
    const autovacuum = t.kind === 'r' ? await storageOptions(client, qualified(schema, shadowName)) : undefined;
    const keyClauses = await foreignKeyClauses(client, t.oid, request.alter);
    return { ...built, addedForeignKeys: added.rows.map((r) => String(r.conname)), loosened, foreignCode, owner, autovacuum, keyClauses };
  });
  await refuseKeysIntoDropped(pool, t.oid, layout.droppedIndexes);
  if (t.noStreamReason && request.capture === 'stream') throw new UserError(`--capture stream: ${t.noStreamReason}; use --capture trigger (or auto)`);
  const streamProblems = t.noStreamReason ? [t.noStreamReason] : await logicalDecodingProblems(pool);
  const capture = chooseCapture(request.capture ?? 'auto', 'logical decoding', streamProblems);
  // Keys from other tables to one partition are the cut-over's to carry too (those to the root are
  // cloned onto every partition with a parent constraint: they come back with the root's).
  const fks = await pool.query(
    `SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f'
        AND (conrelid = $1 OR confrelid = $1 OR (conparentid = 0 AND confrelid = ANY ($2::oid[]) AND NOT conrelid = ANY ($2::oid[])))`,
    [t.oid, (partitioned.partitions ?? []).map((p) => p.oid)],
  );
  const ours = [...names.captureTriggers, ...names.reverseCapture.captureTriggers];
  const triggers = await pool.query(
    `SELECT tgname FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal AND tgparentid = 0 AND NOT tgname = ANY ($2::text[])`,
    [t.oid, ours],
  );
  const detail: PgDetail = {
    oid: t.oid,
    schema,
    name,
    shadow: names.shadow,
    old,
    ...(await streamNames(pool, schema, name, names, request.set)),
    originalKey: t.key.columns,
    shadowKey: layout.shadowKey,
    keyTypes: await keyTypes(pool, t.oid, t.key.columns),
    columns: layout.columns,
    // pgoutput leaves generated columns out of relation messages.
    streamColumns: t.columns.filter((c) => c.generated === '').map((c) => ({ name: c.name, typeOid: c.typeOid, typeMod: c.typeMod })),
    definition: await definitionOf(pool, t.oid),
    indexes: layout.indexes,
    // Unlike a MySQL ALTER, a PostgreSQL index build is WAL that standbys replay as it comes:
    // deferring it holds up no one, so `auto` means on.
    deferIndexes: request.deferIndexes !== 'off',
    // A partitioned table keeps its key through the copy: its key index is one per partition.
    ...(request.deferIndexes !== 'off' && t.kind === 'r' ? { keyIndex: layout.keyIndex } : {}),
    indexRenames: layout.indexRenames,
    ...(layout.helperKey ? { helperKey: { shadow: layout.helperKey, original: t.key.index } } : {}),
    ...(layout.droppedIndexes.length ? { droppedIndexes: layout.droppedIndexes } : {}),
    marks: layout.marks,
    statistics: layout.statistics,
    notValidChecks: layout.notValidChecks,
    originalNotValid: (await notValidChecks(pool, qualified(schema, name))).map((c) => c.name),
    changedColumns: layout.changedColumns,
    ...(layout.renamedColumns.length ? { renamedColumns: layout.renamedColumns } : {}),
    validatedForeignKeys: validatedAfter(
      fks.rows.filter((r) => isTrue(r.convalidated)).map((r) => String(r.conname)),
      layout.keyClauses,
    ),
    // VALIDATE would read the whole table under the cut-over's lock: cleanup validates instead.
    ...(layout.keyClauses.length ? { foreignKeyClauses: layout.keyClauses.filter((c) => !c.validates).map((c) => c.sql) } : {}),
    addedForeignKeys: layout.addedForeignKeys,
    generatedNames: layout.generatedNames,
    triggers: triggers.rows.map((r) => String(r.tgname)),
    loosened: layout.loosened,
    ...(layout.foreignCode ? { foreignCode: layout.foreignCode } : {}),
    ...(layout.owner ? { foreignOwner: layout.owner } : {}),
    ...(layout.autovacuum ? { autovacuum: layout.autovacuum } : {}),
    ...partitioned,
  };
  return {
    table: `${schema}.${name}`,
    shadowTable: `${schema}.${names.shadow}`,
    oldTable: `${schema}.${old}`,
    alter: request.alter,
    keyColumns: t.key.columns,
    estimatedRows: t.estimatedRows,
    capture,
    summary: [
      ...layout.summary,
      describeCapture(capture),
      ...(old === names.old ? [] : [`the original is kept after the cut-over as ${schema}.${old} (${names.old} is taken)`]),
      ...(layout.indexes.length
        ? [
            `secondary indexes ${detail.deferIndexes ? 'built after the copy' : 'maintained during the copy'}: ${layout.indexes.map((i) => i.shadow).join(', ')}`,
          ]
        : []),
      ...(detail.keyIndex ? [`the key's index ${detail.keyIndex.shadow} built after the copy, which fills a table with no index`] : []),
    ],
    detail,
  };
}

/** The foreign keys cleanup validates, as the ALTER's clauses leave them: renamed, validated, dropped. */
function validatedAfter(validated: string[], clauses: ForeignKeyClause[]): string[] {
  let names = validated;
  for (const c of clauses) {
    if (c.validates) names = [...names, c.name];
    else if (c.renamedTo !== null) names = names.map((n) => (n === c.name ? c.renamedTo! : n));
    else if (/^DROP\b/i.test(c.sql)) names = names.filter((n) => n !== c.name);
  }
  return names;
}

/**
 * An INVALID index (a failed CREATE INDEX CONCURRENTLY) is kept as it is by a native ALTER that does
 * not rewrite the table, and rebuilt (valid, or failing the ALTER on duplicates) by one that does.
 * The copy builds every index of the new table, so it could only ever give the second: refused
 * before anything is made. The in-place path runs the native ALTER and keeps it.
 */
async function refuseInvalidIndexes(pool: pg.Pool, oid: string): Promise<void> {
  const { rows } = await pool.query(
    `SELECT i.indexrelid::regclass::text AS name FROM pg_index i
      WHERE (i.indrelid = $1 OR i.indrelid IN (SELECT relid FROM pg_partition_tree($1::oid::regclass))) AND NOT i.indisvalid ORDER BY 1`,
    [oid],
  );
  if (rows.length === 0) return;
  const names: string[] = rows.map((r) => r.name);
  throw new UserError(
    `index ${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} INVALID (a failed CREATE INDEX CONCURRENTLY?): the native ALTER keeps it invalid ` +
      `unless it rewrites the table, and the copy would build it valid; make it valid with ${names.map((n) => `REINDEX INDEX CONCURRENTLY ${n}`).join('; ')} ` +
      `(once its rows allow it) or DROP INDEX ${names.join(', ')}, then run again`,
  );
}

async function planPartitions(pool: pg.Pool, schema: string, oid: string): Promise<Pick<PgDetail, 'partitionBy' | 'partitions' | 'partitionTree'>> {
  // The tree first: a partition attached before the list is read is then a change createShadow sees.
  const tree = await partitionTree(pool, oid);
  const partitions = await readPartitions(pool, schema, oid);
  await refuseUncarried(pool, oid, partitions);
  // Each partition steps aside too, under a free name of its own (an earlier run's are still there).
  for (const p of partitions) p.old = await chooseOldTable(pool, schema, p.name);
  return { partitionBy: (await partitionKey(pool, oid))!, partitions, partitionTree: tree };
}

/**
 * The shadow's own name, so the plan records the index names the real shadow will get. A shadow left
 * by an earlier run fails the leftovers check, which refuses the run; until then the probe takes the
 * slot's name, free among tables, so the checks have a plan to look at and list every problem.
 */
async function probeName(client: pg.PoolClient, schema: string, names: { shadow: string; slot: string }): Promise<string> {
  const { rows } = await client.query('SELECT to_regclass($1) IS NOT NULL AS e', [qualified(schema, names.shadow)]);
  return rows[0].e === 't' ? names.slot : names.shadow;
}

async function rolledBack<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    return await fn(client);
  } finally {
    await client.query('ROLLBACK').catch(ignoreFailure(ALWAYS_ROLLED_BACK));
    client.release();
  }
}

/**
 * Foreign keys find their referenced rows through a unique index of the table: one the ALTER drops
 * leaves them nothing to be carried onto (the shadow has no keys until the cut-over), so the run would
 * fail at every swap. The native ALTER refuses it too, or drops them with CASCADE.
 */
async function refuseKeysIntoDropped(pool: pg.Pool, oid: string, dropped: string[]): Promise<void> {
  if (dropped.length === 0) return;
  const { rows } = await pool.query(
    `SELECT i.relname AS index, string_agg(format('%s.%I', c.conrelid::regclass, c.conname), ', ' ORDER BY c.conname) AS keys
       FROM pg_constraint c JOIN pg_class i ON i.oid = c.conindid
      WHERE c.contype = 'f' AND c.confrelid = $1 AND i.relname = ANY ($2::text[]) GROUP BY i.relname ORDER BY 1`,
    [oid, dropped],
  );
  if (rows.length) {
    const r = rows[0] as { index: string; keys: string };
    throw new UserError(
      `the ALTER drops ${r.index}, which foreign key(s) ${r.keys} reference: drop them first, or change the key in place (the native ALTER refuses it without CASCADE)`,
    );
  }
}
