/**
 * What the chaos run needs from each engine: statements on a dedicated connection, the exact
 * comparison of two tables (rows as bytes/text, and the definition: columns, defaults, nullability,
 * indexes, and on PostgreSQL constraints; MySQL's SHOW CREATE TABLE has its CHECKs), and the faults (a killed shadowcut connection, a paused replica).
 */
import { appendFileSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { childTables, parentTable, type EngineKind } from './grammar.js';
import { reconnecting, type Outages, type Session } from './outage.js';

export type { Session } from './outage.js';

export interface ChaosDb {
  readonly kind: EngineKind;
  readonly url: string;
  /** Null on the plain servers, which have no replica: the tester then draws no paused replica. */
  readonly replicaUrl: string | null;
  /**
   * A Galera cluster: a DDL on the table (the gate's triggers, the RENAME, as the native ALTER)
   * aborts the statements holding it on every node, and Galera retries an autocommit one only once.
   */
  readonly abortsOnDdl: boolean;
  /** A server of the tester's own (`--servers own`), which it may restart, and when it was away; null on shared servers. */
  readonly own: { restart(): Promise<void>; outages: Outages } | null;
  session(): Promise<Session>;
  /** Rows only in one of the two tables, every column compared exactly. */
  rowDifferences(a: string, b: string): Promise<number>;
  /** A few of those rows, as text, marked with the table they are only in. */
  sampleDifferences(a: string, b: string): Promise<string[]>;
  /** The table's definition, with its own name taken out, for comparison with another's. */
  definition(table: string): Promise<string>;
  /**
   * Everything else bound to the table (options, comments, grants, statistics settings, CLUSTER,
   * replica identity, triggers, statistics objects, policies, views over it, publications), with its
   * name taken out: what the native ALTER keeps and a swap of tables could lose.
   */
  catalog(table: string): Promise<string>;
  /** What tells the table now under this name from the one there before (a swap, a rename). */
  identity(table: string): Promise<string>;
  /** Drops the tables and everything a migration of them may have left. */
  drop(...tables: string[]): Promise<void>;
  /** Helper objects of a migration of `table` still present, trigger capture's log and triggers included. */
  leftovers(table: string): Promise<string[]>;
  /** Triggers on the table: the tester's tables have none of their own, so these are trigger capture's. */
  triggers(table: string): Promise<string[]>;
  /** Ends one of the server sessions of process `pid` (shadowcut's CLI), as a network cut would; false when none was found. */
  killSession(pid: number, r: () => number): Promise<boolean>;
  /** Stops the replica applying changes until `resume`. */
  pauseReplica(): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/**
 * `others`: a Galera cluster's other nodes (`--servers galera`), where the writers and the reader
 * take their sessions in turn, while shadowcut runs against `url`. Every session there reads and
 * writes causally (`wsrep_sync_wait = 7`): a writer on node 2 then sees the rows node 3 just made,
 * as the mirror's writes need, and the comparisons on `url` see every write made anywhere.
 */
export function mysqlChaos(url: string, replicaUrl: string | null, others: string[] = [], own: ChaosDb['own'] = null): ChaosDb {
  const options = { connectionLimit: 10, dateStrings: true, supportBigNumbers: true, bigNumberStrings: true };
  const causal = (p: mysql.Pool) => {
    if (others.length) p.pool.on('connection', (conn) => conn.query('SET SESSION wsrep_sync_wait = 7'));
    return p;
  };
  const pool = causal(mysql.createPool({ uri: url, ...options }));
  const sessionPools = others.length ? others.map((uri) => causal(mysql.createPool({ uri, ...options }))) : [pool];
  let turn = 0;
  const rows = async (sql: string) => (await pool.query({ sql, rowsAsArray: true }))[0] as unknown[][];
  return {
    kind: 'mysql',
    url,
    replicaUrl,
    abortsOnDdl: others.length > 0,
    own,
    async session() {
      const from = sessionPools[turn++ % sessionPools.length];
      return reconnecting(
        () => from.getConnection(),
        async (conn, sql) => {
          const [result] = await conn.query({ sql, rowsAsArray: true });
          return Array.isArray(result) ? (result as unknown[][]) : [];
        },
        (error) => (error as { fatal?: boolean }).fatal === true,
        (conn, broken) => (broken ? conn.destroy() : conn.release()),
      );
    },
    async sampleDifferences(a, b) {
      const cols = (
        await rows(`SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '${a}' ORDER BY ORDINAL_POSITION`)
      )
        .map(([c]) => `CAST(\`${c}\` AS BINARY) AS \`${c}\``)
        .join(', ');
      const out: string[] = [];
      for (const [x, y] of [
        [a, b],
        [b, a],
      ]) {
        const found = await rows(`SELECT ${cols} FROM \`${x}\` EXCEPT ALL SELECT ${cols} FROM \`${y}\` LIMIT 3`);
        out.push(...found.map((r) => `only in ${x}: ${r.map(String).join('|').slice(0, 300)}`));
      }
      return out;
    },
    async rowDifferences(a, b) {
      const cols = (
        await rows(`SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '${a}' ORDER BY ORDINAL_POSITION`)
      )
        .map(([c]) => `CAST(\`${c}\` AS BINARY) AS \`${c}\``)
        .join(', ');
      const [[x]] = await rows(`SELECT COUNT(*) FROM (SELECT ${cols} FROM \`${a}\` EXCEPT ALL SELECT ${cols} FROM \`${b}\`) d`);
      const [[y]] = await rows(`SELECT COUNT(*) FROM (SELECT ${cols} FROM \`${b}\` EXCEPT ALL SELECT ${cols} FROM \`${a}\`) d`);
      return Number(x) + Number(y);
    },
    async definition(table) {
      const [[, create]] = await rows(`SHOW CREATE TABLE \`${table}\``);
      // Index order follows creation order, and an index built after the copy comes last: not a difference.
      const lines = String(create)
        .replace(`CREATE TABLE \`${table}\``, 'CREATE TABLE t')
        // A key to the table's parent is named after the table, and so is the parent.
        .replaceAll(`\`${table}_pa`, '`t_pa')
        .replace(/ AUTO_INCREMENT=\d+/, '')
        .split('\n');
      const isIndex = (l: string) => /^\s+(UNIQUE |FULLTEXT |SPATIAL )?KEY /.test(l);
      const indexes = lines
        .filter(isIndex)
        .map((l) => l.replace(/,$/, ''))
        .sort();
      return [...lines.filter((l) => !isIndex(l)), ...indexes].join('\n');
    },
    async catalog(table) {
      const views = await rows(
        `SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, SECURITY_TYPE FROM information_schema.VIEWS
          WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '${table}_v'`,
      );
      const triggers = await rows(
        `SELECT TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, ACTION_STATEMENT, SQL_MODE, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DATABASE_COLLATION
           FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = '${table}' ORDER BY TRIGGER_NAME`,
      );
      return [...views, ...triggers]
        .map((r) => r.map(String).join(' | '))
        .join('\n')
        .replaceAll(table, 'T');
    },
    async identity(table) {
      // MariaDB's name for InnoDB's table list; MySQL 8 calls it INNODB_TABLES.
      const sql = (list: string) => `SELECT TABLE_ID FROM information_schema.${list} WHERE NAME = CONCAT(DATABASE(), '/${table}')`;
      const [[id]] = await rows(sql('INNODB_SYS_TABLES')).catch(() => rows(sql('INNODB_TABLES')));
      return String(id);
    },
    async drop(...tables) {
      await pool.query(`DROP VIEW IF EXISTS ${tables.map((t) => `\`${t}_v\``).join(', ')}`);
      // A parent's children first (tables of those names, whether this seed made them or not).
      await pool.query(
        `DROP TABLE IF EXISTS ${tables
          .flatMap((t) => [...childTables(t).flatMap(helpers), ...helpers(t), parentTable(t)])
          .map((t) => `\`${t}\``)
          .join(', ')}`,
      );
    },
    async leftovers(table) {
      const found = await rows(
        `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('${helpers(table).slice(1).join("','")}')`,
      );
      return [...found.map(([t]) => String(t)), ...(await this.triggers(table)).map((t) => `trigger ${t}`)];
    },
    async triggers(table) {
      const found = await rows(
        `SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = '${table}' AND TRIGGER_NAME LIKE '${table}\\_\\_%'`,
      );
      return found.map(([t]) => String(t));
    },
    async killSession(pid, r) {
      const ports = portsOf(pid);
      const sessions = (await rows(`SELECT ID, HOST FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()`))
        .filter(([, host]) => ports.has(Number(String(host).split(':').pop())))
        .map(([id]) => Number(id));
      if (!sessions.length) return false;
      await pool.query(`KILL ${sessions[r() % sessions.length]}`).catch(() => {});
      return true;
    },
    async pauseReplica() {
      if (!replicaUrl) throw new Error('this server has no replica');
      const replica = await mysql.createConnection(replicaUrl);
      await replica.query('STOP SLAVE SQL_THREAD');
      return async () => {
        await replica.query('START SLAVE SQL_THREAD');
        await replica.end();
      };
    },
    close: async () => {
      await Promise.all([pool, ...sessionPools.filter((p) => p !== pool)].map((p) => p.end()));
    },
  };
}

export function postgresChaos(url: string, replicaUrl: string | null, own: ChaosDb['own'] = null): ChaosDb {
  const raw = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;
  const pool = new pg.Pool({ connectionString: url, max: 10, types: raw, application_name: 'chaos' });
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  const rows = async (sql: string) => (await pool.query({ text: sql, rowMode: 'array' })).rows as unknown[][];
  return {
    kind: 'postgres',
    url,
    replicaUrl,
    abortsOnDdl: false,
    own,
    async session() {
      return reconnecting(
        () => pool.connect(),
        async (client, sql) => {
          const result = await client.query({ text: sql, rowMode: 'array' });
          if (process.env.CHAOS_LOG_DIR)
            appendFileSync(
              `${process.env.CHAOS_LOG_DIR}/writes.log`,
              `${new Date().toISOString()} ${(client as unknown as { processID: number }).processID} ${sql.slice(0, 160).replace(/\n/g, ' ')} -> ${result.rowCount}\n`,
            );
          return result.rows as unknown[][];
        },
        // The server's answer has a SQLSTATE; a connection that broke has none, or says the server is going away.
        (error) => !(error as { code?: string }).code || /^(57P|08)/.test((error as { code: string }).code),
        (client, broken) => client.release(broken ?? undefined),
      );
    },
    async rowDifferences(a, b) {
      // Each row with its partition's name (the table's own put aside): a row in the wrong partition differs too.
      const placed = (t: string) => `SELECT replace(x.tableoid::regclass::text, '${t}', 'T'), x::text FROM "${t}" x`;
      const [[n]] = await rows(`SELECT (SELECT count(*) FROM (${placed(a)} EXCEPT ALL ${placed(b)}) d)
                                      + (SELECT count(*) FROM (${placed(b)} EXCEPT ALL ${placed(a)}) e)`);
      return Number(n);
    },
    async sampleDifferences(a, b) {
      const out: string[] = [];
      for (const [x, y] of [
        [a, b],
        [b, a],
      ]) {
        const found = await rows(`SELECT x::text FROM "${x}" x EXCEPT ALL SELECT y::text FROM "${y}" y LIMIT 3`);
        out.push(...found.map(([r]) => `only in ${x}: ${String(r).slice(0, 300)}`));
      }
      return out;
    },
    async definition(table) {
      const [[text]] = await rows(`SELECT concat_ws(E'\\n',
          (SELECT string_agg(format('%I %s%s%s', a.attname, format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,
                                    coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')), E'\\n' ORDER BY a.attnum)
             FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attrelid = '"${table}"'::regclass AND a.attnum > 0 AND NOT a.attisdropped),
          (SELECT string_agg(def, E'\\n' ORDER BY def) FROM (
             SELECT regexp_replace(pg_get_indexdef(i.indexrelid), '^CREATE (UNIQUE )?INDEX \\S+ ON (ONLY )?\\S+', 'CREATE \\1INDEX ON t') AS def
               FROM pg_index i WHERE i.indrelid = '"${table}"'::regclass) x),
          -- Constraints, with the table's name in theirs taken out: a CHECK left behind (validated
          -- or NOT VALID) or a UNIQUE constraint where the native ALTER made none is a difference.
          (SELECT string_agg(format('CONSTRAINT %s %s', replace(conname, '${table}', 't'), pg_get_constraintdef(oid)), E'\n' ORDER BY conname)
             FROM pg_constraint WHERE conrelid = '"${table}"'::regclass AND contype IN ('c', 'f', 'x', 'u')))`);
      return String(text);
    },
    async catalog(table) {
      const [[text]] = await rows(`WITH t AS (SELECT c.* FROM pg_class c WHERE c.oid = '"${table}"'::regclass)
        SELECT concat_ws(E'\\n',
          (SELECT format('options %s; toast %s; replica identity %s; acl %s; comment %s', coalesce(array_to_string(t.reloptions, ','), '-'),
                         coalesce((SELECT array_to_string(x.reloptions, ',') FROM pg_class x WHERE x.oid = t.reltoastrelid), '-'),
                         t.relreplident, coalesce(t.relacl::text, '-'), coalesce(obj_description(t.oid, 'pg_class'), '-')) FROM t),
          (SELECT string_agg(format('column %I: statistics %s, options %s, storage %s, compression %s, acl %s, comment %s', a.attname, a.attstattarget,
                                    coalesce(nullif(array_to_string(ARRAY(SELECT o FROM unnest(a.attoptions) o WHERE o NOT LIKE 'pg\\_attver=%'), ','), ''), '-'), a.attstorage, nullif(a.attcompression, ''), coalesce(a.attacl::text, '-'),
                                    coalesce(col_description(a.attrelid, a.attnum), '-')), E'\\n' ORDER BY a.attname)
             FROM pg_attribute a, t WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped),
          (SELECT string_agg(format('index %s: clustered %s, comment %s', pg_get_indexdef(i.indexrelid) , i.indisclustered,
                                    coalesce(obj_description(i.indexrelid, 'pg_class'), '-')), E'\\n' ORDER BY 1)
             FROM pg_index i, t WHERE i.indrelid = t.oid),
          (SELECT string_agg(format('trigger %s %s', pg_get_triggerdef(g.oid), g.tgenabled), E'\\n' ORDER BY g.tgname) FROM pg_trigger g, t WHERE g.tgrelid = t.oid AND NOT g.tgisinternal),
          (SELECT string_agg(format('statistics %s', pg_get_statisticsobjdef(s.oid)), E'\\n' ORDER BY s.stxname) FROM pg_statistic_ext s, t WHERE s.stxrelid = t.oid),
          (SELECT string_agg(format('policy %I %s %s %s', p.polname, p.polcmd, p.polpermissive, pg_get_expr(p.polqual, p.polrelid)), E'\\n' ORDER BY p.polname)
             FROM pg_policy p, t WHERE p.polrelid = t.oid),
          (SELECT string_agg(DISTINCT format('view %s: %s', v.ev_class::regclass, pg_get_viewdef(v.ev_class)), E'\\n')
             FROM pg_depend dep JOIN pg_rewrite v ON v.oid = dep.objid, t WHERE dep.classid = 'pg_rewrite'::regclass AND dep.refobjid = t.oid AND v.ev_class <> t.oid),
          (SELECT string_agg(format('publication %s', pub.pubname), E'\\n' ORDER BY pub.pubname) FROM pg_publication_rel pr JOIN pg_publication pub ON pub.oid = pr.prpubid, t
            WHERE pr.prrelid = t.oid AND pub.pubname NOT LIKE 'shadowcut\\_%'))`);
      // pg_attver is stamped by this server build on every new column (SET (pg_attver=1) is overwritten):
      // a new table's columns always carry other values, whoever makes them, so it is no difference.
      // Index names follow the table's, and the shadow's carry its name until the swap: names go, definitions stay.
      // Sorted once the names are out: the order by name differs between the table and the mirror.
      return String(text)
        .replace(/INDEX \S+ ON/g, 'INDEX ON')
        .replaceAll(table, 'T')
        .split('\n')
        .sort()
        .join('\n');
    },
    async identity(table) {
      const [[oid]] = await rows(`SELECT '"${table}"'::regclass::oid`);
      return String(oid);
    },
    async drop(...tables) {
      await pool.query(
        `DROP TABLE IF EXISTS ${tables
          .flatMap((t) => [...childTables(t).flatMap(helpers), ...helpers(t)])
          .map((t) => `"${t}"`)
          .join(', ')} CASCADE`,
      );
    },
    async leftovers(table) {
      const found = await rows(`SELECT relname FROM pg_class WHERE relname IN ('${helpers(table).slice(1).join("','")}')
                                UNION ALL SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'shadowcut\\_${table}\\_%'`);
      return [...found.map(([t]) => String(t)), ...(await this.triggers(table)).map((t) => `trigger ${t}`)];
    },
    async triggers(table) {
      // shadowcut's capture triggers only (`<table>__ti` ...): the table's own trigger is a dependent the seed drew.
      const found = await rows(
        `SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass('"${table}"') AND NOT tgisinternal AND tgname LIKE '${table}\\_\\_%'`,
      );
      return found.map(([t]) => String(t));
    },
    async killSession(pid, r) {
      const ports = portsOf(pid);
      const sessions = (await rows(`SELECT pid, client_port FROM pg_stat_activity WHERE pid <> pg_backend_pid()`))
        .filter(([, port]) => ports.has(Number(port)))
        .map(([p]) => Number(p));
      if (!sessions.length) return false;
      await pool.query(`SELECT pg_terminate_backend(${sessions[r() % sessions.length]})`).catch(() => {});
      return true;
    },
    async pauseReplica() {
      if (!replicaUrl) throw new Error('this server has no standby');
      const standby = new pg.Client({ connectionString: replicaUrl });
      await standby.connect();
      await standby.query('SELECT pg_wal_replay_pause()');
      return async () => {
        await standby.query('SELECT pg_wal_replay_resume()');
        await standby.end();
      };
    },
    close: () => pool.end(),
  };
}

/** A migration's helper tables of `t` (the first is `t` itself): shadow, old, checkpoint, heartbeat, and trigger capture's log of changed keys. */
const helpers = (t: string) => [t, `${t}__new`, `${t}__old`, `${t}__state`, `${t}__hb`, `${t}__log`, `${t}__gate`];

/**
 * The local TCP ports of a process's sockets (Linux /proc): the server sees each session's client
 * port, so a fault hits that process's sessions only, never another run's or another tool's on the
 * same server.
 */
function portsOf(pid: number): Set<number> {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const link = (() => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`);
        } catch {
          return '';
        }
      })();
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m) inodes.add(m[1]);
    }
  } catch {
    return new Set(); // the process has ended
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length > 9 && inodes.has(fields[9])) ports.add(parseInt(fields[1].split(':')[1], 16));
    }
  }
  return ports;
}
