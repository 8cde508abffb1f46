import { UserError } from '../../../core/engine/errors.js';
import { oldTableName } from '../../../core/engine/old-table.js';
import { movedKeys, type Cascade, type ChildKey, type SetKey } from './foreign-keys.js';
import type { TableFacts, TableShape } from './inspect.js';
import type { TriggerPlan } from './trigger-plan.js';
import type { ColumnPair } from './column-map.js';
import type { ColumnFill } from './implicit-default.js';

export type { TriggerPlan } from './trigger-plan.js';

/**
 * The engine's part of a Plan, kept in the checkpoint. Its types and the derivations every job reads
 * live here, below the jobs; `../prepare/build-plan.ts` builds it.
 */
export interface MysqlPlan {
  database: string;
  table: string;
  shadow: string;
  /**
   * Where the original goes at cut-over; also the sentry's name while the cut-over lock is held.
   * Chosen with the plan (`<table>__old`, or the first free `<table>__old_<n>`) and never again.
   */
  old: string;
  /** What tells the planned table from one made under its name since (old-tables.ts); absent in an older checkpoint. */
  identity?: string;
  /** The original's unique key used for keyset iteration, and the same columns' names in the shadow. */
  keyIndex: string;
  keyColumns: string[];
  shadowKeyColumns: string[];
  /** The shadow's own index on the key when the ALTER leaves it none (schema/key-choice.ts): made with the shadow, dropped under the cut-over lock. */
  helperKey?: { name: string; columns: string[] };
  columns: ColumnPair[];
  /** New columns NOT NULL without a DEFAULT: the copy writes the type's implicit default, as the native ALTER gives (absent when none). */
  fills?: ColumnFill[];
  facts: TableFacts;
  /** The original's `DATA DIRECTORY='...'` clause, given to the shadow (copy/data-directory.ts); absent when it has none. */
  dataDirectory?: string;
  /** Foreign keys to other tables are left off the new table, on request. */
  discardForeignKeys: boolean;
  /** Foreign keys the ALTER drops: the shadow has none to drop, so the clause it gets leaves them out. */
  droppedForeignKeys: string[];
  /** The ALTER as the shadow and the probes take it: without its DROP FOREIGN KEY, ALGORITHM and LOCK parts. */
  shadowAlter: string;
  /** The ALTER makes what a temporary table cannot be (partitioned, FULLTEXT, compressed): every probe is a real one. */
  realProbes?: boolean;
  /** Other tables' keys that reference the table: pointed at the new table at the cut-over. */
  children: ChildKey[];
  /** The table's keys to other tables of its set: moved to the shadow at the set's cut-over (absent outside a set). */
  setKeys?: SetKey[];
  /**
   * The table's keys to tables outside its set (and to itself), moved to the shadow under the
   * cut-over's lock as `setKeys` are (cutover/parent-keys.ts). Absent in older plans and with
   * --discard-foreign-keys.
   */
  parentKeys?: SetKey[];
  /** The table's keys whose parents' changes cascade into it, followed through the parents' row events (capture/cascades.ts). */
  cascades?: Cascade[];
  /** Why the new table can hold no foreign key at all (partitioned, or not InnoDB), when it cannot. */
  shadowRefusesKeys?: string;
  /** The other tables of its set (`db.name`), whose runs share one binlog reader with this one's. */
  set?: string[];
  /** Keys of other tables of the set to this one (`db.name`): their own runs move them. */
  setChildren?: ChildKey[];
  /** Triggers moved to the new table at the cut-over, on request; empty otherwise. */
  triggers: TriggerPlan[];
  original: TableShape;
  shadowShape: TableShape;
  /** Dropped from the shadow when it is created, built after the copy (empty when not deferring). */
  deferredIndexes: DeferredIndex[];
  /** Trigger capture: the log table its triggers write the changed keys into (absent when the binlog is read). */
  log?: string;
  /**
   * CHECK constraints of the original the new table lacks, or has with another expression (names):
   * the revert window would copy back rows the old table refuses (absent in an older checkpoint).
   */
  loosenedChecks?: string[];
  /** The ALTER sets the table's AUTO_INCREMENT itself: the cut-over leaves the counter to it, as a native ALTER does. */
  autoIncrementGiven?: boolean;
  /**
   * The Galera node the run is made on (`wsrep_node_name`): its binlog position, and its trigger log's
   * InnoDB ids, are that node's alone, so a resume must be made there (absent off Galera).
   */
  galeraNode?: string;
}

/** A non-unique secondary index of the new table, as SHOW CREATE TABLE prints it (valid after ADD). */
export interface DeferredIndex {
  name: string;
  definition: string;
}

/**
 * Helper names are suffixes, not prefixes, on purpose: a RENAME takes its metadata locks in sorted
 * name order, and at the cut-over it must be queued on the ORIGINAL's lock (where its exclusive
 * request outranks the writers waiting there). `_orders_new` sorts before `orders`, so the RENAME
 * would wait on the shadow's lock instead, and writers queued on `orders` would slip in between the
 * unlock and the rename, into a table no longer followed. `orders__new` sorts after `orders`.
 */
export function helperNames(table: string) {
  return {
    shadow: `${table}__new`,
    old: oldTableName(table),
    state: `${table}__state`,
    heartbeat: `${table}__hb`,
    // Trigger capture: the log of changed keys, and its triggers (trigger names are per database).
    log: `${table}__log`,
    captureTriggers: { INSERT: `${table}__ti`, UPDATE: `${table}__tu`, DELETE: `${table}__td` },
    // A revert window's capture on the new table: names of its own, as a forward run's may still exist beside it.
    reverseLog: `${table}__rlog`,
    reverseTriggers: { INSERT: `${table}__rti`, UPDATE: `${table}__rtu`, DELETE: `${table}__rtd` },
    // ...and on the original until the swap, triggers that name its log (capture/trigger/log.ts, prelockBody).
    reversePrelockTriggers: { INSERT: `${table}__rpi`, UPDATE: `${table}__rpu`, DELETE: `${table}__rpd` },
    // Galera: the gate that holds writers on every node (galera/gate.ts), and its triggers on the original.
    gate: `${table}__gate`,
    gateTriggers: { INSERT: `${table}__gi`, UPDATE: `${table}__gu`, DELETE: `${table}__gd` },
    // The mapping proof's pair, and the one the in-place classification and plan's sample use.
    probes: [`${table}__pa`, `${table}__pb`, `${table}__pp`],
  };
}

/** The table's own keys ("name -> parent") the new table will not have: all but those the cut-over moves to it (`movedKeys`). */
export function keysOutsideSet(plan: Pick<MysqlPlan, 'facts' | 'setKeys' | 'parentKeys'>): string[] {
  const rebuilt = new Set(movedKeys(plan).map((k) => k.name));
  return plan.facts.foreignKeys.filter((k) => !rebuilt.has(foreignKeyName(k)));
}

/** "name -> parent" as the table's facts list its keys. */
export function foreignKeyName(fact: string): string {
  return fact.slice(0, fact.lastIndexOf(' -> '));
}

export function parseTableName(name: string, database: string): string {
  const parts = name.split('.');
  if (parts.length === 2) {
    if (parts[0] !== database) {
      throw new UserError(`--table ${name} names database ${parts[0]}, but --url connects to ${database}`);
    }
    return parts[1];
  }
  if (parts.length !== 1 || !name) throw new UserError(`--table ${name} is not a table name`);
  return name;
}
