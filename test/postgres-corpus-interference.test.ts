// PostgreSQL corpus, interference: what other sessions do to the table while it is being copied.
// A huge transaction must simply be followed; DDL or TRUNCATE must stop the run safely, leaving the
// original in place with its rows and no helper objects.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentReporter, type Reporter } from '../src/core/report/reporter.js';
import {
  differences,
  inTransaction,
  migratePg,
  migrateUnderWrites,
  pgDropTables,
  pgHelpers,
  pgPool,
  pgSchemaOf,
  pgTwins,
  postgresDatabase,
} from './support/pg.js';
import { MirrorWorkload, type Statement } from './support/workload.js';

let db: pg.Pool;

beforeAll(() => {
  db = pgPool();
});

afterAll(async () => {
  await pgDropTables(db, ['pci_bulk', 'pci_bulk_m', 'pci_ddl', 'pci_ddl_m', 'pci_retype', 'pci_retype_m', 'pci_trunc', 'pci_trunc_m']);
  await db.end();
});

const rnd = (n: number) => Math.floor(Math.random() * n);
const SCHEMA = `CREATE TABLE {t} (id int PRIMARY KEY, qty int NOT NULL, body text)`;
const fill = (rows: number) => `INSERT INTO {t} SELECT g, g % 100, 'row ' || g FROM generate_series(1, ${rows}) g`;

/** Small writes on rows owned by the worker (id % 3), inserts above `seed`. */
function smallWrites(seed: number) {
  let next = seed;
  return (w: number): Statement => {
    const r = Math.random();
    if (r < 0.3) {
      do next++;
      while (next % 3 !== w);
      return { sql: `INSERT INTO {t} (id, qty, body) VALUES ($1, 1, 'ins')`, values: [next] };
    }
    const id = 3 * rnd(seed / 3) + w || 3;
    if (r < 0.9) return { sql: `UPDATE {t} SET qty = qty + 1 WHERE id = $1`, values: [id] };
    return { sql: `DELETE FROM {t} WHERE id = $1`, values: [id] };
  };
}

/** A reporter that runs `action` once, at the first progress report of the copy. */
function once(action: () => Promise<unknown>): { reporter: Reporter; done: () => Promise<unknown> } {
  let started: Promise<unknown> | null = null;
  return {
    reporter: { ...silentReporter, progress: () => void (started ??= action().catch((error) => error)) },
    done: async () => {
      expect(started, 'the action never ran: the copy reported no progress').not.toBeNull();
      return started;
    },
  };
}

function inOneTransaction(statements: string[]) {
  return inTransaction(db, statements);
}

/** Stopped safely: no shadow, slot, publication, checkpoint or old table; the original serves writes. */
async function expectStoppedSafely(table: string) {
  expect(await pgHelpers(db, table)).toEqual([]);
  const { rows } = await db.query(`SELECT to_regclass($1) AS state, to_regclass($2) AS hb`, [`${table}__state`, `${table}__hb`]);
  expect(rows[0]).toEqual({ state: null, hb: null });
  await db.query(`UPDATE ${table} SET qty = qty WHERE id = 1`);
}

describe('a large transaction during the copy', () => {
  const SEED = 200_000;

  beforeAll(async () => {
    await pgTwins(db, ['pci_bulk', 'pci_bulk_m'], SCHEMA, fill(SEED));
  }, 60_000);

  it('is followed in full: one UPDATE of 180,000 rows, committed while the copy runs', async () => {
    // Both tables in one transaction, as the workload does, so the mirror stays the ground truth. Only
    // seeded rows: a row inserted between the two statements would be seen by the second one only.
    const bulk = once(() =>
      inOneTransaction(['pci_bulk', 'pci_bulk_m'].map((t) => `UPDATE ${t} SET qty = qty + 1000, body = body || ' bulk' WHERE id <= ${SEED} AND id % 10 <> 0`)),
    );
    const { result, stats } = await migrateUnderWrites(
      db,
      ['pci_bulk', 'pci_bulk_m'],
      'ALTER COLUMN qty TYPE bigint, ADD COLUMN extra int',
      smallWrites(SEED),
      {
        options: { chunkTimeMs: 20, maxRowsPerSec: 60_000, reporter: bulk.reporter },
      },
    );
    expect(await bulk.done()).toBeUndefined();
    expect(stats.errors).toEqual([]);
    expect(result.changesApplied).toBeGreaterThan(0);
    expect(await pgSchemaOf(db, 'pci_bulk')).toEqual(await pgSchemaOf(db, 'pci_bulk_m'));
    expect(await differences(db, 'pci_bulk', 'pci_bulk_m')).toEqual([]);
    expect(await pgHelpers(db, 'pci_bulk')).toEqual(['pci_bulk__old']);
    const { rows } = await db.query(`SELECT count(*) AS n FROM pci_bulk WHERE body LIKE '% bulk'`);
    expect(Number(rows[0].n)).toBeGreaterThan(170_000);
  }, 120_000);
});

describe.each([
  [
    'ADD COLUMN by another session',
    'pci_ddl',
    (t: string) => [`ALTER TABLE ${t} ADD COLUMN intruder int DEFAULT 7`],
    /pci_ddl was altered during the migration \(its columns changed\); start again/,
  ],
  [
    'a column type change by another session',
    'pci_retype',
    (t: string) => [`ALTER TABLE ${t} ALTER COLUMN body TYPE varchar(500)`],
    /pci_retype was altered during the migration \(its columns changed\); start again/,
  ],
  [
    'TRUNCATE',
    'pci_trunc',
    // The mirror is truncated in the same transaction.
    (t: string) => [`TRUNCATE ${t}, ${t}_m`],
    /pci_trunc was truncated during the migration; start again/,
  ],
] as const)('%s during the copy', (_name, table, interfere, message) => {
  const mirror = `${table}_m`;
  const SEED = 60_000;

  beforeAll(async () => {
    await pgTwins(db, [table, mirror], SCHEMA, fill(SEED));
  }, 60_000);

  it('stops the run with a clear error; the original keeps its rows and serves, nothing is left behind', async () => {
    const schema = await pgSchemaOf(db, table);
    const load = new MirrorWorkload(postgresDatabase(db), [table, mirror], smallWrites(SEED));
    const action = once(() => inOneTransaction(interfere(table)));
    load.start();
    try {
      // Slowed down so that the interference lands well inside the copy, and writes follow it.
      await expect(migratePg(table, 'ADD COLUMN extra int', { chunkTimeMs: 20, maxRowsPerSec: 20_000, reporter: action.reporter })).rejects.toThrow(message);
    } finally {
      await load.stop();
    }
    expect(await action.done()).toBeUndefined();
    expect(load.stats.errors).toEqual([]);
    await expectStoppedSafely(table);
    // The original has its own columns (plus what the other session did to them), and the mirror's rows.
    const own = schema.map((c) => `${c.split(' ')[0]}::text`).join(', ');
    expect((await pgSchemaOf(db, table)).map((c) => c.split(' ')[0]).slice(0, schema.length)).toEqual(schema.map((c) => c.split(' ')[0]));
    expect(await differences(db, `(SELECT ${own} FROM ${table}) o`, `(SELECT ${own} FROM ${mirror}) m`)).toEqual([]);
  }, 90_000);
});
