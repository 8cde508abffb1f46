import { afterAll, describe, expect, it } from 'vitest';
import type { RowDataPacket } from 'mysql2/promise';
import { parseMysqlUrl } from '../src/engines/mysql/server/target.js';
import { TrxList } from '../src/engines/mysql/server/trx-list.js';
import { adminPool, mysqlUrl } from './support/mysql.js';

/**
 * The listing of INNODB_TRX that the cut-over's looks share (server/trx-list.ts). A set's cut-over
 * looks once per table under its one lock; a listing begun after the lock answers each of them, so
 * a later table's look must not read the list again (each read waits out the cache's idle time, about
 * 100 ms, while writers queue behind the lock). A look that needs a newer listing still gets one.
 */
describe('MariaDB: the list of transactions under a lock', () => {
  const pool = adminPool();
  afterAll(() => pool.end());
  // Each read opens a connection of its own (for its canary transaction): the server's count of connections tells how many were made.
  const connections = async () => Number((await pool.query<RowDataPacket[]>("SHOW GLOBAL STATUS LIKE 'Connections'"))[0][0].Value);

  it('answers every look begun after the same instant with one read, and reads again for a look that needs a newer listing', async () => {
    const list = TrxList.of(parseMysqlUrl(mysqlUrl())[0]);
    const lockedAt = performance.now();
    const before = await connections();
    const first = await list.listing(2, lockedAt);
    const second = await list.listing(2, lockedAt);
    const third = await list.listing(2, lockedAt);
    // The count query itself is on a pooled connection made before `before` was read.
    expect((await connections()) - before).toBe(1);
    expect(first.fresh).toBe(true);
    expect(second).toBe(first);
    expect(third).toBe(first);

    const newer = await list.listing(2, performance.now());
    expect(newer).not.toBe(first);
    expect(newer.begunAt).toBeGreaterThan(first.begunAt);
    expect((await connections()) - before).toBe(2);
  });
});
