// Pure readings of a MySQL table's definition: the trigger columns an ALTER takes away (inspect.ts),
// the usable unique key (inspect.ts) and InnoDB's spelling of names (innodb-ids.ts).
import { describe, expect, it } from 'vitest';
import { columnsGoneFromTrigger, uniqueKey } from '../../../../../src/engines/mysql/schema/inspect.js';
import { innodbSpelling } from '../../../../../src/engines/mysql/schema/innodb-ids.js';

describe('columnsGoneFromTrigger', () => {
  it('names each OLD./NEW. column the table no longer has, once, case aside, quoted or not', () => {
    const body = 'BEGIN SET NEW.total = OLD.`Unit Price` * NEW.qty; IF old . qty <> new.QTY THEN SET NEW.`we``ird` = 1; END IF; END';
    expect(columnsGoneFromTrigger(body, ['total', 'QTY'])).toEqual(['Unit Price', 'we`ird']);
    expect(columnsGoneFromTrigger(body, ['total', 'qty', 'unit price', 'WE`IRD'])).toEqual([]);
  });
});

describe('uniqueKey', () => {
  it('takes the PRIMARY KEY, else the narrowest unique key on NOT NULL columns without a prefix', () => {
    const col = (name: string, nullable = false) => ({ name, type: 'int', collation: null, nullable, generated: false });
    const columns = [col('a'), col('b'), col('c', true), col('s')];
    const unique = (name: string, ...cols: string[]) => ({ name, unique: true, columns: cols });
    expect(uniqueKey({ columns, indexes: [unique('ab', 'a', 'b'), unique('b', 'b'), unique('c', 'c'), unique('s', 's(4)')] })?.name).toBe('b');
    expect(uniqueKey({ columns, indexes: [unique('b', 'b'), unique('PRIMARY', 'a', 'b')] })?.name).toBe('PRIMARY');
    expect(uniqueKey({ columns, indexes: [unique('c', 'c'), { name: 'plain', unique: false, columns: ['a'] }] })).toBeNull();
  });
});

describe('innodbSpelling', () => {
  it('spells other ASCII as @ and four hex digits, and gives up on non-ASCII', () => {
    expect(innodbSpelling('order_items2')).toBe('order_items2');
    expect(innodbSpelling('order-items.v2')).toBe('order@002ditems@002ev2');
    expect(innodbSpelling('Straße')).toBeNull();
  });
});
