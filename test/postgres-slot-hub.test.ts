// One replication slot for a set's tables (issue 36): the runs of a set subscribe to one reader of one
// slot, which hands each table its own keys. The slot moves only as far as every table has applied,
// and not at all before each has joined; a table resuming from an earlier position starts the reader
// again from there, and no table loses a change or gets another's; one WAL sender for all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { ChangeSink, ChangeStream, Engine, Key, Migration, Position } from '../src/core/engine/types.js';
import { createPostgresEngine } from '../src/engines/postgres/index.js';
import { lsnValue } from '../src/engines/postgres/server/lsn.js';
import { pgPool, pgUrl } from './support/pg.js';
import { waitFor } from './support/run.js';

let db: pg.Pool;
let engine: Engine;

beforeAll(async () => {
  db = pgPool();
  engine = await createPostgresEngine(pgUrl());
  await db.query('DROP TABLE IF EXISTS hub_a, hub_b');
  // An earlier failed run's slot and publication (the publication lost its tables with them).
  const leftovers = await db.query(`SELECT pubname FROM pg_publication WHERE pubname LIKE 'shadowcut\\_set\\_%'`);
  for (const { pubname } of leftovers.rows) {
    await db.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [pubname]);
    await db.query(`DROP PUBLICATION ${pubname}`);
  }
  await db.query('CREATE TABLE hub_a (id int PRIMARY KEY, v int); CREATE TABLE hub_b (id int PRIMARY KEY, v int)');
});

afterAll(async () => {
  await db.query('DROP TABLE IF EXISTS hub_a, hub_b');
  await engine.close();
  await db.end();
});

/** A sink that keeps the key values it is given, in order, and the last position it was told. */
class Collected implements ChangeSink {
  readonly ids: number[] = [];
  at: Position | null = null;
  failure: Error | null = null;
  keys(keys: Key[], position: Position): void {
    for (const key of keys) this.ids.push(Number(key[0]));
    this.at = position;
  }
  /** PostgreSQL's streams report no references (only MySQL's cascades do): one would be a bug. */
  references(): void {
    this.failure = new Error('a reference reached a PostgreSQL stream');
  }
  advance(position: Position): void {
    this.at = position;
  }
  fail(error: Error): void {
    this.failure = error;
  }
  hasRoom(): boolean {
    return true;
  }
  onRoom(): void {}
}

const OPEN = { lockTimeoutMs: 1000, attempts: 1, warn: () => {} };

async function slot(name: string): Promise<{ confirmed: bigint; active: boolean } | null> {
  const { rows } = await db.query('SELECT confirmed_flush_lsn::text AS lsn, active FROM pg_replication_slots WHERE slot_name = $1', [name]);
  return rows.length ? { confirmed: lsnValue(String(rows[0].lsn)), active: rows[0].active === 't' } : null;
}

async function senders(): Promise<number> {
  return Number((await db.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'walsender' AND application_name = 'shadowcut'`)).rows[0].n);
}

function until(what: string, done: () => boolean | Promise<boolean>): Promise<void> {
  return waitFor(what, done, null, 10_000);
}

const distinct = (ids: number[]) => [...new Set(ids)].sort((a, b) => a - b);

describe('one replication slot for the tables of a set', () => {
  it('holds the slot for a table not yet joined; a table resuming from further back restarts the reader; each gets its own keys, none lost', async () => {
    const prepare = (table: string, other: string): Promise<Migration> =>
      engine.prepare({ url: pgUrl(), table, alter: 'ADD COLUMN x int', capture: 'stream', set: [`public.${other}`] });
    const [a, b] = [await prepare('hub_a', 'hub_b'), await prepare('hub_b', 'hub_a')];
    const name = (a.plan.detail as { slot: string }).slot;
    expect((b.plan.detail as { slot: string }).slot).toBe(name);

    const [gotA, gotB] = [new Collected(), new Collected()];
    const streams: ChangeStream[] = [];
    try {
      const first = await a.changes.open(gotA, undefined, OPEN);
      streams.push(first);
      const made = await slot(name);
      await db.query('INSERT INTO hub_a VALUES (1, 1), (2, 2); INSERT INTO hub_b VALUES (1, 1)');
      await db.query('INSERT INTO hub_b VALUES (2, 2)');
      await until('hub_a 2', () => gotA.ids.includes(2));
      // hub_a applied everything it was given; hub_b has not joined: the slot must stay where it was made.
      await first.acknowledge((await settled(first, gotA)) as Position);
      expect((await slot(name))!.confirmed).toBe(made!.confirmed);

      // hub_b resumes from the slot's start, before the reader's position: the reader starts again from there.
      const second = await b.changes.open(gotB, first.start, OPEN);
      streams.push(second);
      await db.query('UPDATE hub_a SET id = 30 WHERE id = 2; DELETE FROM hub_b WHERE id = 1; INSERT INTO hub_b VALUES (4, 4)');
      await until('both tables', () => gotA.ids.includes(30) && gotB.ids.includes(4));
      expect(await senders()).toBe(1);
      // Both joined and applied: the slot moves to the lesser of their positions.
      await first.acknowledge((await settled(first, gotA)) as Position);
      await second.acknowledge((await settled(second, gotB)) as Position);
      await until('the slot to move', async () => (await slot(name))!.confirmed > made!.confirmed);
      // hub_a done (its cut-over) while hub_b still follows: its cleanup leaves the slot to the last.
      await first.stop();
      await a.changes.cleanup();
      expect((await slot(name))?.active).toBe(true);
    } finally {
      for (const stream of streams) await stream.stop();
    }
    expect([gotA.failure, gotB.failure]).toEqual([null, null]);
    // hub_a took what it had not had again after the restart, but no other table's keys and none lost.
    expect(distinct(gotA.ids)).toEqual([1, 2, 30]);
    expect(distinct(gotB.ids)).toEqual([1, 2, 4]);
    await until('the reader to leave', async () => (await senders()) === 0);
    // The last table's cleanup removes the slot and the publication.
    await b.changes.cleanup();
    expect(await slot(name)).toBe(null);
    expect((await db.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [name])).rows).toEqual([]);
  });
});

/** The stream's position once it has passed a fence: everything written before is delivered. */
async function settled(stream: ChangeStream, sink: Collected): Promise<Position | null> {
  const head = lsnValue(String((await stream.head()).lsn));
  await until('the fence', () => sink.at !== null && lsnValue(String(sink.at.lsn)) >= head);
  return sink.at;
}
