// The MySQL --alter reader (src/engines/mysql/schema/alter.ts): where a clause list splits, and what
// the copy learns from it (renames, drops, foreign keys, the server's ALGORITHM/LOCK hints, refusals).
import { describe, expect, it } from 'vitest';
import { analyseAlter, splitClauses } from '../../../../../src/engines/mysql/schema/alter.js';

describe('splitClauses', () => {
  it('splits at top-level commas only: not inside parentheses, strings or quoted names', () => {
    expect(splitClauses("ADD COLUMN e ENUM('a,b', 'c'), ADD INDEX i (x, y), ADD COLUMN `p,q` INT DEFAULT 1")).toEqual([
      "ADD COLUMN e ENUM('a,b', 'c')",
      'ADD INDEX i (x, y)',
      'ADD COLUMN `p,q` INT DEFAULT 1',
    ]);
  });

  it('reads a backslash-escaped quote inside a string, but not inside a backquoted name (where ` is doubled)', () => {
    expect(splitClauses("ADD COLUMN a TEXT DEFAULT 'it\\'s, here', ADD COLUMN `x``,y` INT")).toEqual([
      "ADD COLUMN a TEXT DEFAULT 'it\\'s, here'",
      'ADD COLUMN `x``,y` INT',
    ]);
  });

  it('ignores commas and quotes inside comments, and leaves line comments out (rejoined, they would swallow what follows)', () => {
    expect(splitClauses("ADD COLUMN a INT /* don't, split */, ADD COLUMN b INT -- it's, here\n, DROP COLUMN c # isn't, either\n")).toEqual([
      "ADD COLUMN a INT /* don't, split */",
      'ADD COLUMN b INT',
      'DROP COLUMN c',
    ]);
    // `--` not followed by a space is an operator, not a comment.
    expect(splitClauses('ADD COLUMN d INT DEFAULT (5--1), ADD COLUMN e INT')).toEqual(['ADD COLUMN d INT DEFAULT (5--1)', 'ADD COLUMN e INT']);
  });

  it('refuses an unbalanced quote or parenthesis', () => {
    expect(() => splitClauses("ADD COLUMN a TEXT DEFAULT 'x")).toThrow(/unbalanced quote or parenthesis/);
    expect(() => splitClauses('ADD INDEX i (a, b')).toThrow(/unbalanced/);
    expect(() => splitClauses('ADD COLUMN a INT /* never closed, b')).toThrow(/unclosed \/\* comment/);
  });
});

describe('analyseAlter', () => {
  it('reads CHANGE and RENAME COLUMN as renames, new name (lower case) -> old name (as written)', () => {
    const e = analyseAlter('CHANGE COLUMN Total amount DECIMAL(12,2), RENAME COLUMN `Note` TO remark, CHANGE same same BIGINT');
    expect([...e.renamed]).toEqual([
      ['amount', 'Total'],
      ['remark', 'Note'],
    ]);
    expect(e.dropped.size).toBe(0);
  });

  it('unquotes doubled backquotes in names, and reads MariaDB IF EXISTS', () => {
    const e = analyseAlter('CHANGE COLUMN IF EXISTS `we``ird` `new``name` INT, DROP COLUMN IF EXISTS `gone``col`');
    expect([...e.renamed]).toEqual([['new`name', 'we`ird']]);
    expect([...e.dropped]).toEqual(['gone`col']);
  });

  it('reads dropped columns, but not dropped indexes, keys, constraints, checks or partitions', () => {
    const e = analyseAlter(
      'DROP COLUMN a, DROP b, DROP INDEX i, DROP KEY k, DROP PRIMARY KEY, DROP CONSTRAINT c, DROP CHECK ck, DROP PARTITION p0, DROP key_id, DROP `index`',
    );
    expect([...e.dropped].sort()).toEqual(['a', 'b', 'index', 'key_id']);
  });

  it('sees a column dropped and added again under its name (it starts from its default)', () => {
    const e = analyseAlter('DROP COLUMN a, ADD COLUMN a INT NOT NULL DEFAULT 7');
    expect(e.dropped.has('a')).toBe(true);
    expect(e.renamed.size).toBe(0);
  });

  it('takes DROP FOREIGN KEY and ALGORITHM/LOCK out of the clause the shadow gets', () => {
    const e = analyseAlter('ADD COLUMN n INT, DROP FOREIGN KEY fk_a, DROP FOREIGN KEY IF EXISTS `fk``b`, ALGORITHM=INPLACE, LOCK = NONE;');
    expect(e.droppedForeignKeys).toEqual([
      { name: 'fk_a', ifExists: false },
      { name: 'fk`b', ifExists: true },
    ]);
    expect(e.serverHints).toEqual(['ALGORITHM=INPLACE', 'LOCK = NONE']);
    expect(e.shadowClause).toBe('ADD COLUMN n INT');
  });

  it('keeps every part after a line comment in the clause the shadow gets', () => {
    const e = analyseAlter('ADD COLUMN b INT -- the new one\n, DROP COLUMN c');
    expect(e.shadowClause).toBe('ADD COLUMN b INT, DROP COLUMN c');
    expect([...e.dropped]).toEqual(['c']);
  });

  it('gives the shadow FORCE when nothing but hints and foreign key drops is left', () => {
    expect(analyseAlter('DROP FOREIGN KEY fk, ALGORITHM=COPY').shadowClause).toBe('FORCE');
  });

  it('notices an added foreign key, not one merely dropped or named in a comment', () => {
    expect(analyseAlter('ADD CONSTRAINT fk FOREIGN KEY (p) REFERENCES parent (id)').addsForeignKey).toBe(true);
    expect(analyseAlter('ADD FOREIGN KEY (p) REFERENCES parent (id)').addsForeignKey).toBe(true);
    expect(analyseAlter('DROP FOREIGN KEY fk').addsForeignKey).toBe(false);
    expect(analyseAlter("MODIFY note TEXT COMMENT 'no foreign key'").addsForeignKey).toBe(false);
  });

  it('refuses a table rename in every spelling, but not RENAME COLUMN, INDEX or KEY', () => {
    for (const clause of ['RENAME TO t2', 'RENAME AS t2', 'RENAME t2', 'ADD COLUMN n INT, rename to `x`']) {
      expect(() => analyseAlter(clause), clause).toThrow(/renames the table/);
    }
    expect(() => analyseAlter('RENAME INDEX a TO b, RENAME KEY c TO d, RENAME COLUMN e TO f')).not.toThrow();
  });

  it('refuses an empty clause and a whole ALTER TABLE statement', () => {
    expect(() => analyseAlter('  ;')).toThrow(/--alter is empty/);
    expect(() => analyseAlter('ALTER TABLE t ADD COLUMN n INT')).toThrow(/only the clause after ALTER TABLE/);
  });
});
