// The PostgreSQL --alter splitter (src/engines/postgres/server/alter-clauses.ts): top-level commas
// outside quotes, dollar quotes, parentheses and brackets; one statement only.
import { describe, expect, it } from 'vitest';
import { splitClauses } from '../../../../../src/engines/postgres/server/alter-clauses.js';

describe('splitClauses', () => {
  it('splits at top-level commas, not inside strings with doubled quotes, quoted names, parentheses or brackets', () => {
    expect(splitClauses(`ADD COLUMN "a,""b" text DEFAULT 'x,''y', ADD CHECK (c IN (1, 2)), ADD COLUMN d int[] DEFAULT ARRAY[1,2]`)).toEqual([
      `ADD COLUMN "a,""b" text DEFAULT 'x,''y'`,
      'ADD CHECK (c IN (1, 2))',
      'ADD COLUMN d int[] DEFAULT ARRAY[1,2]',
    ]);
  });

  it('skips dollar-quoted bodies, tagged or not, tags with digits included', () => {
    expect(splitClauses(`ADD CHECK (a <> $$x, y$$), ADD CHECK (b <> $t1$it's, $$ here$t1$), DROP COLUMN e`)).toEqual([
      'ADD CHECK (a <> $$x, y$$)',
      `ADD CHECK (b <> $t1$it's, $$ here$t1$)`,
      'DROP COLUMN e',
    ]);
  });

  it('takes a $ inside a name for part of the name, not the start of a dollar quote', () => {
    expect(splitClauses('ADD COLUMN price$eur$ numeric, ADD COLUMN n int')).toEqual(['ADD COLUMN price$eur$ numeric', 'ADD COLUMN n int']);
  });

  it('drops one trailing semicolon and refuses a second statement', () => {
    expect(splitClauses('DROP COLUMN a ;  ')).toEqual(['DROP COLUMN a']);
    expect(splitClauses(`ADD CHECK (a <> ';')`)).toEqual([`ADD CHECK (a <> ';')`]);
    expect(() => splitClauses('DROP COLUMN a; DROP TABLE other')).toThrow(/not several statements/);
  });

  it('refuses an unterminated quote or dollar quote', () => {
    expect(() => splitClauses(`ADD COLUMN a text DEFAULT 'x`)).toThrow(/unterminated ' quote/);
    expect(() => splitClauses('ADD COLUMN "a text')).toThrow(/unterminated " quote/);
    expect(() => splitClauses('ADD CHECK (a <> $q$x)')).toThrow(/unterminated dollar quote/);
  });
});
