// PostgreSQL corpus, keys: what identifies a row (primary key, replica identity index, composite
// keys that updates change), what generates values (identity, serial, stored generated columns),
// and tables shadowcut must refuse up front.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migratePg, migrateUnderWrites, pgDropTables, pgHelpers, pgPool, pgSchemaOf, pgTwins, postgresDatabase } from './support/pg.js';
import { expectMirrored } from './support/fixture.js';
import type { Statement } from './support/workload.js';

let db: pg.Pool;

beforeAll(() => {
  db = pgPool();
});

afterAll(async () => {
  await pgDropTables(db, [
    'pck_nokey',
    'pck_ri_index',
    'pck_ri_index_m',
    'pck_ri_full',
    'pck_ri_full_m',
    'pck_comp',
    'pck_comp_m',
    'pck_ident',
    'pck_ident_m',
    'pck_gen',
    'pck_gen_m',
    'pck_parted',
  ]);
  await db.end();
});

const rnd = (n: number) => Math.floor(Math.random() * n);

/** Refused before anything is created: the message, no helper objects, the table as it was. */
async function expectRefused(table: string, alter: string, message: RegExp) {
  const before = await db.query(`SELECT count(*) AS n, sum(hashtext(t::text)) AS h FROM ${table} t`);
  const schema = await pgSchemaOf(db, table);
  await expect(migratePg(table, alter)).rejects.toThrow(message);
  expect(await pgHelpers(db, table)).toEqual([]);
  expect(await pgSchemaOf(db, table)).toEqual(schema);
  expect((await db.query(`SELECT count(*) AS n, sum(hashtext(t::text)) AS h FROM ${table} t`)).rows).toEqual(before.rows);
}

describe('a table without a primary key', () => {
  beforeAll(async () => {
    // A unique index over a nullable column cannot identify rows.
    await pgTwins(db, ['pck_nokey'], `CREATE TABLE {t} (code text UNIQUE, v int)`, `INSERT INTO {t} SELECT 'c' || g, g FROM generate_series(1, 10000) g`);
  });

  it('is refused up front, naming the fix', async () => {
    await expectRefused('pck_nokey', 'ADD COLUMN extra int', /pck_nokey has no primary key and no unique index on NOT NULL columns; add a primary key/);
  });

  it('is refused under REPLICA IDENTITY FULL too when no unique NOT NULL index exists', async () => {
    await db.query(`ALTER TABLE pck_nokey REPLICA IDENTITY FULL`);
    await expectRefused('pck_nokey', 'ADD COLUMN extra int', /REPLICA IDENTITY FULL but no primary key or unique NOT NULL index/);
  });
});

describe.each([
  ['USING INDEX pck_ri_index_key', 'pck_ri_index', 'i'],
  ['FULL', 'pck_ri_full', 'f'],
])('no primary key, a unique NOT NULL index, REPLICA IDENTITY %s', (identity, table, relreplident) => {
  const mirror = `${table}_m`;
  const SEED = 15_000;
  const owned: string[][] = [[], [], []];
  let counter = 0;

  beforeAll(async () => {
    await pgTwins(
      db,
      [table, mirror],
      `CREATE TABLE {t} (region int NOT NULL, code text NOT NULL, v int, note text);
       CREATE UNIQUE INDEX {t}_key ON {t} (region, code);
       CREATE INDEX ON {t} (v);
       ALTER TABLE {t} REPLICA IDENTITY ${identity.replace('pck_ri_index_key', '{t}_key')}`,
      `INSERT INTO {t} SELECT g % 3, 'code-' || g, g, NULL FROM generate_series(1, ${SEED}) g`,
    );
    for (let g = 1; g <= SEED; g++) owned[g % 3].push(`code-${g}`);
  }, 60_000);

  function writes(w: number): Statement {
    const r = Math.random();
    const mine = owned[w];
    if (r < 0.3) {
      const code = `new-${w}-${++counter}`;
      mine.push(code);
      return { sql: `INSERT INTO {t} VALUES ($1, $2, 0, 'i')`, values: [w, code] };
    }
    if (r < 0.6) {
      // Re-keys the row: the stream must report the old key as well as the new one.
      const i = rnd(mine.length);
      const from = mine[i];
      mine[i] = `moved-${w}-${++counter}`;
      return { sql: `UPDATE {t} SET code = $1, v = v + 1 WHERE region = $2 AND code = $3`, values: [mine[i], w, from] };
    }
    if (r < 0.85) return { sql: `UPDATE {t} SET note = $1 WHERE region = $2 AND code = $3`, values: [`n${r}`, w, mine[rnd(mine.length)]] };
    return { sql: `DELETE FROM {t} WHERE region = $1 AND code = $2`, values: [w, mine.splice(rnd(mine.length), 1)[0]] };
  }

  it('is migrated through that index, and the new table keeps the replica identity', async () => {
    const alter = `ALTER COLUMN v TYPE bigint, ADD COLUMN extra text DEFAULT 'x'`;
    const { result, stats } = await migrateUnderWrites(db, [table, mirror], alter, writes, { options: { chunkTimeMs: 20 } });
    expect(stats.errors).toEqual([]);
    expect(stats.transactions).toBeGreaterThan(20);
    expect(result.changesApplied).toBeGreaterThan(0);
    await expectMirrored(postgresDatabase(db), table, mirror);
    const { rows } = await db.query(
      `SELECT c.relreplident, (SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                                WHERE i.indrelid = c.oid AND i.indisreplident) AS ri_index
         FROM pg_class c WHERE c.oid = $1::regclass`,
      [table],
    );
    expect(rows[0]).toEqual({ relreplident, ri_index: relreplident === 'i' ? `${table}_key` : null });
    // The application's updates still work on the new table.
    await db.query(`UPDATE ${table} SET note = 'after' WHERE region = 0`);
  }, 90_000);
});

