import { describe, expect, it } from 'vitest';
import { databases, migrateOn, plainDatabases, useDatabase, type Database } from './support/fixture.js';
import { killDuringPhase } from './support/kill.js';
import { background, runState, waitFor } from './support/run.js';
import { MirrorWorkload } from './support/workload.js';
import { ownedRowsPair, ownedRowWrites } from './support/owned-writes.js';

/**
 * A widening change plus a new column: lossless both ways. The mirror never takes it, so after a
 * revert the table must equal it, every write made to the new table in the window included.
 */
const dialects = {
  mysql: {
    create: (t: string) =>
      `CREATE TABLE ${t} (id BIGINT PRIMARY KEY, qty INT NOT NULL, label VARCHAR(20) COLLATE utf8mb4_bin, at DATETIME(6) NOT NULL, price DECIMAL(30,10)) ENGINE=InnoDB`,
    alter: "ADD COLUMN note VARCHAR(100) NOT NULL DEFAULT 'none', MODIFY qty BIGINT NOT NULL, MODIFY label VARCHAR(40) COLLATE utf8mb4_bin",
    narrowing: 'MODIFY price DECIMAL(30,2)',
    at: `'2024-01-01 00:00:00.000001' + INTERVAL g SECOND`,
    reverseTriggers: (t: string) =>
      `SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME LIKE '${t}\\_\\_%'`,
  },
  postgres: {
    create: (t: string) =>
      `CREATE TABLE ${t} (id int8 PRIMARY KEY, qty int NOT NULL, label varchar(20) COLLATE "C", at timestamptz NOT NULL, price numeric(30,10))`,
    alter: "ADD COLUMN note text NOT NULL DEFAULT 'none', ALTER COLUMN qty TYPE bigint, ALTER COLUMN label TYPE varchar(40)",
    narrowing: 'ALTER COLUMN price TYPE numeric(30,2)',
    at: `'2024-01-01 00:00:00.000001+00'::timestamptz + g * interval '1.000001 second'`,
    reverseTriggers: (t: string) => `SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE '${t}\\_\\_%'`,
  },
};

function freshPair(db: Database, name: string, rows: number): Promise<void> {
  const d = dialects[db.kind];
  return ownedRowsPair(db, name, rows, d.create, d.at);
}

async function expectNoReverseCapture(db: Database, t: string): Promise<void> {
  expect(await db.query(dialects[db.kind].reverseTriggers(t))).toEqual([]);
  expect(await db.helpers(t)).not.toContain(`${t}__rlog`);
}

const servers = [...databases.map((d) => ({ ...d, capture: 'stream' as const })), ...plainDatabases.map((d) => ({ ...d, capture: 'trigger' as const }))];

