import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { adminPool, differences, helperTables, migrateMysql, runCli, schemaOf } from './support/mysql.js';

let db: mysql.Pool;

beforeAll(async () => {
  db = adminPool();
});

afterAll(async () => {
  await db.query('DROP TABLE IF EXISTS fk_cascade, fk_child, fk_child__old, fk_child__new, fk_copy, fk_parent, fk_parent__old');
  await db.end();
});

async function seed() {
  await db.query('DROP TABLE IF EXISTS fk_cascade, fk_child, fk_child__old, fk_child__new, fk_copy, fk_parent, fk_parent__old');
  await db.query('CREATE TABLE fk_parent (id INT PRIMARY KEY) ENGINE=InnoDB');
  await db.query('INSERT INTO fk_parent SELECT seq FROM seq_1_to_10');
  await db.query(`CREATE TABLE fk_child (id INT PRIMARY KEY, parent_id INT NOT NULL,
    CONSTRAINT fk_child_parent FOREIGN KEY (parent_id) REFERENCES fk_parent (id)) ENGINE=InnoDB`);
  await db.query('INSERT INTO fk_child SELECT seq, 1 + seq % 10 FROM seq_1_to_5000');
}

describe('foreign keys', () => {
  it('a table with a foreign key to another is migrated: the key moves to the new table under its name; the old table keeps none', async () => {
    await seed();
    const r = runCli(['migrate', '--force-copy', '--url', '$URL', '--table', 'fk_child', '--alter', 'ADD COLUMN x INT', '--execute']);
    expect(r.code, r.stderr).toBe(0);
    expect(await schemaOf(db, 'fk_child')).toMatch(/CONSTRAINT `fk_child_parent` FOREIGN KEY \(`parent_id`\) REFERENCES `fk_parent` \(`id`\)\n/);
    expect(await schemaOf(db, 'fk_child__old')).not.toMatch(/FOREIGN KEY/);
    await expect(db.query('INSERT INTO fk_child (id, parent_id) VALUES (999999, 424242)')).rejects.toMatchObject({ errno: 1452 });
    await db.query('DROP TABLE fk_child__old');
  });

  it('with --discard-foreign-keys the table is migrated with every row, and the new table has no foreign key', async () => {
    await seed();
    await db.query('CREATE TABLE fk_copy AS SELECT * FROM fk_child');
    await migrateMysql('fk_child', 'ADD COLUMN x INT', {}, { discardForeignKeys: true });
    expect(await schemaOf(db, 'fk_child')).not.toMatch(/FOREIGN KEY/);
    await db.query('ALTER TABLE fk_copy ADD PRIMARY KEY (id), ADD COLUMN x INT');
    expect(await differences(db, 'fk_child', 'fk_copy')).toEqual([]);
  });

  it('a table other tables refer to is migrated: their keys are re-pointed and reference the new table, not the old one', async () => {
    await seed();
    const r = runCli(['migrate', '--force-copy', '--url', '$URL', '--table', 'fk_parent', '--alter', 'ADD COLUMN x INT', '--execute']);
    expect(r.code, r.stderr).toBe(0);
    expect(await schemaOf(db, 'fk_child')).toMatch(/CONSTRAINT `fk_child_parent` FOREIGN KEY \(`parent_id`\) REFERENCES `fk_parent` \(`id`\)\n/);
    expect(await schemaOf(db, 'fk_parent')).toMatch(/`x`/);
    await db.query('DROP TABLE fk_parent__old'); // with foreign_key_checks on: no key references it
  });

  // A key to a parent that cascades is followed through the parent's events (mysql-cascades.test.ts), a
  // key to the table itself row by row (mysql-cascade-chains.test.ts), unless the ALTER changes how its
  // values compare.
  it.each([
    ['to itself, ON DELETE SET NULL', 'fk_cascade', 'REFERENCES fk_cascade (id) ON DELETE SET NULL', /fk_cascade_ref -> fk_cascade ON DELETE SET NULL/],
  ])(
    'a foreign key %s, its column narrowed, is refused even with --discard-foreign-keys: the rows it reaches could not be found',
    async (_what, t, ref, named) => {
      await seed();
      await db.query(`DROP TABLE IF EXISTS ${t}`);
      await db.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, parent_id INT NULL, CONSTRAINT ${t}_ref FOREIGN KEY (parent_id) ${ref}) ENGINE=InnoDB`);
      await db.query(`INSERT INTO ${t} SELECT seq, NULL FROM seq_1_to_100`);
      const before = await schemaOf(db, t);
      for (const execute of [[], ['--execute']]) {
        const r = runCli([
          'migrate',
          '--force-copy',
          '--url',
          '$URL',
          '--table',
          t,
          '--alter',
          'MODIFY parent_id SMALLINT NULL',
          '--discard-foreign-keys',
          ...execute,
        ]);
        expect(r.code).toBe(2);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toMatch(named);
        expect(r.stderr).toMatch(/column parent_id would change from int.* to smallint.*, so the rows a cascade reaches could not be found/);
      }
      expect(await schemaOf(db, t)).toBe(before);
      expect(await helperTables(db, t)).toEqual([]);
      await db.query(`DROP TABLE ${t}`);
    },
  );
});