describe('a composite key that updates change', () => {
  const SEED = 20_000;
  // Key (region, name, at, n): the worker owns its region; updates move rows within it, keys freed by
  // one update are taken again by later inserts.
  type K = [string, string, number];
  const owned: K[][] = [[], [], []];
  const freed: K[][] = [[], [], []];
  let counter = 0;

  beforeAll(async () => {
    await pgTwins(
      db,
      ['pck_comp', 'pck_comp_m'],
      `CREATE TABLE {t} (region int NOT NULL, name text NOT NULL, at timestamptz NOT NULL, n int8 NOT NULL, v text,
                         PRIMARY KEY (region, name, at, n))`,
      `INSERT INTO {t} SELECT g % 3, 'name' || (g % 97), '2024-01-01 00:00:00.000001+00'::timestamptz + (g % 89) * interval '1.5 s', g, 'v' || g
         FROM generate_series(1, ${SEED}) g`,
    );
    const { rows } = await db.query(`SELECT region, name, at::text AS at, n FROM pck_comp`);
    for (const r of rows) owned[Number(r.region)].push([r.name, r.at, Number(r.n)]);
  }, 60_000);

  function writes(w: number): Statement {
    const r = Math.random();
    const mine = owned[w];
    if (r < 0.25) {
      const key: K = freed[w].length ? freed[w].pop()! : [`fresh${rnd(5)}`, '2030-01-01 00:00:00+00', 1e9 + ++counter];
      mine.push(key);
      return { sql: `INSERT INTO {t} VALUES ($1, $2, $3, $4, 'ins')`, values: [w, ...key] };
    }
    const i = rnd(mine.length);
    const from = mine[i];
    if (r < 0.65) {
      // Changes one or two key columns (not the region), and sometimes a value column as well.
      const to: K = [Math.random() < 0.5 ? from[0] : `moved${rnd(7)}`, Math.random() < 0.5 ? from[1] : '1999-12-31 23:59:59.999999+00', 2e9 + ++counter];
      mine[i] = to;
      freed[w].push(from);
      return {
        sql: `UPDATE {t} SET name = $1, at = $2, n = $3, v = coalesce(v, '') || 'u' WHERE region = $4 AND name = $5 AND at = $6 AND n = $7`,
        values: [...to, w, ...from],
      };
    }
    if (r < 0.85) {
      return { sql: `UPDATE {t} SET v = $1 WHERE region = $2 AND name = $3 AND at = $4 AND n = $5`, values: [`v${counter}`, w, ...from] };
    }
    mine.splice(i, 1);
    freed[w].push(from);
    return { sql: `DELETE FROM {t} WHERE region = $1 AND name = $2 AND at = $3 AND n = $4`, values: [w, ...from] };
  }

  it("ends with exactly the mirror's rows", async () => {
    const alter = `ALTER COLUMN v TYPE varchar(300), ADD COLUMN extra int DEFAULT 3`;
    const { result, stats } = await migrateUnderWrites(db, ['pck_comp', 'pck_comp_m'], alter, writes, { options: { chunkTimeMs: 10 } });
    expect(stats.errors).toEqual([]);
    expect(stats.transactions).toBeGreaterThan(20);
    expect(result.checksumRounds).toBe(1);
    await expectMirrored(postgresDatabase(db), 'pck_comp', 'pck_comp_m');
  }, 90_000);
});

