// Cascades of more than one level (issue 60, item 6.2), the shapes pt-online-schema-change's own tests
// migrate: sakila's address -> city -> country, whose grandparent's delete takes cities and so
// addresses with only the country's row in the binlog, and a key to the table itself, whose delete
// takes a row's children, their children, and so on, with only the first row logged. One writer
// writes the tables and their mirrors alike; the migrated table must end as its mirror after the
// native ALTER.
import { afterAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { adminPool, differences, helperTables, runCli, runCliAsync, schemaOf } from './support/mysql.js';
import { TwinWriter, type TwinWrite } from './support/twin-writer.js';

const ALTER = 'ADD COLUMN extra INT NULL, MODIFY w BIGINT NOT NULL';
const TABLES = ['cx_address', 'cx_address__old', 'cx_city', 'cx_country', 'cx_node', 'cx_node__old', 'cx_moved', 'cx_code'];

let db: mysql.Pool;
const pool = () => (db ??= adminPool());

async function dropAll(): Promise<void> {
  const all = TABLES.flatMap((t) => [t, `${t}_m`]);
  await pool().query(`SET foreign_key_checks = 0; DROP TABLE IF EXISTS ${all.join(', ')}; SET foreign_key_checks = 1`);
}

afterAll(async () => {
  await dropAll();
  await pool().end();
});

const random = (n: number) => 1 + Math.floor(Math.random() * n);

/** Runs the migration of `table` under `draw`'s writes; the table must end as its mirror after the native ALTER. */
async function underWrites(table: string, draw: () => TwinWrite, gone: string): Promise<void> {
  const writer = new TwinWriter(pool(), draw);
  writer.start();
  const run = await runCliAsync(['migrate', '--force-copy', '--url', '$URL', '--table', table, '--alter', ALTER, '--execute', '--max-rows-per-sec', '2000']);
  const stats = await writer.stop();
  expect(run.code, run.stderr).toBe(0);
  expect(stats.errors).toEqual([]);
  expect(stats.mismatches).toEqual([]);
  // Rows the cascades took: none, and the test proves nothing.
  const [[taken]] = await pool().query<mysql.RowDataPacket[]>(gone);
  expect(Number(taken.n)).toBeGreaterThan(0);
  await pool().query(`ALTER TABLE ${table}_m ${ALTER}`);
  expect(await differences(pool(), table, `${table}_m`)).toEqual([]);
  const named = async (t: string) => (await schemaOf(pool(), t)).replace(/(cx_[a-z]+)_m/g, '$1');
  expect(await named(table)).toBe(await named(`${table}_m`));
  await pool().query(`DROP TABLE ${table}__old`);
}

describe('MariaDB: cascades of more than one level', () => {
  it("sakila's address -> city -> country: a country's delete takes cities and their addresses, with only the country's row logged", async () => {
    await dropAll();
    for (const s of ['', '_m']) {
      await pool().query(`CREATE TABLE cx_country${s} (country_id INT PRIMARY KEY, name VARCHAR(20)) ENGINE=InnoDB`);
      await pool().query(`CREATE TABLE cx_city${s} (city_id INT PRIMARY KEY, country_id INT NOT NULL, KEY (country_id),
        CONSTRAINT cx_city${s}_country FOREIGN KEY (country_id) REFERENCES cx_country${s} (country_id) ON DELETE CASCADE ON UPDATE CASCADE) ENGINE=InnoDB`);
      await pool().query(`CREATE TABLE cx_address${s} (address_id INT PRIMARY KEY, city_id INT NOT NULL, w INT NOT NULL, KEY (city_id),
        CONSTRAINT cx_address${s}_city FOREIGN KEY (city_id) REFERENCES cx_city${s} (city_id) ON DELETE CASCADE ON UPDATE CASCADE) ENGINE=InnoDB`);
      await pool().query(`INSERT INTO cx_country${s} SELECT seq, CONCAT('c', seq) FROM seq_1_to_300`);
      await pool().query(`INSERT INTO cx_city${s} SELECT seq, 1 + seq % 300 FROM seq_1_to_3000`);
      await pool().query(`INSERT INTO cx_address${s} SELECT seq, 1 + seq % 3000, 0 FROM seq_1_to_30000`);
    }
    const plan = runCli(['plan', '--url', '$URL', '--table', 'cx_address', '--alter', ALTER, '--force-copy']);
    expect(plan.code, plan.stderr).toBe(0);
    let next = 1_000_000;
    const draw = (): TwinWrite => {
      const r = Math.random();
      if (r < 0.06) return { sql: 'DELETE FROM {cx_country} WHERE country_id = ?', values: [random(320)] };
      if (r < 0.12) return { sql: 'UPDATE {cx_country} SET country_id = ? WHERE country_id = ?', values: [next++, random(320)] };
      if (r < 0.2) return { sql: 'INSERT INTO {cx_city} VALUES (?, ?)', values: [next++, random(320)] };
      if (r < 0.26) return { sql: 'UPDATE {cx_city} SET city_id = ? WHERE city_id = ?', values: [next++, random(3200)] };
      if (r < 0.5) return { sql: 'INSERT INTO {cx_address} (address_id, city_id, w) VALUES (?, ?, 1)', values: [next++, random(3200)] };
      return { sql: 'UPDATE {cx_address} SET w = w + 1 WHERE address_id = ?', values: [random(30000)] };
    };
    await underWrites('cx_address', draw, 'SELECT COUNT(*) n FROM seq_1_to_300 s LEFT JOIN cx_country_m c ON c.country_id = s.seq WHERE c.country_id IS NULL');
  });

  it('a key to the table itself, ON DELETE CASCADE: a delete takes the row, its children, theirs, and so on', async () => {
    await dropAll();
    for (const s of ['', '_m']) {
      await pool().query(`CREATE TABLE cx_node${s} (id INT PRIMARY KEY, up INT NULL, w INT NOT NULL, KEY (up),
        CONSTRAINT cx_node${s}_up FOREIGN KEY (up) REFERENCES cx_node${s} (id) ON DELETE CASCADE ON UPDATE CASCADE) ENGINE=InnoDB`);
      // Chains of 10 (InnoDB cascades 15 levels at most): each row's parent is the one before it, every 10th a root.
      await pool().query(`INSERT INTO cx_node${s} SELECT seq, IF(seq % 10 = 1, NULL, seq - 1), 0 FROM seq_1_to_20000`);
    }
    let next = 1_000_000;
    const draw = (): TwinWrite => {
      const r = Math.random();
      if (r < 0.1) return { sql: 'DELETE FROM {cx_node} WHERE id = ?', values: [random(20000)] };
      if (r < 0.35) return { sql: 'INSERT INTO {cx_node} (id, up, w) VALUES (?, ?, 1)', values: [next++, random(20000)] };
      // Refused as RESTRICT by InnoDB where the row has children (a key to the table itself), alike on both sides.
      if (r < 0.45) return { sql: 'UPDATE {cx_node} SET id = ? WHERE id = ?', values: [next++, random(20000)] };
      return { sql: 'UPDATE {cx_node} SET w = w + 1 WHERE id = ?', values: [random(20000)] };
    };
    await underWrites('cx_node', draw, 'SELECT COUNT(*) n FROM seq_1_to_20000 s LEFT JOIN cx_node_m c ON c.id = s.seq WHERE c.id IS NULL');
  });

  it('an ON UPDATE CASCADE that moves the keys of rows, from a parent whose key a cascade rewrites, is refused in one line and changes nothing', async () => {
    await dropAll();
    await pool().query('CREATE TABLE cx_code (code INT PRIMARY KEY) ENGINE=InnoDB');
    await pool().query(`CREATE TABLE cx_city (code INT NOT NULL, n INT NOT NULL, PRIMARY KEY (code, n),
      CONSTRAINT cx_city_code FOREIGN KEY (code) REFERENCES cx_code (code) ON UPDATE CASCADE) ENGINE=InnoDB`);
    await pool().query(`CREATE TABLE cx_moved (code INT NOT NULL, n INT NOT NULL, line INT NOT NULL, PRIMARY KEY (code, n, line),
      CONSTRAINT cx_moved_city FOREIGN KEY (code, n) REFERENCES cx_city (code, n) ON UPDATE CASCADE) ENGINE=InnoDB`);
    const before = await schemaOf(pool(), 'cx_moved');
    const r = runCli(['migrate', '--force-copy', '--url', '$URL', '--table', 'cx_moved', '--alter', 'ADD COLUMN x INT', '--execute']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/cx_moved_city -> cx_city .*: its parent cx_city's columns code are rewritten by cascades into it/);
    expect(await schemaOf(pool(), 'cx_moved')).toBe(before);
    expect(await helperTables(pool(), 'cx_moved')).toEqual([]);
  });
});
