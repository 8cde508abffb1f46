// One binlog reader for a set's tables (issue 36): the runs of a set subscribe to one reader, which
// hands each table its own keys. A table that resumes from an earlier position starts the reader
// again from there, and neither table loses a change; the server sends the binlog once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import type { ChangeSink, ChangeStream, Engine, Key, Migration, Position } from '../src/core/engine/types.js';
import { createMysqlEngine } from '../src/engines/mysql/index.js';
import { binlogHead } from '../src/engines/mysql/capture/binlog/binlog.js';
import { adminPool, mysqlUrl } from './support/mysql.js';
import { waitFor } from './support/run.js';

let root: mysql.Pool;
let engine: Engine;

beforeAll(async () => {
  root = adminPool();
  engine = await createMysqlEngine(mysqlUrl());
  await root.query('DROP TABLE IF EXISTS hub_a, hub_b');
  await root.query('CREATE TABLE hub_a (id INT PRIMARY KEY, v INT) ENGINE=InnoDB');
  await root.query('CREATE TABLE hub_b (id INT PRIMARY KEY, v INT) ENGINE=InnoDB');
});

afterAll(async () => {
  await root.query('DROP TABLE IF EXISTS hub_a, hub_b');
  await engine.close();
  await root.end();
});

/** A sink that keeps the key values it is given, in order. */
class Collected implements ChangeSink {
  readonly ids: number[] = [];
  failure: Error | null = null;
  keys(keys: Key[]): void {
    for (const key of keys) this.ids.push(Number(key[0]));
  }
  /** The hub's tests follow tables with no foreign key: a reference would be a bug. */
  references(): void {
    this.failure = new Error('a reference reached a table with no foreign key');
  }
  advance(): void {}
  fail(error: Error): void {
    this.failure = error;
  }
  hasRoom(): boolean {
    return true;
  }
  onRoom(): void {}
}

async function dumps(): Promise<number> {
  const [rows] = await root.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'`);
  return Number(rows[0].n);
}

function until(what: string, done: () => boolean | Promise<boolean>): Promise<void> {
  return waitFor(what, done, null, 10_000);
}

const distinct = (ids: number[]) => [...new Set(ids)].sort((a, b) => a - b);

describe('one binlog reader for the tables of a set', () => {
  it('hands each table its own keys; a table resuming from an earlier position restarts it, and neither loses a change', async () => {
    const database = new URL(mysqlUrl()).pathname.slice(1);
    const prepare = (table: string, other: string): Promise<Migration> =>
      engine.prepare({ url: mysqlUrl(), table, alter: 'ADD COLUMN x INT', capture: 'stream', set: [`${database}.${other}`] });
    const [a, b] = [await prepare('hub_a', 'hub_b'), await prepare('hub_b', 'hub_a')];
    const before = await dumps();
    const earlier: Position = await binlogHead(root);
    await root.query('INSERT INTO hub_a VALUES (1, 1), (2, 2); INSERT INTO hub_b VALUES (1, 1)');

    const [gotA, gotB] = [new Collected(), new Collected()];
    const streams: ChangeStream[] = [];
    try {
      streams.push(await a.changes.open(gotA, undefined, { lockTimeoutMs: 1000, attempts: 1, warn: () => {} }));
      await root.query('INSERT INTO hub_a VALUES (3, 3); INSERT INTO hub_b VALUES (2, 2)');
      await until('hub_a 3', () => gotA.ids.includes(3));
      // hub_b resumes from before hub_a's reader began: the reader starts again from there.
      streams.push(await b.changes.open(gotB, earlier, { lockTimeoutMs: 1000, attempts: 1, warn: () => {} }));
      await root.query('UPDATE hub_a SET id = 30 WHERE id = 3; DELETE FROM hub_b WHERE id = 1; INSERT INTO hub_b VALUES (4, 4)');
      await until('both tables', () => gotA.ids.includes(30) && gotB.ids.includes(4));
      expect(await dumps()).toBe(before + 1);
    } finally {
      for (const stream of streams) await stream.stop();
    }
    expect([gotA.failure, gotB.failure]).toEqual([null, null]);
    // hub_a from its start on (what came before was its copy's), hub_b from its earlier position.
    expect(distinct(gotA.ids)).toEqual([3, 30]);
    expect(distinct(gotB.ids)).toEqual([1, 2, 4]);
    // The last table's stop stops the reader: its session leaves the server.
    await until('the reader to leave', async () => (await dumps()) === before);
  });

  it('a restart that fails (a position the server no longer has) fails the table already following too, instead of leaving it waiting', async () => {
    const database = new URL(mysqlUrl()).pathname.slice(1);
    const prepare = (table: string, other: string): Promise<Migration> =>
      engine.prepare({ url: mysqlUrl(), table, alter: 'ADD COLUMN y INT', capture: 'stream', set: [`${database}.${other}`] });
    const [a, b] = [await prepare('hub_a', 'hub_b'), await prepare('hub_b', 'hub_a')];
    const before = await dumps();
    const [gotA, gotB] = [new Collected(), new Collected()];
    const first = await a.changes.open(gotA, undefined, { lockTimeoutMs: 1000, attempts: 1, warn: () => {} });
    try {
      const head = (await binlogHead(root)) as { file: string; pos: number };
      // A file before every file the server has (same stem, sequence zero): earlier than the reader, so it starts again there, and fails.
      const purged = { file: head.file.replace(/\d+$/, (n) => '0'.repeat(n.length)), pos: 4 };
      // The server refuses the file at once (the subscription fails) or once the reader has started (its stream fails): either way hub_b knows.
      let refused: unknown = null;
      await b.changes.open(gotB, purged, { lockTimeoutMs: 1000, attempts: 1, warn: () => {} }).then(
        (stream) => stream.stop,
        (error: unknown) => (refused = error),
      );
      await until('both tables to be told', () => gotA.failure !== null && (refused !== null || gotB.failure !== null));
      // A code the runner reads as a lost stream, to reopen from hub_a's own position.
      expect((gotA.failure as Error & { code?: string }).code).toBeTruthy();
    } finally {
      await first.stop();
    }
    await until('the reader to leave', async () => (await dumps()) === before);
  });
});