describe('identity ALWAYS and BY DEFAULT, and serial columns', () => {
  const SEED = 15_000;

  beforeAll(async () => {
    await pgTwins(
      db,
      ['pck_ident', 'pck_ident_m'],
      `CREATE TABLE {t} (id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY, bd int GENERATED BY DEFAULT AS IDENTITY (START 100),
                         s serial, v text)`,
      `INSERT INTO {t} (v) SELECT 'v' || g FROM generate_series(1, ${SEED}) g`,
    );
  }, 60_000);

  function writes(w: number): Statement {
    const r = Math.random();
    // Seeded rows are owned by id % 3; rows inserted during the run are only inserted.
    const id = 3 * rnd(SEED / 3) + w || 3;
    if (r < 0.5) return { sql: `INSERT INTO {t} (v) VALUES ($1)`, values: [`ins${w}`], serial: true };
    if (r < 0.6) return { sql: `INSERT INTO {t} (bd, v) VALUES (-$1::int, 'explicit')`, values: [rnd(1e9)], serial: true };
    if (r < 0.85) return { sql: `UPDATE {t} SET v = v || 'u' WHERE id = $1`, values: [id] };
    return { sql: `DELETE FROM {t} WHERE id = $1`, values: [id] };
  }

  it('continues every sequence where the original stopped: new inserts get fresh values on both tables alike', async () => {
    const alter = `ALTER COLUMN v TYPE varchar(100), ADD COLUMN extra int DEFAULT 5`;
    const { stats } = await migrateUnderWrites(db, ['pck_ident', 'pck_ident_m'], alter, writes, { options: { chunkTimeMs: 20 } });
    expect(stats.errors).toEqual([]);
    expect(stats.transactions).toBeGreaterThan(20);
    await expectMirrored(postgresDatabase(db), 'pck_ident', 'pck_ident_m');
    // Inserts after the migration: no collision, and the same values the mirror draws.
    for (const t of ['pck_ident', 'pck_ident_m']) await db.query(`INSERT INTO ${t} (v) SELECT 'after' FROM generate_series(1, 100)`);
    await expectMirrored(postgresDatabase(db), 'pck_ident', 'pck_ident_m');
    const { rows } = await db.query(
      `SELECT count(*) AS n, count(DISTINCT id) AS ids, count(DISTINCT s) AS ss, max(id) > ${SEED} AS fresh FROM pck_ident WHERE v = 'after'`,
    );
    expect(rows[0]).toEqual({ n: '100', ids: '100', ss: '100', fresh: 't' });
    const { rows: kinds } = await db.query(
      `SELECT string_agg(attname || ':' || attidentity::text, ',' ORDER BY attnum) AS k FROM pg_attribute
        WHERE attrelid = 'pck_ident'::regclass AND attnum > 0 AND attidentity <> ''`,
    );
    expect(kinds[0].k).toBe('id:a,bd:d');
  }, 90_000);
});

describe('stored generated columns', () => {
  const SEED = 15_000;

  beforeAll(async () => {
    await pgTwins(
      db,
      ['pck_gen', 'pck_gen_m'],
      `CREATE TABLE {t} (id int PRIMARY KEY, a int NOT NULL, b int, name text,
                         total int8 GENERATED ALWAYS AS (a::int8 * coalesce(b, 1)) STORED,
                         shout text GENERATED ALWAYS AS (upper(name) || '!') STORED)`,
      `INSERT INTO {t} (id, a, b, name) SELECT g, g, CASE WHEN g % 5 = 0 THEN NULL ELSE g % 7 END, 'n' || g FROM generate_series(1, ${SEED}) g`,
    );
  }, 60_000);

  let next = 1_000_000;
  function writes(w: number): Statement {
    const r = Math.random();
    const id = 3 * rnd(SEED / 3) + w || 3;
    if (r < 0.4) return { sql: `INSERT INTO {t} (id, a, b, name) VALUES ($1, 7, NULL, 'ins')`, values: [(next += 3) + w] };
    if (r < 0.9) return { sql: `UPDATE {t} SET a = a + 1, name = name || 'x' WHERE id = $1`, values: [id] };
    return { sql: `UPDATE {t} SET b = NULL WHERE id = $1`, values: [id] };
  }

  it('are computed by the server, including one the ALTER adds', async () => {
    const alter = `ADD COLUMN c int DEFAULT 2, ADD COLUMN half numeric GENERATED ALWAYS AS (a / 2.0) STORED`;
    const { stats } = await migrateUnderWrites(db, ['pck_gen', 'pck_gen_m'], alter, writes, { options: { chunkTimeMs: 20 } });
    expect(stats.errors).toEqual([]);
    expect(stats.transactions).toBeGreaterThan(20);
    await expectMirrored(postgresDatabase(db), 'pck_gen', 'pck_gen_m');
    const { rows } = await db.query(`SELECT count(*) AS wrong FROM pck_gen WHERE total <> a::int8 * coalesce(b, 1) OR half <> a / 2.0`);
    expect(rows[0].wrong).toBe('0');
  }, 90_000);
});

describe('a partitioned table', () => {
  beforeAll(async () => {
    await db.query(`DROP TABLE IF EXISTS pck_parted CASCADE`);
    await db.query(`CREATE TABLE pck_parted (id int NOT NULL, at date NOT NULL, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)`);
    await db.query(`CREATE TABLE pck_parted_2024 PARTITION OF pck_parted FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`);
    await db.query(`CREATE TABLE pck_parted_2025 PARTITION OF pck_parted FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')`);
    await db.query(`INSERT INTO pck_parted SELECT g, '2024-01-01'::date + g % 700, 'v' || g FROM generate_series(1, 10000) g`);
  });

  it('given by one of its partitions, is refused, naming the root to give instead', async () => {
    await expectRefused(
      'pck_parted_2024',
      'ALTER COLUMN v TYPE varchar(10)',
      /pck_parted_2024 is a partition of public\.pck_parted; shadowcut migrates a partitioned table whole: give --table public\.pck_parted/,
    );
  });
});
