// Whether a changed key column still finds the same rows (src/engines/mysql/capture/same-rows.ts): a
// cascade's parent values are looked up in the new table, so a narrowing or another comparison is refused.
import { describe, expect, it } from 'vitest';
import { findsSameRows } from '../../../../../src/engines/mysql/capture/same-rows.js';

const c = (type: string, collation: string | null = null) => ({ name: 'k', type, collation, nullable: false, generated: false });

describe('findsSameRows', () => {
  it.each([
    ['int', 'bigint', true],
    ['int(11)', 'INTEGER', true],
    ['bigint', 'int', false],
    ['int unsigned', 'bigint', true],
    ['int unsigned', 'int', false],
    ['int', 'int unsigned', false],
    ['smallint', 'bigint unsigned', false],
    ['decimal(10,2)', 'decimal(12,4)', true],
    ['decimal(10,2)', 'decimal(11,4)', false],
    ['decimal', 'numeric(12,2)', true],
    ['decimal(10,2) unsigned', 'decimal(12,2)', false],
    ['datetime', 'datetime(3)', true],
    ['timestamp(6)', 'timestamp(3)', false],
    ['varbinary(8)', 'varbinary(16)', true],
    ['binary(8)', 'binary(16)', false],
    ['datetime', 'timestamp', false],
  ])('%s -> %s: %s', (before, after, same) => {
    expect(findsSameRows(c(before), c(after))).toBe(same);
  });

  it('holds for a longer VARCHAR of the same collation only', () => {
    expect(findsSameRows(c('varchar(10)', 'utf8mb4_bin'), c('varchar(20)', 'utf8mb4_bin'))).toBe(true);
    expect(findsSameRows(c('varchar(20)', 'utf8mb4_bin'), c('varchar(10)', 'utf8mb4_bin'))).toBe(false);
    expect(findsSameRows(c('varchar(10)', 'utf8mb4_bin'), c('varchar(20)', 'utf8mb4_general_ci'))).toBe(false);
    expect(findsSameRows(c('varchar(10)', 'utf8mb4_bin'), c('varchar(10)', 'utf8mb4_general_ci'))).toBe(false);
  });
});
