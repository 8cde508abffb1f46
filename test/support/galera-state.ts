import { statfsSync } from 'node:fs';
import mysql from 'mysql2/promise';

const LOOK_MS = 4_000;

/**
 * `work`, or a rejection at `ms` whatever it waits for (a pool's free connection, a connect, the
 * statement): mysql2's own query timeout does not cover the first two. What hangs is left behind.
 */
export function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`hang detected: ${what} did not end within ${ms} ms`)), ms)));
  work.catch(() => {}); // a late failure of what was given up on
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

const STATUS = [
  'wsrep_cluster_status',
  'wsrep_cluster_size',
  'wsrep_local_state_comment',
  'wsrep_flow_control_paused',
  'wsrep_local_recv_queue',
  'wsrep_local_send_queue',
];

/** One node: its place in the cluster, and every session of it that is doing something. */
async function nodeState(url: string): Promise<string> {
  const conn = await within(mysql.createConnection({ uri: url, connectTimeout: LOOK_MS }), LOOK_MS, 'a connection');
  try {
    const rows = async (sql: string) => (await within(conn.query<mysql.RowDataPacket[]>({ sql, timeout: LOOK_MS }), LOOK_MS, sql))[0];
    const status = await rows(`SHOW GLOBAL STATUS WHERE Variable_name IN (${STATUS.map((s) => `'${s}'`).join(', ')})`);
    const sessions = await rows(
      "SELECT ID, USER, COMMAND, TIME, STATE, LEFT(REPLACE(INFO, '\\n', ' '), 160) AS INFO FROM information_schema.PROCESSLIST WHERE COMMAND <> 'Sleep' AND ID <> CONNECTION_ID() ORDER BY TIME DESC LIMIT 25",
    );
    return [
      status.map((s) => `${s.Variable_name}=${s.Value}`).join(' '),
      ...sessions.map((s) => `  #${s.ID} ${s.USER} ${s.COMMAND} ${s.TIME}s [${s.STATE ?? ''}] ${s.INFO ?? ''}`),
    ].join('\n');
  } finally {
    conn.destroy();
  }
}

/**
 * What each node of the cluster is doing, and the disk's free space: what a hang's message needs for
 * it to be understood from CI's output alone (a wedged total order, flow control, a full disk).
 */
export async function clusterState(urls: string[], dir: string): Promise<string> {
  const nodes = await Promise.all(
    urls.map((url, i) =>
      nodeState(url).then(
        (state) => `node ${i + 1}: ${state}`,
        (error: Error) => `node ${i + 1}: could not be asked: ${error.message}`,
      ),
    ),
  );
  const disk = statfsSync(dir);
  const free = `free disk: ${((disk.bavail * disk.bsize) / 2 ** 30).toFixed(1)} GiB`;
  return [free, ...nodes].join('\n');
}
