import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChangeBuffer } from '../src/core/migrate/capture/change-buffer.js';
import type { Engine, Key } from '../src/core/engine/types.js';
import { createPostgresEngine } from '../src/engines/postgres/index.js';
import { runCli } from './support/mysql.js';
import { Recorder } from './support/pg.js';
import { catchUpFrom, differingRanges, noSetup, waitFor, buildsAsIs } from './support/run.js';

const url = () => {
  const value = process.env.SHADOWCUT_PG_URL;
  if (!value) throw new Error('SHADOWCUT_PG_URL is not set; the vitest global setup starts the servers');
  return value;
};

let db: pg.Pool;
let engine: Engine;

beforeAll(async () => {
  db = new pg.Pool({ connectionString: url(), max: 4 });
  engine = await createPostgresEngine(url());
});

afterAll(async () => {
  await engine.close();
  await db.end();
});

/** Helper objects of any run on `table`: what a refusal or a cleanup must not leave behind. */
async function helpers(table: string): Promise<string[]> {
  const { rows } = await db.query(
    `SELECT relname AS name FROM pg_class WHERE relname IN ($1, $2)
     UNION ALL SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE $3
     UNION ALL SELECT pubname FROM pg_publication WHERE pubname LIKE $3`,
    [`${table}__new`, `${table}__old`, `shadowcut\\_${table}\\_%`],
  );
  return rows.map((r) => r.name);
}

async function reset(...tables: string[]) {
  for (const t of tables) await db.query(`DROP TABLE IF EXISTS ${t}, ${t}__new, ${t}__old CASCADE`);
}

