// The MySQL checksum's SQL (src/engines/mysql/copy/checksum.ts) and the copy's column lists (copy.ts):
// a row's text, the digest over a key range, and what the INSERT names.
import { describe, expect, it } from 'vitest';
import { digestQuery, planSides, rowText } from '../../../../../src/engines/mysql/copy/checksum.js';
import { columnLists } from '../../../../../src/engines/mysql/copy/copy.js';
import type { MysqlPlan } from '../../../../../src/engines/mysql/schema/plan.js';

describe('rowText', () => {
  it('joins the values with # and ends with one ISNULL flag per column, so NULL and an empty text differ', () => {
    expect(rowText(['`a`', 'CAST(`b` AS DOUBLE)'], ['a', 'b'])).toBe("CONCAT_WS('#', `a`, CAST(`b` AS DOUBLE), CONCAT(ISNULL(`a`), ISNULL(`b`)))");
  });
});

describe('digestQuery', () => {
  const side = { table: '`shop`.`orders`', keyColumns: ['id'], text: 'T' };

  it('sums two CRCs of the row as a 64-bit number: CRC32C where the server has it, else the reversed text', () => {
    expect(digestQuery(true, side).sql('`id` > ?')).toBe(
      'SELECT COUNT(*) AS n, COALESCE(SUM((CRC32(T) << 32) | CRC32C(T)), 0) AS a FROM `shop`.`orders` WHERE `id` > ?',
    );
    expect(digestQuery(false, side).sql('1=1')).toContain('SUM((CRC32(T) << 32) | CRC32(REVERSE(T)))');
  });

  it("adds a side's own condition after the range, in parentheses", () => {
    expect(digestQuery(false, { ...side, where: 'a = 1 OR b = 2' }).sql('1=1')).toMatch(/WHERE 1=1 AND \(a = 1 OR b = 2\)$/);
  });
});

describe('planSides', () => {
  it("compares the original's converted columns with the shadow's, leaving out the pairs with no exact form", () => {
    const plan = {
      database: 'shop',
      table: 'orders',
      shadow: 'orders__new',
      keyColumns: ['id'],
      shadowKeyColumns: ['Id'],
      columns: [
        { source: 'id', target: 'Id', checksum: ['`id`', '`Id`'] },
        { source: 'n', target: 'n', checksum: null },
        { source: 'd', target: 'd', checksum: ['CAST(`d` AS DATE)', '`d`'] },
      ],
    } as unknown as MysqlPlan;
    const [original, shadow] = planSides(plan);
    expect(original).toEqual({
      table: '`shop`.`orders`',
      keyColumns: ['id'],
      text: "CONCAT_WS('#', `id`, CAST(`d` AS DATE), CONCAT(ISNULL(`id`), ISNULL(`d`)))",
    });
    expect(shadow.table).toBe('`shop`.`orders__new`');
    expect(shadow.text).toBe("CONCAT_WS('#', `Id`, `d`, CONCAT(ISNULL(`Id`), ISNULL(`d`)))");
  });
});

describe('columnLists', () => {
  it("names the copied columns, then the implicit defaults' targets and values, in one order", () => {
    const plan = {
      columns: [
        { source: 'old name', target: 'new`name', checksum: null },
        { source: 'b', target: 'b', checksum: null },
      ],
      fills: [{ target: 'added', value: "'0000-00-00'" }],
    };
    expect(columnLists(plan)).toEqual({ targets: '`new``name`, `b`, `added`', sources: "`old name`, `b`, '0000-00-00'" });
  });
});
