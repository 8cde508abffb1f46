import { describe, expect, it } from 'vitest';
import type { RowDataPacket } from 'mysql2/promise';
import { buildDeferred, deferrableIndexes } from '../src/engines/mysql/copy/deferred-indexes.js';
import type { MigrationRequest } from '../src/core/engine/types.js';
import { databases, expectMirrored, migrateOn, useDatabase } from './support/fixture.js';
import { adminPool, mysqlDatabase, mysqlUrl } from './support/mysql.js';
import { MirrorWorkload, type Statement } from './support/workload.js';
import { waitFor } from './support/run.js';

// Each engine's table, ALTER and writes, and which indexes the shadow has when the copy starts
// under each --defer-indexes mode. MariaDB's table has every kind of index: a prefix and a
// comment, a unique key, FULLTEXT, and ones the ALTER adds and drops.
/** A --defer-indexes mode, and the shadow's indexes when the copy starts. */
type Mode = [NonNullable<MigrationRequest['deferIndexes']>, string[]];

const dialects = {
  mysql: {
    rows: 20_000,
    create: (t: string) => `CREATE TABLE ${t} (
      id INT NOT NULL,
      code VARCHAR(20) NOT NULL,
      name VARCHAR(100) NOT NULL,
      body TEXT,
      n INT NOT NULL,
      PRIMARY KEY (id),
      UNIQUE KEY uq_code (code),
      KEY k_name (name(10), n) COMMENT 'prefix, then n',
      FULLTEXT KEY ft_body (body),
      KEY k_n (n)
    ) ENGINE=InnoDB`,
    fill: (t: string, series: string) =>
      `INSERT INTO ${t} SELECT g, CONCAT('c', g), CONCAT('name ', g % 997), REPEAT('word ', g % 7), g % 50 FROM (${series}) s`,
    alter: 'ADD COLUMN extra INT NULL, ADD KEY k_extra (extra, n), DROP KEY k_n, ADD KEY k_n_desc (n DESC)',
    // Unique and FULLTEXT keys stay through the copy; the plain ones wait for it to end.
    modes: [
      ['on', ['PRIMARY', 'ft_body', 'uq_code']],
      ['off', ['PRIMARY', 'ft_body', 'k_extra', 'k_n_desc', 'k_name', 'uq_code']],
    ] as Mode[],
    write(worker: number, id: number): Statement {
      const r = Math.random();
      if (r < 0.5) return { sql: 'UPDATE {t} SET n = n + 1, name = CONCAT(name, ?) WHERE id = ?', values: ['x', id] };
      if (r < 0.7) return { sql: 'DELETE FROM {t} WHERE id = ?', values: [id] };
      const fresh = 20_000 + 1 + worker + 3 * Math.floor(Math.random() * 100_000);
      return { sql: 'REPLACE INTO {t} (id, code, name, body, n) VALUES (?, ?, ?, ?, ?)', values: [fresh, `new${fresh}`, 'fresh', 'text', worker] };
    },
  },
  postgres: {
    rows: 5000,
    create: (t: string) => `CREATE TABLE ${t} (id int PRIMARY KEY, code text UNIQUE NOT NULL, n int NOT NULL); CREATE INDEX ON ${t} (n)`,
    fill: (t: string, series: string) => `INSERT INTO ${t} SELECT g, 'c' || g, g % 40 FROM (${series}) s`,
    alter: 'ALTER COLUMN n TYPE bigint, ADD COLUMN extra int',
    modes: [
      ['auto', []],
      ['off', ['di_t__new_code_key', 'di_t__new_n_idx', 'di_t__new_pkey']],
    ] as Mode[],
    write(worker: number, id: number): Statement {
      const r = Math.random();
      if (r < 0.5) return { sql: 'UPDATE {t} SET n = n + 1 WHERE id = $1', values: [id] };
      if (r < 0.7) return { sql: 'DELETE FROM {t} WHERE id = $1', values: [id] };
      const fresh = 5000 + 1 + worker + 3 * Math.floor(Math.random() * 100_000);
      return {
        sql: `INSERT INTO {t} VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET code = EXCLUDED.code, n = EXCLUDED.n`,
        values: [fresh, `new${fresh}`, worker],
      };
    },
  },
};

