// Which indexes are built after the copy (src/engines/mysql/copy/deferred-indexes.ts), read from SHOW CREATE TABLE.
import { describe, expect, it } from 'vitest';
import { deferrableIndexes } from '../../../../../src/engines/mysql/copy/deferred-indexes.js';

const create = (...lines: string[]) => ['CREATE TABLE `t` (', ...lines, ') ENGINE=InnoDB'].join('\n');

describe('deferrableIndexes', () => {
  it('defers plain keys only: not PRIMARY, UNIQUE, FULLTEXT, SPATIAL, nor an expression key', () => {
    const sql = create(
      '  `id` bigint NOT NULL,',
      '  `a` int DEFAULT NULL,',
      '  PRIMARY KEY (`id`),',
      '  UNIQUE KEY `u` (`a`),',
      '  KEY `by_a` (`a`,`id`),',
      '  FULLTEXT KEY `ft` (`note`),',
      '  SPATIAL KEY `sp` (`g`),',
      '  KEY `expr` ((lower(`note`))),',
      '  KEY `we``ird` (`a`)',
    );
    expect(deferrableIndexes(sql)).toEqual([
      { name: 'by_a', definition: 'KEY `by_a` (`a`,`id`)' },
      { name: 'we`ird', definition: 'KEY `we``ird` (`a`)' },
    ]);
  });

  it('keeps a key that leads with the AUTO_INCREMENT column: the server refuses the table without it', () => {
    const sql = create(
      '  `n` int NOT NULL AUTO_INCREMENT,',
      '  `id` int NOT NULL,',
      '  PRIMARY KEY (`id`),',
      '  KEY `by_n` (`n`),',
      '  KEY `by_id_n` (`id`,`n`)',
    );
    expect(deferrableIndexes(sql).map((i) => i.name)).toEqual(['by_id_n']);
  });
});