const prepare = (table: string, alter: string) => engine.prepare({ url: url(), table, alter });
describe('refusals: one clear message, nothing left behind', () => {
  beforeAll(async () => {
    await reset('pe_part', 'pe_unlogged', 'pe_nokey', 'pe_ok');
    await db.query(`CREATE TABLE pe_part (id int, d date, PRIMARY KEY (id, d)) PARTITION BY RANGE (d)`);
    await db.query(`CREATE UNLOGGED TABLE pe_unlogged (id int PRIMARY KEY)`);
    await db.query(`CREATE TABLE pe_nokey (id int, v text)`);
    await db.query(`CREATE TABLE pe_ok (id int PRIMARY KEY, v text)`);
  });

  it('no such table', async () => {
    await expect(prepare('public.pe_missing', 'ADD COLUMN x int')).rejects.toThrow(/pe_missing does not exist/);
  });

  it('no primary key and no replica identity', async () => {
    await expect(prepare('pe_nokey', 'ADD COLUMN x int')).rejects.toThrow(/no primary key and no unique index on NOT NULL columns; add a primary key/);
    await db.query(`ALTER TABLE pe_nokey REPLICA IDENTITY NOTHING`);
    await expect(prepare('pe_nokey', 'ADD COLUMN x int')).rejects.toThrow(/REPLICA IDENTITY NOTHING/);
  });

  it('unlogged tables fail their checks; a partitioned one passes them', async () => {
    const failing = async (table: string) =>
      (await (await prepare(table, 'ADD COLUMN x int')).checks({ resuming: false })).filter((c) => !c.ok).map((c) => c.name);
    expect(await failing('pe_part')).toEqual([]);
    expect(await failing('pe_unlogged')).toEqual(['logged']);
    expect(await failing('pe_ok')).toEqual([]);
  });

  it('a bad ALTER is the server’s own message, and several statements are refused', async () => {
    await expect(prepare('pe_ok', 'ALTER COLUMN nope TYPE bigint')).rejects.toThrow(/the ALTER fails: column "nope" .* does not exist/);
    await expect(prepare('pe_ok', 'ADD COLUMN x int; DROP TABLE pe_nokey')).rejects.toThrow(/not several statements/);
    await expect(prepare('pe_ok', 'DROP COLUMN id')).rejects.toThrow(/key/);
    await expect(prepare('pe_ok', 'RENAME TO elsewhere')).rejects.toThrow(/renames or moves the table/);
  });

  it('leftovers of an earlier run are named with their fix; an old table an earlier run kept is none, the plan takes the next name', async () => {
    await db.query(`CREATE TABLE pe_ok__old (id int)`);
    const migration = await prepare('pe_ok', 'ADD COLUMN x int');
    expect(migration.plan.oldTable).toBe('public.pe_ok__old_2');
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [(migration.plan.detail as { slot: string }).slot]);
    const leftover = (await migration.checks({ resuming: false })).find((c) => c.name === 'no leftovers')!;
    expect(leftover.ok).toBe(false);
    expect(leftover.message).toMatch(/pg_drop_replication_slot\('shadowcut_pe_ok_/);
    expect(leftover.message).not.toMatch(/pe_ok__old/);
    await migration.cleanup({ dropOld: false, cutOver: false });
    await db.query(`CREATE TABLE pe_ok__new (id int)`);
    const shadowLeft = (await (await prepare('pe_ok', 'ADD COLUMN x int')).checks({ resuming: false })).find((c) => c.name === 'no leftovers')!;
    expect(shadowLeft.ok).toBe(false);
    expect(shadowLeft.message).toMatch(/DROP TABLE "public"."pe_ok__new"/);
    await db.query(`DROP TABLE pe_ok__new, pe_ok__old`);
  });

  it('a dry run names every problem at once, on one line: an UNLOGGED table, a MySQL-only option and a leftover shadow', async () => {
    await reset('pe_two');
    await db.query(`CREATE UNLOGGED TABLE pe_two (id int PRIMARY KEY, v text); INSERT INTO pe_two VALUES (1, 'a')`);
    await db.query(`CREATE TABLE pe_two__new (id int)`);
    const r = runCli(['migrate', '--force-copy', '--url', url(), '--table', 'pe_two', '--alter', 'ADD COLUMN x int', '--discard-foreign-keys'], url());
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/pe_two is UNLOGGED/);
    expect(r.stderr).toMatch(/--discard-foreign-keys is for MySQL\/MariaDB/);
    expect(r.stderr).toMatch(/DROP TABLE "public"."pe_two__new"/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toMatch(/FAIL logged: /);
    expect(r.stdout).toMatch(/ok {3}wal_level: /);
    // Nothing made: no slot, no publication, no helper table but the one the test left.
    expect(await helpers('pe_two')).toEqual(['pe_two__new']);
    expect((await db.query(`SELECT id, v FROM pe_two`)).rows).toEqual([{ id: 1, v: 'a' }]);
    await reset('pe_two');
  });

  it('left nothing behind', async () => {
    for (const t of ['pe_part', 'pe_unlogged', 'pe_nokey', 'pe_ok']) expect(await helpers(t)).toEqual([]);
  });
});

describe('change stream', () => {
  it('reports the keys of every change as the server’s text, old and new key of a key change, and TRUNCATE as a failure', async () => {
    await reset('pe_stream');
    await db.query(`CREATE TABLE pe_stream (k text, at timestamptz, v text, PRIMARY KEY (k, at))`);
    await db.query(`INSERT INTO pe_stream VALUES ('a', '2024-01-01 00:00:00.000001+00', 'x')`);
    const migration = await prepare('pe_stream', 'ADD COLUMN n int');
    await migration.createShadow();
    const sink = new Recorder();
    const stream = await migration.changes.open(sink, undefined, noSetup);
    try {
      await db.query(`SET timezone = 'UTC'`);
      await db.query(`INSERT INTO pe_stream VALUES ('b', '2024-01-02 03:04:05.123456+00', 'y')`);
      await db.query(`UPDATE pe_stream SET v = 'z' WHERE k = 'b'`);
      await db.query(`UPDATE pe_stream SET k = 'c' WHERE k = 'a'`);
      await db.query(`DELETE FROM pe_stream WHERE k = 'b'`);
      const head = await stream.head();
      await waitFor('the head', () => sink.seen !== null && migration.changes.comparePositions(sink.seen, head) >= 0, null, 10_000);
      const b: Key = ['b', '2024-01-02 03:04:05.123456+00'];
      expect(sink.received).toEqual([b, b, ['c', '2024-01-01 00:00:00.000001+00'], ['a', '2024-01-01 00:00:00.000001+00'], b]);
      // The stream position only moves when told what is applied.
      await stream.acknowledge(head);
      await waitFor(
        'the acknowledgement',
        async () => {
          const { rows } = await db.query(`SELECT confirmed_flush_lsn >= $2::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = $1`, [
            (migration.plan.detail as { slot: string }).slot,
            head.lsn,
          ]);
          return rows[0].ok;
        },
        null,
        10_000,
      );
      await db.query(`TRUNCATE pe_stream`);
      await waitFor('the failure', () => sink.failure !== null, null, 10_000);
      expect(sink.failure!.message).toMatch(/truncated during the migration/);
    } finally {
      await stream.stop();
      await migration.cleanup({ dropOld: false, cutOver: false });
    }
    expect(await helpers('pe_stream')).toEqual([]);
  }, 30_000);
});

describe('copy, apply and checksum', () => {
  it('converge under writes, and a corrupted shadow row is caught by the checksum and repaired', async () => {
    await reset('pe_copy');
    await db.query(`CREATE TABLE pe_copy (id int8 PRIMARY KEY, qty int NOT NULL, price numeric(60,30), body text,
                      made timestamptz DEFAULT now(), tags int[], UNIQUE (qty, id))`);
    await db.query(`INSERT INTO pe_copy (id, qty, price, body, tags)
                    SELECT 9007199254740993 + g, g % 100, '123456789012345678901234567890.123456789012345678901234567891',
                           repeat('x', g % 50), ARRAY[g, NULL] FROM generate_series(1, 3000) g`);
    const migration = await prepare('pe_copy', 'ALTER COLUMN qty TYPE bigint, ADD COLUMN note text DEFAULT $$n/a$$');
    expect(migration.plan.summary.join('\n')).toMatch(/qty: integer -> bigint/);
    await migration.createShadow();
    // Applies between chunks, as they are made where the shadow keeps its key through the copy (a partitioned table's).
    await migration.keylessShadow?.build();
    const buffer = new ChangeBuffer();
    const stream = await migration.changes.open(buffer, undefined, noSetup);
    buffer.advance(stream.start);
    try {
      let after: Key | null = null;
      let writes = 0;
      for (;;) {
        // Writes between chunks land on both sides of the copy's progress.
        await db.query(`UPDATE pe_copy SET qty = qty + 1, body = body || 'u' WHERE id % 97 = $1`, [writes % 97]);
        await db.query(`DELETE FROM pe_copy WHERE id = 9007199254740993 + $1`, [writes * 31 + 5]);
        await db.query(`UPDATE pe_copy SET id = id + 1000000 WHERE id = 9007199254740993 + $1`, [writes * 31 + 7]);
        await db.query(`INSERT INTO pe_copy (id, qty) VALUES (1 + $1, 1)`, [writes]);
        writes++;
        const pending = buffer.take(10_000);
        await migration.applyKeys(pending.keys);
        const upTo = await migration.nextBoundary(after, 400);
        await migration.copyRange({ after, upTo });
        if (upTo === null) break;
        after = upTo;
      }
      await migration.afterCopy(buildsAsIs);
      const catchUp = catchUpFrom(migration, stream, buffer);
      const compare = async () => differingRanges(await migration.consistentView(catchUp, 1000), 1000);
      expect(await compare()).toEqual([]);
      const { rows } = await db.query(`SELECT (SELECT count(*) FROM pe_copy)::int AS a, (SELECT count(*) FROM pe_copy__new)::int AS b`);
      expect(rows[0].a).toBe(rows[0].b);

      await db.query(`UPDATE pe_copy__new SET price = price + 1e-30 WHERE id = 9007199254740993 + 1500`);
      expect(await compare()).toHaveLength(1);
      await migration.copyRange({ after: null, upTo: null });
      expect(await compare()).toEqual([]);
    } finally {
      await stream.stop();
      await migration.cleanup({ dropOld: false, cutOver: false });
    }
    expect(await helpers('pe_copy')).toEqual([]);
  }, 60_000);
});

describe('column mapping', () => {
  it('follows a renamed column and converts with the ALTER’s USING expression', async () => {
    await reset('pe_map');
    await db.query(`CREATE TABLE pe_map (id int PRIMARY KEY, v text, n text)`);
    await db.query(`INSERT INTO pe_map VALUES (1, 'a', '41'), (2, NULL, '-1')`);
    const copied = async (alter: string, sql: string) => {
      const migration = await prepare('pe_map', alter);
      try {
        await migration.createShadow();
        await migration.copyRange({ after: null, upTo: null });
        return { summary: migration.plan.summary, rows: (await db.query(sql)).rows };
      } finally {
        await migration.cleanup({ dropOld: false, cutOver: false });
      }
    };
    const renamed = await copied('RENAME COLUMN v TO w', 'SELECT id, w FROM pe_map__new ORDER BY id');
    expect(renamed.summary).toContain('column v renamed to w');
    expect(renamed.rows).toEqual([
      { id: 1, w: 'a' },
      { id: 2, w: null },
    ]);
    const converted = await copied('ALTER COLUMN n TYPE int USING n::int + 1, ADD COLUMN z int DEFAULT 5', 'SELECT n, z FROM pe_map__new ORDER BY id');
    expect(converted.rows).toEqual([
      { n: 42, z: 5 },
      { n: 0, z: 5 },
    ]);
    expect(await helpers('pe_map')).toEqual([]);
  });
});
