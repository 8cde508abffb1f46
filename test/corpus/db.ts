/**
 * Server plumbing for the corpus runner: admin connections, the `mariadb` command-line client
 * (create.sql files use `delimiter ;;`, and gh-ost's harness compares the client's `-ss` output),
 * binlog scanning and replica control.
 */
import { spawn } from 'node:child_process';
import mysql from 'mysql2/promise';

export interface Endpoint {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export function endpoint(url: string, database?: string): Endpoint {
  const u = new URL(url);
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 3306,
    user: decodeURIComponent(u.username || 'root'),
    password: decodeURIComponent(u.password),
    database: database ?? decodeURIComponent(u.pathname.replace(/^\//, '')),
  };
}

export function urlOf(e: Endpoint): string {
  return `mysql://${encodeURIComponent(e.user)}:${encodeURIComponent(e.password)}@${e.host}:${e.port}/${encodeURIComponent(e.database)}`;
}

/** A connection outside the test database (it is dropped and created again for every case). */
export async function connect(e: Endpoint): Promise<mysql.Connection> {
  return mysql.createConnection({
    host: e.host,
    port: e.port,
    user: e.user,
    password: e.password,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    multipleStatements: true,
    charset: 'utf8mb4_general_ci',
  });
}

export type Row = mysql.RowDataPacket;

export async function rows(conn: mysql.Connection, sql: string, values: unknown[] = []): Promise<Row[]> {
  const [result] = await conn.query<Row[]>(sql, values);
  return result;
}

export interface ClientResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs the `mariadb` client as gh-ost's harness runs `mysql`: `--default-character-set=utf8mb4`,
 * SQL on stdin or via -e. Output is kept as bytes (binary columns are compared byte for byte).
 */
export function client(e: Endpoint, args: string[], input?: string, timeoutMs = 60_000): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'mariadb',
      ['--no-defaults', '--protocol=tcp', `-h${e.host}`, `-P${e.port}`, `-u${e.user}`, '--default-character-set=utf8mb4', ...args, e.database],
      { env: { ...process.env, MYSQL_PWD: e.password }, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run the mariadb client (${error.message}); install mariadb-client`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: err.trim() });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

/** Loads a SQL file (with `delimiter` lines) into the database; throws with the client's error. */
export async function loadSql(e: Endpoint, sql: string, what: string): Promise<void> {
  const r = await client(e, [], sql);
  if (r.code !== 0) throw new Error(`${what} failed: ${r.stderr.split('\n').pop()}`);
}

export interface BinlogPos {
  file: string;
  pos: number;
}

export async function masterStatus(conn: mysql.Connection): Promise<BinlogPos> {
  const [r] = await rows(conn, 'SHOW MASTER STATUS');
  if (!r) throw new Error('binary logging is off on the primary');
  return { file: String(r.File), pos: Number(r.Position) };
}

export interface BinlogEvent {
  file: string;
  pos: number;
  type: string;
  end: number;
  info: string;
}

/** Every binlog event from `from` to the current end, across binlog files. */
export async function binlogEventsSince(conn: mysql.Connection, from: BinlogPos): Promise<BinlogEvent[]> {
  const logs = (await rows(conn, 'SHOW BINARY LOGS')).map((r) => String(r.Log_name));
  const events: BinlogEvent[] = [];
  const page = 2000;
  for (const file of logs.slice(Math.max(0, logs.indexOf(from.file)))) {
    let pos = file === from.file ? from.pos : 4;
    for (;;) {
      const got = await rows(conn, `SHOW BINLOG EVENTS IN ${conn.escape(file)} FROM ${pos} LIMIT ${page}`);
      for (const r of got) {
        events.push({ file, pos: Number(r.Pos), type: String(r.Event_type), end: Number(r.End_log_pos), info: String(r.Info ?? '') });
      }
      if (got.length < page) break;
      pos = Number(got[got.length - 1].End_log_pos);
    }
  }
  return events;
}

export interface SlaveStatus {
  ioRunning: string;
  sqlRunning: string;
  relayMasterFile: string;
  execPos: number;
  lastSqlError: string;
  lastIoError: string;
}

export async function slaveStatus(replica: mysql.Connection): Promise<SlaveStatus> {
  const [r] = await rows(replica, 'SHOW SLAVE STATUS');
  if (!r) throw new Error('the replica URL does not point at a replica (SHOW SLAVE STATUS is empty)');
  return {
    ioRunning: String(r.Slave_IO_Running),
    sqlRunning: String(r.Slave_SQL_Running),
    relayMasterFile: String(r.Relay_Master_Log_File),
    execPos: Number(r.Exec_Master_Log_Pos),
    lastSqlError: String(r.Last_SQL_Error ?? ''),
    lastIoError: String(r.Last_IO_Error ?? ''),
  };
}

/** Starts both replication threads and waits until the replica has applied all of the primary's binlog. */
export async function syncReplica(primary: mysql.Connection, replica: mysql.Connection, timeoutS = 60): Promise<void> {
  await replica.query('START SLAVE');
  const [p] = await rows(primary, 'SELECT @@GLOBAL.gtid_binlog_pos AS g');
  const [w] = await rows(replica, 'SELECT MASTER_GTID_WAIT(?, ?) AS r', [String(p.g), timeoutS]);
  if (Number(w.r) !== 0) {
    const s = await slaveStatus(replica);
    throw new Error(
      `the replica did not catch up with the primary in ${timeoutS} s (IO ${s.ioRunning}, SQL ${s.sqlRunning}` +
        `${s.lastSqlError ? `, SQL error: ${s.lastSqlError}` : ''}${s.lastIoError ? `, IO error: ${s.lastIoError}` : ''})`,
    );
  }
}

/**
 * Lets the replica's SQL thread apply the primary's binlog up to `until` (an event boundary) and
 * stop there. The SQL thread must be stopped beforehand.
 */
export async function replicateUntil(replica: mysql.Connection, until: BinlogPos, timeoutS = 60): Promise<SlaveStatus> {
  await replica.query(`START SLAVE SQL_THREAD UNTIL MASTER_LOG_FILE = ${replica.escape(until.file)}, MASTER_LOG_POS = ${until.pos}`);
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    const s = await slaveStatus(replica);
    if (s.lastSqlError) throw new Error(`replication stopped with an error: ${s.lastSqlError}`);
    if (s.sqlRunning === 'No') {
      if (s.relayMasterFile !== until.file || s.execPos !== until.pos) {
        throw new Error(`the replica stopped at ${s.relayMasterFile}:${s.execPos}, not at ${until.file}:${until.pos}`);
      }
      return s;
    }
    if (Date.now() > deadline) throw new Error(`the replica did not reach ${until.file}:${until.pos} within ${timeoutS} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
