import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClaimLostError } from '../src/core/run/claim.js';
import { databases, migrateOn, type Database } from './support/fixture.js';
import { runCli } from './support/mysql.js';
import { background, runState, waitFor } from './support/run.js';

const alter = 'ADD COLUMN note int NULL';

describe.each(databases)('$name: one run per table at a time', ({ open }) => {
  let db: Database;
  beforeAll(() => {
    db = open();
  });
  afterAll(() => db.close());

  it('refuses a second run, a resume and a cleanup while a run is live, and leaves its objects alone', async () => {
    const t = 'claim_orders';
    await db.drop(t, `${t}_mirror`);
    for (const table of [t, `${t}_mirror`]) {
      await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v varchar(20))`);
      await db.query(`INSERT INTO ${table} SELECT g, 'x' FROM (${db.series(5000)}) s`);
    }
    const state = runState(t, alter, db.kind);
    const first = background(migrateOn(db, t, alter, { state, postponeCutover: true, dropOld: true }));
    await waitFor('the postponed cut-over', () => state.status.state === 'postponed', first);

    for (const options of [{}, { resume: true }, { execute: false }]) {
      await expect(migrateOn(db, t, alter, options)).rejects.toThrow(/^another shadowcut run is migrating \S+ \(server (connection|process) \d+/);
    }
    const cleanup = runCli(['cleanup', '--url', '$URL', '--table', t], db.url);
    expect(cleanup.code).not.toBe(0);
    expect(cleanup.stderr.trim().split('\n')).toEqual([expect.stringMatching(/another shadowcut run is migrating/)]);

    // The live run still has everything it needs: writes reach the shadow and the swap succeeds.
    for (const table of [t, `${t}_mirror`]) {
      await db.query(`UPDATE ${table} SET v = 'later' WHERE id <= 100`);
      await db.query(`DELETE FROM ${table} WHERE id > 4900`);
    }
    state.cutoverRequested = true;
    await waitFor('the run to end', () => first.settled, null, 60_000);
    expect(first.error).toBeUndefined();
    await db.query(`ALTER TABLE ${t}_mirror ${alter}`);
    expect(await db.differences(t, `${t}_mirror`)).toEqual([]);

    // Released with the run: the next one on the table goes ahead.
    const next = await migrateOn(db, t, 'ADD COLUMN other int NULL', { dropOld: true });
    expect(next.executed).toBe(true);
  });

  /** Starts a run that waits at the cut-over, with the server session holding its claim. */
  async function postponedRun(t: string) {
    runCli(['cleanup', '--url', '$URL', '--table', t], db.url); // what an earlier failed run of this test left
    await db.drop(t);
    await db.query(`CREATE TABLE ${t} (id int PRIMARY KEY, v varchar(20))`);
    await db.query(`INSERT INTO ${t} SELECT g, 'x' FROM (${db.series(2000)}) s`);
    const state = runState(t, alter, db.kind);
    const run = background(migrateOn(db, t, alter, { state, postponeCutover: true, dropOld: true }));
    await waitFor('the postponed cut-over', () => state.status.state === 'postponed', run);
    return { state, run };
  }

  /** The server session that holds the claim on `t`, read from a refused claim of our own. */
  async function claimHolder(t: string): Promise<number | null> {
    const engine = await db.engine();
    const probe = await engine.openClaim(t);
    try {
      const holder = await probe.holder();
      return holder === null ? null : Number(/(\d+)/.exec(holder)![1]);
    } finally {
      await probe.close();
      await engine.close();
    }
  }

  it('takes its claim again after losing the session that held it, and cuts over', async () => {
    const { state, run } = await postponedRun('claim_lost_session');
    const lost = (await claimHolder('claim_lost_session'))!;
    await db.killSession(lost);
    let holder: number | null = null;
    await waitFor('the claim held again', async () => ((holder = await claimHolder('claim_lost_session')) ?? lost) !== lost, run);
    expect(holder).not.toBe(lost);
    state.cutoverRequested = true;
    await waitFor('the run to end', () => run.settled, null, 60_000);
    expect(run.error).toBeUndefined();
    expect(await claimHolder('claim_lost_session')).toBeNull();
  });

  it('stops without removing anything when another run took the claim it lost', async () => {
    const t = 'claim_taken';
    const { state, run } = await postponedRun(t);
    const engine = await db.engine();
    const thief = await engine.openClaim(t);
    try {
      // The run confirms its claim once a second: kill and take until the take wins the race. Between
      // a kill and the run's next confirmation nobody holds it, and the take alone may win.
      while (!(await thief.take())) {
        const holder = await claimHolder(t);
        if (holder !== null) await db.killSession(holder).catch(() => {}); // it may have just ended
      }
      state.cutoverRequested = true;
      await waitFor('the run to end', () => run.settled, null, 60_000);
      expect(run.error).toBeInstanceOf(ClaimLostError);
      const left = await db.query(`SELECT COUNT(*) FROM ${t}__new`);
      expect(Number(left[0][0])).toBe(2000);
    } finally {
      await thief.close();
      await engine.close();
    }
    const cleanup = runCli(['cleanup', '--url', '$URL', '--table', t], db.url);
    expect(cleanup.code).toBe(0);
  });
});
