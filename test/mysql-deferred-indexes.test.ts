import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDeferred, deferrableIndexes } from '../src/engines/mysql/deferred-indexes.js';
import { adminPool, differences, helperTables, migrateMysql, mysqlDatabase, mysqlUrl, runCli, schemaOf } from './support/mysql.js';
import { MirrorWorkload } from './support/workload.js';

const ROWS = 20_000;
// Every kind of index: a prefix and a comment, a unique key, FULLTEXT, a key on a second
// AUTO_INCREMENT-like column, and ones the ALTER adds and drops.
const TABLE = `(
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
) ENGINE=InnoDB`;
const ALTER = 'ADD COLUMN extra INT NULL, ADD KEY k_extra (extra, n), DROP KEY k_n, ADD KEY k_n_desc (n DESC)';
let db: mysql.Pool;

beforeAll(() => {
  db = adminPool();
});

afterAll(async () => {
  await db.query('DROP TABLE IF EXISTS di_t, di_t__old, di_t__new, di_mirror');
  await db.end();
});

async function seed() {
  await db.query('DROP TABLE IF EXISTS di_t, di_t__old, di_t__new, di_mirror');
  for (const t of ['di_t', 'di_mirror']) {
    await db.query(`CREATE TABLE ${t} ${TABLE}`);
    await db.query(`INSERT INTO ${t} SELECT seq, CONCAT('c', seq), CONCAT('name ', seq % 997), REPEAT('word ', seq % 7), seq % 50 FROM seq_1_to_${ROWS}`);
  }
}

async function indexNames(table: string): Promise<string[]> {
  const [rows] = await db.query<mysql.RowDataPacket[]>(`SHOW INDEX FROM ${table}`);
  return [...new Set(rows.map((r) => String(r.Key_name)))].sort();
}

function writes(worker: number, ids: Set<number>) {
  const id = [...ids][Math.floor(Math.random() * ids.size)];
  const r = Math.random();
  if (r < 0.5) return { sql: 'UPDATE {t} SET n = n + 1, name = CONCAT(name, ?) WHERE id = ?', values: ['x', id] };
  if (r < 0.7) return { sql: 'DELETE FROM {t} WHERE id = ?', values: [id] };
  const fresh = ROWS + 1 + worker + 3 * Math.floor(Math.random() * 100_000);
  return { sql: 'REPLACE INTO {t} (id, code, name, body, n) VALUES (?, ?, ?, ?, ?)', values: [fresh, `new${fresh}`, 'fresh', 'text', worker] };
}

