// What the server did to the probe for one part (src/engines/postgres/in-place/probe-work.ts): from two
// readings of storage and scan counters, by relation name.
import { describe, expect, it } from 'vitest';
import { describeWork, isIdle, workBetween, type Readings } from '../../../../../src/engines/postgres/in-place/probe-work.js';

const reading = (entries: [string, boolean, string, number, number][]): Readings =>
  new Map(entries.map(([name, table, relfilenode, scans, rows]) => [name, { table, relfilenode, scans: BigInt(scans), rows: BigInt(rows) }]));

describe('workBetween', () => {
  it('sees nothing when storage and counters stay', () => {
    const r = reading([
      ['t', true, '100', 1, 5],
      ['t_pkey', false, '101', 0, 0],
    ]);
    const work = workBetween(r, r);
    expect(isIdle(work)).toBe(true);
    expect(describeWork(work)).toBe('');
  });

  it('tells a rewritten table from a rebuilt index, and counts the rows read', () => {
    const before = reading([
      ['t', true, '100', 1, 5],
      ['t_pkey', false, '101', 0, 0],
    ]);
    const after = reading([
      ['t', true, '200', 2, 9],
      ['t_pkey', false, '201', 0, 0],
      ['t_v_key', false, '300', 1, 4],
    ]);
    const work = workBetween(before, after);
    expect(work).toEqual({ rewritten: ['t'], rebuilt: ['t_pkey'], scanned: [{ name: 't', rows: 4 }] });
    expect(describeWork(work)).toBe("rewrites t, rebuilds index t_pkey, reads t (4 of the probe's rows)");
  });

  it('counts a scan of an empty relation, takes no new storage of 0 (a partitioned parent) for a rewrite, and no drop of the counters for a read', () => {
    const before = reading([
      ['p', true, '0', 0, 0],
      ['i', false, '50', 3, 10],
    ]);
    const after = reading([
      ['p', true, '0', 1, 0],
      ['i', false, '50', 0, 0],
    ]);
    const work = workBetween(before, after);
    expect(work).toEqual({ rewritten: [], rebuilt: [], scanned: [{ name: 'p', rows: 0 }] });
    expect(describeWork(work)).toBe('reads p');
  });
});
