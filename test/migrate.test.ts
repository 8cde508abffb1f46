// The whole migration under concurrent writes, for each engine with the types a client-side copy
// tends to damage on that engine, a large value and columns left to their defaults.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databases, expectMirrored, migrateOn, type Database } from './support/fixture.js';
import { MirrorWorkload, OwnedIds, type Statement } from './support/workload.js';

const SEED = 30_000;

interface Case {
  /** The table as migrate() is given it (PostgreSQL's schema-qualified, as an operator may write it). */
  target: string;
  alter: string;
  /** Creates `orders` and `orders_mirror`, filled alike. */
  setup(db: Database): Promise<void>;
  teardown(db: Database): Promise<void>;
  /** Worker w's next write, on rows only it touches. */
  writes(): (worker: number) => Statement;
}

const mysql: Case = {
  target: 'orders',
  alter: 'ADD COLUMN note VARCHAR(200) NULL, MODIFY qty BIGINT NOT NULL, ADD INDEX (created_at)',
  async setup(db) {
    await db.drop('orders', 'orders_mirror');
    await db.query(`CREATE TABLE orders (
      id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
      customer_id INT NOT NULL,
      qty INT NOT NULL,
      price DECIMAL(65,30) NULL,
      big BIGINT UNSIGNED NULL,
      created_at DATETIME(6) NOT NULL,
      ts TIMESTAMP(6) NULL DEFAULT NULL,
      status ENUM('new','paid','shipped') NOT NULL DEFAULT 'new',
      flags BIT(5) NULL,
      bin BINARY(8) NULL,
      doc JSON NULL,
      body MEDIUMTEXT NULL,
      label VARCHAR(100) CHARACTER SET utf8mb4 NULL,
      with_default INT NULL DEFAULT 7,
      KEY (customer_id)) ENGINE=InnoDB`);
    await db.query(`
      INSERT INTO orders (id, customer_id, qty, price, big, created_at, ts, status, flags, bin, doc, body, label, with_default)
      SELECT seq, seq % 97, seq % 13,
        CONCAT('12345678901234567890123456789012345.', LPAD(seq, 30, '0')),
        18446744073709551615 - seq,
        '2024-01-01 00:00:00.000001' + INTERVAL seq SECOND,
        IF(seq % 5 = 0, NULL, '2024-03-01 00:00:00.000009' + INTERVAL seq MINUTE),
        ELT(1 + seq % 3, 'new', 'paid', 'shipped'),
        b'10101',
        UNHEX(CONCAT(LPAD(HEX(seq), 4, '0'), '000000000000')),
        JSON_OBJECT('n', seq, 'big', 9007199254740993, 'f', 0.1),
        IF(seq % 2000 = 0, REPEAT('large value ', 20000), CONCAT('row ', seq)),
        IF(seq % 7 = 0, NULL, CONCAT('crab 🦀 ', seq)),
        IF(seq % 11 = 0, NULL, seq)
      FROM seq_1_to_${SEED}`);
    await db.query('CREATE TABLE orders_mirror LIKE orders');
    await db.query('INSERT INTO orders_mirror SELECT * FROM orders');
  },
  teardown: (db) => db.drop('orders', 'orders_mirror'),
  /** Inserts, updates (large values, microseconds), deletes, key changes and explicit NULLs. */
  writes() {
    const ids = new OwnedIds(SEED, 1_000_000);
    return (w) => {
      const r = Math.random();
      const micros = String(Math.floor(Math.random() * 1000)).padStart(6, '0');
      if (r < 0.35 && ids.size(w)) {
        return {
          sql: `UPDATE {t} SET qty = qty + 1, price = ?, ts = ?, body = IF(? , REPEAT('u', 70000), body), doc = JSON_SET(doc, '$.n', ?) WHERE id = ?`,
          values: [
            `-98765432109876543210987654321098765.${micros}000000000000000000000001`,
            `2025-06-01 12:00:00.${micros}`,
            Math.random() < 0.05,
            w,
            ids.pick(w),
          ],
        };
      }
      if (r < 0.55) {
        return {
          sql: `INSERT INTO {t} (id, customer_id, qty, price, big, created_at, bin, label, with_default) VALUES (?, ?, ?, ?, ?, ?, UNHEX('FF00000000000000'), ?, NULL)`,
          values: [ids.fresh(w), w, 1, '0.000000000000000000000000000001', '18446744073709551615', `2025-01-01 00:00:00.${micros}`, 'new 🦀'],
        };
      }
      if (r < 0.7 && ids.size(w) > 100) return { sql: 'DELETE FROM {t} WHERE id = ?', values: [ids.remove(w)] };
      if (r < 0.85 && ids.size(w)) {
        const from = ids.remove(w);
        return { sql: 'UPDATE {t} SET id = ? WHERE id = ?', values: [ids.fresh(w), from] };
      }
      // Columns left out take their defaults (with_default = 7, status = 'new').
      return { sql: 'INSERT INTO {t} (id, customer_id, qty, created_at) VALUES (?, 0, 0, ?)', values: [ids.fresh(w), `2025-02-02 00:00:00.${micros}`] };
    };
  },
};

