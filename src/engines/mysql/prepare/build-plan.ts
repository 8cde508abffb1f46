import { dataDirectoryOf } from '../copy/data-directory.js';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { galeraNode } from '../server/galera-node.js';
import { UserError } from '../../../core/engine/errors.js';
import type { MigrationRequest, Plan } from '../../../core/engine/types.js';
import { analyseAlter, type AlterEffects } from '../schema/alter.js';
import { deferrableIndexes, shouldDefer } from '../copy/deferred-indexes.js';
import { missingPrivileges, privilegesRefusal } from '../server/grants.js';
import { describeTable, tableFacts, type TableFacts } from '../schema/inspect.js';
import { PROBE_PRIVILEGES, probeAlter } from '../schema/probe.js';
import { qualified } from '../server/sql.js';
import { binlogProblems } from '../capture/binlog/readiness.js';
import { chooseCapture, describeCapture } from '../../../core/engine/capture/capture-choice.js';
import { describeChildKey, readChildKeys } from '../cutover/child-keys.js';
import { readParentKeys } from '../cutover/parent-keys.js';
import { lookupIndexes, planCascades } from '../capture/cascades.js';
import { chooseOldTable, tableIdentity } from '../schema/old-tables.js';
import { planTriggers } from '../schema/trigger-plan.js';
import { mapColumns } from '../schema/column-map.js';
import { implicitFills } from '../schema/implicit-default.js';
import { chooseKey } from '../schema/key-choice.js';
import type { ChildKey, SetKey } from '../schema/foreign-keys.js';
import { foreignKeyName, helperNames, parseTableName, type MysqlPlan } from '../schema/plan.js';

