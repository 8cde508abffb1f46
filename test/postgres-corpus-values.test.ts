// PostgreSQL corpus, values: what the stream leaves out (TOAST), what JavaScript would blur, and
// what only a type's own rules get right (json text, collations). Each case is compared with a
// mirror that took the same writes in the same transactions and the same ALTER.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateUnderWrites, pgDropTables, pgPool, pgTwins, postgresDatabase } from './support/pg.js';
import { expectMirrored } from './support/fixture.js';
import { OwnedIds, type Statement } from './support/workload.js';

let db: pg.Pool;

beforeAll(() => {
  db = pgPool();
});

afterAll(async () => {
  await pgDropTables(db, [
    'pcv_toast_default',
    'pcv_toast_default_m',
    'pcv_toast_full',
    'pcv_toast_full_m',
    'pcv_types',
    'pcv_types_m',
    'pcv_special',
    'pcv_special_m',
    'pcv_coll',
    'pcv_coll_m',
  ]);
  await db.query(`DROP TYPE IF EXISTS pcv_mood CASCADE`);
  await db.query(`DROP DOMAIN IF EXISTS pcv_positive, pcv_email CASCADE`);
  await db.end();
});

const rnd = (n: number) => Math.floor(Math.random() * n);

/** 6,400 characters of md5 hex per value, stored out of line and uncompressed (STORAGE EXTERNAL). */
const big = (seed: string) => `(SELECT string_agg(md5(g::text || ${seed}), '') FROM generate_series(1, 200) g)`;

describe.each([
  ['DEFAULT', 'd'],
  ['FULL', 'f'],
])('TOASTed values under REPLICA IDENTITY %s', (identity, relreplident) => {
  const table = `pcv_toast_${identity.toLowerCase()}`;
  const mirror = `${table}_m`;
  const SEED = 12_000;
  const ids = new OwnedIds(SEED);

  beforeAll(async () => {
    await pgTwins(
      db,
      [table, mirror],
      `CREATE TABLE {t} (id int PRIMARY KEY, qty int NOT NULL, body text, note text);
       ALTER TABLE {t} ALTER COLUMN body SET STORAGE EXTERNAL;
       ALTER TABLE {t} REPLICA IDENTITY ${identity}`,
      `INSERT INTO {t} SELECT g, g % 17, CASE WHEN g % 6 = 0 THEN ${big('g::text')} ELSE 'short ' || g END, 'n' || g
         FROM generate_series(1, ${SEED}) g`,
    );
  }, 60_000);

  /** Mostly updates of other columns, which the stream sends with the TOASTed value as "unchanged". */
  function writes(w: number): Statement {
    const r = Math.random();
    if (r < 0.6) return { sql: `UPDATE {t} SET qty = qty + 1, note = $1 WHERE id = $2`, values: [`w${rnd(1e6)}`, ids.pick(w)] };
    if (r < 0.7) return { sql: `UPDATE {t} SET body = ${big('$1::text')} WHERE id = $2`, values: [String(rnd(1e6)), ids.pick(w)] };
    if (r < 0.8) return { sql: `INSERT INTO {t} VALUES ($1, 0, ${big('$2::text')}, NULL)`, values: [ids.fresh(w), String(rnd(1e6))] };
    // Re-keys a row and leaves its TOASTed value alone: the new key arrives with the value unsent.
    if (r < 0.88) {
      const from = ids.remove(w);
      return { sql: `UPDATE {t} SET id = $1, qty = -qty WHERE id = $2`, values: [ids.fresh(w), from] };
    }
    return { sql: `DELETE FROM {t} WHERE id = $1`, values: [ids.remove(w)] };
  }

  it('keeps every out-of-line value that updates of other columns left alone', async () => {
    const alter = `ALTER COLUMN qty TYPE bigint, ADD COLUMN extra text DEFAULT 'x'`;
    const { result, stats } = await migrateUnderWrites(db, [table, mirror], alter, writes, { options: { chunkTimeMs: 20 } });
    expect(stats.errors).toEqual([]);
    expect(stats.transactions).toBeGreaterThan(20);
    expect(result.changesApplied).toBeGreaterThan(0);
    await expectMirrored(postgresDatabase(db), table, mirror);
    // The toasted values are really there, and the new table keeps the replica identity.
    const { rows } = await db.query(
      `SELECT count(*) FILTER (WHERE length(body) = 6400) AS toasted, (SELECT relreplident FROM pg_class WHERE oid = $1::regclass) AS ident
         FROM ${table}`,
      [table],
    );
    expect(Number(rows[0].toasted)).toBeGreaterThan(SEED / 7);
    expect(rows[0].ident).toBe(relreplident);
  }, 90_000);
});

