import { describe, expect, it } from 'vitest';
import { databases, migrateOn, useDatabase } from './support/fixture.js';
import { background, runState, waitFor } from './support/run.js';

/**
 * Values written to the new table in the window that the old type holds only cut short, or not at
 * all: the reverse proof sampled rows written before the change, which never had them. The revert
 * must bring them back as they were or stop loudly, with one line; never swap back a changed value.
 */
const cases = {
  mysql: {
    create: (t: string) =>
      `CREATE TABLE ${t} (id BIGINT PRIMARY KEY, label VARCHAR(20) COLLATE utf8mb4_bin, price DECIMAL(10,2), qty INT NOT NULL DEFAULT 0) ENGINE=InnoDB`,
    alter: 'MODIFY label VARCHAR(40) COLLATE utf8mb4_bin, MODIFY price DECIMAL(12,4)',
    spaces: `CONCAT('x', REPEAT(' ', 30))`,
    read: (t: string) => `SELECT CONCAT('[', label, ']'), CAST(price AS CHAR) FROM ${t} WHERE id = 1`,
    widen: 'MODIFY qty BIGINT NOT NULL',
  },
  postgres: {
    create: (t: string) => `CREATE TABLE ${t} (id int8 PRIMARY KEY, label varchar(20), price numeric(10,2), qty int NOT NULL DEFAULT 0)`,
    alter: 'ALTER COLUMN label TYPE varchar(40), ALTER COLUMN price TYPE numeric(12,4)',
    spaces: `'x' || repeat(' ', 30)`,
    read: (t: string) => `SELECT '[' || label || ']', price::text FROM ${t} WHERE id = 1`,
    widen: 'ALTER COLUMN qty TYPE bigint',
  },
};

describe.each(databases)('$name: values written in the revert window that the old type cannot hold as they are', ({ open, kind }) => {
  const db = useDatabase(open, 'rw_short', 'rw_over');
  const c = cases[kind];

  it('is not swapped back silently changed: the revert refuses, the window goes on, the values stay as written', async () => {
    // A window that stopped loudly leaves its capture for --resume: ended here.
    db.cli(['cleanup', '--url', '$URL', '--table', 'rw_short']);
    await db.drop('rw_short');
    await db.query(c.create('rw_short'));
    await db.query(`INSERT INTO rw_short (id, label, price) SELECT g, CONCAT('row ', g), g + 0.25 FROM (${db.series(200)}) s`);
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

  it('a value the old type cannot hold at all ends the window with one line that says so; the new table stays whole, nothing is left logging', async () => {
    db.cli(['cleanup', '--url', '$URL', '--table', 'rw_over']);
    await db.drop('rw_over');
    await db.query(c.create('rw_over'));
    await db.query(`INSERT INTO rw_over (id, qty) SELECT g, g FROM (${db.series(100)}) s`);
    const state = runState('rw_over', c.widen, kind);
    const windowOpened = () => db.query(`UPDATE rw_over SET qty = 5000000000 WHERE id = 1`).then(() => {});
    const result = await migrateOn(db, 'rw_over', c.widen, { state, revertWindowMs: 600_000, windowOpened });
    // The migration is done and the table whole; only the way back is gone, and the result says why.
    expect(result.revertWindow?.outcome).toBe('failed');
    const reason = String(result.revertWindow?.reason);
    expect(reason).toMatch(/^a row of the new table cannot be stored in the old table, so it could not come back: /);
    expect(reason.split('\n')).toHaveLength(1);
    expect((await db.query('SELECT qty FROM rw_over WHERE id = 1')).map(([qty]) => String(qty))).toEqual(['5000000000']);
    // A resumed run would meet the same row: the window's triggers and log are gone, the old table kept.
    expect(await db.helpers('rw_over')).toEqual(['rw_over__old']);
  });
});