describe.each(databases)('$name: secondary indexes built after the copy', ({ open, kind }) => {
  const db = useDatabase(open, 'di_t', 'di_mirror');
  const { rows, create, fill, alter, write, modes } = dialects[kind];

  it.each(modes)('--defer-indexes %s: the shadow has %j when the copy starts; under writes, the result equals the mirror', async (mode, atCopy) => {
    await db.drop('di_t', 'di_mirror');
    for (const t of ['di_t', 'di_mirror']) {
      await db.query(create(t));
      await db.query(fill(t, db.series(rows)));
    }
    const during: string[][] = [];
    // Worker w updates and deletes the seeded ids congruent to w + 1 mod 3, and inserts ids of its own.
    const load = new MirrorWorkload(db, ['di_t', 'di_mirror'], (w) => write(w, 1 + w + 3 * Math.floor(Math.random() * (rows / 3))));
    load.start();
    let result;
    try {
      result = await migrateOn(
        db,
        'di_t',
        alter,
        {
          chunkTimeMs: 20,
          hook: async (event) => {
            if (event === 'before-copy') during.push(await db.indexes('di_t__new'));
          },
        },
        { request: { deferIndexes: mode } },
      );
    } finally {
      await load.stop();
    }
    expect(load.stats.errors).toEqual([]);
    expect(result.rowsCopied).toBeGreaterThan(0);
    expect(during).toEqual([atCopy]);
    await db.query(`ALTER TABLE di_mirror ${alter}`);
    await expectMirrored(db, 'di_t', 'di_mirror');
  });
});