const BASE = 9007199254740993n; // 2^53 + 1: a Number would round it
/** An incompressible, deterministic value large enough to be stored out of line (TOASTed). */
const toasted = (seed: string) => `(SELECT string_agg(md5(g::text || ${seed}), '') FROM generate_series(1, 200) g)`;

const postgres: Case = {
  target: 'public.orders',
  alter: `ALTER COLUMN qty TYPE bigint, ADD COLUMN note text DEFAULT 'none', ALTER COLUMN label TYPE varchar(200), DROP COLUMN dropped`,
  async setup(db) {
    await db.drop('orders', 'orders_mirror');
    await db.query(`DROP TYPE IF EXISTS orders_mood`);
    await db.query(`CREATE TYPE orders_mood AS ENUM ('new', 'paid', 'shipped')`);
    for (const t of ['orders', 'orders_mirror']) {
      await db.query(`CREATE TABLE ${t} (
        region int NOT NULL,
        id int8 NOT NULL,
        seq int8 GENERATED ALWAYS AS IDENTITY,
        qty int NOT NULL,
        price numeric(60,30),
        big int8,
        at timestamptz,
        mood orders_mood NOT NULL DEFAULT 'new',
        bin bytea,
        doc jsonb,
        tags text[],
        body text,
        label text,
        with_default int DEFAULT 7,
        dropped int,
        doubled numeric GENERATED ALWAYS AS (big::numeric * 2) STORED,
        PRIMARY KEY (region, id))`);
      await db.query(`CREATE INDEX ON ${t} (at)`);
      await db.query(`
        INSERT INTO ${t} (region, id, qty, price, big, at, mood, bin, doc, tags, body, label, with_default, dropped)
        SELECT g % 3, ${BASE} + g, g % 13, ('123456789012345678901234567890.' || lpad(g::text, 30, '0'))::numeric,
               9223372036854775807 - g, '2024-01-01 00:00:00.000001+00'::timestamptz + g * interval '1.000001 second',
               (ARRAY['new', 'paid', 'shipped']::orders_mood[])[1 + g % 3], decode(lpad(to_hex(g), 8, '0'), 'hex'),
               jsonb_build_object('n', g, 'big', 9007199254740993, 'f', 0.1), ARRAY[g::text, NULL],
               CASE WHEN g % 500 = 0 THEN ${toasted('g::text')} ELSE 'row ' || g END,
               CASE WHEN g % 7 = 0 THEN NULL ELSE 'crab 🦀 ' || g END, CASE WHEN g % 11 = 0 THEN NULL ELSE g END, g
          FROM generate_series(1, ${SEED}) g`);
    }
  },
  async teardown(db) {
    await db.drop('orders', 'orders_mirror');
    await db.query(`DROP TYPE IF EXISTS orders_mood`);
  },
  writes() {
    // Each worker owns the ids it created or seeded in its region; keys move only within a region.
    const owned: bigint[][] = [[], [], []];
    for (let g = 1; g <= SEED; g++) owned[g % 3].push(BASE + BigInt(g));
    const counter = [0n, 0n, 0n];
    const pick = (w: number) => owned[w][Math.floor(Math.random() * owned[w].length)];
    const fresh = (w: number) => BASE + 10_000_000n + ++counter[w];
    return (w) => {
      const r = Math.random();
      const micros = String(Math.floor(Math.random() * 1_000_000)).padStart(6, '0');
      if (r < 0.35 && owned[w].length) {
        // Leaves `body` alone: the stream sends unchanged TOASTed values as 'u', never their content.
        return {
          sql: `UPDATE {t} SET qty = qty + 1, price = $1, at = $2, doc = jsonb_set(doc, '{n}', to_jsonb($3::int)),
                               tags = ARRAY[$3::text, NULL], mood = 'paid' WHERE region = $4 AND id = $5`,
          values: [`-12345678901234567890123456789.${micros}000000000000000000000001`, `2025-06-01 12:00:00.${micros}+00`, w, w, String(pick(w))],
        };
      }
      if (r < 0.4 && owned[w].length) {
        return { sql: `UPDATE {t} SET body = ${toasted('$1')} WHERE region = $2 AND id = $3`, values: [micros, w, String(pick(w))] };
      }
      if (r < 0.6) {
        const id = fresh(w);
        owned[w].push(id);
        return {
          sql: `INSERT INTO {t} (region, id, qty, price, big, at, mood, bin, doc, tags, body, label, with_default)
                VALUES ($1, $2, 1, '0.000000000000000000000000000001', 9223372036854775807, $3, 'shipped', '\\xdeadbeef00',
                        '{"big": 9007199254740993, "f": 0.1}', ARRAY['a', NULL, 'c'], 'new row', $4, NULL)`,
          values: [w, String(id), `2025-01-01 00:00:00.${micros}+00`, `crab 🦀 ${micros}`],
          serial: true,
        };
      }
      if (r < 0.75 && owned[w].length > 100) {
        const i = Math.floor(Math.random() * owned[w].length);
        const [id] = owned[w].splice(i, 1);
        return { sql: 'DELETE FROM {t} WHERE region = $1 AND id = $2', values: [w, String(id)] };
      }
      if (r < 0.9 && owned[w].length) {
        const i = Math.floor(Math.random() * owned[w].length);
        const from = owned[w][i];
        const to = fresh(w);
        owned[w][i] = to;
        return { sql: 'UPDATE {t} SET id = $1 WHERE region = $2 AND id = $3', values: [String(to), w, String(from)] };
      }
      const id = fresh(w);
      owned[w].push(id);
      // Columns left out take their defaults (mood 'new', with_default 7).
      return { sql: 'INSERT INTO {t} (region, id, qty) VALUES ($1, $2, 0)', values: [w, String(id)], serial: true };
    };
  },
};

