import { describe, expect, it } from 'vitest';
import { databases, migrateOn, useDatabase } from './support/fixture.js';
import { background, runState, waitFor } from './support/run.js';

/**
 * A value written to the new table in the window that the old type can only hold cut short: the
 * reverse proof sampled rows written before the change, which never had it. The revert must
 * either bring it back as it was or stop loudly; never swap back a value silently changed.
 */
const cases = {
  mysql: {
    create: (t: string) => `CREATE TABLE ${t} (id BIGINT PRIMARY KEY, label VARCHAR(20) COLLATE utf8mb4_bin, price DECIMAL(10,2)) ENGINE=InnoDB`,
    alter: 'MODIFY label VARCHAR(40) COLLATE utf8mb4_bin, MODIFY price DECIMAL(12,4)',
    spaces: `CONCAT('x', REPEAT(' ', 30))`,
    read: (t: string) => `SELECT CONCAT('[', label, ']'), CAST(price AS CHAR) FROM ${t} WHERE id = 1`,
  },
  postgres: {
    create: (t: string) => `CREATE TABLE ${t} (id int8 PRIMARY KEY, label varchar(20), price numeric(10,2))`,
    alter: 'ALTER COLUMN label TYPE varchar(40), ALTER COLUMN price TYPE numeric(12,4)',
    spaces: `'x' || repeat(' ', 30)`,
    read: (t: string) => `SELECT '[' || label || ']', price::text FROM ${t} WHERE id = 1`,
  },
};

describe.each(databases)('$name: a value the old type holds only cut short, written in the revert window', ({ open, kind }) => {
  const db = useDatabase(open, 'rw_short');
  const c = cases[kind];

  it('is not swapped back silently changed: the revert refuses, the window goes on, the values stay as written', async () => {
    // A window that stopped loudly leaves its capture for --resume: ended here.
    db.cli(['cleanup', '--url', '$URL', '--table', 'rw_short']);
    await db.drop('rw_short');
    await db.query(c.create('rw_short'));
    await db.query(`INSERT INTO rw_short SELECT g, CONCAT('row ', g), g + 0.25 FROM (${db.series(200)}) s`);
    const state = runState('rw_short', c.alter, kind);
    // Written once the window is proven level: only the revert's own comparison can see it.
    const windowOpened = () => db.query(`UPDATE rw_short SET label = ${c.spaces}, price = 1.2345 WHERE id = 1`).then(() => {});
    const run = background(migrateOn(db, 'rw_short', c.alter, { state, revertWindowMs: 600_000, windowOpened }));
    await waitFor('the revert window', () => state.status.state === 'revert-window' && state.status.phase === 'revert window', run, 120_000);
    await waitFor('the write followed back', () => state.status.changesApplied > 0, run, 60_000);
    state.revertRequested = true;
    await waitFor('the revert tried', () => !state.revertRequested, run, 60_000);
    await waitFor('back in the window', () => state.status.phase === 'revert window' || run.settled, null, 120_000);
    const [[label, price]] = (await db.query(c.read('rw_short'))) as string[][];
    expect({ label, price }).toEqual({ label: `[x${' '.repeat(30)}]`, price: '1.2345' });
    state.completeRequested = true;
    await waitFor('the end of the window', () => run.settled, null, 60_000);
    if (run.error) throw run.error;
  });
});