describe('MariaDB: secondary indexes built after the copy', () => {
  const db = useDatabase(mysqlDatabase, 'di_t', 'di_race');
  const { rows, create, fill, alter } = dialects.mysql;

  async function seed() {
    await db.drop('di_t');
    await db.query(create('di_t'));
    await db.query(fill('di_t', db.series(rows)));
  }

  it('finds the plain non-unique keys in SHOW CREATE TABLE, never one that is the only index on the AUTO_INCREMENT column', () => {
    const show = [
      'CREATE TABLE `t` (',
      '  `id` int(11) NOT NULL,',
      '  `seq` bigint(20) NOT NULL AUTO_INCREMENT,',
      "  `a` varchar(20) DEFAULT NULL COMMENT 'KEY `x` (`y`)',",
      '  PRIMARY KEY (`id`),',
      '  UNIQUE KEY `u` (`a`),',
      '  KEY `seq` (`seq`),',
      "  KEY `we``ird` (`a`(5)) COMMENT 'ends with a comma,',",
      '  FULLTEXT KEY `f` (`a`),',
      '  KEY `last` (`a`,`id`) USING BTREE',
      ') ENGINE=InnoDB',
    ].join('\n');
    expect(deferrableIndexes(show)).toEqual([
      { name: 'we`ird', definition: "KEY `we``ird` (`a`(5)) COMMENT 'ends with a comma,'" },
      { name: 'last', definition: 'KEY `last` (`a`,`id`) USING BTREE' },
    ]);
  });

  /** How many sessions wait for a metadata lock in a statement on `table`. */
  const waitingOn = async (table: string) =>
    Number((await db.query(`SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE '%metadata lock%' AND INFO LIKE '%${table}%'`))[0][0]);

  it('a build that races the same ALTER still running from a dead run ends with every index, once', async () => {
    await db.drop('di_race');
    await db.query('CREATE TABLE di_race (id INT PRIMARY KEY, a INT, b INT) ENGINE=InnoDB');
    const wanted = [
      { name: 'k_a', definition: 'KEY `k_a` (`a`)' },
      { name: 'k_b', definition: 'KEY `k_b` (`b`)' },
    ];
    // A reader holds the table, so the "dead run's" ALTER waits, and ours queues behind it.
    const pool = adminPool();
    const reader = await db.session();
    const dead = await db.session();
    try {
      await reader.query('BEGIN');
      await reader.query('SELECT * FROM di_race');
      const deadRun = dead.query('ALTER TABLE di_race ADD KEY `k_a` (`a`), ADD KEY `k_b` (`b`)');
      await waitFor("the dead run's ALTER waiting", async () => (await waitingOn('di_race')) >= 1, null);
      const ours = buildDeferred(pool, new URL(mysqlUrl()).pathname.slice(1), 'di_race', wanted);
      await waitFor('ours queued behind it', async () => (await waitingOn('di_race')) >= 2, null);
      await reader.query('COMMIT');
      await deadRun;
      await ours;
    } finally {
      reader.release();
      dead.release();
      await pool.end();
    }
    expect(await db.indexes('di_race')).toEqual(['PRIMARY', 'k_a', 'k_b']);
  });

  it('the dry run says which indexes wait and why; a bad mode is one line on stderr and exit 2', async () => {
    await seed();
    const dry = db.cli(['migrate', '--force-copy', '--url', '$URL', '--table', 'di_t', '--alter', alter]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/secondary indexes built after the copy \((binlog_alter_two_phase is ON|no replica is attached)\): k_name, k_extra, k_n_desc/);
    const bad = db.cli(['migrate', '--force-copy', '--url', '$URL', '--table', 'di_t', '--alter', alter, '--defer-indexes', 'maybe', '--execute']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/--defer-indexes.*must be auto, on or off/);
    expect(await db.helpers('di_t')).toEqual([]);
  });

  it('auto builds them after the copy with a replica attached, logged in two phases for the build alone when the server default is off', async () => {
    await seed();
    const [[before]] = await db.query('SELECT @@GLOBAL.binlog_alter_two_phase');
    await db.query('SET GLOBAL binlog_alter_two_phase = OFF');
    try {
      const dry = db.cli(['migrate', '--force-copy', '--url', '$URL', '--table', 'di_t', '--alter', alter]);
      expect(dry.code).toBe(0);
      expect(dry.stdout).toMatch(
        /secondary indexes built after the copy \(1 replica\(s\) attached: the build is logged in two phases.*\): k_name, k_extra, k_n_desc/,
      );
      const forced = db.cli(['migrate', '--force-copy', '--url', '$URL', '--table', 'di_t', '--alter', alter, '--defer-indexes', 'off']);
      expect(forced.stdout).toMatch(/secondary indexes maintained during the copy \(--defer-indexes off\)/);

      const since = await binlogEnd();
      const run = db.cli(['migrate', '--force-copy', '--url', '$URL', '--table', 'di_t', '--alter', alter, '--execute']);
      expect(run.code, run.stderr).toBe(0);
      // A two-phase ALTER is logged as START ALTER, then COMMIT ALTER (each a GTID of its own); a one-phase ALTER under a plain GTID.
      const builds = (await binlogQueriesSince(since)).filter((q) => /ALTER TABLE `shadowcut_test`\.`di_t__new` ADD KEY `k_name`/.test(q.query));
      const phases = builds.map((b) => /(START|COMMIT) ALTER/.exec(b.gtid)?.[1] ?? b.gtid);
      expect(phases.length, phases.join(', ')).toBeGreaterThan(0);
      expect(
        phases.filter((p) => p !== 'START' && p !== 'COMMIT'),
        phases.join(', '),
      ).toEqual([]);
    } finally {
      await db.query(`SET GLOBAL binlog_alter_two_phase = ${Number(before) === 1 ? 'ON' : 'OFF'}`);
    }
  });
});

/** Where the primary's binlog ends now. */
async function binlogEnd(): Promise<{ file: string; position: number }> {
  const pool = adminPool();
  try {
    const [rows] = await pool.query<RowDataPacket[]>('SHOW MASTER STATUS');
    return { file: String(rows[0].File), position: Number(rows[0].Position) };
  } finally {
    await pool.end();
  }
}

/** Every Query event the primary logged from `file`:`position` on, across rotations, with its GTID event's text. */
async function binlogQueriesSince({ file, position }: { file: string; position: number }): Promise<{ gtid: string; query: string }[]> {
  const pool = adminPool();
  try {
    const [logs] = await pool.query<RowDataPacket[]>('SHOW BINARY LOGS');
    const found: { gtid: string; query: string }[] = [];
    let gtid = '';
    for (const log of logs.map((r) => String(r.Log_name)).filter((name) => name >= file)) {
      const [events] = await pool.query<RowDataPacket[]>(`SHOW BINLOG EVENTS IN '${log}'${log === file ? ` FROM ${position}` : ''}`);
      for (const e of events) {
        if (e.Event_type === 'Gtid') gtid = String(e.Info);
        if (e.Event_type === 'Query') found.push({ gtid, query: String(e.Info) });
      }
    }
    return found;
  } finally {
    await pool.end();
  }
}
