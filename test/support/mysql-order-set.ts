// The keyed set the MariaDB set tests migrate (issue 36): orders.id widened to BIGINT together with
// the two children that reference it, in a database and a twin that takes the same writes and the
// server's own ALTERs. Shared by the files that swap it whole, in part, or not at all.
import { expect } from 'vitest';
import mysql from 'mysql2/promise';
import { withDatabase } from './database.js';
import { mysqlUrl } from './mysql.js';
import { catalogDifferences } from './mysql-catalog-oracle.js';
import { orderWriters, type Statement, type OrderWriters } from './order-writes.js';

export const A = 'sc_set';
export const TWIN = 'sc_set_twin';

export const urlOf = (db: string): string => withDatabase(mysqlUrl(), db);

/** The children's keys' action: the plain set's RESTRICT, or a deleted order taking its items and payments with it. */
const actions = (cascade: boolean) => (cascade ? ' ON DELETE CASCADE' : '');

const SCHEMA = (cascade: boolean) => [
  'CREATE TABLE orders (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, note VARCHAR(40)) ENGINE=InnoDB',
  `CREATE TABLE order_items (id INT NOT NULL PRIMARY KEY, order_id INT NOT NULL, qty INT NOT NULL, KEY order_items_order (order_id),
     CONSTRAINT order_items_order_fk FOREIGN KEY (order_id) REFERENCES orders (id)${actions(cascade)}) ENGINE=InnoDB`,
  `CREATE TABLE payments (id INT NOT NULL PRIMARY KEY, order_id INT NOT NULL, amount DECIMAL(14,2), KEY payments_order (order_id),
     CONSTRAINT payments_order_fk FOREIGN KEY (order_id) REFERENCES orders (id)${actions(cascade)}) ENGINE=InnoDB`,
  'INSERT INTO orders (id, note) SELECT seq, CONCAT("n", seq) FROM seq_1_to_20000',
  'INSERT INTO order_items SELECT seq, (seq % 20000) + 1, seq % 7 FROM seq_1_to_40000',
  'INSERT INTO payments SELECT seq, seq, seq * 1.25 FROM seq_1_to_20000',
];

export const SET = [
  { table: 'orders', alter: 'MODIFY id BIGINT NOT NULL AUTO_INCREMENT, ADD COLUMN placed_at DATETIME(6) NULL' },
  { table: 'order_items', alter: 'MODIFY order_id BIGINT NOT NULL' },
  { table: 'payments', alter: 'MODIFY order_id BIGINT NOT NULL, MODIFY amount DECIMAL(18,4)' },
];

const KEYS = [
  ['order_items', 'order_items_order_fk'],
  ['payments', 'payments_order_fk'],
];

/** The database and its twin, made again from nothing; with `cascade`, the children's keys ON DELETE CASCADE. */
export async function fresh(root: mysql.Pool, cascade = false): Promise<void> {
  for (const db of [A, TWIN]) {
    await root.query(`DROP DATABASE IF EXISTS ${db}`);
    await root.query(`CREATE DATABASE ${db}`);
    const conn = await root.getConnection();
    try {
      await conn.query(`USE ${db}`);
      for (const sql of SCHEMA(cascade)) await conn.query(sql);
    } finally {
      conn.destroy();
    }
  }
}

/** CHECKSUM TABLE and the row count: equal on two tables of one definition means the same rows. */
export async function sumOf(root: mysql.Pool, db: string, table: string): Promise<string> {
  const [[row]] = await root.query<mysql.RowDataPacket[]>(`CHECKSUM TABLE ${db}.${table} EXTENDED`);
  const [[count]] = await root.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${db}.${table}`);
  return `${row.Checksum} ${count.n}`;
}

/** The twin altered natively, then every table exact against it and the whole catalog the twin's. */
export async function expectLikeNative(root: mysql.Pool, cascade = false): Promise<void> {
  const conn = await root.getConnection();
  try {
    await conn.query(`USE ${TWIN}`);
    // MariaDB changes no type a foreign key uses, whatever foreign_key_checks says: natively the keys
    // go, the three ALTERs run, and the keys come back as they were.
    for (const [table, key] of KEYS) await conn.query(`ALTER TABLE ${table} DROP FOREIGN KEY ${key}`);
    for (const { table, alter } of SET) await conn.query(`ALTER TABLE ${table} ${alter}`);
    for (const [table, key] of KEYS)
      await conn.query(`ALTER TABLE ${table} ADD CONSTRAINT ${key} FOREIGN KEY (order_id) REFERENCES orders (id)${actions(cascade)}`);
  } finally {
    conn.destroy();
  }
  for (const { table } of SET) expect({ table, ours: await sumOf(root, A, table) }).toEqual({ table, ours: await sumOf(root, TWIN, table) });
  expect(await catalogDifferences(root, A, TWIN)).toEqual([]);
}

/**
 * The application's writes (support/order-writes.ts), on the set's database and then on the twin, as
 * an application makes them: a transaction the server chose as a deadlock's victim is made again.
 */
export function setWriters(root: mysql.Pool, cascade = false): OrderWriters {
  const inDb = async (db: string, statements: Statement[]): Promise<void> => {
    const conn = await root.getConnection();
    try {
      await conn.query(`USE ${db}`);
      await conn.query('BEGIN');
      for (const [sql, values] of statements) await conn.query(sql, values);
      await conn.query('COMMIT');
    } catch (error) {
      await conn.query('ROLLBACK').catch(() => {});
      if ((error as { errno?: number }).errno === 1213) return inDb(db, statements);
      throw error;
    } finally {
      conn.release();
    }
  };
  return orderWriters(2, 'mysql', (d, statements) => inDb(d === 0 ? A : TWIN, statements), cascade);
}
