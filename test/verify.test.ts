import { describe, expect, it } from 'vitest';
import { verifyTable, type VerifyOptions } from '../src/core/compare/verify.js';
import type { ComparisonView, RowComparison } from '../src/core/engine/ports/comparison.js';
import { silentReporter } from '../src/core/report/reporter.js';
import type { Engine } from '../src/core/engine/types.js';
import { databases, useDatabase, type Database } from './support/fixture.js';
import { waitFor } from './support/run.js';

const ROWS = 3000;
const options: VerifyOptions = { chunkRows: 400, maxDifferences: 20, rechecks: 3, recheckDelayMs: 20, reporter: silentReporter };

/** `email_new` holds lower(email), except where a test plants otherwise. */
async function makeTable(db: Database, t: string, rows = ROWS): Promise<void> {
  await db.drop(t);
  await db.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, email VARCHAR(50), email_new VARCHAR(50), n INT)`);
  await db.query(`INSERT INTO ${t} SELECT g, CONCAT('Mail', g), LOWER(CONCAT('Mail', g)), g FROM (${db.series(rows)}) s`);
}

/** Runs verify with a fresh engine (optionally wrapped), as the CLI would. */
async function verifyOn(db: Database, request: Parameters<typeof verifyTable>[1], more: Partial<VerifyOptions> = {}, wrap?: (e: Engine) => Engine) {
  const engine = await db.engine();
  try {
    return await verifyTable(wrap ? wrap(engine) : engine, request, { ...options, ...more });
  } finally {
    await engine.close();
  }
}

/** Keys of a result as plain numbers. */
const keys = (r: { detail: { differingKeys: unknown[][] } }) => r.detail.differingKeys.map((k) => Number(k[0]));

/** A writer that keeps changing `tables` until stopped: each transaction keeps the invariant `change` maintains. */
async function writer(db: Database, change: (id: number) => string[]): Promise<{ stop: () => Promise<number> }> {
  let running = true;
  let done = 0;
  const loop = (async () => {
    const s = await db.session();
    try {
      while (running) {
        const id = 1 + Math.floor(Math.random() * ROWS);
        await s.query('BEGIN');
        for (const sql of change(id)) await s.query(sql);
        await s.query('COMMIT');
        done++;
      }
    } finally {
      s.release();
    }
  })();
  // Writing before the verify starts, so the two overlap.
  await waitFor('the first writes', () => done >= 20, null);
  return { stop: async () => ((running = false), await loop, done) };
}

describe.each(databases)('verify ($name)', ({ open }) => {
  const db = useDatabase(open, 'vf_expect', 'vf_a', 'vf_b', 'vf_live', 'vf_la', 'vf_lb');

  it('--expect lists exactly the rows that differ, NULL-safely, and exits 1', async () => {
    await makeTable(db, 'vf_expect');
    await db.query(`UPDATE vf_expect SET email_new = 'wrong' WHERE id = 7`);
    await db.query(`UPDATE vf_expect SET email_new = NULL WHERE id = 1201`); // NULL against a value: differs
    await db.query(`UPDATE vf_expect SET email = NULL, email_new = 'x' WHERE id = 2999`); // a value against NULL: differs
    await db.query(`UPDATE vf_expect SET email = NULL, email_new = NULL WHERE id = 40`); // NULL against NULL: equal
    const run = db.cli(['verify', '--url', '$URL', '--table', 'vf_expect', '--expect', 'email_new = lower(email)', '--chunk-rows', '500']);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`${ROWS} row(s) examined`);
    expect(run.stdout.split('\n').filter((l) => l.startsWith('differs:'))).toEqual(['differs: 7', 'differs: 1201', 'differs: 2999']);
    expect(run.stderr.trim().split('\n').pop()).toMatch(/^shadowcut: 3 row\(s\) of \S*vf_expect differ$/);

    const limited = await verifyOn(db, { table: 'vf_expect', expect: [{ lhs: 'email_new', rhs: 'lower(email)' }] }, { maxDifferences: 2 });
    expect(limited.outcome).toBe('differences');
    expect(limited.detail.differences).toBe(3);
    expect(keys(limited)).toEqual([7, 1201]);
    expect(limited.rowsTouched).toBe(ROWS);

    // --where narrows the rows looked at; several expectations are all required.
    const where = await verifyOn(db, {
      table: 'vf_expect',
      expect: [
        { lhs: 'email_new', rhs: 'lower(email)' },
        { lhs: 'n', rhs: 'id' },
      ],
      where: 'id > 1000',
    });
    expect(keys(where)).toEqual([1201, 2999]);
    expect(where.rowsTouched).toBe(ROWS - 1000);

    await db.query(`UPDATE vf_expect SET email_new = LOWER(email)`);
    const fixed = db.cli(['verify', '--url', '$URL', '--table', 'vf_expect', '--expect', 'email_new = lower(email)']);
    expect(fixed.code).toBe(0);
    expect(fixed.stdout).toContain('every row matched');
  });

  it('--against lists a changed row, a missing one and an extra one by key, and passes on equal tables', async () => {
    await makeTable(db, 'vf_a');
    await makeTable(db, 'vf_b');
    const equal = db.cli(['verify', '--url', '$URL', '--table', 'vf_a', '--against', 'vf_b', '--chunk-rows', '700']);
    expect(equal.stderr).not.toContain('differ');
    expect(equal.code).toBe(0);

    await db.query(`UPDATE vf_b SET n = -1 WHERE id = 15`);
    await db.query(`UPDATE vf_b SET email = NULL WHERE id = 16`);
    await db.query(`DELETE FROM vf_b WHERE id = 2100`);
    await db.query(`INSERT INTO vf_b VALUES (${ROWS + 500}, 'x', 'x', 0)`);
    const run = db.cli(['verify', '--url', '$URL', '--table', 'vf_a', '--against', 'vf_b', '--chunk-rows', '700', '--json']);
    expect(run.code).toBe(1);
    const result = JSON.parse(run.stdout.trim().split('\n').pop()!);
    expect(result.event).toBe('result');
    expect(result.detail.differingKeys.map((k: unknown[]) => Number(k[0]))).toEqual([15, 16, 2100, ROWS + 500]);
    expect(result.detail.differences).toBe(4);

    // Only the named columns are compared (and the key, always).
    const columns = await verifyOn(db, { table: 'vf_a', against: 'vf_b', columns: ['email'] });
    expect(keys(columns)).toEqual([16, 2100, ROWS + 500]);
  });

  it('a difference that is gone when read again is not reported (a write in flight), and one that stays is', async () => {
    await makeTable(db, 'vf_a');
    await makeTable(db, 'vf_b');
    await db.query(`UPDATE vf_b SET n = -1 WHERE id IN (100, 200)`);
    // After the first row-by-row look, 100 is put right, as a second write of the same change would.
    const fixAfterFirstLook = (engine: Engine) =>
      withView(engine, (view) => ({
        async differingKeys(range) {
          const found = await view.differingKeys(range);
          if (found.length) await db.query(`UPDATE vf_b SET n = 100 WHERE id = 100`);
          return found;
        },
      }));
    const r = await verifyOn(db, { table: 'vf_a', against: 'vf_b' }, {}, fixAfterFirstLook);
    expect(keys(r)).toEqual([200]);
    expect(r.detail.settledOnRecheck).toBe(1);
  });

  it('passes while writers keep the expectation, and while they change both tables in one transaction', async () => {
    await makeTable(db, 'vf_live');
    const expectWriter = await writer(db, (id) => [
      `UPDATE vf_live SET email = CONCAT('Other', id, n), email_new = LOWER(CONCAT('Other', id, n)), n = n + 1 WHERE id = ${id}`,
      `DELETE FROM vf_live WHERE id = ${id + 1}`,
      `INSERT INTO vf_live VALUES (${ROWS + id}, 'New', 'new', 0)`.replace('INSERT', db.kind === 'mysql' ? 'REPLACE' : 'INSERT') +
        (db.kind === 'postgres' ? ' ON CONFLICT (id) DO NOTHING' : ''),
    ]);
    try {
      // No re-reads: every chunk must match in its own snapshot.
      const r = await verifyOn(db, { table: 'vf_live', expect: [{ lhs: 'email_new', rhs: 'lower(email)' }] }, { chunkRows: 100, rechecks: 0 });
      expect(r.detail.differences).toBe(0);
      expect(r.outcome).toBe('matched');
    } finally {
      expect(await expectWriter.stop()).toBeGreaterThan(20);
    }

    await makeTable(db, 'vf_la');
    await makeTable(db, 'vf_lb');
    const pairWriter = await writer(db, (id) => [`UPDATE vf_la SET n = n + 1 WHERE id = ${id}`, `UPDATE vf_lb SET n = n + 1 WHERE id = ${id}`]);
    try {
      const r = await verifyOn(db, { table: 'vf_la', against: 'vf_lb' }, { chunkRows: 100, rechecks: 0 });
      expect(r.detail.differences).toBe(0);
    } finally {
      expect(await pairWriter.stop()).toBeGreaterThan(20);
    }
  });

  it('refuses bad input with one line, exit 2', async () => {
    await makeTable(db, 'vf_a', 10);
    const refusals: [string[], RegExp][] = [
      [['--table', 'vf_a'], /give one of --expect/],
      [['--table', 'vf_a', '--expect', 'a = b', '--against', 'vf_b'], /give one of --expect/],
      [['--table', 'vf_a', '--expect', 'email_new = email = n'], /neither lhs = rhs \(one top-level =\) nor a condition/],
      [['--table', 'vf_a', '--expect', 'email_new = lower(nope)'], /--expect fails/],
      [['--table', 'vf_nope', '--expect', 'a = b'], /vf_nope does not exist/],
      [['--table', 'vf_a', '--against', 'vf_nope'], /vf_nope does not exist/],
      [['--table', 'vf_a', '--against', 'vf_b', '--columns', 'nope'], /column nope is not in/],
      [['--table', 'vf_a', '--expect', 'n = id', '--columns', 'n'], /--columns goes with --against/],
    ];
    for (const [args, message] of refusals) {
      const r = db.cli(['verify', '--url', '$URL', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
  });
});

/** The engine, with the views its comparisons hand out partly replaced. */
function withView(engine: Engine, change: (view: ComparisonView) => Partial<ComparisonView>): Engine {
  return new Proxy(engine, {
    get(target, prop) {
      if (prop !== 'openComparison') {
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return async (...args: Parameters<Engine['openComparison']>): Promise<RowComparison> => {
        const comparison = await target.openComparison(...args);
        return {
          ...comparison,
          nextBoundary: comparison.nextBoundary.bind(comparison),
          close: comparison.close.bind(comparison),
          inSnapshot: (look) => comparison.inSnapshot((view) => look({ ...view, ...change(view) })),
        };
      };
    },
  });
}
