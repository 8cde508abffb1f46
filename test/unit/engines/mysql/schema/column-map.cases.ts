// Which column of the new table is filled from which of the original, and how the checksum compares
// each pair (src/engines/mysql/schema/column-map.ts over exact.ts): the exact SQL of each side.
import { describe, expect, it } from 'vitest';
import { analyseAlter } from '../../../../../src/engines/mysql/schema/alter.js';
import { checksumPair, mapColumns } from '../../../../../src/engines/mysql/schema/column-map.js';
import type { MysqlColumn } from '../../../../../src/engines/mysql/schema/inspect.js';

const col = (name: string, type: string, collation: string | null = null, generated = false): MysqlColumn => ({
  name,
  type,
  collation,
  nullable: true,
  generated,
});
const pairs = (original: MysqlColumn[], shadow: MysqlColumn[], alter: string) =>
  mapColumns(original, shadow, analyseAlter(alter)).map((p) => `${p.source}->${p.target}`);

describe('mapColumns', () => {
  it('copies columns by name, case aside, and renamed ones from their old name', () => {
    const original = [col('id', 'int'), col('Total', 'int'), col('note', 'text')];
    const shadow = [col('id', 'int'), col('amount', 'bigint'), col('NOTE', 'text')];
    expect(pairs(original, shadow, 'CHANGE Total amount BIGINT')).toEqual(['id->id', 'Total->amount', 'note->NOTE']);
  });

  it('copies nothing into a column dropped and added again under its name: it starts from its default', () => {
    const original = [col('id', 'int'), col('a', 'int')];
    const shadow = [col('id', 'int'), col('a', 'int')];
    expect(pairs(original, shadow, 'DROP COLUMN a, ADD COLUMN a INT DEFAULT 0')).toEqual(['id->id']);
  });

  it("copies nothing into a new column that takes a renamed one's old name", () => {
    const original = [col('id', 'int'), col('a', 'int')];
    const shadow = [col('id', 'int'), col('b', 'int'), col('a', 'int')];
    expect(pairs(original, shadow, 'RENAME COLUMN a TO b, ADD COLUMN a INT')).toEqual(['id->id', 'a->b']);
  });

  it('follows two columns that swap names', () => {
    const original = [col('a', 'int'), col('b', 'int')];
    const shadow = [col('a', 'int'), col('b', 'int')];
    expect(pairs(original, shadow, 'RENAME COLUMN a TO b, RENAME COLUMN b TO a')).toEqual(['b->a', 'a->b']);
  });

  it('leaves generated columns to the server', () => {
    const original = [col('id', 'int'), col('g', 'int')];
    const shadow = [col('id', 'int'), col('g', 'int', null, true)];
    expect(pairs(original, shadow, 'MODIFY g INT AS (id * 2) STORED')).toEqual(['id->id']);
  });
});

describe('checksumPair', () => {
  it('compares one type as it is, a FLOAT as a DOUBLE', () => {
    expect(checksumPair(col('n', 'bigint unsigned'), col('n', 'bigint unsigned'))).toEqual(['`n`', '`n`']);
    expect(checksumPair(col('f', 'float'), col('f', 'float'))).toEqual(['CAST(`f` AS DOUBLE)', 'CAST(`f` AS DOUBLE)']);
  });

  it('quotes odd column names on both sides', () => {
    expect(checksumPair(col('we`ird', 'int'), col('new name', 'int'))).toEqual(['`we``ird`', '`new name`']);
  });

  it('converts a DECIMAL or DATETIME to the new type as the copy does, then compares as it is', () => {
    expect(checksumPair(col('d', 'decimal(10,2)'), col('d', 'decimal(14,4)'))).toEqual(['CAST(`d` AS DECIMAL(14,4))', '`d`']);
    expect(checksumPair(col('t', 'datetime(6)'), col('t', 'datetime(3)'))).toEqual(['CAST(`t` AS DATETIME(3))', '`t`']);
  });

  it('compares a widened integer as its number, with no cast', () => {
    expect(checksumPair(col('i', 'int'), col('i', 'bigint'))).toEqual(['`i`', '`i`']);
  });

  it('compares texts of another length or collation as their characters, binary', () => {
    const text = 'CONVERT(`v` USING utf8mb4) COLLATE utf8mb4_bin';
    expect(checksumPair(col('v', 'varchar(10)', 'latin1_swedish_ci'), col('v', 'varchar(10)', 'utf8mb4_0900_ai_ci'))).toEqual([text, text]);
  });

  it('cuts and strips a value going into CHAR(n) as the server stores it', () => {
    expect(checksumPair(col('c', 'varchar(20)', 'utf8mb4_bin'), col('c', 'char(5)', 'utf8mb4_bin'))).toEqual([
      "CONVERT(TRIM(TRAILING ' ' FROM LEFT(`c`, 5)) USING utf8mb4) COLLATE utf8mb4_bin",
      "CONVERT(TRIM(TRAILING ' ' FROM `c`) USING utf8mb4) COLLATE utf8mb4_bin",
    ]);
  });

  it('spells a text going into an ENUM as the member it matches', () => {
    const [source] = checksumPair(col('s', 'varchar(5)', 'utf8mb4_general_ci'), col('s', "enum('a','b,c')", 'utf8mb4_general_ci'))!;
    expect(source).toBe(
      "CONVERT(ELT(FIELD(CONVERT(TRIM(TRAILING ' ' FROM `s`) USING utf8mb4) COLLATE utf8mb4_general_ci, 'a','b,c'), 'a','b,c') USING utf8mb4) COLLATE utf8mb4_bin",
    );
  });

  it('gives up on a pair no exact form covers: a number become text, a ZEROFILL', () => {
    expect(checksumPair(col('x', 'int'), col('x', 'varchar(20)', 'utf8mb4_bin'))).toBeNull();
    expect(checksumPair(col('z', 'int(5) unsigned zerofill'), col('z', 'int(8) unsigned zerofill'))).toBeNull();
  });
});
