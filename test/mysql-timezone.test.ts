import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { adminPool, differences, migrateMysql } from './support/mysql.js';

// The server runs at +02:00: conversions between DATETIME and TIMESTAMP must come out as a native
// ALTER makes them, in the server's zone, not in UTC; TIMESTAMP key values read from the binlog
// must match the text our sessions use.
let root: mysql.Pool;
let db: mysql.Pool;

beforeAll(async () => {
  root = adminPool();
  await root.query("SET GLOBAL time_zone = '+02:00'");
  db = adminPool(); // new sessions take the new zone
});

afterAll(async () => {
  await db.query('DROP TABLE IF EXISTS tz_t, tz_mirror, tz_t__new, tz_t__old');
  await db.end();
  await root.query("SET GLOBAL time_zone = 'SYSTEM'");
  await root.end();
});

describe('a server in another time zone', () => {
  it('converts DATETIME <-> TIMESTAMP in the server zone and follows TIMESTAMP keys exactly', async () => {
    const [[zone]] = await db.query<mysql.RowDataPacket[]>('SELECT @@session.time_zone AS tz');
    expect(zone.tz).toBe('+02:00');
    await db.query('DROP TABLE IF EXISTS tz_t, tz_mirror, tz_t__new, tz_t__old');
    await db.query(`CREATE TABLE tz_t (at TIMESTAMP(6) NOT NULL, id INT NOT NULL, dt DATETIME(6) NOT NULL, ts TIMESTAMP(6) NULL,
      n INT NOT NULL DEFAULT 0, PRIMARY KEY (at, id)) ENGINE=InnoDB`);
    await db.query(`INSERT INTO tz_t (at, id, dt, ts) SELECT '2024-03-31 00:00:00.000001' + INTERVAL seq MINUTE, seq,
      '2024-06-01 10:20:30.000001' + INTERVAL seq SECOND, '2024-10-27 00:30:00.000002' + INTERVAL seq MINUTE FROM seq_1_to_3000`);
    await db.query('CREATE TABLE tz_mirror LIKE tz_t');
    await db.query('INSERT INTO tz_mirror SELECT * FROM tz_t');
    let writing = true;
    const writer = (async () => {
      for (let i = 1; writing; i++) {
        const id = 1 + ((i * 7) % 3000);
        // Re-keys rows through the TIMESTAMP key column, in both tables alike.
        for (const t of ['tz_t', 'tz_mirror']) await db.query(`UPDATE ${t} SET at = at + INTERVAL 1 SECOND, n = n + 1 WHERE id = ?`, [id]);
        await new Promise((r) => setTimeout(r, 3));
      }
    })();
    const alter = 'MODIFY dt TIMESTAMP(6) NOT NULL, MODIFY ts DATETIME(6) NULL';
    try {
      await migrateMysql('tz_t', alter, { chunkTimeMs: 10 });
    } finally {
      writing = false;
      await writer;
    }
    await db.query(`ALTER TABLE tz_mirror ${alter}`);
    expect(await differences(db, 'tz_t', 'tz_mirror', ['at', 'id'])).toEqual([]);
  });
});