describe.each(servers)('$name: revert window ($capture capture)', ({ open, kind, capture }) => {
  const db = useDatabase(open, 'rw_back', 'rw_back_mirror', 'rw_done', 'rw_done_mirror', 'rw_narrow', 'rw_narrow_mirror');
  const d = dialects[kind];

  it('writes to the new table in the window follow back: after the revert the table equals a mirror that never took the ALTER', async () => {
    await freshPair(db, 'rw_back', 3000);
    const load = new MirrorWorkload(db, ['rw_back', 'rw_back_mirror'], ownedRowWrites(db, 3000));
    const state = runState('rw_back', d.alter, kind);
    load.start();
    const run = background(migrateOn(db, 'rw_back', d.alter, { state, revertWindowMs: 600_000, lockTimeoutMs: 2000 }, { request: { capture } }));
    await waitFor('the revert window', () => state.status.state === 'revert-window' && state.status.phase === 'revert window', run, 120_000);
    // The new table takes writes for a while before the way back is taken.
    const at = state.status.changesApplied;
    await waitFor('writes followed back', () => state.status.changesApplied > at + 100, run, 60_000);
    state.revertRequested = true;
    await waitFor('the revert', () => run.settled, null, 120_000);
    const stats = await load.stop();
    if (run.error) throw run.error;
    expect(stats.errors).toEqual([]);
    expect(await db.schema('rw_back')).toBe(await db.schema('rw_back_mirror'));
    expect(await db.differences('rw_back', 'rw_back_mirror')).toEqual([]);
    // The new table is kept beside it, and nothing else of the run.
    expect(await db.helpers('rw_back')).toEqual(['rw_back__new']);
    await expectNoReverseCapture(db, 'rw_back');
  });

  it('complete ends the window: the new schema stays, the old table is kept and no longer followed', async () => {
    await freshPair(db, 'rw_done', 500);
    const state = runState('rw_done', d.alter, kind);
    const run = background(migrateOn(db, 'rw_done', d.alter, { state, revertWindowMs: 600_000 }, { request: { capture } }));
    await waitFor('the revert window', () => state.status.state === 'revert-window' && state.status.phase === 'revert window', run, 120_000);
    // The old table is the window's: a contract dropping it is refused while the run lives.
    const drop = db.cli(['contract', '--url', '$URL', '--table', 'rw_done__old', '--drop-table', '--no-backup', '--min-soak', '0', '--execute']);
    expect(drop.code).not.toBe(0);
    expect(drop.stderr.trim().split('\n')).toHaveLength(1);
    expect(drop.stderr).toMatch(/rw_done__old is the old table a migration of .*rw_done keeps/);
    await db.query(`UPDATE rw_done SET qty = 999 WHERE id = 1`);
    await db.query(`UPDATE rw_done_mirror SET qty = 999 WHERE id = 1`);
    // Followed back before the window ends (a fixed pause was too short on a loaded machine).
    await waitFor('the write followed back', async () => String((await db.query('SELECT qty FROM rw_done__old WHERE id = 1'))[0][0]) === '999', run, 30_000);
    state.completeRequested = true;
    await waitFor('the end of the window', () => run.settled, null, 60_000);
    if (run.error) throw run.error;
    expect(await db.query('SELECT note FROM rw_done WHERE id = 1')).toEqual([['none']]);
    expect(await db.helpers('rw_done')).toEqual(['rw_done__old']);
    await expectNoReverseCapture(db, 'rw_done');
    // Followed up to the end: the old table took the write made to the new one.
    expect(await db.differences('rw_done__old', 'rw_done_mirror')).toEqual([]);
  });

  it('a window cannot be combined with --drop-old: one line, nothing made', async () => {
    await freshPair(db, 'rw_narrow', 50);
    const cli = db.cli(['migrate', '--url', '$URL', '--table', 'rw_narrow', '--alter', d.alter, '--revert-window', '1h', '--drop-old', '--execute']);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr.trim().split('\n')).toHaveLength(1);
    await expect(migrateOn(db, 'rw_narrow', d.alter, { revertWindowMs: 60_000, dropOld: true })).rejects.toThrow(
      /--drop-old cannot be combined with --revert-window/,
    );
    expect(await db.helpers('rw_narrow')).toEqual([]);
    expect(await db.schema('rw_narrow')).toBe(await db.schema('rw_narrow_mirror'));
  });

  it('a change whose values would not come back is named in the dry run, and a revert window is refused for it', async () => {
    await freshPair(db, 'rw_narrow', 200);
    const dry = db.cli(['migrate', '--url', '$URL', '--table', 'rw_narrow', '--alter', d.narrowing, '--force-copy']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/revert: not revertible: column price does not come back/);
    const refused = db.cli(['migrate', '--url', '$URL', '--table', 'rw_narrow', '--alter', d.narrowing, '--revert-window', '1h', '--execute']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/--revert-window: the change could not be reverted \(column price/);
    expect(await db.helpers('rw_narrow')).toEqual([]);
    expect(await db.differences('rw_narrow', 'rw_narrow_mirror')).toEqual([]);
  });
});

