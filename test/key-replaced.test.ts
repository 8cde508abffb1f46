// Issue 71, item 5: an ALTER that replaces or drops the primary key. The original's key still names
// every row (the stream's, the trigger log's, the copy's walk); the shadow gets a unique index of its
// own on it for the run, which the cut-over drops. Compared with a twin given the native ALTER.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import type { MigrateOptions } from '../src/core/migrate/runner.js';
import type { MigrationRequest } from '../src/core/engine/types.js';
import { catalogTwins, type CatalogTwins } from './support/pg-catalog-oracle.js';
import { expectMirrored, migrateOn, useDatabase } from './support/fixture.js';
import { postgresDatabase } from './support/pg.js';
import { adminPool, mysqlDatabase, runCliAsync } from './support/mysql.js';
import { MysqlTwins } from './support/mysql-twins.js';
import { MirrorWorkload, OwnedIds, type Statement } from './support/workload.js';

let twins: CatalogTwins | null = null;
afterEach(async () => {
  await twins?.close();
  twins = null;
});

type Path = { path: string; options: Partial<MigrateOptions>; request: Omit<MigrationRequest, 'url' | 'table' | 'alter'> };
const PATHS: Path[] = [
  { path: 'the stream', options: {}, request: { capture: 'stream' } },
  { path: 'triggers', options: {}, request: { capture: 'trigger' } },
];

const SETUP = `CREATE TABLE t (id int PRIMARY KEY, code text NOT NULL, v numeric(30,10), note text DEFAULT 'n');
  CREATE INDEX t_v_idx ON t (v);
  INSERT INTO t SELECT g, 'c' || g, g / 7.0, CASE WHEN g % 5 = 0 THEN NULL ELSE 'x' END FROM generate_series(1, 3000) g;`;

const ALTERS = [
  { what: 'the key replaced by another column', alter: 'DROP CONSTRAINT t_pkey, ADD PRIMARY KEY (code)' },
  { what: 'the key widened', alter: 'DROP CONSTRAINT t_pkey, ADD PRIMARY KEY (id, code), ALTER COLUMN v TYPE numeric(40,12)' },
  { what: 'the key dropped', alter: 'DROP CONSTRAINT t_pkey, ADD COLUMN extra int' },
];

