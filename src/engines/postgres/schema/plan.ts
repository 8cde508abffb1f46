import type { GeneratedName } from './generated-names.js';
import type { NotValidCheck } from './not-valid-checks.js';
import type { Partition } from './partitions.js';
import type { ColumnMap, ShadowTree } from './shadow.js';
import type { IndexMarks, ShadowIndex } from './shadow-indexes.js';
import type { StorageOptions } from '../server/autovacuum.js';
import { qualified } from '../server/sql.js';

/**
 * The engine's part of a Plan; plain JSON so a resumed run can read it back. Its types and the
 * derivations every job reads live here, below the jobs; `../prepare/build-plan.ts` builds it.
 */
export interface PgDetail {
  /** The table's OID when planned: a resume of a table dropped and made again since is refused by it. */
  oid: string;
  schema: string;
  name: string;
  shadow: string;
  /** Where the original goes at the cut-over: chosen with the plan (`<name>__old`, or the first free `<name>__old_<n>`) and never again. */
  old: string;
  slot: string;
  publication: string;
  /** The tables the slot's publication follows (SQL names): a set's, sharing one slot. Absent in older plans (the table alone). */
  streamTables?: string[];
  originalKey: string[];
  shadowKey: string[];
  /**
   * server/key-types.ts: the key columns' types (the ALTER keeps them), which the keyset's
   * parameters are typed with. Absent in older plans: their parameters stay untyped.
   */
  keyTypes?: string[];
  columns: ColumnMap[];
  /** The original's columns as the change stream describes them; a difference means concurrent DDL. */
  streamColumns: { name: string; typeOid: string; typeMod: string }[];
  /** The original's definition when planned (inspect.ts definitionOf), compared again under the cut-over lock. */
  definition: string;
  /** Secondary indexes, built in afterCopy; dropped from the shadow for the copy when `deferIndexes`. */
  indexes: ShadowIndex[];
  deferIndexes: boolean;
  /**
   * The key's index, when the copy fills a heap with no index at all and builds it after
   * (copy/deferred-indexes.ts): a plain table with `deferIndexes`. Absent otherwise and in older plans.
   */
  keyIndex?: ShadowIndex;
  /**
   * The shadow's own unique index on the original's key, when the ALTER drops the key's index (a
   * primary key replaced or dropped): the applier finds rows by it; the cut-over drops it.
   */
  helperKey?: { shadow: string; original: string };
  /**
   * The original's indexes whose constraints the ALTER drops: they step aside with the old table, so
   * that one the ALTER adds takes the name the native ALTER gives it. Absent in older plans.
   */
  droppedIndexes?: string[];
  /**
   * The new table's storage options as the ALTER leaves them (server/autovacuum.ts): the shadow is
   * made with autovacuum off and gets exactly these at the swap. Absent for a partitioned table and
   * in older plans: the shadow keeps the original's settings throughout.
   */
  autovacuum?: StorageOptions;
  /**
   * Original index name -> shadow index name, swapped at cut-over so the table keeps its index names;
   * the original's goes `aside` to that name when given (a revert: the name it had as the shadow's).
   */
  indexRenames: { original: string; shadow: string; aside?: string }[];
  /**
   * The replica identity and CLUSTER mark the ALTER leaves on the shadow (in the names its indexes
   * have once swapped), which the cut-over sets. Absent in older plans and a revert's: the
   * original's are carried over as they are.
   */
  marks?: IndexMarks;
  /** Statistics objects, swapped at cut-over as the indexes are (`aside` likewise). Absent in older plans. */
  statistics?: { original: string; shadow: string; aside?: string }[];
  /** NOT VALID CHECKs (the original's and the ALTER's) kept off the shadow for the copy, added at the cut-over. Absent in older plans. */
  notValidChecks?: NotValidCheck[];
  /** The original's own NOT VALID CHECKs (names): its rows need not meet them, and a revert window would put rows back. Absent in older plans. */
  originalNotValid?: string[];
  /** Original columns the ALTER drops, renames or retypes (views using them are refused). */
  changedColumns: string[];
  /**
   * Original columns the ALTER only renames (the type kept), with their new names: the views and rules
   * over them are read at the cut-over with the original's columns so named (cutover/renamed-columns.ts).
   * Absent in older plans.
   */
  renamedColumns?: { from: string; to: string }[];
  /**
   * The ALTER's clauses that act on the original's own foreign keys (DROP, ALTER or RENAME
   * CONSTRAINT): no copy has those keys, so they run on the new table once the cut-over re-added
   * them. Absent when none and in older plans.
   */
  foreignKeyClauses?: string[];
  /** Validated foreign keys from or to the table: re-added NOT VALID at cut-over, validated in cleanup. */
  validatedForeignKeys: string[];
  /** Every foreign key from or to the table, and those the ALTER adds: written by plans older than `addedForeignKeys`, read only from their checkpoints. */
  foreignKeys?: string[];
  /** Constraints the ALTER adds under names the server generates from the table's (schema/generated-names.ts). Absent in older plans. */
  generatedNames?: GeneratedName[];
  /** Those the ALTER adds: a revert would carry them onto the old table, which never had them. Absent in older plans. */
  addedForeignKeys?: string[];
  /** The table's own triggers, which the old table keeps: a revert window's applies would fire them again. Absent in older plans. */
  triggers?: string[];
  /** Rules of the old table the ALTER drops (`loosenedRules`): a revert window is refused for them. Absent in older plans. */
  loosened?: string[];
  /** A partitioned table's partition key (`pg_get_partkeydef`); absent for a plain table. */
  partitionBy?: string;
  /** Its partitions, parents first; absent for a plain table. */
  partitions?: Partition[];
  /** partitions.ts partitionTree when planned: a change stops the run. Absent for a plain table. */
  partitionTree?: string;
  /** server/owner-code.ts: another role's code the run would evaluate with the migrating role's rights, as one line; absent when none. */
  foreignCode?: string;
  /** server/owner-code.ts foreignOwner: the table's owner when it is neither the migrating role nor a superuser. */
  foreignOwner?: string;
  /** A hash-distributed or reference table of a Citus cluster, migrated where its shards are (../citus/). Absent for a table of one server. */
  citus?: CitusDetail;
}