describe('enums, domains, arrays of enums; json keeps its text, jsonb its value', () => {
  const SEED = 15_000;
  const ids = new OwnedIds(SEED);

  beforeAll(async () => {
    await db.query(`DROP TABLE IF EXISTS pcv_types, pcv_types_m CASCADE`);
    await db.query(`DROP TYPE IF EXISTS pcv_mood CASCADE`);
    await db.query(`DROP DOMAIN IF EXISTS pcv_positive, pcv_email CASCADE`);
    await db.query(`CREATE TYPE pcv_mood AS ENUM ('sad', 'ok', 'happy')`);
    await db.query(`CREATE DOMAIN pcv_positive AS numeric(12,3) CHECK (VALUE > 0)`);
    await db.query(`CREATE DOMAIN pcv_email AS text CHECK (VALUE LIKE '%@%')`);
    await pgTwins(
      db,
      ['pcv_types', 'pcv_types_m'],
      `CREATE TABLE {t} (id int PRIMARY KEY, mood pcv_mood NOT NULL DEFAULT 'ok', moods pcv_mood[], amount pcv_positive,
                         email pcv_email, j json, jb jsonb, label text)`,
      `INSERT INTO {t} SELECT g, (enum_range(NULL::pcv_mood))[1 + g % 3],
              CASE WHEN g % 5 = 0 THEN NULL ELSE ARRAY[(enum_range(NULL::pcv_mood))[1 + g % 3], NULL, 'sad']::pcv_mood[] END,
              g + 0.125, 'u' || g || '@example.org',
              ('{"b": ' || g || ',   "a" : [1,2 ,3],"b":"dup"}')::json,
              ('{"b": ' || g || ',   "a" : [1,2 ,3],"b":"dup", "n": 1.50}')::jsonb, 'l' || g
         FROM generate_series(1, ${SEED}) g`,
    );
  }, 60_000);

  function writes(w: number): Statement {
    const r = Math.random();
    const spaces = ' '.repeat(rnd(4));
    if (r < 0.4) {
      return {
        sql: `UPDATE {t} SET mood = $1, moods = moods || $1::pcv_mood, j = $2::json, jb = CASE WHEN jsonb_typeof(jb) = 'object' THEN jsonb_set(jb, '{n}', '2.500') ELSE jb END WHERE id = $3`,
        values: [['sad', 'ok', 'happy'][rnd(3)], `{"z":${spaces}1,"a":[${spaces}true ],"z": null}`, ids.pick(w)],
      };
    }
    if (r < 0.75) {
      return {
        sql: `INSERT INTO {t} (id, moods, amount, email, j, jb) VALUES ($1, ARRAY['happy', NULL]::pcv_mood[], 0.001, 'x@y', $2, $3)`,
        values: [ids.fresh(w), ...Array(2).fill(`{"k":${spaces}"v\\u00e9",  "k":2}`)],
      };
    }
    if (r < 0.85) return { sql: `UPDATE {t} SET j = NULL, jb = 'null', moods = '{}' WHERE id = $1`, values: [ids.pick(w)] };
    return { sql: `DELETE FROM {t} WHERE id = $1`, values: [ids.remove(w)] };
  }

  it('carries each value exactly, the json text byte for byte', async () => {
    const alter = `ADD COLUMN extra text DEFAULT 'e', ALTER COLUMN label TYPE varchar(40)`;
    const { result, stats } = await migrateUnderWrites(db, ['pcv_types', 'pcv_types_m'], alter, writes, { options: { chunkTimeMs: 20 } });
    expect(stats.errors).toEqual([]);
    expect(stats.transactions).toBeGreaterThan(20);
    expect(result.changesApplied).toBeGreaterThan(0);
    // Rows are compared by their text: json has no equality operator.
    await expectMirrored(postgresDatabase(db), 'pcv_types', 'pcv_types_m');
    const { rows } = await db.query(
      `SELECT count(*) FILTER (WHERE j::text = '{"b": ' || id || ',   "a" : [1,2 ,3],"b":"dup"}') AS json_text,
              count(*) FILTER (WHERE jb::text = '{"a": [1, 2, 3], "b": "dup", "n": 1.50}') AS jsonb_text FROM pcv_types`,
    );
    expect(Number(rows[0].json_text)).toBeGreaterThan(SEED / 2);
    expect(Number(rows[0].jsonb_text)).toBeGreaterThan(SEED / 2);
  }, 90_000);
});