export async function buildPlan(pool: Pool, database: string, request: MigrationRequest, flavor: 'mariadb' | 'mysql'): Promise<Plan<MysqlPlan>> {
  const table = parseTableName(request.table, database);
  const facts = await tableFacts(pool, database, table);
  if (!facts) throw new UserError(`table ${database}.${table} does not exist`);
  if (facts.isView) throw new UserError(`${database}.${table} is a view, not a table`);
  const effects = analyseAlter(request.alter);
  // The server could not try it: a TEMPORARY probe takes no foreign key.
  if (effects.addsForeignKey) {
    throw new UserError('the ALTER adds a foreign key; foreign keys are not supported yet: add it with a separate blocking ALTER');
  }
  // Without what the probe needs there is no plan to check, so the probe's refusal names every
  // missing privilege; with it, the ones only the run needs are the privileges check's.
  const missing = await missingPrivileges(pool, database, false);
  if (missing.some((p) => PROBE_PRIVILEGES.includes(p))) throw new UserError(privilegesRefusal(missing, database));
  const { shadow, state } = helperNames(table);
  // The probe is named after the shadow: too long a name leaves nothing to try the ALTER on.
  if (state.length > 64) throw new UserError(`table name ${table} is too long for helper tables (max 57 characters)`);
  // An earlier run's kept original (or a user's table) under the first name is no leftover: the next name is taken.
  const old = await chooseOldTable(pool, database, table);
  const droppedForeignKeys = foreignKeysDropped(effects, facts, table);
  const original = await describeTable(pool, database, table);
  const { shape: shadowShape, createSql, withoutDefault, real: realProbes } = await probeAlter(pool, database, table, shadow, effects.shadowClause);
  const deferrable = deferrableIndexes(createSql);
  const [[originalCreate]] = await pool.query<RowDataPacket[]>(`SHOW CREATE TABLE ${qualified(database, table)}`);
  const loosenedChecks = checksLost(String(originalCreate['Create Table']), createSql);
  const dataDirectory = dataDirectoryOf(String(originalCreate['Create Table']), `${database}.${table}`);
  const deferral = deferrable.length ? await shouldDefer(pool, request.deferIndexes ?? 'auto') : null;
  const columns = mapColumns(original.columns, shadowShape.columns, effects);
  const key = chooseKey(original, shadowShape, columns);
  const fills = implicitFills(
    shadowShape.columns,
    withoutDefault,
    columns.map((c) => c.target),
  );
  const excluded = columns.filter((c) => c.checksum === null).map((c) => c.source);
  const capture = chooseCapture(
    request.capture ?? 'auto',
    'the binlog',
    request.capture === 'auto' || !request.capture ? await binlogProblems(pool, database) : [],
  );
  const set = new Set(request.set ?? []);
  const related = await readChildKeys(pool, database, table);
  const inSet = (k: ChildKey) => set.has(`${k.database}.${k.table}`);
  const children = related.filter((k) => !inSet(k));
  const setKeys = await keysInto(pool, database, table, set);
  const ownKeys = await readParentKeys(pool, database, table, shadow);
  const parentKeys = request.discardForeignKeys ? [] : ownKeys.filter((k) => !setKeys.some((s) => s.name === k.name) && !droppedForeignKeys.includes(k.name));
  const cascades = await planCascades(pool, { database, table }, ownKeys, columns, key.columns);
  const lookups = lookupIndexes(cascades, shadowShape);
  const discarded = facts.foreignKeys.filter((k) => !droppedForeignKeys.includes(foreignKeyName(k)));
  const detail: MysqlPlan = {
    database,
    table,
    shadow,
    old,
    ...(await identityOf(pool, flavor, database, table)),
    keyIndex: key.index,
    keyColumns: key.columns,
    shadowKeyColumns: key.shadowColumns,
    ...(key.helper ? { helperKey: key.helper } : {}),
    columns,
    ...(fills.length ? { fills } : {}),
    facts,
    ...(dataDirectory ? { dataDirectory } : {}),
    discardForeignKeys: request.discardForeignKeys === true,
    droppedForeignKeys,
    shadowAlter: effects.shadowClause,
    ...(realProbes ? { realProbes } : {}),
    children,
    ...(parentKeys.length ? { parentKeys } : {}),
    ...(cascades.length ? { cascades } : {}),
    ...(parentKeys.length && keysRefusedBy(createSql) ? { shadowRefusesKeys: keysRefusedBy(createSql)! } : {}),
    ...(set.size ? { set: [...set], setKeys, setChildren: related.filter(inSet) } : {}),
    triggers: request.triggers ? await planTriggers(pool, database, table, shadow, request.triggers) : [],
    original,
    shadowShape,
    deferredIndexes: deferral?.defer ? deferrable.filter((i) => !lookups.has(i.name)) : [],
    loosenedChecks,
    autoIncrementGiven: /\bAUTO_INCREMENT\s*(=\s*)?\d/i.test(request.alter),
    ...(capture.kind === 'trigger' ? { log: helperNames(table).log } : {}),
    ...(await galeraNodeName(pool)),
  };
  const kept = new Set(columns.map((c) => c.target.toLowerCase()));
  const sources = new Set(columns.map((c) => c.source.toLowerCase()));
  return {
    table: `${database}.${table}`,
    shadowTable: `${database}.${shadow}`,
    oldTable: `${database}.${old}`,
    alter: request.alter,
    keyColumns: key.columns,
    estimatedRows: facts.estimatedRows,
    capture,
    summary: [
      describeCapture(capture),
      `key: ${key.index} (${key.columns.join(', ')})`,
      ...(key.helper
        ? [`the ALTER leaves the new table no index on it: the shadow has its own (${key.helper.name}) while the copy runs, dropped at the cut-over`]
        : []),
      `copied columns: ${columns.map((c) => (c.source === c.target ? c.source : `${c.source} -> ${c.target}`)).join(', ')}`,
      `new columns (default values): ${
        shadowShape.columns
          .filter((c) => !kept.has(c.name.toLowerCase()))
          .map((c) =>
            fills.some((f) => f.target === c.name)
              ? `${c.name} (NOT NULL without a default: ${fills.find((f) => f.target === c.name)!.value}, as the native ALTER gives)`
              : c.name,
          )
          .join(', ') || 'none'
      }`,
      `dropped columns: ${
        original.columns
          .filter((c) => !sources.has(c.name.toLowerCase()))
          .map((c) => c.name)
          .join(', ') || 'none'
      }`,
      ...(effects.serverHints.length
        ? [
            `${effects.serverHints.join(', ')}: left to shadowcut, which makes the change on a new table it copies online (they tell the server how to change the table itself)`,
          ]
        : []),
      ...(excluded.length ? [`not checksummed (type changed to an incomparable type): ${excluded.join(', ')}`] : []),
      ...(request.triggers && facts.triggers.length ? [`triggers moved to the new table at the cut-over: ${facts.triggers.join(', ')}`] : []),
      ...(deferral
        ? [
            `secondary indexes ${deferral.defer ? 'built after the copy' : 'maintained during the copy'} (${deferral.why}): ${deferrable.map((i) => i.name).join(', ')}`,
          ]
        : []),
      ...(droppedForeignKeys.length ? [`foreign keys dropped by the ALTER (the new table is made without them): ${droppedForeignKeys.join(', ')}`] : []),
      ...(request.discardForeignKeys && discarded.length ? [`foreign keys left off the new table: ${discarded.join(', ')}`] : []),
      ...children.map((k) => `child foreign key ${describeChildKey(k)}: re-pointed to the new table at the cut-over`),
      ...setKeys.map((k) => `foreign key ${describeChildKey(k)} to ${k.parent}: made again between the new tables at the set's cut-over`),
      ...parentKeys.map((k) => `foreign key ${describeChildKey(k)} to ${k.parent}: moved to the new table at the cut-over, under its name`),
      ...cascades.map((c) => `changes cascading in through ${c.name} from ${c.parent}: followed through ${c.parent}'s row events`),
      ...(old === helperNames(table).old ? [] : [`the original is kept after the cut-over as ${database}.${old} (${helperNames(table).old} is taken)`]),
    ],
    detail,
  };
}

