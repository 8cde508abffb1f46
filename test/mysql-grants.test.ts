import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlDatabase } from './support/mysql.js';
import { migrateOn, useDatabase } from './support/fixture.js';
import { beforeCopying } from './support/wrap.js';

/**
 * DESIGN invariant 19, MariaDB/MySQL: grants are kept by name (mysql.tables_priv, columns_priv),
 * not bound to the table, so the swap's RENAME leaves the table's own grants on the table under its
 * name, the new one: an account's table-level and column-level rights are what they were. While the
 * copy runs, no account has a grant of its own on the shadow (one with database-wide rights reads
 * both, as it reads the original), and shadowcut grants nothing on its helpers.
 */
describe("MariaDB: the new table's rights", () => {
  const db = useDatabase(mysqlDatabase, 'gr_t');
  const account = "'sc_gr_reader'@'%'";
  const grants = async () => (await db.query(`SHOW GRANTS FOR ${account}`)).map((r) => String(r[0])).sort();
  /** Every table-level or column-level grant, to anyone, on a table named after gr_t other than gr_t itself (the shadow, the checkpoint, the log). */
  const grantsOnOthers = () =>
    db.query(
      `SELECT TABLE_NAME, GRANTEE, PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE '%gr\\_t%' AND TABLE_NAME <> 'gr_t'
       UNION ALL
       SELECT TABLE_NAME, GRANTEE, PRIVILEGE_TYPE FROM information_schema.COLUMN_PRIVILEGES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE '%gr\\_t%' AND TABLE_NAME <> 'gr_t'
       UNION ALL
       SELECT TABLE_NAME, GRANTEE, PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'shadowcut%'`,
    );

  beforeAll(async () => {
    await db.query(`DROP USER IF EXISTS ${account}`);
    await db.query(`CREATE USER ${account} IDENTIFIED BY 'gr-reader'`);
  });
  afterAll(async () => {
    await db.query(`DROP USER IF EXISTS ${account}`);
  });

  it("keeps an account's table-level and column-level grants exactly, and gives none on the shadow", async () => {
    await db.query('CREATE TABLE gr_t (id INT PRIMARY KEY, v INT, secret VARCHAR(40))');
    await db.query(`INSERT INTO gr_t SELECT g, g, CONCAT('card ', g) FROM (${db.series(2000)}) s`);
    await db.query(`GRANT SELECT (id, v), UPDATE (v) ON gr_t TO ${account}`);
    await db.query(`GRANT INSERT, DELETE ON gr_t TO ${account}`);
    const before = await grants();
    expect(before.filter((l) => /ON `[^`]+`\.`gr_t` TO/.test(l))).toHaveLength(1);

    let during: unknown[][] | null = null;
    let looked = false;
    const engine = beforeCopying(await db.engine(), async () => {
      if (looked) return;
      looked = true;
      during = await grantsOnOthers();
    });
    await migrateOn(db, 'gr_t', 'ADD COLUMN w INT NULL, MODIFY v BIGINT', {}, { engine });
    await engine.close();

    expect(during).toEqual([]);
    expect(await grants()).toEqual(before);
    expect(await grantsOnOthers()).toEqual([]);
  });
});