describe('timestamps across time zones, infinities, BC dates, NaN, -0, int8 beyond 2^53, NULL over a default', () => {
  const SEED = 12_000;
  const ids = new OwnedIds(SEED);

  beforeAll(async () => {
    await pgTwins(
      db,
      ['pcv_special', 'pcv_special_m'],
      // The key leads with a timestamptz that holds infinities and BC values, so keyset order must handle them.
      `CREATE TABLE {t} (at timestamptz NOT NULL, id int NOT NULL, day date, local timestamp, n numeric(30,5), f8 float8,
                         f4 real, big int8, dflt int DEFAULT 42, PRIMARY KEY (at, id))`,
      `INSERT INTO {t} SELECT
              CASE g % 50 WHEN 0 THEN 'infinity' WHEN 1 THEN '-infinity'
                          ELSE '0044-03-15 12:00:00.000001+00 BC'::timestamptz + g * interval '17 days 1.000001 second' END,
              g, CASE WHEN g % 7 = 0 THEN 'infinity'::date ELSE '0001-01-01 BC'::date + g END,
              '2024-03-31 02:30:00.123456'::timestamp + g * interval '1 hour',
              CASE WHEN g % 9 = 0 THEN 'NaN' ELSE g * 1.00001 END,
              (ARRAY['-0', 'NaN', 'Infinity', '-Infinity', '4.9e-324', '0.1'])[1 + g % 6]::float8,
              (ARRAY['-0', 'NaN', '1.17549435e-38', '0.1'])[1 + g % 4]::real,
              CASE WHEN g % 2 = 0 THEN 9007199254740993 + g ELSE -9223372036854775808 + g END,
              CASE WHEN g % 4 = 0 THEN NULL ELSE g END
         FROM generate_series(1, ${SEED}) g`,
    );
  }, 60_000);

  // The workload's sessions run in a zone with a :45 offset and daylight saving, so literals
  // without a zone mean something else there than on shadowcut's sessions.
  const ZONE = 'Pacific/Chatham';
  function writes(w: number): Statement {
    const r = Math.random();
    const id = r < 0.6 ? ids.fresh(w) : ids.pick(w);
    const micros = String(rnd(1_000_000)).padStart(6, '0');
    const at = ['infinity', '-infinity', `0500-06-01 10:00:00.${micros} BC`, `2024-04-07 03:15:00.${micros}`][rnd(4)];
    if (r < 0.6) {
      return {
        sql: `INSERT INTO {t} (at, id, day, local, n, f8, f4, big, dflt)
              VALUES ($1, $2, '4713-01-01 BC', $3, 'NaN', '-0', 'NaN', 9223372036854775807, NULL)`,
        values: [at, id, `2024-04-07 02:45:00.${micros}`],
      };
    }
    if (r < 0.8) {
      return {
        sql: `UPDATE {t} SET local = now()::timestamp, f8 = $1::float8, n = 'NaN', big = big - 1 WHERE id = $2`,
        values: [['-0', 'NaN', '-Infinity'][rnd(3)], id],
      };
    }
    // Re-keys the row to another instant (the key's first column).
    return { sql: `UPDATE {t} SET at = $1 WHERE id = $2 AND NOT EXISTS (SELECT 1 FROM {t} WHERE at = $1 AND id = $2)`, values: [at, id] };
  }

  it("carries every value exactly, whatever the sessions' TimeZone", async () => {
    const alter = `ALTER COLUMN big TYPE numeric, ALTER COLUMN n TYPE numeric, ADD COLUMN extra int DEFAULT 1`;
    const zoned = pgPoolIn(ZONE);
    try {
      const { result, stats } = await migrateUnderWrites(zoned, ['pcv_special', 'pcv_special_m'], alter, writes, { options: { chunkTimeMs: 20 } });
      expect(stats.errors).toEqual([]);
      expect(result.changesApplied).toBeGreaterThan(0);
      expect(stats.transactions).toBeGreaterThan(20);
    } finally {
      await zoned.end();
    }
    // Rows are compared by their text, which tells -0 from 0 (equal as float8).
    await expectMirrored(postgresDatabase(db), 'pcv_special', 'pcv_special_m');
    const { rows } = await db.query(
      `SELECT count(*) FILTER (WHERE f8::text = '-0') AS neg_zero, count(*) FILTER (WHERE dflt IS NULL) AS nulls,
              count(*) FILTER (WHERE at = '-infinity') AS neg_inf FROM pcv_special`,
    );
    expect(Number(rows[0].neg_zero)).toBeGreaterThan(0);
    expect(Number(rows[0].nulls)).toBeGreaterThan(0);
    expect(Number(rows[0].neg_inf)).toBeGreaterThan(0);
  }, 90_000);
});

