import { helperNames } from '../schema/plan.js';
import { qualified } from '../server/sql.js';

// The gate's table shape and its triggers on the original (why, in README.md): the SQL every writer
// runs, and how a binlog reader tells our CREATE of one from someone else's change to the table.

export type RowEvent = 'INSERT' | 'UPDATE' | 'DELETE';
export const EVENTS: RowEvent[] = ['INSERT', 'UPDATE', 'DELETE'];
/** The gate's row that every node reads after its own: closed (1) from just before the RENAME. */
export const CLUSTER_ROW = '*';
/**
 * Rows per node: a writer locks the one of its connection (CONNECTION_ID() modulo this), so that
 * writers on a node rarely wait for one another, while the holder locks them all.
 */
export const GATE_SLOTS = 1024;

export const GATE_COLUMNS = 'node VARCHAR(255) NOT NULL, slot SMALLINT NOT NULL, closed TINYINT NOT NULL, PRIMARY KEY (node, slot)';

/** `user@host` as DEFINER spells it, and as CURRENT_USER() does (the same account, quoting aside). */
export function sameAccount(definer: string, me: string): boolean {
  const plain = (account: string) => account.replace(/`/g, '').toLowerCase();
  return plain(definer) === plain(me);
}

/**
 * The two reads name the gate table by two aliases: a routine prelocks each table it names once, with
 * the strongest lock any of its statements asks for, so under one name the cluster row would be read
 * FOR UPDATE too, and every writer of a node would wait for the others' transactions on it.
 */
export function gateBody(database: string, table: string): string {
  const gate = qualified(database, helperNames(table).gate);
  const message = `shadowcut: ${table} is being swapped on this Galera cluster; retry`.replace(/['\\]/g, '');
  return `BEGIN
  DECLARE here INT DEFAULT 1;
  DECLARE cluster INT DEFAULT 1;
  SELECT IFNULL(MAX(closed), 1) INTO here FROM ${gate} AS own_slot WHERE node = @@wsrep_node_name AND slot = CONNECTION_ID() MOD ${GATE_SLOTS} FOR UPDATE;
  SELECT IFNULL(MAX(closed), 1) INTO cluster FROM ${gate} AS cluster_row WHERE node = '${CLUSTER_ROW}' LOCK IN SHARE MODE;
  IF here <> 0 OR cluster <> 0 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '${message}'; END IF;
END`;
}

/** A DDL on the original, in total order: as any, it aborts the transactions open on the table on every node. */
export function gateCreate(database: string, table: string, event: RowEvent): string {
  const name = helperNames(table).gateTriggers[event];
  return `CREATE TRIGGER ${qualified(database, name)} BEFORE ${event} ON ${qualified(database, table)} FOR EACH ROW ${gateBody(database, table)}`;
}

/**
 * Whether a statement the binlog shows on the original is our own CREATE of a gate trigger (the
 * server writes the DEFINER into it): it changes no row and no column. Any other body under such a
 * name is someone else's change to the table.
 */
export function isGateCreate(query: string, database: string, table: string): boolean {
  const made = query.replace(/^CREATE DEFINER=(?:`(?:[^`]|``)*`|[^\s@]*)@(?:`(?:[^`]|``)*`|\S*) TRIGGER /, 'CREATE TRIGGER ');
  return EVENTS.some((event) => made === gateCreate(database, table, event));
}
