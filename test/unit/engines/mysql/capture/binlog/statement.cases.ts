// The binlog's query events (src/engines/mysql/capture/binlog/statement.ts): which statements touch the
// migrated table (`shop`.`orders`), as DDL or as a write logged as a statement. A miss loses a change
// silently; a false alarm only stops the run.
import { describe, expect, it } from 'vitest';
import { touches } from '../../../../../../src/engines/mysql/capture/binlog/statement.js';

const on = (query: string, schema = 'shop') => touches(query, schema, 'shop', 'orders');

describe('touches', () => {
  it('passes over transaction control and statements that change neither rows nor definition', () => {
    for (const q of ['BEGIN', 'COMMIT', 'XA START 0x01', 'SAVEPOINT s', 'ANALYZE TABLE orders', 'GRANT SELECT ON shop.orders TO u', 'FLUSH TABLES orders']) {
      expect(on(q), q).toBeNull();
    }
  });

  it('reads DDL naming the table, bare (in the default database), quoted or qualified', () => {
    expect(on('ALTER TABLE orders ADD COLUMN x INT')).toBe('ddl');
    expect(on('TRUNCATE `orders`')).toBe('ddl');
    expect(on('DROP TABLE IF EXISTS `Shop` . `ORDERS`', 'other')).toBe('ddl');
    expect(touches('RENAME TABLE shop.orders TO shop.orders_old', undefined, 'shop', 'orders')).toBe('ddl');
  });

  it('reads a write logged as a statement, whatever the case of the names', () => {
    expect(on("UPDATE Orders SET note = 'x' WHERE id = 1")).toBe('write');
    expect(on('insert into SHOP.orders values (1)', 'other')).toBe('write');
    expect(on('DELETE o FROM other_table t JOIN orders o ON o.id = t.id')).toBe('write');
  });

  it('does not mistake another table or another database for it', () => {
    expect(on('UPDATE orders_archive SET n = 1')).toBeNull();
    expect(on('UPDATE my_orders SET n = 1')).toBeNull();
    expect(on('UPDATE $orders SET n = 1')).toBeNull();
    expect(on('UPDATE other.orders SET n = 1')).toBeNull();
    expect(on('UPDATE `other`.`orders` SET n = 1')).toBeNull();
    // A bare name with no default database cannot be ours.
    expect(touches('UPDATE orders SET n = 1', undefined, 'shop', 'orders')).toBeNull();
  });

  it('ignores names in plain comments', () => {
    expect(on('/* orders */ UPDATE other SET n = 1 -- orders\n')).toBeNull();
    expect(on('UPDATE other SET n = 1 # fixes orders')).toBeNull();
  });

  it("reads the statement inside an executable comment, which the server runs (mysqldump's /*!40000 ... */)", () => {
    expect(on('/*!40000 ALTER TABLE `orders` DISABLE KEYS */')).toBe('ddl');
    expect(on('/*M!100500 ALTER TABLE orders ADD COLUMN x INT */')).toBe('ddl');
  });

  it('takes a CREATE as DDL only when it makes an index or a trigger ON the table', () => {
    expect(on('CREATE TABLE orders_copy LIKE orders')).toBeNull();
    expect(on('CREATE VIEW v AS SELECT * FROM orders')).toBeNull();
    expect(on('CREATE UNIQUE INDEX i ON orders (a)')).toBe('ddl');
    expect(on('CREATE INDEX i ON other (a)')).toBeNull();
    expect(on('CREATE DEFINER=`root`@`localhost` TRIGGER t BEFORE INSERT ON `orders` FOR EACH ROW SET NEW.a = 1')).toBe('ddl');
  });

  it("reads MariaDB's CREATE OR REPLACE DEFINER=... TRIGGER, as its binlog spells a CREATE OR REPLACE TRIGGER", () => {
    expect(on('CREATE OR REPLACE DEFINER=`root`@`localhost` TRIGGER t BEFORE INSERT ON orders FOR EACH ROW SET NEW.a = 1')).toBe('ddl');
    expect(on('CREATE DEFINER=`the admin`@`%` TRIGGER t BEFORE UPDATE ON shop.orders FOR EACH ROW SET NEW.a = 1')).toBe('ddl');
  });

  it('finds a table whose name holds regular expression characters or a backquote', () => {
    expect(touches('UPDATE `a.b(c)` SET n = 1', 'shop', 'shop', 'a.b(c)')).toBe('write');
    expect(touches('UPDATE `aXb(c)` SET n = 1', 'shop', 'shop', 'a.b(c)')).toBeNull();
    expect(touches('ALTER TABLE `we``ird` ADD COLUMN x INT', 'shop', 'shop', 'we`ird')).toBe('ddl');
  });
});