describe('a text key under a non-C collation', () => {
  const SEED = 20_000;
  const words = ['a', 'B', 'é', 'Z', 'ä', 'Ö', 'ß', '_', 'e', 'E', 'z', 'Å'];
  const owned: string[][] = [[], [], []];
  let counter = 0;

  beforeAll(async () => {
    const icu = await db.query(`SELECT 1 FROM pg_collation WHERE collname = 'en-US-x-icu'`);
    const collation = icu.rowCount ? '"en-US-x-icu"' : '"C.utf8"';
    await pgTwins(
      db,
      ['pcv_coll', 'pcv_coll_m'],
      `CREATE TABLE {t} (k text COLLATE ${collation} PRIMARY KEY, w int NOT NULL, v int)`,
      `INSERT INTO {t} SELECT (ARRAY[${words.map((x) => `'${x}'`).join(',')}])[1 + g % ${words.length}] || (g * 7919 % 100003) || '-' || g,
              g % 3, g FROM generate_series(1, ${SEED}) g`,
    );
    const { rows } = await db.query(`SELECT k, w FROM pcv_coll`);
    for (const r of rows) owned[Number(r.w)].push(r.k);
  }, 60_000);

  function writes(w: number): Statement {
    const r = Math.random();
    const mine = owned[w];
    const fresh = () => `${words[rnd(words.length)]}${rnd(100003)}~${w}~${++counter}`;
    if (r < 0.4) {
      const k = fresh();
      mine.push(k);
      return { sql: `INSERT INTO {t} VALUES ($1, $2, 0)`, values: [k, w] };
    }
    if (r < 0.7) {
      const i = rnd(mine.length);
      const from = mine[i];
      mine[i] = fresh();
      return { sql: `UPDATE {t} SET k = $1, v = v + 1 WHERE k = $2`, values: [mine[i], from] };
    }
    if (r < 0.85) return { sql: `UPDATE {t} SET v = v + 1 WHERE k = $1`, values: [mine[rnd(mine.length)]] };
    return { sql: `DELETE FROM {t} WHERE k = $1`, values: [mine.splice(rnd(mine.length), 1)[0]] };
  }

  it("walks the keys in the column's collation order and misses none", async () => {
    // Many small chunks: every boundary is a place where the wrong order would skip or repeat rows.
    const { result, stats } = await migrateUnderWrites(db, ['pcv_coll', 'pcv_coll_m'], 'ADD COLUMN extra int', writes, {
      options: { chunkTimeMs: 5 },
    });
    expect(stats.errors).toEqual([]);
    expect(stats.transactions).toBeGreaterThan(20);
    expect(result.checksumRounds).toBe(1);
    expect(result.changesApplied).toBeGreaterThan(0);
    await expectMirrored(postgresDatabase(db), 'pcv_coll', 'pcv_coll_m');
    const { rows } = await db.query(
      `SELECT collname FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation WHERE attrelid = 'pcv_coll'::regclass AND attname = 'k'`,
    );
    expect(['en-US-x-icu', 'C.utf8']).toContain(rows[0].collname);
  }, 90_000);
});

function pgPoolIn(zone: string): pg.Pool {
  const pool = pgPool();
  pool.on('connect', (client) => void client.query(`SET TimeZone = '${zone}'`));
  return pool;
}
