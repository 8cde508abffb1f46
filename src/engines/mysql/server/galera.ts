import type { Connection, RowDataPacket } from 'mysql2/promise';

/** A pool or one connection: the variables read are the session's, which a pool's sessions share. */
type Queryable = Pick<Connection, 'query'>;

/** A Galera node's replication of DDL, as this node's sessions would run it; null off Galera. */
export interface GaleraNode {
  /** `wsrep_OSU_method`: TOI (every node runs the DDL at the same point of the total order), RSU (this node alone). */
  osuMethod: string;
}

/**
 * Whether the server is a Galera node: `wsrep_on` ON in shadowcut's own sessions (the global default
 * they start with). MySQL without wsrep has no such variable, MariaDB has it OFF.
 */
export async function galeraNode(pool: Queryable): Promise<GaleraNode | null> {
  const [rows] = await pool.query<RowDataPacket[]>("SHOW SESSION VARIABLES WHERE Variable_name IN ('wsrep_on', 'wsrep_OSU_method')");
  const value = (name: string) => rows.find((r) => String(r.Variable_name).toLowerCase() === name.toLowerCase())?.Value;
  const on = String(value('wsrep_on') ?? 'OFF').toUpperCase();
  if (on !== 'ON' && on !== '1') return null;
  return { osuMethod: String(value('wsrep_OSU_method') ?? 'TOI').toUpperCase() };
}

/** Why anything but TOI is refused outright, whichever path: one line. */
export function galeraOsuRefusal(node: GaleraNode): string | null {
  if (node.osuMethod === 'TOI') return null;
  return (
    `this Galera node runs DDL with wsrep_OSU_method=${node.osuMethod}, which changes this node alone and leaves it out of step with ` +
    `the others until every node has been changed by hand; shadowcut refuses it: SET GLOBAL wsrep_OSU_method = 'TOI'`
  );
}

/** The copy path's refusal on a Galera node under TOI: one line. */
export const GALERA_COPY_REFUSAL =
  "Galera cluster (wsrep_on=ON): the copy path is refused, since its checksum and its cut-over hold LOCK TABLES, which Galera does not replicate, against what the cluster runs in total order (the other nodes' writes, the RENAME in total order isolation, TOI), which then waits for that lock and cannot be killed while every node's writes and DDL queue behind it; only an ALTER whose every part is metadata only is made on Galera (in place, which TOI runs on every node in milliseconds); for anything else use a blocking ALTER in a maintenance window";

/** What the in-place path says on Galera under TOI. */
export const GALERA_IN_PLACE =
  'Galera cluster (wsrep_on=ON, wsrep_OSU_method=TOI): every part is metadata only, which total order isolation runs on every node in milliseconds';

/**
 * Whether a DDL on this session runs in total order isolation. Such a statement is replicated before
 * it takes its locks here: the other nodes have made it while it may still wait on this node for a
 * session holding the table (LOCK TABLES; transactions in its way are aborted). KILL is refused for
 * it ("cannot be killed without compromising the consistency of the cluster"), but
 * `max_statement_time` does end it, on this node only, and splits the schema between the nodes.
 */
export async function runsInTotalOrder(conn: Queryable): Promise<boolean> {
  const node = await galeraNode(conn);
  return node !== null && node.osuMethod === 'TOI';
}
