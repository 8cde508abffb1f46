import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { adminPool, differences, migrateMysql, mysqlDatabase } from './support/mysql.js';
import { MirrorWorkload, type Statement } from './support/workload.js';

// Key values must survive the trip through the binlog decoder and back into SQL exactly:
// trailing zero bytes, microseconds with leading zeros, 64-bit unsigned beyond 2^53, wide decimals.
const KEY = ['bin', 'dt', 'big', 'dec'];
let db: mysql.Pool;

beforeAll(async () => {
  db = adminPool();
  await db.query('DROP TABLE IF EXISTS k_t, k_t_mirror, k_t__new, k_t__old');
  await db.query(`CREATE TABLE k_t (
    bin VARBINARY(8) NOT NULL, dt DATETIME(6) NOT NULL, big BIGINT UNSIGNED NOT NULL, \`dec\` DECIMAL(30,10) NOT NULL,
    id INT NOT NULL, n INT NOT NULL, PRIMARY KEY (bin, dt, big, \`dec\`), UNIQUE KEY (id)) ENGINE=InnoDB`);
  await db.query(`INSERT INTO k_t SELECT UNHEX(CONCAT(LPAD(HEX(seq % 50), 2, '0'), '0000')), '2024-01-01 00:00:00.000001' + INTERVAL (seq % 7) MICROSECOND,
    18446744073709551615 - (seq % 3), CONCAT('12345678901234567890.', LPAD(seq, 10, '0')), seq, 0 FROM seq_1_to_20000`);
  await db.query('CREATE TABLE k_t_mirror LIKE k_t');
  await db.query('INSERT INTO k_t_mirror SELECT * FROM k_t');
});

afterAll(async () => {
  await db.query('DROP TABLE IF EXISTS k_t, k_t_mirror, k_t__new, k_t__old');
  await db.end();
});

function writes(worker: number): Statement {
  // Each worker updates and re-keys the rows whose id is its residue mod 3, so writers never collide.
  const id = 1 + worker + 3 * Math.floor(Math.random() * 6600);
  const r = Math.random();
  if (r < 0.5) return { sql: 'UPDATE {t} SET n = n + 1 WHERE id = ?', values: [id] };
  if (r < 0.8) return { sql: "UPDATE {t} SET dt = dt + INTERVAL 1 MICROSECOND, bin = CONCAT(bin, X'00') WHERE id = ? AND LENGTH(bin) < 8", values: [id] };
  return { sql: 'DELETE FROM {t} WHERE id = ?', values: [id] };
}

describe('keys of awkward types', () => {
  it('are followed exactly through the binlog, including key-changing updates', async () => {
    const load = new MirrorWorkload(mysqlDatabase(db), ['k_t', 'k_t_mirror'], writes);
    load.start();
    await load.untilMoreWrites();
    const result = await migrateMysql('k_t', 'ADD COLUMN extra VARCHAR(10) NULL', { chunkTimeMs: 20 });
    const stats = await load.stop();
    await db.query('ALTER TABLE k_t_mirror ADD COLUMN extra VARCHAR(10) NULL');
    expect(stats.errors).toEqual([]);
    expect(result.changesApplied).toBeGreaterThan(0);
    expect(await differences(db, 'k_t', 'k_t_mirror', KEY)).toEqual([]);
  });
});