describe('secondary indexes built after the copy (MySQL)', () => {
  it('finds the plain non-unique keys in SHOW CREATE TABLE, never one that is the only index on the AUTO_INCREMENT column', () => {
    const create = [
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
    expect(deferrableIndexes(create)).toEqual([
      { name: 'we`ird', definition: "KEY `we``ird` (`a`(5)) COMMENT 'ends with a comma,'" },
      { name: 'last', definition: 'KEY `last` (`a`,`id`) USING BTREE' },
    ]);
  });

  it('a build that races the same ALTER still running from a dead run ends with every index, once', async () => {
    await db.query('DROP TABLE IF EXISTS di_race');
    await db.query('CREATE TABLE di_race (id INT PRIMARY KEY, a INT, b INT) ENGINE=InnoDB');
    const wanted = [
      { name: 'k_a', definition: 'KEY `k_a` (`a`)' },
      { name: 'k_b', definition: 'KEY `k_b` (`b`)' },
    ];
    // A reader holds the table, so the "dead run's" ALTER waits, and ours queues behind it.
    const reader = await db.getConnection();
    const dead = await db.getConnection();
    try {
      await reader.query('BEGIN');
      await reader.query('SELECT * FROM di_race');
      const deadRun = dead.query('ALTER TABLE di_race ADD KEY `k_a` (`a`), ADD KEY `k_b` (`b`)');
      await new Promise((r) => setTimeout(r, 200));
      const ours = buildDeferred(db, new URL(mysqlUrl()).pathname.slice(1), 'di_race', wanted);
      await new Promise((r) => setTimeout(r, 200));
      await reader.query('COMMIT');
      await deadRun;
      await ours;
    } finally {
      reader.release();
      dead.release();
    }
    expect(await indexNames('di_race')).toEqual(['PRIMARY', 'k_a', 'k_b']);
    await db.query('DROP TABLE di_race');
  });

  it('are absent during the copy, present after, and the table equals its mirror, under writes', async () => {
    await seed();
    const during: string[][] = [];
    const owned = [0, 1, 2].map((w) => new Set(Array.from({ length: ROWS / 3 }, (_, i) => 1 + w + 3 * i)));
    const load = new MirrorWorkload(mysqlDatabase(db), ['di_t', 'di_mirror'], (w) => writes(w, owned[w]));
    load.start();
    let result;
    try {
      result = await migrateMysql(
        'di_t',
        ALTER,
        {
          chunkTimeMs: 20,
          hook: async (event) => {
            if (event === 'before-copy') during.push(await indexNames('di_t__new'));
          },
        },
        { deferIndexes: 'on' },
      );
    } finally {
      await load.stop();
    }
    expect(load.stats.errors).toEqual([]);
    expect(result!.rowsCopied).toBeGreaterThan(0);
    // Unique and FULLTEXT keys stay through the copy; the plain ones wait for it to end.
    expect(during).toEqual([['PRIMARY', 'ft_body', 'uq_code']]);
    await db.query(`ALTER TABLE di_mirror ${ALTER}`);
    expect(await schemaOf(db, 'di_t')).toEqual(await schemaOf(db, 'di_mirror'));
    expect(await differences(db, 'di_t', 'di_mirror')).toEqual([]);
    expect(await helperTables(db, 'di_t')).toEqual(['di_t__old']);
  });

  it('with --defer-indexes off, every index is there from the start', async () => {
    await seed();
    const during: string[][] = [];
    const hook = async (event: string) => {
      if (event === 'before-copy') during.push(await indexNames('di_t__new'));
    };
    await migrateMysql('di_t', ALTER, { hook }, { deferIndexes: 'off' });
    expect(during).toEqual([['PRIMARY', 'ft_body', 'k_extra', 'k_n_desc', 'k_name', 'uq_code']]);
    await db.query(`ALTER TABLE di_mirror ${ALTER}`);
    expect(await schemaOf(db, 'di_t')).toEqual(await schemaOf(db, 'di_mirror'));
  });

  it('the dry run says which indexes wait and why; a bad mode is one line on stderr and exit 2', async () => {
    await seed();
    const dry = runCli(['migrate', '--url', '$URL', '--table', 'di_t', '--alter', ALTER]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/secondary indexes built after the copy \((binlog_alter_two_phase is ON|no replica is attached)\): k_name, k_extra, k_n_desc/);
    const bad = runCli(['migrate', '--url', '$URL', '--table', 'di_t', '--alter', ALTER, '--defer-indexes', 'maybe', '--execute']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/--defer-indexes.*must be auto, on or off/);
    expect(await helperTables(db, 'di_t')).toEqual([]);
  });

  it('auto keeps them through the copy when a replica is attached and binlog_alter_two_phase is off', async () => {
    await seed();
    const [[before]] = await db.query<mysql.RowDataPacket[]>('SELECT @@GLOBAL.binlog_alter_two_phase AS v');
    await db.query('SET GLOBAL binlog_alter_two_phase = OFF');
    try {
      const dry = runCli(['migrate', '--url', '$URL', '--table', 'di_t', '--alter', ALTER]);
      expect(dry.code).toBe(0);
      expect(dry.stdout).toMatch(/secondary indexes maintained during the copy \(1 replica\(s\) attached and binlog_alter_two_phase is not ON\): k_name, k_extra, k_n_desc/);
      const forced = runCli(['migrate', '--url', '$URL', '--table', 'di_t', '--alter', ALTER, '--defer-indexes', 'on']);
      expect(forced.stdout).toMatch(/secondary indexes built after the copy \(--defer-indexes on\)/);
    } finally {
      await db.query(`SET GLOBAL binlog_alter_two_phase = ${Number(before.v) === 1 ? 'ON' : 'OFF'}`);
    }
  });
});
