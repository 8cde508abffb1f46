import { describe, expect, it } from 'vitest';
import { databases, migrateOn, useDatabase } from './support/fixture.js';
import { background, runState, waitFor } from './support/run.js';

const cases = {
  mysql: {
    create: (t: string) => `CREATE TABLE ${t} (id BIGINT PRIMARY KEY, qty INT NOT NULL) ENGINE=InnoDB`,
    alter: "ADD COLUMN note VARCHAR(100) NOT NULL DEFAULT 'none', MODIFY qty BIGINT NOT NULL",
  },
  postgres: {
    create: (t: string) => `CREATE TABLE ${t} (id int8 PRIMARY KEY, qty int NOT NULL)`,
    alter: "ADD COLUMN note text NOT NULL DEFAULT 'none', ALTER COLUMN qty TYPE bigint",
  },
};

/**
 * After a revert, `<table>__new` is the new table: the only copy of what the window's writers put in
 * the columns the ALTER added. docs/revert-window.md says to drop it when no longer wanted; `shadowcut cleanup`
 * (which the leftovers check names for it) must not do that behind the operator's back.
 */
describe.each(databases)('$name: shadowcut cleanup after a revert', ({ open, kind }) => {
  const db = useDatabase(open, 'rw_kept');
  const c = cases[kind];

  it('keeps the new table the revert set aside', async () => {
    await db.drop('rw_kept');
    await db.query(c.create('rw_kept'));
    await db.query(`INSERT INTO rw_kept SELECT g, g FROM (${db.series(100)}) s`);
    const state = runState('rw_kept', c.alter, kind);
    const windowOpened = () => db.query(`UPDATE rw_kept SET note = 'written in the window' WHERE id = 1`).then(() => {});
    const run = background(migrateOn(db, 'rw_kept', c.alter, { state, revertWindowMs: 600_000, windowOpened }));
    await waitFor('the revert window', () => state.status.state === 'revert-window' && state.status.phase === 'revert window', run, 120_000);
    await waitFor('the write followed back', () => state.status.changesApplied > 0, run, 60_000);
    state.revertRequested = true;
    await waitFor('the revert', () => run.settled, null, 120_000);
    if (run.error) throw run.error;
    expect(await db.helpers('rw_kept')).toEqual(['rw_kept__new']);
    const cleanup = db.cli(['cleanup', '--url', '$URL', '--table', 'rw_kept']);
    expect(cleanup.code, cleanup.stderr).toBe(0);
    expect(await db.helpers('rw_kept')).toEqual(['rw_kept__new']);
    expect(await db.query(`SELECT note FROM rw_kept__new WHERE id = 1`)).toEqual([['written in the window']]);
  });
});
