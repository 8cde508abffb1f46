import { describe, expect, it } from 'vitest';
import { databases, useDatabase, type Database } from './support/fixture.js';
import { waitFor } from './support/run.js';

/**
 * A backfill must apply its SET once per row even when the application changes a unique key while
 * it runs: a row moved ahead of the batches' cursor, after its batch, must not be updated again.
 * The SET is not idempotent (`n = n + 1`), so a second update shows as 2.
 */
const ROWS = 200;

async function makeTable(db: Database, t: string, primaryKey: boolean): Promise<void> {
  await db.drop(t);
  await db.query(`CREATE TABLE ${t} (id INT NOT NULL${primaryKey ? ' PRIMARY KEY' : ''}, u INT NOT NULL, n INT NOT NULL)`);
  await db.query(`CREATE UNIQUE INDEX ${t}_u ON ${t} (u)`);
  // PostgreSQL walked the replica identity: make it the unique key the application changes.
  if (db.kind === 'postgres') await db.query(`ALTER TABLE ${t} REPLICA IDENTITY USING INDEX ${t}_u`);
  await db.query(`INSERT INTO ${t} SELECT g, g, 0 FROM (${db.series(ROWS)}) s`);
}

/** The backfill, slowed to small batches, while the row with u = 1 moves to the end once its batch has committed. */
async function backfillWhileKeyMoves(db: Database, t: string) {
  const run = db.cliAsync(['backfill', '--url', '$URL', '--table', t, '--set', 'n = n + 1', '--execute', '--batch-rows', '10', '--max-rows-per-sec', '200']);
  let finished = false;
  let moved = false;
  void run.finally(() => (finished = true));
  const movedOnceFilled = async () => {
    if (finished) return true;
    const [[n]] = await db.query(`SELECT n FROM ${t} WHERE id = 1`);
    if (Number(n) === 1) {
      await db.query(`UPDATE ${t} SET u = ${ROWS * 10} WHERE id = 1`);
      moved = true;
    }
    return moved;
  };
  await waitFor('the first batch committed, or the backfill over', movedOnceFilled, null, 120_000);
  return { ...(await run), moved };
}

async function counts(db: Database, t: string): Promise<Record<string, number>> {
  const rows = await db.query(`SELECT n, COUNT(*) FROM ${t} GROUP BY n ORDER BY n`);
  return Object.fromEntries(rows.map(([n, c]) => [String(n), Number(c)]));
}

describe.each(databases)('backfill when a unique key moves ($name)', ({ open }) => {
  const db = useDatabase(open, 'bm_nopk', 'bm_pk');

  it('refuses a table without a primary key, with one line, and changes nothing', async () => {
    await makeTable(db, 'bm_nopk', false);
    const r = await backfillWhileKeyMoves(db, 'bm_nopk');
    // Before: the walk went by u, and the moved row was updated twice.
    expect(await counts(db, 'bm_nopk'), r.stderr).not.toHaveProperty('2');
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^shadowcut: \S*bm_nopk has no PRIMARY KEY: backfill walks the primary key/);
    expect(await counts(db, 'bm_nopk')).toEqual({ 0: ROWS });
    expect(await db.helpers('bm_nopk')).toEqual([]);
  });

  it('walks the primary key, not a unique key the application changes: every row exactly once', async () => {
    await makeTable(db, 'bm_pk', true);
    const r = await backfillWhileKeyMoves(db, 'bm_pk');
    expect(r.code, r.stderr).toBe(0);
    expect(r.moved).toBe(true);
    expect(await counts(db, 'bm_pk')).toEqual({ 1: ROWS });
    expect(await db.helpers('bm_pk')).toEqual([]);
  });
});