describe('PostgreSQL: the primary key replaced or dropped, on the copy, as the native ALTER', () => {
  for (const { what, alter } of ALTERS) {
    it.each(PATHS)(`${what}, captured by $path`, async (path) => {
      twins = await catalogTwins(`key_${ALTERS.findIndex((a) => a.alter === alter)}_${PATHS.indexOf(path)}`);
      await twins.setup(SETUP);
      await twins.alterTwin('t', alter);
      await twins.migrate('t', alter, path.options, path.request);
      // The whole database's definition: the new key under its native name, no helper index left.
      expect(await twins.difference(['t__old'])).toEqual([]);
      const rows = 'SELECT * FROM t ORDER BY id';
      expect((await twins.pool.query(rows)).rows).toEqual((await twins.twin.query(rows)).rows);
    });
  }

  it("a key other tables' foreign keys reference is refused, as the native ALTER refuses it, before anything is made", async () => {
    twins = await catalogTwins('key_referenced');
    await twins.setup(`${SETUP} CREATE TABLE child (id int PRIMARY KEY, t_id int REFERENCES t (id));`);
    await expect(twins.twin.query(`ALTER TABLE t ${ALTERS[0].alter}`)).rejects.toThrow(/other objects depend on it/);
    await expect(twins.migrate('t', ALTERS[0].alter)).rejects.toThrow(
      /the ALTER drops t_pkey, which foreign key\(s\) public\.child\.child_t_id_fkey reference/,
    );
    expect(await twins.difference()).toEqual([]);
  });

  it('a revert window is refused, before anything is made: the new table has no unique index on the old key', async () => {
    twins = await catalogTwins('key_revert');
    await twins.setup(SETUP);
    await expect(twins.migrate('t', ALTERS[0].alter, { revertWindowMs: 60_000 })).rejects.toThrow(/drops the key's index t_pkey/);
    const { rows } = await twins.pool.query(`SELECT relname FROM pg_class WHERE relname LIKE 't\\_\\_%' ORDER BY 1`);
    expect(rows).toEqual([]);
  });
});

describe('PostgreSQL: a unique constraint dropped and added again takes the name the native ALTER gives it', () => {
  const SETUP2 = `CREATE TABLE t (id int PRIMARY KEY, code text NOT NULL UNIQUE, b int CONSTRAINT named_uq UNIQUE);
    INSERT INTO t SELECT g, 'c' || g, g FROM generate_series(1, 500) g;`;
  // Natively: t_code_key again (its old one is gone) and t_b_key (not named_uq).
  const ALTER2 = 'DROP CONSTRAINT t_code_key, ADD UNIQUE (code), DROP CONSTRAINT named_uq, ADD UNIQUE (b)';

  it.each(PATHS)('captured by $path', async (path) => {
    twins = await catalogTwins(`key_again_${PATHS.indexOf(path)}`);
    await twins.setup(SETUP2);
    await twins.alterTwin('t', ALTER2);
    await twins.migrate('t', ALTER2, path.options, path.request);
    expect(await twins.difference(['t__old'])).toEqual([]);
  });

  it('and a revert gives the old table its names back', async () => {
    twins = await catalogTwins('key_again_revert');
    await twins.setup(SETUP2);
    await twins.migrateAndRevert('t', ALTER2);
    // The twin never took the ALTER: the old table is back as it was, named as it was.
    expect(await twins.difference(['t__new'])).toEqual([]);
  });
});

const KINDS = [
  {
    name: 'PostgreSQL',
    open: postgresDatabase,
    ddl: (t: string) =>
      `CREATE TABLE ${t} (id bigint CONSTRAINT ${t}_pk PRIMARY KEY, code varchar(60) NOT NULL, v bigint, at timestamptz(6) DEFAULT '2026-01-01 00:00:00.123456+00')`,
    fill: (t: string, seed: number) => `INSERT INTO ${t} (id, code, v) SELECT g, 'c' || g || '-0', g::bigint * 1000003 FROM generate_series(1, ${seed}) g`,
    alter: (t: string) => `DROP CONSTRAINT ${t}_pk, ADD PRIMARY KEY (code), ALTER COLUMN v TYPE numeric(20,0)`,
    p: (n: number) => `$${n}`,
    indexes: ['kr_pkey'],
  },
  {
    name: 'MariaDB',
    open: mysqlDatabase,
    ddl: (t: string) =>
      `CREATE TABLE ${t} (id BIGINT PRIMARY KEY, code VARCHAR(60) NOT NULL, v BIGINT, at TIMESTAMP(6) NULL DEFAULT '2026-01-01 00:00:00.123456') ENGINE=InnoDB`,
    fill: (t: string, seed: number) => `INSERT INTO ${t} (id, code, v) SELECT seq, CONCAT('c', seq, '-0'), seq * 1000003 FROM seq_1_to_${seed}`,
    alter: () => 'DROP PRIMARY KEY, ADD PRIMARY KEY (code), MODIFY v DECIMAL(20,0)',
    p: () => '?',
    indexes: ['PRIMARY'],
  },
] as const;

describe.each(KINDS)('$name: the key replaced while writers change the old key and the new one', (kind) => {
  const db = useDatabase(kind.open, 'kr', 'kr_mirror');
  const SEED = 20_000;

  function writes(): (worker: number) => Statement {
    const ids = new OwnedIds(SEED);
    const [a, b, c] = [kind.p(1), kind.p(2), kind.p(3)];
    let n = 0;
    return (w) => {
      n++;
      const r = Math.random();
      if (r < 0.25 || ids.size(w) < 10) {
        const id = ids.fresh(w);
        return { sql: `INSERT INTO {t} (id, code, v) VALUES (${a}, ${b}, ${c})`, values: [id, `c${id}-0`, '9007199254740993'] };
      }
      if (r < 0.45) {
        // The old key moves: the row is deleted under its old id and inserted under the new one.
        const from = ids.remove(w);
        const to = ids.fresh(w);
        return { sql: `UPDATE {t} SET id = ${b}, code = ${c} WHERE id = ${a}`, values: [from, to, `c${to}-${n}`] };
      }
      if (r < 0.65) {
        // The new key moves while the old one stays.
        const id = ids.pick(w);
        return { sql: `UPDATE {t} SET code = ${b} WHERE id = ${a}`, values: [id, `c${id}-${n}`] };
      }
      if (r < 0.85) return { sql: `UPDATE {t} SET v = v + 1, at = NULL WHERE id = ${a}`, values: [ids.pick(w)] };
      return { sql: `DELETE FROM {t} WHERE id = ${a}`, values: [ids.remove(w)] };
    };
  }

  it.each(PATHS)(
    'captured by $path: the rows of a mirror given the same writes and the native ALTER',
    async (path) => {
      await db.drop('kr', 'kr_mirror');
      for (const t of ['kr', 'kr_mirror']) {
        await db.query(kind.ddl(t));
        await db.query(kind.fill(t, SEED));
      }
      const load = new MirrorWorkload(db, ['kr', 'kr_mirror'], writes());
      load.start();
      await load.untilMoreWrites();
      const result = await migrateOn(db, 'kr', kind.alter('kr'), { chunkTimeMs: 20, maxRowsPerSec: 40_000 }, { request: path.request });
      await load.untilMoreWrites();
      const stats = await load.stop();
      await db.query(`ALTER TABLE kr_mirror ${kind.alter('kr_mirror')}`);
      expect(stats.errors).toEqual([]);
      expect(result.changesApplied).toBeGreaterThan(0);
      await expectMirrored(db, 'kr', 'kr_mirror');
      // The new key, and the helper gone: only the native ALTER's indexes.
      expect(await db.indexes('kr')).toEqual(kind.indexes);
    },
    180_000,
  );
});

describe('MariaDB: the primary key replaced or dropped, on the copy, as the native ALTER', () => {
  let root: mysql.Pool;
  let mtwins: MysqlTwins;
  beforeAll(() => {
    root = adminPool();
    mtwins = new MysqlTwins(root, 'sc_key_replaced');
  });
  afterAll(async () => {
    await mtwins.drop();
    await root.end();
  });
  const rows = [
    "CREATE TABLE t (id INT PRIMARY KEY, code VARCHAR(40) NOT NULL, v DECIMAL(30,10), note VARCHAR(10) DEFAULT 'n', KEY (v)) ENGINE=InnoDB",
    "INSERT INTO t SELECT seq, CONCAT('c', seq), seq / 7, IF(seq % 5 = 0, NULL, 'x') FROM seq_1_to_3000",
  ];
  const later = [
    "INSERT INTO t VALUES (5000, 'late', 1.5, NULL)",
    "UPDATE t SET id = 6000, code = 'moved' WHERE id = 5",
    "UPDATE t SET code = 'recoded' WHERE id = 6",
    'DELETE FROM t WHERE id = 7',
  ];
  const shadowIndexes = async () =>
    (
      await root.query<mysql.RowDataPacket[]>(
        `SELECT DISTINCT INDEX_NAME n FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 't__new' ORDER BY 1`,
        [mtwins.name],
      )
    )[0].map((r) => String(r.n));
  const ALTER = 'DROP PRIMARY KEY, ADD PRIMARY KEY (code)';
  const args = ['migrate', '--force-copy', '--url', '$URL', '--table', 't', '--alter', ALTER, '--execute'];

  it('an attempt that fails after the shadow lost its own key index gets it back, and the next attempt swaps', async () => {
    await mtwins.fresh();
    await mtwins.inBoth(rows);
    const run = await runCliAsync(args, mtwins.url(), { SHADOWCUT_TEST_FAIL_AT: 'after-children-pointed' });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr + run.stdout).toMatch(/after-children-pointed/);
    await mtwins.alterTwin('t', ALTER);
    expect(await mtwins.differences()).toEqual([]);
  });

  it('killed after the shadow lost its own key index: --resume makes it again before applying, and ends as the native ALTER', async () => {
    await mtwins.fresh();
    await mtwins.inBoth(rows);
    const killed = await runCliAsync(args, mtwins.url(), { SHADOWCUT_TEST_KILL_AT: 'after-children-pointed' });
    expect(killed.code, killed.stderr).toBeNull(); // killed by the seam's SIGKILL
    expect(await shadowIndexes()).toEqual(['PRIMARY', 'v']); // shadowcut_key dropped, the run gone before its RENAME
    // Writes the resumed run applies by the old key.
    await mtwins.inBoth(later);
    // A resumed run killed again before its cut-over's lock: its own key index is back by then.
    const again = await runCliAsync([...args, '--resume'], mtwins.url(), { SHADOWCUT_TEST_KILL_AT: 'before-lock' });
    expect(again.code, again.stderr).toBeNull();
    expect(await shadowIndexes()).toEqual(['PRIMARY', 'shadowcut_key', 'v']);
    const resumed = await runCliAsync([...args, '--resume'], mtwins.url());
    expect(resumed.code, resumed.stderr).toBe(0);
    await mtwins.alterTwin('t', ALTER);
    expect(await mtwins.differences()).toEqual([]);
  });

  for (const alter of [
    'DROP PRIMARY KEY, ADD PRIMARY KEY (code)',
    'DROP PRIMARY KEY, ADD PRIMARY KEY (code, id), MODIFY v DECIMAL(40,12)',
    'DROP PRIMARY KEY, ADD COLUMN extra INT',
    'DROP PRIMARY KEY, ADD UNIQUE KEY (code)',
  ]) {
    it(alter, async () => {
      await mtwins.fresh();
      await mtwins.inBoth(rows);
      await mtwins.expectSameAsNative('t', alter, { writes: later });
    });
  }
});