const cases = { mysql, postgres };

describe.each(databases)('$name: migration under concurrent writes', ({ open, kind }) => {
  const db = open();
  const { target, alter, setup, teardown, writes } = cases[kind];
  beforeAll(() => setup(db), 60_000);
  afterAll(async () => {
    if (!process.env.DEBUG_KEEP) await teardown(db);
    await db.close();
  });

  it('ends with the new schema and exactly the rows of a mirror that took the same writes and the same ALTER', async () => {
    const load = new MirrorWorkload(db, ['orders', 'orders_mirror'], writes());
    load.start();
    await load.untilMoreWrites();
    const result = await migrateOn(db, target, alter, { chunkTimeMs: 50, checksumChunkRows: 5000 });
    await load.untilMoreWrites(); // writes after the cut-over land in the new table
    const stats = await load.stop();

    await db.query(`ALTER TABLE orders_mirror ${alter}`);
    console.log(
      `${kind} mirror test: ${stats.transactions} write transactions, ${stats.errors.length} errors, ` +
        `longest write ${stats.maxLatencyMs.toFixed(1)} ms, p99 ${stats.p99LatencyMs.toFixed(1)} ms; ` +
        `${result.changesApplied} changes applied, cut-over blocked writers ${result.cutoverLockedMs} ms in ${result.cutoverAttempts} attempt(s)`,
    );
    expect(stats.errors).toEqual([]);
    expect(stats.transactions).toBeGreaterThan(100);
    expect(result.changesApplied).toBeGreaterThan(0);
    // The stream alone kept the shadow level: the first checksum round found nothing to repair.
    expect(result.checksumRounds).toBe(1);
    // The original is kept for rollback under one name; nothing else is left.
    await expectMirrored(db, 'orders', 'orders_mirror');
    const [[rows, mirrored]] = await db.query('SELECT (SELECT COUNT(*) FROM orders), (SELECT COUNT(*) FROM orders_mirror)');
    expect(Number(rows)).toBe(Number(mirrored));
    expect(Number(rows)).toBeGreaterThan(SEED / 2);
  }, 120_000);
});
