// The USING expressions of a PostgreSQL --alter (src/engines/postgres/schema/alter.ts): the copy converts with them too.
import { describe, expect, it } from 'vitest';
import { usingExpressions } from '../../../../../src/engines/postgres/schema/alter.js';

describe('usingExpressions', () => {
  it('maps each retyped column (as the catalog spells it) to its expression', () => {
    const found = usingExpressions(
      `ALTER COLUMN Price TYPE bigint USING (price * 100)::bigint, ALTER "Note" SET DATA TYPE int USING "Note"::int, ALTER COLUMN "we""ird" TYPE text USING upper("we""ird")`,
    );
    expect([...found]).toEqual([
      ['price', '(price * 100)::bigint'],
      ['Note', '"Note"::int'],
      ['we"ird', 'upper("we""ird")'],
    ]);
  });

  it('finds USING right after a parenthesis, as the server does', () => {
    expect([...usingExpressions('ALTER COLUMN a TYPE numeric(12,2)USING(a/100.0)')]).toEqual([['a', '(a/100.0)']]);
  });

  it('takes nothing from a type change without USING, nor from a type whose name holds "using"', () => {
    expect(usingExpressions('ALTER COLUMN a TYPE bigint, ALTER COLUMN b TYPE my_using_type, ADD COLUMN c int').size).toBe(0);
  });
});
