// The Galera gate's proof that every writer which passed it has committed is a holder granted the
// writers' slot rows FOR UPDATE (src/engines/mysql/galera/gate.ts). That holds only if a
// writer keeps its slot's lock until its commit: InnoDB lets go of a transaction's shared locks at its
// prepare, so with a shared slot lock a holder could be granted while a writer that had passed the
// gate was prepared and not yet ordered by Galera, and its write was seen to land in the old table
// after the catch-up (2 of 37 runs of the cluster scenario). Galera refuses XA, and its prepare
// window cannot be held from outside, so the window is held here with XA PREPARE on the plain MariaDB:
// the lock is InnoDB's either way, and the gate's triggers key the slot by @@wsrep_node_name, which
// this server has too.
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LockTimeoutError } from '../src/core/engine/errors.js';
import { dropGate, GaleraGate } from '../src/engines/mysql/galera/gate.js';
import { createMysqlEngine, type MysqlEngine } from '../src/engines/mysql/index.js';
import { adminPool, mysqlUrl } from './support/mysql.js';

const TABLE = 'gp_t';
let db: mysql.Pool;
let engine: MysqlEngine;

beforeAll(async () => {
  db = adminPool();
  engine = await createMysqlEngine(mysqlUrl());
});

afterAll(async () => {
  await dropGate(engine.pool, engine.target.database, TABLE, []).catch(() => {});
  await db.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await engine.close();
  await db.end();
});

describe('the Galera gate and a writer between its prepare and its commit (MariaDB, XA)', () => {
  it('keeps every holder out until the writer has committed: the gate cannot close past it', async () => {
    await db.query(`DROP TABLE IF EXISTS ${TABLE}; CREATE TABLE ${TABLE} (id INT PRIMARY KEY, v INT) ENGINE=InnoDB; INSERT INTO ${TABLE} VALUES (1, 0)`);
    const [[node]] = await db.query<mysql.RowDataPacket[]>('SELECT @@wsrep_node_name AS name');
    const members = [{ name: String(node.name), target: engine.target }];
    const gate = new GaleraGate(engine.pool, { database: engine.target.database, table: TABLE }, () => Promise.resolve(members));
    await gate.install(members);
    const writer = await mysql.createConnection(mysqlUrl());
    let prepared = false;
    try {
      // Through the open gate, then prepared: from here on only its commit is to come.
      await writer.query("XA START 'gp'");
      await writer.query(`UPDATE ${TABLE} SET v = 1 WHERE id = 1`);
      await writer.query("XA END 'gp'");
      await writer.query("XA PREPARE 'gp'");
      prepared = true;
      const closing = gate.close(600);
      await expect(closing).rejects.toBeInstanceOf(LockTimeoutError);
      await expect(closing).rejects.toThrow(/could not hold every node's writers within 600 ms/);
      await writer.query("XA COMMIT 'gp'");
      prepared = false;
      // Committed: the same close is granted, and the write is in the table it passed the gate of.
      const closed = await gate.close(600);
      await closed.release();
      const [[row]] = await db.query<mysql.RowDataPacket[]>(`SELECT v FROM ${TABLE} WHERE id = 1`);
      expect(Number(row.v)).toBe(1);
    } finally {
      if (prepared) await writer.query("XA ROLLBACK 'gp'").catch(() => {});
      await writer.end();
    }
  });
});
