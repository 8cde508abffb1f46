// Binlog positions in order (src/engines/mysql/capture/binlog/binlog.ts): by the file's number, then the offset.
import { describe, expect, it } from 'vitest';
import { compareBinlogPositions } from '../../../../../../src/engines/mysql/capture/binlog/binlog.js';

describe('compareBinlogPositions', () => {
  it('orders by file number, not by text, past a million files', () => {
    expect(compareBinlogPositions({ file: 'bin.999999', pos: 900 }, { file: 'bin.1000000', pos: 4 })).toBe(-1);
    expect(compareBinlogPositions({ file: 'bin.000010', pos: 4 }, { file: 'bin.000009', pos: 900 })).toBe(1);
  });

  it('orders by offset within one file', () => {
    expect(compareBinlogPositions({ file: 'bin.000003', pos: 120 }, { file: 'bin.000003', pos: 4000 })).toBeLessThan(0);
    expect(compareBinlogPositions({ file: 'bin.000003', pos: '4000' }, { file: 'bin.000003', pos: 4000 })).toBe(0);
  });
});