/** The table's keys to other tables of its set (qualified `db.table` names), as those tables' child keys. */
async function keysInto(pool: Pool, database: string, table: string, set: Set<string>): Promise<SetKey[]> {
  const keys: SetKey[] = [];
  for (const other of set) {
    const [db, parent] = [other.slice(0, other.indexOf('.')), other.slice(other.indexOf('.') + 1)];
    if (db !== database) continue;
    for (const key of await readChildKeys(pool, database, parent)) {
      // The parent's own plan chooses its old table the same way, before anything of the set is made.
      if (key.database === database && key.table === table)
        keys.push({ ...key, parent, parentShadow: helperNames(parent).shadow, parentOld: await chooseOldTable(pool, database, parent) });
    }
  }
  return keys;
}

/** InnoDB keeps no foreign key on a partitioned table, and other engines none at all. */
function keysRefusedBy(createSql: string): string | null {
  if (/\bPARTITION BY\b/i.test(createSql)) return 'the new table would be partitioned';
  if (!/\bENGINE=InnoDB\b/i.test(createSql)) return 'the new table would not be InnoDB';
  return null;
}

/** Each CHECK of a SHOW CREATE TABLE (MariaDB lists a column's own as a named constraint too), by name. */
function checkConstraints(createSql: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const m of createSql.matchAll(/^\s*CONSTRAINT `((?:[^`]|``)+)` CHECK (.*?),?$/gm)) found.set(m[1].replaceAll('``', '`'), m[2]);
  return found;
}

/** The original's CHECKs that the new table does not have with the same expression. */
function checksLost(originalSql: string, newSql: string): string[] {
  const after = checkConstraints(newSql);
  return [...checkConstraints(originalSql)].filter(([name, expression]) => after.get(name) !== expression).map(([name]) => name);
}

/** The table's keys the ALTER drops; a name it does not have is the server's error, in the server's words. */
function foreignKeysDropped(effects: AlterEffects, facts: TableFacts, table: string): string[] {
  const names = new Map(facts.foreignKeys.map((k) => [foreignKeyName(k).toLowerCase(), foreignKeyName(k)]));
  const dropped: string[] = [];
  for (const { name, ifExists } of effects.droppedForeignKeys) {
    const found = names.get(name.toLowerCase());
    if (found) dropped.push(found);
    else if (!ifExists)
      throw new UserError(
        `the ALTER fails: Can't DROP FOREIGN KEY \`${name}\`; check that it exists (${table} has ${names.size ? [...names.values()].join(', ') : 'no foreign keys'})`,
      );
  }
  return dropped;
}

/** `{ galeraNode }` on a Galera node, else nothing. */
async function galeraNodeName(pool: Pool): Promise<{ galeraNode?: string }> {
  if ((await galeraNode(pool)) === null) return {};
  const [[row]] = await pool.query<RowDataPacket[]>('SELECT @@wsrep_node_name AS name');
  return { galeraNode: String(row.name) };
}

/** `{ identity }`, or nothing where the server tells nothing (the table is there: it was just inspected). */
async function identityOf(pool: Pool, flavor: 'mariadb' | 'mysql', database: string, table: string): Promise<{ identity?: string }> {
  const identity = await tableIdentity(pool, flavor, database, table);
  return identity === null ? {} : { identity };
}
