// Comparisons are exact (docs/invariants.md, invariant 12): verify --against, migrate's checksums and its
// row-by-row comparison compare each pair of column types in a form that loses nothing for that
// pair, and refuse a pair that has none. Each planted difference below once passed for equal:
// PostgreSQL cast one side down to the other's type, MySQL printed FLOAT with 6 digits and
// compared DATETIME with DATETIME(6) through UNIX_TIMESTAMP (NULL outside 1970-2038).
import { describe, expect, it } from 'vitest';
import { verifyTable, type VerifyOptions } from '../src/core/compare/verify.js';
import { silentReporter } from '../src/core/report/reporter.js';
import { databases, migrateOn, useDatabase, type Database } from './support/fixture.js';
import { withMigration } from './support/wrap.js';

const options: VerifyOptions = { chunkRows: 300, maxDifferences: 20, rechecks: 1, recheckDelayMs: 10, reporter: silentReporter };

interface Scenario {
  /** Each column: its type in `ex_a`, in `ex_b`, and the value both hold (as SQL) in the rows that match. */
  columns: Record<string, [string, string, string, string]>;
  /** Rows whose values differ, for a person: key, column, value in `ex_a`, value in `ex_b`. */
  planted: [number, string, string, string][];
  /** A pair of types with no exact form. */
  uncomparable: [string, string];
}

const scenarios: Record<'mysql' | 'postgres', Scenario> = {
  mysql: {
    columns: {
      f: ['FLOAT', 'FLOAT', '1.5', '1.5'],
      d: ['DATETIME', 'DATETIME(6)', "'2024-01-01 10:00:00'", "'2024-01-01 10:00:00'"],
      e: ['DECIMAL(12,4)', 'DECIMAL(12,2)', '10.0000', '10.00'],
      s: ['VARCHAR(10)', 'VARCHAR(5)', "'abcde'", "'abcde'"],
      t: ['TIMESTAMP NULL', 'DATETIME', 'FROM_UNIXTIME(1704103200)', "'2024-01-01 10:00:00'"],
      g: ['DOUBLE', 'FLOAT', '1.5', '1.5'],
    },
    planted: [
      [2, 'f', '1234567', '1234568'],
      [3, 'd', "'1960-01-01 00:00:00'", "'1960-01-01 00:00:00.000001'"],
      [4, 'd', "'2040-01-01 00:00:01'", "'2040-01-01 00:00:02'"],
      [5, 'e', '10.0049', '10.00'],
      [6, 't', 'FROM_UNIXTIME(1704103200)', "'2024-01-01 10:00:01'"],
      [7, 'g', '0.1', '0.1'],
    ],
    uncomparable: ['INT', 'VARCHAR(10)'],
  },
  postgres: {
    columns: {
      n: ['numeric', 'numeric(12,2)', '10.00', '10.00'],
      s: ['text', 'varchar(5)', "'abcde'", "'abcde'"],
      t: ['timestamptz', 'date', "'2024-01-01 00:00+00'", "'2024-01-01'"],
      w: ['timestamp(0)', 'timestamp(6)', "'2024-01-01 10:00:00'", "'2024-01-01 10:00:00'"],
      e: ['numeric(12,2)', 'numeric(14,4)', '10.00', '10.0000'],
      f: ['real', 'double precision', '1.5', '1.5'],
    },
    planted: [
      [2, 'n', '10.0049', '10.00'],
      [3, 's', "'abcdefgh'", "'abcde'"],
      [4, 't', "'2024-01-01 13:45+00'", "'2024-01-01'"],
      [5, 'w', "'2024-01-01 10:00:00'", "'2024-01-01 10:00:00.5'"],
      [6, 'f', '0.1', '0.1'],
    ],
    uncomparable: ['integer', 'text'],
  },
};

