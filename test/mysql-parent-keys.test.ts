import { afterAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { adminPool, differences, runCli, runCliAsync, schemaOf } from './support/mysql.js';
import { createFkTree, dropFkTree, fkServers, fkTree, FkTreeWriter } from './support/fk-tree.js';
import { waitFor } from './support/run.js';

const ROWS = 20_000;
const ALTER = 'ADD COLUMN extra INT NULL, MODIFY w BIGINT NOT NULL';

// The RESTRICT child of a parent is migrated: its key to the parent moves to the new table at the
// cut-over (src/engines/mysql/cutover/parent-keys.ts). One writer writes the tree and its mirror
// alike: a write the two judge differently is a key that was not enforced at some moment.
describe.each(fkServers)('$name: a table with a foreign key to another', ({ url }) => {
  const t = fkTree('fko');
  let db: mysql.Pool;
  const pool = () => (db ??= adminPool(url()));
  const args = ['migrate', '--force-copy', '--url', '$URL', '--table', t.real.restrict, '--alter', ALTER, '--execute'];

  afterAll(async () => {
    await dropFkTree(pool(), t);
    await pool().end();
  });

  /** The key, by name, on the new table and nowhere else; the rows and the definition as the mirror's after the native ALTER. */
  async function expectMirrored() {
    await pool().query(`ALTER TABLE ${t.mirror.restrict} ${ALTER}`);
    expect(await differences(pool(), t.real.restrict, t.mirror.restrict)).toEqual([]);
    const named = (table: string, side: typeof t.real) =>
      schemaOf(pool(), table).then((s) => s.replaceAll(side.restrict, '<t>').replaceAll(side.parent, '<p>'));
    expect(await named(t.real.restrict, t.real)).toBe(await named(t.mirror.restrict, t.mirror));
    expect(await schemaOf(pool(), `${t.real.restrict}__old`)).not.toMatch(/FOREIGN KEY/);
    await expect(pool().query(`INSERT INTO ${t.real.restrict} (id, pid, w) VALUES (9999999, 88888888, 0)`)).rejects.toMatchObject({ errno: 1452 });
  }

  it('under writes to the parent and the child: the key is on the new table under its name, enforced throughout, as the mirror', async () => {
    await createFkTree(pool(), t, ROWS);
    const plan = runCli(['plan', '--url', '$URL', '--table', t.real.restrict, '--alter', ALTER, '--force-copy'], url());
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(
      new RegExp(
        `foreign keys out: moved to the new table at the cut-over, under their names: ${t.real.restrict}\\.${t.real.restrict}_fk \\(pid\\) -> \\(id\\)`,
      ),
    );
    const writer = new FkTreeWriter(pool(), t, ROWS);
    writer.start();
    // Paced, so that a few hundred writes meet the copy and the cut-over.
    const run = await runCliAsync([...args, '--max-rows-per-sec', '1500'], url());
    const stats = await writer.stop();
    expect(run.code, run.stderr).toBe(0);
    expect(stats.errors).toEqual([]);
    expect(stats.mismatches).toEqual([]);
    expect(stats.refused).toBeGreaterThan(0);
    await expectMirrored();
    await pool().query(`DROP TABLE ${t.real.restrict}__old`);
  });

  it('killed after the key moved to the shadow, before the RENAME: --resume puts it back on the original first and ends exact', async () => {
    await createFkTree(pool(), t, 4000);
    const killed = await runCliAsync(args, url(), { SHADOWCUT_TEST_KILL_AT: 'after-children-pointed' });
    expect(killed.code).toBe(null);
    const on = async () => {
      const [rows] = await pool().query<mysql.RowDataPacket[]>(
        'SELECT TABLE_NAME t FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND CONSTRAINT_NAME = ?',
        [`${t.real.restrict}_fk`],
      );
      return rows.map((r) => String(r.t));
    };
    expect(await on()).toEqual([`${t.real.restrict}__new`]);
    const resumed = runCliAsync([...args, '--resume'], url());
    // Until the resumed run has put it back, the original's writes are unguarded (cutover/README.md): wait for it.
    await waitFor('the key pointed back at the original', async () => (await on())[0] === t.real.restrict, null);
    const writer = new FkTreeWriter(pool(), t, 4000);
    writer.start();
    const run = await resumed;
    const stats = await writer.stop();
    expect(run.code, run.stderr).toBe(0);
    expect(stats.errors).toEqual([]);
    expect(stats.mismatches).toEqual([]);
    await expectMirrored();
    await pool().query(`DROP TABLE ${t.real.restrict}__old`);
  });
});

describe('a key to itself and a key to another database', () => {
  const db = adminPool();

  afterAll(async () => {
    await db.query('DROP TABLE IF EXISTS pk_self, pk_self__old, pk_self__new, pk_self_m');
    await db.query('DROP DATABASE IF EXISTS pk_other');
    await db.end();
  });

  it('move to the new table: the key to itself references the new table, the other database is named as before', async () => {
    await db.query('DROP TABLE IF EXISTS pk_self, pk_self__old, pk_self__new, pk_self_m');
    await db.query('DROP DATABASE IF EXISTS pk_other');
    await db.query('CREATE DATABASE pk_other');
    await db.query('CREATE TABLE pk_other.region (id INT PRIMARY KEY) ENGINE=InnoDB');
    await db.query('INSERT INTO pk_other.region SELECT seq FROM seq_1_to_20');
    for (const t of ['pk_self', 'pk_self_m']) {
      await db.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, boss INT NULL, region INT NOT NULL,
        CONSTRAINT ${t}_boss FOREIGN KEY (boss) REFERENCES ${t} (id),
        CONSTRAINT ${t}_region FOREIGN KEY (region) REFERENCES pk_other.region (id)) ENGINE=InnoDB`);
      await db.query(`INSERT INTO ${t} SELECT seq, IF(seq > 1, 1 + seq DIV 2, NULL), 1 + seq % 20 FROM seq_1_to_3000`);
    }
    const r = runCli(['migrate', '--force-copy', '--url', '$URL', '--table', 'pk_self', '--alter', 'ADD COLUMN note VARCHAR(10)', '--execute']);
    expect(r.code, r.stderr).toBe(0);
    await db.query('ALTER TABLE pk_self_m ADD COLUMN note VARCHAR(10)');
    expect(await differences(db, 'pk_self', 'pk_self_m')).toEqual([]);
    const named = (t: string) => schemaOf(db, t).then((s) => s.replaceAll(t, '<t>'));
    expect(await named('pk_self')).toBe(await named('pk_self_m'));
    expect(await schemaOf(db, 'pk_self')).toMatch(/REFERENCES `pk_other`\.`region`/);
    // Enforced both ways on the new table: a boss that is not a row, a region that is not one.
    await expect(db.query('INSERT INTO pk_self (id, boss, region) VALUES (5000, 4999, 1)')).rejects.toMatchObject({ errno: 1452 });
    await expect(db.query('INSERT INTO pk_self (id, boss, region) VALUES (5000, 1, 99)')).rejects.toMatchObject({ errno: 1452 });
    await expect(db.query('DELETE FROM pk_other.region WHERE id = 1')).rejects.toMatchObject({ errno: 1451 });
  });
});
