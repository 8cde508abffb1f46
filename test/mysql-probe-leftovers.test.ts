// A partitioned table cannot have TEMPORARY probes, so its probes are real tables, and a run killed
// mid-proof leaves them, marked as probes. The proof's own probes are replaced; a dead run's shadow, which the plan's
// probe is named after, is refused and never dropped (it may be resumed).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { adminPool, differences, helperTables, migrateMysql, runCli } from './support/mysql.js';

let db: mysql.Pool;
const T = 'pl_t';

beforeAll(() => {
  db = adminPool();
});

afterAll(async () => {
  await db.query(`DROP TABLE IF EXISTS ${T}, ${T}__new, ${T}__old, ${T}__pa, ${T}__pb, ${T}_m`);
  await db.end();
});

async function seed() {
  await db.query(`DROP TABLE IF EXISTS ${T}, ${T}__new, ${T}__old, ${T}__pa, ${T}__pb, ${T}_m`);
  for (const t of [T, `${T}_m`]) {
    await db.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB PARTITION BY HASH (id) PARTITIONS 2`);
    await db.query(`INSERT INTO ${t} SELECT seq, CONCAT('v', seq) FROM seq_1_to_500`);
  }
}

describe('real probes of a partitioned table (MariaDB)', () => {
  it('a proof probe left by a killed run is replaced, and the run ends equal to a mirror', async () => {
    await seed();
    await db.query(`CREATE TABLE ${T}__pa (stale INT) COMMENT 'shadowcut probe: safe to drop'`);
    await migrateMysql(T, 'ADD COLUMN x INT', { dropOld: true });
    await db.query(`ALTER TABLE ${T}_m ADD COLUMN x INT`);
    expect(await differences(db, T, `${T}_m`)).toEqual([]);
    expect(await helperTables(db, T)).toEqual([]);
    const [left] = await db.query<mysql.RowDataPacket[]>(`SHOW TABLES LIKE '${T}\\_\\_p_'`);
    expect(left).toEqual([]);
  });

  it('cleanup removes proof probes a killed run left', async () => {
    await seed();
    await db.query(`CREATE TABLE ${T}__pb (stale INT) COMMENT 'shadowcut probe: safe to drop'`);
    const r = runCli(['cleanup', '--url', '$URL', '--table', T]);
    expect(r.code).toBe(0);
    const [left] = await db.query<mysql.RowDataPacket[]>(`SHOW TABLES LIKE '${T}\\_\\_p_'`);
    expect(left).toEqual([]);
  });

  it("a dead run's shadow is refused in one line, and left where it is", async () => {
    await seed();
    await db.query(`CREATE TABLE ${T}__new LIKE ${T}`);
    await db.query(`INSERT INTO ${T}__new SELECT * FROM ${T} WHERE id <= 10`);
    const r = runCli(['migrate', '--force-copy', '--url', '$URL', '--table', T, '--alter', 'ADD COLUMN x INT', '--execute']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/pl_t__new already exists \(left by an earlier run\?\)/);
    const [[row]] = await db.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${T}__new`);
    expect(Number(row.n)).toBe(10);
  });
});