/** A plan's detail for a distributed table: what the Citus jobs (../citus/) may rely on. */
export type CitusPgDetail = PgDetail & { citus: CitusDetail };

/** Where a distributed table's rows live when planned (../citus/detail.ts reads it from Citus's catalogs). */
export interface CitusDetail {
  /** The distribution column; the shadow is distributed by it, co-located with the table. Null for a reference table. */
  column: string | null;
  colocationId: number;
  /** Every node holding shards of the table whose stream is followed (a reference table's: one of its placements). */
  nodes: CitusNode[];
  /**
   * A reference table's other placements: each takes every write as the followed one does, so its
   * stream is not read, but a write may still be prepared there when the followed node has it
   * committed (../citus/view.ts). Absent for a hash-distributed table.
   */
  replicas?: CitusNode[];
  /** `shardid:groupid` of every placement when planned: a shard moved meanwhile stops the run before its swap. */
  placements: string;
}

export interface CitusNode {
  /** Citus's group id, which names the node in positions. */
  group: number;
  host: string;
  port: number;
  /** The table's shards on the node (SQL names), which its publication lists. */
  shards: string[];
}

/** The tables the slot's publication follows. */
export function streamTables(d: Pick<PgDetail, 'schema' | 'name' | 'streamTables'>): string[] {
  return d.streamTables ?? [qualified(d.schema, d.name)];
}

/** The shadow tree to build for a partitioned original, with each partition's twin named by `nameOf`; null for a plain table. */
export function shadowTreeOf(d: Pick<PgDetail, 'partitionBy' | 'partitions'>, nameOf: ShadowTree['nameOf']): ShadowTree | null {
  return d.partitionBy ? { partitionBy: d.partitionBy, partitions: d.partitions ?? [], nameOf } : null;
}

/** Columns as the change stream sees them (generated ones are not sent); a difference means someone else's DDL. */
export function columnSignature(columns: { name: string; typeOid: string | number; typeMod: string | number }[]): string {
  return columns.map((c) => `${c.name}:${c.typeOid}:${c.typeMod}`).join(',');
}

/**
 * The shadow's indexes came out named as the plan says. Its names came from prepare's probe; ones
 * that came out otherwise (a name taken since, a probe built beside a leftover) would be built and
 * renamed wrongly.
 */
export function indexesAsPlanned(layout: Pick<PgDetail, 'indexes' | 'indexRenames'> & { keyIndex: ShadowIndex; helperKey?: string }, d: PgDetail): boolean {
  const names = (x: Pick<PgDetail, 'indexes' | 'indexRenames' | 'keyIndex'>, helper?: string) =>
    JSON.stringify([x.indexes, x.indexRenames, d.keyIndex ? x.keyIndex : null, helper ?? null]);
  return names(layout, layout.helperKey) === names(d, d.helperKey?.shadow);
}
