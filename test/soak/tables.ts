/**
 * The mixed-write scenario of the parity issue, for each engine: a 15-column table of mixed
 * types, its mirror, a writer transaction that does the same to both, and an exact comparison.
 */
import mysql from 'mysql2/promise';
import pg from 'pg';

export const TABLE = 'soak_t';
export const MIRROR = 'soak_m';

export interface SoakDb {
  readonly kind: 'mysql' | 'postgres';
  readonly shape: Shape;
  readonly alter: string;
  /** The ALTER without its DROP COLUMN: lossless both ways, for the revert window's runs. */
  readonly revertibleAlter: string;
  /** Drops and creates TABLE and MIRROR with `rows` identical rows. */
  seed(rows: number): Promise<void>;
  /** One writer connection: `run` executes statements (with `{t}` for the table) on both tables in one transaction. */
  writer(): Promise<{ run(statements: string[], rollback: boolean): Promise<void>; close(): Promise<void> }>;
  /** The same ALTER, natively, on the mirror. */
  alterMirror(): Promise<void>;
  /** Rows only in one of the two, every column compared as the server's text. */
  differences(a: string, b: string): Promise<number>;
  /** Ids of rows in `a` but not in `b`, for the report. */
  extraIds(a: string, b: string): Promise<string[]>;
  /** Triggers on the table: it has none of its own, so these are trigger capture's. */
  triggers(table: string): Promise<number>;
  /** Drops the tables and what a migration of them left. */
  drop(...tables: string[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * The table's shape. `plain`: the table alone. `fk-parent` (MySQL): the table is the parent of two
 * children, `{t}_cc` (ON DELETE CASCADE) and `{t}_cr` (RESTRICT), and the writers touch them too; the
 * mirror has its own. `partitioned` (PostgreSQL): range-partitioned on `day` (a year each for 2024 and
 * 2025, the rest in a default partition), whose key is then (id, day), with writers that move rows
 * between partitions.
 */
export type Shape = 'plain' | 'fk-parent' | 'partitioned';

/** Statements of one random transaction, the same for both engines, `{t}` for the table. */
export function transaction(nextId: () => number, maxId: () => number, random: () => number, shape: Shape = 'plain'): string[] {
  const pick = () => 1 + Math.floor(random() * maxId());
  const ops: string[] = [];
  const n = random() < 0.2 ? 2 + Math.floor(random() * 3) : 1;
  // Ids in one order, so two writers touching the same rows queue instead of deadlocking.
  const ids = Array.from({ length: n }, pick).sort((a, b) => a - b);
  for (const id of ids) {
    const r = random();
    if (r < 0.35) {
      const fresh = nextId();
      // Not `legacy`: the ALTER drops it, and the application stopped writing it first.
      ops.push(`INSERT INTO {t} (id, k, amount, ratio, name, body, at, day, flag, doc, payload, big, code, state)
                VALUES (${fresh}, ${fresh % 1000}, ${fresh}.125, ${fresh} / 7.0, 'n${fresh}', 'inserted ${fresh}',
                        '2025-01-02 03:04:05.${String(fresh % 1_000_000).padStart(6, '0')}', '2025-01-02', ${fresh % 2 === 0 ? 'TRUE' : 'FALSE'},
                        '{"i": ${fresh}}', NULL, ${BigInt(fresh) * 1000000007n}, 'c${fresh % 100}', 'new')`);
    } else if (shape === 'fk-parent' && r < 0.55) {
      // A child of a parent that may be gone (refused by the key, on both sides alike), or moved to another.
      const child = r < 0.45 ? '{t}_cc' : '{t}_cr';
      ops.push(
        random() < 0.6 ? `INSERT INTO ${child} (id, pid, w) VALUES (${nextId()}, ${id}, 1)` : `UPDATE ${child} SET w = w + 1, pid = ${id} WHERE id = ${pick()}`,
      );
    } else if (shape === 'fk-parent' && r < 0.6) {
      ops.push(random() < 0.5 ? `DELETE FROM {t}_cr WHERE pid = ${id}` : `UPDATE {t}_cr SET pid = NULL WHERE pid = ${id}`);
    } else if (shape === 'partitioned' && r < 0.55) {
      ops.push(`UPDATE {t} SET day = CASE WHEN day < '2026-03-01' THEN day + 200 ELSE day - 800 END, k = k + 1 WHERE id = ${id}`);
    } else if (r < 0.75) {
      ops.push(`UPDATE {t} SET k = k + 1, amount = amount + 0.5, name = 'u${id}', at = '2025-06-07 08:09:10.000001', state = 'paid' WHERE id = ${id}`);
    } else {
      ops.push(`DELETE FROM {t} WHERE id = ${id}`);
    }
  }
  return ops;
}

/** A table and a migration's helper tables of it: shadow, old, checkpoint, heartbeat, and trigger capture's log. */
const helpers = (t: string) => [t, `${t}__new`, `${t}__old`, `${t}__state`, `${t}__hb`, `${t}__log`, `${t}__rlog`];
/** The children of the fk-parent shape. */
const children = (t: string) => [`${t}_cc`, `${t}_cr`];

export function mysqlSoak(url: string, shape: Shape = 'plain'): SoakDb {
  const pool = mysql.createPool({ uri: url, connectionLimit: 12, dateStrings: true, supportBigNumbers: true, bigNumberStrings: true });
  const q = async (sql: string) => (await pool.query(sql))[0] as mysql.RowDataPacket[];
  const columns = async (t: string) =>
    (await q(`SELECT COLUMN_NAME c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '${t}' ORDER BY ORDINAL_POSITION`)).map(
      (r) => `\`${r.c}\``,
    );
  return {
    kind: 'mysql',
    shape,
    alter: 'MODIFY k BIGINT NOT NULL, ADD COLUMN extra INT DEFAULT 7, DROP COLUMN legacy',
    revertibleAlter: 'MODIFY k BIGINT NOT NULL, ADD COLUMN extra INT DEFAULT 7',
    async seed(rows) {
      await this.drop(TABLE, MIRROR);
      for (const t of [TABLE, MIRROR]) {
        await q(`CREATE TABLE ${t} (
          id BIGINT PRIMARY KEY, k INT NOT NULL, legacy VARCHAR(20), amount DECIMAL(20,6), ratio DOUBLE, name VARCHAR(100),
          body TEXT, at DATETIME(6), day DATE, flag BOOLEAN, doc JSON, payload BLOB, big BIGINT UNSIGNED, code CHAR(10),
          state ENUM('new','paid','shipped') NOT NULL DEFAULT 'new', KEY (k)) ENGINE=InnoDB`);
        await q(`INSERT INTO ${t} SELECT seq, seq % 1000, CONCAT('l', seq), seq / 3, seq / 7, CONCAT('name ', seq), REPEAT('b', seq % 300),
                   TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq * 1234567 MICROSECOND, DATE'2024-01-01' + INTERVAL seq % 900 DAY, seq % 2,
                   JSON_OBJECT('s', seq), IF(seq % 5 = 0, NULL, UNHEX(MD5(seq))), 18446744073709551615 - seq, CONCAT('c', seq % 100), 'new'
                 FROM seq_1_to_${rows}`);
        if (shape === 'fk-parent') {
          const [cc, cr] = children(t);
          await q(`CREATE TABLE ${cc} (id BIGINT PRIMARY KEY, pid BIGINT NOT NULL, w INT NOT NULL,
                   CONSTRAINT ${cc}_fk FOREIGN KEY (pid) REFERENCES ${t} (id) ON DELETE CASCADE) ENGINE=InnoDB`);
          await q(`CREATE TABLE ${cr} (id BIGINT PRIMARY KEY, pid BIGINT NULL, w INT NOT NULL,
                   CONSTRAINT ${cr}_fk FOREIGN KEY (pid) REFERENCES ${t} (id)) ENGINE=InnoDB`);
          // Ids of their own, above the parent's: a child id is never a parent id the writers pick.
          await q(`INSERT INTO ${cc} SELECT 10000000 + seq, seq, 0 FROM seq_1_to_${rows} WHERE seq % 2 = 0`);
          await q(`INSERT INTO ${cr} SELECT 20000000 + seq, seq, 0 FROM seq_1_to_${rows} WHERE seq % 10 = 3`);
        }
      }
    },
    async writer() {
      const conn = await pool.getConnection();
      return {
        async run(statements, rollback) {
          await conn.beginTransaction();
          try {
            for (const s of statements) for (const t of [TABLE, MIRROR]) await conn.query(s.replaceAll('{t}', t));
            await (rollback ? conn.rollback() : conn.commit());
          } catch (error) {
            await conn.rollback().catch(() => {});
            throw error;
          }
        },
        close: async () => conn.release(),
      };
    },
    async alterMirror() {
      await q(`ALTER TABLE ${MIRROR} ${this.alter}`);
    },
    async differences(a, b) {
      // As bytes: EXCEPT compares strings in their collation, where 'a' = 'A' and 'a' = 'a '.
      const cols = (await columns(a)).map((c) => `CAST(${c} AS BINARY) AS ${c}`).join(', ');
      const [x] = await q(`SELECT COUNT(*) n FROM (SELECT ${cols} FROM ${a} EXCEPT ALL SELECT ${cols} FROM ${b}) d`);
      const [y] = await q(`SELECT COUNT(*) n FROM (SELECT ${cols} FROM ${b} EXCEPT ALL SELECT ${cols} FROM ${a}) d`);
      let n = Number(x.n) + Number(y.n);
      if (shape === 'fk-parent') {
        // The children, and their keys on the new table (none on the old one).
        for (const [ca, cb] of children(a).map((c, i) => [c, children(b)[i]])) {
          const [z] = await q(`SELECT (SELECT COUNT(*) FROM (SELECT * FROM ${ca} EXCEPT ALL SELECT * FROM ${cb}) d)
                                    + (SELECT COUNT(*) FROM (SELECT * FROM ${cb} EXCEPT ALL SELECT * FROM ${ca}) e) n`);
          n += Number(z.n);
        }
        const [k] = await q(`SELECT COUNT(*) n FROM information_schema.REFERENTIAL_CONSTRAINTS
                              WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME IN ('${children(a).join("', '")}') AND REFERENCED_TABLE_NAME = '${a}'`);
        if (Number(k.n) !== 2) n += 1_000_000; // a child key left on another table
      }
      return n;
    },
    extraIds: async (a, b) => (await q(`SELECT id FROM ${a} WHERE id NOT IN (SELECT id FROM ${b}) LIMIT 5`)).map((r) => String(r.id)),
    async triggers(table) {
      const [r] = await q(`SELECT COUNT(*) n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = '${table}'`);
      return Number(r.n);
    },
    async drop(...tables) {
      // In any order, whatever keys a run left between them.
      const conn = await pool.getConnection();
      try {
        await conn.query('SET foreign_key_checks = 0');
        await conn.query(`DROP TABLE IF EXISTS ${tables.flatMap((t) => [...children(t), ...helpers(t)]).join(', ')}`);
        await conn.query('SET foreign_key_checks = 1');
      } finally {
        conn.release();
      }
    },
    close: () => pool.end(),
  };
}

export function postgresSoak(url: string, shape: Shape = 'plain'): SoakDb {
  const raw = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;
  const pool = new pg.Pool({ connectionString: url, max: 12, types: raw });
  const q = async (sql: string) => (await pool.query(sql)).rows;
  return {
    kind: 'postgres',
    shape,
    alter: 'ALTER COLUMN k TYPE bigint, ADD COLUMN extra int DEFAULT 7, DROP COLUMN legacy',
    revertibleAlter: 'ALTER COLUMN k TYPE bigint, ADD COLUMN extra int DEFAULT 7',
    async seed(rows) {
      await this.drop(TABLE, MIRROR);
      for (const t of [TABLE, MIRROR]) {
        const partitioned = shape === 'partitioned';
        await q(`CREATE TABLE ${t} (
          id bigint, k int NOT NULL, legacy varchar(20), amount numeric(20,6), ratio float8, name varchar(100),
          body text, at timestamp(6), day date NOT NULL, flag boolean, doc jsonb, payload bytea, big numeric(20,0), code char(10),
          state text NOT NULL DEFAULT 'new', PRIMARY KEY (id${partitioned ? ', day' : ''}))${partitioned ? ' PARTITION BY RANGE (day)' : ''}`);
        if (partitioned) {
          await q(`CREATE TABLE ${t}_2024 PARTITION OF ${t} FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`);
          await q(`CREATE TABLE ${t}_2025 PARTITION OF ${t} FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')`);
          await q(`CREATE TABLE ${t}_rest PARTITION OF ${t} DEFAULT`);
        }
        await q(`CREATE INDEX ON ${t} (k)`);
        await q(`INSERT INTO ${t} SELECT g, g % 1000, 'l' || g, g / 3.0, g / 7.0, 'name ' || g, repeat('b', g % 300),
                   timestamp '2024-01-01' + g * interval '1.234567 second', date '2024-01-01' + g % 900, g % 2 = 0,
                   jsonb_build_object('s', g), CASE WHEN g % 5 = 0 THEN NULL ELSE decode(md5(g::text), 'hex') END,
                   18446744073709551615 - g, 'c' || g % 100, 'new'
                 FROM generate_series(1, ${rows}) g`);
        await q(`ANALYZE ${t}`);
      }
    },
    async writer() {
      const client = await pool.connect();
      return {
        async run(statements, rollback) {
          await client.query('BEGIN');
          try {
            for (const s of statements) for (const t of [TABLE, MIRROR]) await client.query(s.replaceAll('{t}', t));
            await client.query(rollback ? 'ROLLBACK' : 'COMMIT');
          } catch (error) {
            await client.query('ROLLBACK').catch(() => {});
            throw error;
          }
        },
        close: async () => client.release(),
      };
    },
    async alterMirror() {
      await q(`ALTER TABLE ${MIRROR} ${this.alter}`);
    },
    async differences(a, b) {
      // Each row with its partition's name (the table's own put aside): a row in the wrong partition differs too.
      const rows = (t: string) => `SELECT replace(x.tableoid::regclass::text, '${t}', 'T'), x::text FROM ${t} x`;
      const [r] = await q(`SELECT (SELECT count(*) FROM (${rows(a)} EXCEPT ALL ${rows(b)}) d)
                                + (SELECT count(*) FROM (${rows(b)} EXCEPT ALL ${rows(a)}) e) AS n`);
      return Number(r.n);
    },
    extraIds: async (a, b) => (await q(`SELECT id FROM ${a} WHERE id NOT IN (SELECT id FROM ${b}) LIMIT 5`)).map((r) => String(r.id)),
    async triggers(table) {
      const [r] = await q(`SELECT count(*) AS n FROM pg_trigger WHERE tgrelid = to_regclass('${table}') AND NOT tgisinternal`);
      return Number(r.n);
    },
    async drop(...tables) {
      await q(`DROP TABLE IF EXISTS ${tables.flatMap(helpers).join(', ')} CASCADE`);
    },
    close: () => pool.end(),
  };
}
