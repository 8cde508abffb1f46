import type { Connection, RowDataPacket } from 'mysql2/promise';

/** A pool or one connection: the variables read are the session's, which a pool's sessions share. */
type Queryable = Pick<Connection, 'query'>;

/** A Galera node's replication of DDL; null off Galera. */
export interface GaleraNode {
  /** `wsrep_OSU_method` of the session asked: TOI (every node runs the DDL at the same point of the total order), RSU (this node alone). */
  osuMethod: string;
  /** The server's default for new sessions, which the operator set and the refusal reads: ours pin TOI (connect.ts, `TOTAL_ORDER`). */
  serverOsuMethod: string;
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
  const [[server]] = await pool.query<RowDataPacket[]>("SHOW GLOBAL VARIABLES LIKE 'wsrep_OSU_method'");
  return { osuMethod: String(value('wsrep_OSU_method') ?? 'TOI').toUpperCase(), serverOsuMethod: String(server?.Value ?? 'TOI').toUpperCase() };
}

/** Why anything but TOI as the server's default is refused outright, whichever path: one line. */
export function galeraOsuRefusal(node: GaleraNode): string | null {
  if (node.serverOsuMethod === 'TOI') return null;
  return (
    `this Galera node runs DDL with wsrep_OSU_method=${node.serverOsuMethod}, which changes this node alone and leaves it out of step with ` +
    `the others until every node has been changed by hand; shadowcut refuses it: SET GLOBAL wsrep_OSU_method = 'TOI'`
  );
}

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
