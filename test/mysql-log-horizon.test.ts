// The trigger log's horizon on one MariaDB server (src/engines/mysql/capture/trigger/horizon.ts):
// who could still commit an entry below a sequence is read from INNODB_TRX, a cache the server fills
// only once nobody has read it for 100 ms. Its listing is believed only when it shows a canary begun
// after the sequence read; here, the cache is kept stale by a session reading it every 2 ms.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { ServerHorizon } from '../src/engines/mysql/capture/trigger/horizon.js';
import { createMysqlEngine, type MysqlEngine } from '../src/engines/mysql/index.js';
import { createPool } from '../src/engines/mysql/server/connect.js';
import { adminPool, keepTrxListOld, mysqlUrl } from './support/mysql.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LOG = 'hz_log';

let db: mysql.Pool;
let engine: MysqlEngine;

beforeAll(async () => {
  db = adminPool();
  engine = await createMysqlEngine(mysqlUrl());
  await db.query(`DROP TABLE IF EXISTS ${LOG}`);
  await db.query(`CREATE TABLE ${LOG} (seq BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL) ENGINE=InnoDB`);
});

afterAll(async () => {
  await db.query(`DROP TABLE IF EXISTS ${LOG}`);
  await engine.close();
  await db.end();
});

describe('the trigger log horizon (MariaDB)', () => {
  it('does not settle on a stale listing, even one showing a transaction of a connection it will reuse', async () => {
    // The horizon's pool, every connection of which the cache has seen in a transaction: a canary taken
    // from it would carry an id the stale cache already shows.
    const pool = createPool(engine.target, 2);
    const horizon = new ServerHorizon(pool, engine.target, `\`${LOG}\``);
    const early = await db.getConnection();
    let stop: (() => Promise<void>) | null = null;
    try {
      const conns = [await pool.getConnection(), await pool.getConnection()];
      for (const conn of conns) await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
      await sleep(300);
      const [listed] = await db.query<mysql.RowDataPacket[]>('SELECT trx_mysql_thread_id AS t FROM information_schema.INNODB_TRX');
      for (const conn of conns) expect(listed.map((r) => Number(r.t))).toContain(conn.threadId);
      stop = keepTrxListOld((sql) => db.query(sql), 2);
      for (const conn of conns) {
        await conn.query('COMMIT');
        conn.release();
      }
      // A writer numbers its entry after the cache was filled, and stays open.
      await early.query('START TRANSACTION');
      await early.query(`INSERT INTO ${LOG} (k) VALUES (1)`);
      const h = await horizon.horizon();
      expect(h).not.toBeNull();
      for (let i = 0; i < 10; i++) {
        await sleep(300);
        expect(await horizon.settled(h!), `settled on a listing without the open writer (look ${i + 1})`).toBe(false);
      }
      // Fresh again (nobody reading), the writer is listed; once it ends, the horizon settles.
      await stop();
      stop = null;
      await sleep(300);
      expect(await horizon.settled(h!)).toBe(false);
      await early.query('COMMIT');
      await sleep(300);
      expect(await horizon.settled(h!)).toBe(true);
    } finally {
      await stop?.();
      early.release();
      await horizon.close();
      await pool.end();
    }
  });
});