async function makeTables(db: Database, s: Scenario, rows: number): Promise<void> {
  await db.drop('ex_a', 'ex_b');
  for (const [table, side] of [
    ['ex_a', 0],
    ['ex_b', 1],
  ] as const) {
    const columns = Object.entries(s.columns).map(([name, c]) => `${name} ${c[side]}`);
    await db.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, ${columns.join(', ')}, x ${s.uncomparable[side]})`);
    const values = Object.values(s.columns).map((c) => c[side + 2]);
    await db.query(`INSERT INTO ${table} (id, ${Object.keys(s.columns).join(', ')}) SELECT g, ${values.join(', ')} FROM (${db.series(rows)}) s`);
    for (const [id, column, ...value] of s.planted) await db.query(`UPDATE ${table} SET ${column} = ${value[side]} WHERE id = ${id}`);
  }
}

describe.each(databases)('exact comparisons ($name)', ({ open }) => {
  const db = useDatabase(open, 'ex_a', 'ex_b', 'ex_m', 'ex_mirror');
  const s = () => scenarios[db.kind];
  const compared = () => Object.keys(s().columns);

  it('verify --against reports each planted difference by its key, and equal values of different types as equal', async () => {
    await makeTables(db, s(), 1000);
    const engine = await db.engine();
    try {
      const result = await verifyTable(engine, { table: 'ex_a', against: 'ex_b', columns: compared() }, options);
      expect(result.detail.differingKeys.map((k) => Number(k[0]))).toEqual(s().planted.map((p) => p[0]));
      expect(result.detail.rowsExamined).toBe(1000);
    } finally {
      await engine.close();
    }
  });

  it('verify --against matches every row when only the planted rows are left out', async () => {
    await makeTables(db, s(), 1000);
    const run = db.cli([
      'verify',
      '--url',
      '$URL',
      '--table',
      'ex_a',
      '--against',
      'ex_b',
      '--columns',
      compared().join(','),
      '--where',
      `id NOT IN (${s()
        .planted.map((p) => p[0])
        .join(', ')})`,
    ]);
    expect(run.stdout).toMatch(/every row matched/);
    expect(run.code).toBe(0);
  });

  it('refuses a pair of types it cannot compare exactly, in one line', async () => {
    await makeTables(db, s(), 10);
    const run = db.cli(['verify', '--url', '$URL', '--table', 'ex_a', '--against', 'ex_b']);
    expect(run.code).not.toBe(0);
    expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^shadowcut: column x cannot be compared exactly: .* leave it out with --columns$/)]);
    expect(run.stdout).not.toMatch(/every row matched/);
  });
});

describe.each(databases)('exact checksums in migrate ($name)', ({ open }) => {
  const db = useDatabase(open, 'ex_m', 'ex_mirror');

  it('migrates changes of time and decimal precision, values before 1970 and after 2038 included, exactly', async () => {
    // d runs from 1960 to 2042: before, inside and after the range UNIX_TIMESTAMP covers.
    await db.drop('ex_m', 'ex_mirror');
    const [ddl, alter] =
      db.kind === 'mysql'
        ? ['d DATETIME, e DATETIME(6), n DECIMAL(12,2), f FLOAT', 'MODIFY d DATETIME(6), MODIFY e DATETIME(3), MODIFY n DECIMAL(14,4)']
        : [
            'd timestamp(0), e timestamp(6), n numeric(12,2), f real',
            'ALTER COLUMN d TYPE timestamp(6), ALTER COLUMN e TYPE timestamp(3), ALTER COLUMN n TYPE numeric(14,4)',
          ];
    const day = db.kind === 'mysql' ? (n: string) => `INTERVAL ${n} DAY` : (n: string) => `${n} * INTERVAL '1 day'`;
    const second = db.kind === 'mysql' ? (n: string) => `INTERVAL ${n} SECOND` : (n: string) => `${n} * INTERVAL '1 second'`;
    for (const table of ['ex_m', 'ex_mirror']) {
      await db.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, ${ddl})`);
      await db.query(
        `INSERT INTO ${table} SELECT g, TIMESTAMP '1960-01-01 00:00:00' + ${day('g * 10')}, TIMESTAMP '2040-01-01 00:00:00.123456' + ${second('g')}, g / 7.0, g * 1.1 FROM (${db.series(3000)}) s`,
      );
    }
    const result = await migrateOn(db, 'ex_m', alter, { checksumChunkRows: 1000 });
    expect(result.checksumRounds).toBe(1);
    await db.query(`ALTER TABLE ex_mirror ${alter}`);
    expect(await db.differences('ex_m', 'ex_mirror')).toEqual([]);
  });

  it('finds a FLOAT that differs in its seventh digit in the shadow, and repairs it', async () => {
    await db.drop('ex_m', 'ex_mirror');
    // PostgreSQL prints a float with every digit only while extra_float_digits > 0: a role or a
    // database may set it lower, and then 1234567 and 1234568 print alike as real.
    if (db.kind === 'postgres') await db.query(`DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET extra_float_digits = 0', current_database()); END $$`);
    const alter = db.kind === 'mysql' ? 'ADD COLUMN y INT' : 'ADD COLUMN y int';
    for (const table of ['ex_m', 'ex_mirror']) {
      await db.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, f ${db.kind === 'mysql' ? 'FLOAT' : 'real'})`);
      await db.query(`INSERT INTO ${table} SELECT g, 1234567 FROM (${db.series(2000)}) s`);
    }
    const engine = withMigration(await db.engine(), (migration) => ({
      async afterCopy(copied) {
        await db.query('UPDATE ex_m__new SET f = 1234568 WHERE id = 77');
        await migration.afterCopy(copied);
      },
    }));
    try {
      const result = await migrateOn(db, 'ex_m', alter, { checksumChunkRows: 500 }, { engine });
      expect(result.checksumRounds).toBe(2);
    } finally {
      await engine.close();
      if (db.kind === 'postgres') await db.query(`DO $$ BEGIN EXECUTE format('ALTER DATABASE %I RESET extra_float_digits', current_database()); END $$`);
    }
    await db.query(`ALTER TABLE ex_mirror ${alter}`);
    expect(await db.differences('ex_m', 'ex_mirror')).toEqual([]);
  });
});