describe.each(databases)('$name: a revert window killed and resumed', ({ open, kind }) => {
  const db = useDatabase(open, 'rw_kill', 'rw_kill_mirror');
  const d = dialects[kind];

  it.each(['revert window', 'revert'])('SIGKILL in the %s phase, resumed, then reverted: the table equals the mirror', async (phase) => {
    await freshPair(db, 'rw_kill', 3000);
    const load = new MirrorWorkload(db, ['rw_kill', 'rw_kill_mirror'], ownedRowWrites(db, 3000));
    load.start();
    try {
      const args = ['--url', db.url, '--table', 'rw_kill', '--alter', d.alter, '--revert-window', '10m', '--lock-timeout-ms', '2000'];
      if (phase === 'revert') {
        // Asked for the revert as soon as the window opens: the kill lands in the swap back.
        const first = killAtRevert(db, args);
        expect((await first).killed).toBe(true);
      } else {
        const first = await killDuringPhase(args, 'revert window', 1500);
        expect(first.killed).toBe(true);
      }
      const resumed = db.cliAsync(['migrate', ...args.map((a) => (a === db.url ? '$URL' : a)), '--resume', '--execute']);
      let resumedOver = false;
      const over = () => (resumedOver = true);
      void resumed.then(over, over);
      await waitFor('the resumed window', () => windowOpen(db) || resumedOver, null, 120_000);
      await load.untilMoreWrites(); // writes on the new table, which the revert must take back
      db.cli(['revert', '--table', 'rw_kill']);
      const out = await resumed;
      expect(out.code, out.stderr).toBe(0);
      expect(out.stdout).toMatch(/revert window: reverted/);
    } finally {
      await load.stop();
    }
    // The timeline says the window opened when it did, and then how it ended.
    const history = db.cli(['history', '--url', '$URL', '--table', 'rw_kill']).stdout;
    expect(history).toMatch(/revert window open until/);
    expect(history).toMatch(/revert window: reverted/);
    expect(await db.schema('rw_kill')).toBe(await db.schema('rw_kill_mirror'));
    expect(await db.differences('rw_kill', 'rw_kill_mirror')).toEqual([]);
    expect(await db.helpers('rw_kill')).toEqual(['rw_kill__new']);
  });
});

/** Whether a run answers on the table's control socket in its revert window. */
function windowOpen(db: Database): boolean {
  const status = db.cli(['status', '--table', 'rw_kill', '--json']);
  return status.code === 0 && (JSON.parse(status.stdout) as { status: { state: string } }).status.state === 'revert-window';
}

/** Runs the migration with a window, asks for the revert once the window is open, and kills it in the swap back. */
async function killAtRevert(db: Database, args: string[]): Promise<{ killed: boolean }> {
  const run = killDuringPhase(args, 'revert', 0);
  await waitFor('the window to revert', () => windowOpen(db), null, 120_000);
  db.cli(['revert', '--table', 'rw_kill']);
  return run;
}

describe.each(databases)('$name: revert window with a replica watched', ({ open, kind }) => {
  const db = useDatabase(open, 'rw_rep', 'rw_rep_mirror');

  it("the way back reads the replica's lag from the run's heartbeat, which stays for the window", async () => {
    await freshPair(db, 'rw_rep', 500);
    const alter = dialects[kind].alter;
    const state = runState('rw_rep', alter, kind);
    const run = background(migrateOn(db, 'rw_rep', alter, { state, revertWindowMs: 600_000, replicas: [db.replica.url] }));
    await waitFor('the revert window', () => state.status.state === 'revert-window' && state.status.phase === 'revert window', run, 120_000);
    state.revertRequested = true;
    // Without the heartbeat the replica reads as unmeasurable, and the revert holds back for good.
    await waitFor('the revert', () => run.settled, null, 60_000);
    if (run.error) throw run.error;
    expect(state.status.throttleReason).toBeNull();
    expect(await db.schema('rw_rep')).toBe(await db.schema('rw_rep_mirror'));
    expect(await db.helpers('rw_rep')).toEqual(['rw_rep__new']);
  });
});
