import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { backfill } from '../src/core/backfill/run.js';
import type { BackfillOptions } from '../src/core/backfill/config.js';
import type { BackfillRequest } from '../src/core/engine/ports/backfill.js';
import { sendControl, startControlServer } from '../src/operator/control-server.js';
import { databases, useDatabase, type Database } from './support/fixture.js';
import { killDuringPhase } from './support/kill.js';
import { background, runState, waitFor } from './support/run.js';
import { MirrorWorkload, type Statement } from './support/workload.js';

// Each engine's words for one table: a composite key (a, b), an email that is NULL in every fifth
// row, and the new column the expand phase added, still NULL.
const dialects = {
  mysql: {
    create: (t: string) =>
      `CREATE TABLE ${t} (a INT NOT NULL, b VARCHAR(20) NOT NULL, email VARCHAR(60) NULL, email_new VARCHAR(60) NULL, n INT NOT NULL, PRIMARY KEY (a, b)) ENGINE=InnoDB`,
    row: `g % 7, CONCAT('k', g), IF(g % 5 = 0, NULL, CONCAT('User', g, '@Example.COM')), NULL, g`,
  },
  postgres: {
    create: (t: string) => `CREATE TABLE ${t} (a int NOT NULL, b text NOT NULL, email text NULL, email_new text NULL, n int NOT NULL, PRIMARY KEY (a, b))`,
    row: `g % 7, 'k' || g, CASE WHEN g % 5 = 0 THEN NULL ELSE 'User' || g || '@Example.COM' END, NULL, g`,
  },
};

const SET = 'email_new = lower(email)';
const WHERE = 'email_new IS NULL AND email IS NOT NULL';

/** Every row's email_new against the email lowered here, in JavaScript: the expected value is computed apart from the server. */
async function wrongRows(db: Database, table: string): Promise<string[]> {
  const rows = await db.query(`SELECT a, b, email, email_new FROM ${table}`);
  return rows
    .filter(([, , email, emailNew]) => (email === null ? null : String(email).toLowerCase()) !== (emailNew === null ? null : String(emailNew)))
    .map((r) => JSON.stringify(r));
}

async function count(db: Database, sql: string): Promise<number> {
  return Number((await db.query(sql))[0][0]);
}

describe.each(databases)('$name: backfill', ({ open, kind }) => {
  const db = useDatabase(open, 'bf_t', 'bf_mirror');
  const { create, row } = dialects[kind];

  async function seed(rows: number, mirror = false) {
    // What an earlier killed run left.
    expect(db.cli(['cleanup', '--url', '$URL', '--table', 'bf_t']).code).toBe(0);
    await db.drop('bf_t', 'bf_mirror');
    await db.query(create('bf_t'));
    await db.query(`INSERT INTO bf_t SELECT ${row} FROM (${db.series(rows)}) s`);
    if (mirror) {
      // The mirror holds what the backfill must reach, set in one statement and then kept by the same writes.
      await db.query(create('bf_mirror'));
      await db.query('INSERT INTO bf_mirror SELECT a, b, email, lower(email), n FROM bf_t');
    }
  }

  async function run(request: Partial<BackfillRequest> = {}, options: Partial<BackfillOptions> = {}) {
    const engine = await db.engine();
    try {
      return await backfill(engine, { table: 'bf_t', set: SET, where: WHERE, ...request }, { execute: true, ...options });
    } finally {
      await engine.close();
    }
  }

  it('fills the new column exactly over a composite key and NULLs; a second run finds nothing left', async () => {
    await seed(5000);
    const first = await run({}, { batchRows: 300 });
    expect(first.outcome).toBe('success');
    // Every fifth row has no email: 4000 match.
    expect(first.rowsTouched).toBe(4000);
    expect(first.detail.keyColumns).toEqual(['a', 'b']);
    expect(first.detail.batches).toBeGreaterThan(5000 / 300);
    expect(await wrongRows(db, 'bf_t')).toEqual([]);
    expect(await count(db, 'SELECT COUNT(*) FROM bf_t WHERE email_new IS NULL')).toBe(1000);
    expect(await db.helpers('bf_t')).toEqual([]);

    const second = await run();
    expect(second.outcome).toBe('success');
    expect(second.rowsTouched).toBe(0);
    expect(await db.helpers('bf_t')).toEqual([]);
  });

  it('a batch whose commit was acknowledged to nobody (connection lost) is not applied again', async () => {
    await seed(1000);
    const engine = await db.engine();
    const prepare = engine.prepareBackfill.bind(engine);
    let lost = 0;
    // Batches 2 and 5 commit, then their connection "breaks" before the answer arrives.
    engine.prepareBackfill = async (request) => {
      const target = await prepare(request);
      const update = target.update.bind(target);
      let batch = 0;
      target.update = async (range, checkpoint) => {
        const rows = await update(range, checkpoint);
        if (++batch === 2 || batch === 5) {
          lost++;
          throw Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
        }
        return rows;
      };
      return target;
    };
    try {
      const result = await backfill(engine, { table: 'bf_t', set: 'n = n + 1' }, { execute: true, batchRows: 150 });
      expect(lost).toBe(2);
      expect(result.rowsTouched).toBe(1000);
    } finally {
      await engine.close();
    }
    expect(await count(db, `SELECT COUNT(*) FROM bf_t WHERE n <> CAST(SUBSTR(b, 2) AS ${kind === 'mysql' ? 'SIGNED' : 'int'}) + 1`)).toBe(0);
  });

  it('dry run: checks the statement on the server, names the key and an estimate, changes nothing', async () => {
    await seed(2000);
    const dry = db.cli(['backfill', '--url', '$URL', '--table', 'bf_t', '--set', SET, '--where', WHERE]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/ok {3}statement: the server accepts the UPDATE/);
    expect(dry.stdout).toMatch(/key: .*\(a, b\)/);
    expect(dry.stdout).toMatch(/rows estimated to match: \d+/);
    expect(dry.stdout).toMatch(/dry run: nothing was changed/);
    expect(await count(db, 'SELECT COUNT(*) FROM bf_t WHERE email_new IS NOT NULL')).toBe(0);
    expect(await db.helpers('bf_t')).toEqual([]);
  });

  it.each([
    ['a --set naming a missing column', ['--set', 'nope = lower(email)'], /--set names column nope/],
    ['a --set naming a key column', ['--set', "b = 'x'"], /a column of the key/],
    ['a --where the server refuses', ['--set', SET, '--where', 'no_such_column IS NULL'], /the server refuses the UPDATE: .*no_such_column/],
    ['a --where escaping its parentheses', ['--set', SET, '--where', 'email_new IS NULL) OR (1 = 1'], /unbalanced parentheses/],
    ['a --set that is no assignment', ['--set', 'lower(email)'], /--set must be "column = expression/],
  ])('refuses %s: one line, exit 2, nothing changed or left', async (_what, args, message) => {
    await seed(500);
    for (const execute of [[], ['--execute']]) {
      const out = db.cli(['backfill', '--url', '$URL', '--table', 'bf_t', ...args, ...execute]);
      expect(out.code).toBe(2);
      const lines = out.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^shadowcut: /);
      expect(lines[0]).toMatch(message);
      expect(await count(db, 'SELECT COUNT(*) FROM bf_t WHERE email_new IS NOT NULL')).toBe(0);
      expect(await db.helpers('bf_t')).toEqual([]);
    }
  });

  it('held by pause on the control socket and by the throttle flag file; goes on when both are lifted', async () => {
    await seed(3000);
    const dir = await mkdtemp(path.join(tmpdir(), 'shadowcut-bf-'));
    const flag = path.join(dir, 'throttle');
    const socketPath = path.join(dir, 'control.sock');
    const state = runState('bf_t', '', db.kind);
    const control = await startControlServer(state, { table: 'bf_t', socketPath });
    try {
      expect(await sendControl({ socketPath }, { command: 'pause' })).toMatchObject({ ok: true, paused: true });
      await writeFile(flag, '');
      const running = run({}, { state, batchRows: 200, flagFile: flag });
      const outcome = background(running);
      await waitFor('the pause to hold the backfill', () => state.status.state === 'paused', outcome);
      // Held before its first batch: its checkpoint is there, and no row is touched.
      expect(state.status.phase).toBe('backfill');
      expect(await db.helpers('bf_t')).toEqual(['bf_t__state']);
      expect(await count(db, 'SELECT COUNT(*) FROM bf_t WHERE email_new IS NOT NULL')).toBe(0);

      const resumed = await sendControl({ socketPath }, { command: 'resume' });
      expect(resumed).toMatchObject({ ok: true, paused: false });
      await waitFor('the flag file to hold it', () => state.status.state === 'throttled' && state.status.throttleKind === 'flag', outcome);
      expect(await count(db, 'SELECT COUNT(*) FROM bf_t WHERE email_new IS NOT NULL')).toBe(0);

      await rm(flag);
      const result = await running;
      expect(result.rowsTouched).toBe(2400);
      expect(state.status.throttledMs.paused).toBeGreaterThan(0);
      expect(state.status.throttledMs.flag).toBeGreaterThan(0);
      expect(await wrongRows(db, 'bf_t')).toEqual([]);
      expect(await db.helpers('bf_t')).toEqual([]);
    } finally {
      await control.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('aborted: the committed batches stay, so does the checkpoint; a fresh run and migrate are refused, cleanup removes it', async () => {
    await seed(3000);
    const state = runState('bf_t', '', db.kind);
    const running = run({ where: undefined, set: 'n = n + 1' }, { state, batchRows: 100, maxRowsPerSec: 1000 });
    const outcome = background(running);
    await waitFor('some batches', () => state.status.rowsUpdated >= 300, outcome);
    state.abortReason = 'test';
    await expect(running).rejects.toThrow(/aborted: test/);
    // Without --where a fresh run would add 1 again to the rows done: the checkpoint is what prevents it.
    expect(await db.helpers('bf_t')).toEqual(['bf_t__state']);
    const again = db.cli(['backfill', '--url', '$URL', '--table', 'bf_t', '--set', 'n = n + 1', '--execute']);
    expect(again.stderr).toMatch(/left a checkpoint: continue it with --resume/);
    const other = db.cli(['backfill', '--url', '$URL', '--table', 'bf_t', '--set', 'n = n + 2', '--execute', '--resume']);
    expect(other.stderr).toMatch(/was for --set "n = n \+ 1" without --where/);
    const migrate = db.cli([
      'migrate',
      '--url',
      '$URL',
      '--table',
      'bf_t',
      '--alter',
      kind === 'mysql' ? 'ADD COLUMN z INT' : 'ADD COLUMN z int',
      '--execute',
      '--resume',
    ]);
    expect(migrate.stderr).toMatch(/was a backfill/);

    // Resumed, every row ends up exactly one higher: no batch applied twice, none skipped.
    const resumed = await run({ where: undefined, set: 'n = n + 1' }, { resume: true, batchRows: 100 });
    expect(resumed.detail.resumed).toBe(true);
    expect(resumed.rowsTouched).toBe(3000);
    expect(await count(db, `SELECT COUNT(*) FROM bf_t WHERE n <> CAST(SUBSTR(b, 2) AS ${kind === 'mysql' ? 'SIGNED' : 'int'}) + 1`)).toBe(0);
    expect(await db.helpers('bf_t')).toEqual([]);

    // A dead run's checkpoint goes with `shadowcut cleanup`.
    const state2 = runState('bf_t', '', db.kind);
    const second = run({ where: undefined, set: 'n = n + 1' }, { state: state2, batchRows: 100, maxRowsPerSec: 1000 });
    const outcome2 = background(second);
    await waitFor('some batches', () => state2.status.rowsUpdated >= 200, outcome2);
    state2.abortReason = 'test';
    await expect(second).rejects.toThrow(/aborted/);
    expect(db.cli(['cleanup', '--url', '$URL', '--table', 'bf_t']).stdout).toMatch(/removed: .*bf_t__state/);
    expect(await db.helpers('bf_t')).toEqual([]);
  });
});

/** Writes as an expand-phase application makes them: each keeps email_new = lower(email) itself. Worker w owns the n = w mod 3. */
function writes(db: Database, rows: number): (worker: number) => Statement {
  const p = (n: number) => db.param(n);
  const concat = db.kind === 'mysql' ? (a: string, b: string) => `CONCAT(${a}, ${b})` : (a: string, b: string) => `(${a} || ${b})`;
  const fresh = [0, 0, 0];
  return (worker) => {
    const n = 3 * Math.floor(Math.random() * (rows / 3)) + worker + 1;
    const key = [n % 7, `k${n}`];
    const r = Math.random();
    const email = Math.random() < 0.1 ? null : `Writer${Math.floor(Math.random() * 1e6)}@Example.COM`;
    if (r < 0.6) return { sql: `UPDATE {t} SET email = ${p(1)}, email_new = lower(${p(2)}) WHERE a = ${p(3)} AND b = ${p(4)}`, values: [email, email, ...key] };
    // email_new first: MySQL evaluates SET left to right, with the new email in later assignments.
    if (r < 0.7)
      return {
        sql: `UPDATE {t} SET email_new = lower(${concat('email', `'x'`)}), email = ${concat('email', `'x'`)} WHERE a = ${p(1)} AND b = ${p(2)}`,
        values: key,
      };
    if (r < 0.85) return { sql: `DELETE FROM {t} WHERE a = ${p(1)} AND b = ${p(2)}`, values: key };
    const id = rows + 10 + worker + 3 * fresh[worker]++;
    return {
      sql: `INSERT INTO {t} (a, b, email, email_new, n) VALUES (${p(1)}, ${p(2)}, ${p(3)}, lower(${p(4)}), ${p(5)})`,
      values: [id % 7, `k${id}`, email, email, id],
    };
  };
}

describe.each(databases)('$name: backfill killed with SIGKILL under writes, then --resume', ({ open, kind }) => {
  const db = useDatabase(open, 'bk_t', 'bk_mirror');
  const { create, row } = dialects[kind];
  const rows = 30_000;

  it('ends with every row equal to its mirror and to lower(email)', async () => {
    expect(db.cli(['cleanup', '--url', '$URL', '--table', 'bk_t']).code).toBe(0);
    await db.drop('bk_t', 'bk_mirror');
    await db.query(create('bk_t'));
    await db.query(`INSERT INTO bk_t SELECT ${row} FROM (${db.series(rows)}) s`);
    await db.query(create('bk_mirror'));
    await db.query('INSERT INTO bk_mirror SELECT a, b, email, lower(email), n FROM bk_t');

    const load = new MirrorWorkload(db, ['bk_t', 'bk_mirror'], writes(db, rows));
    load.start();
    try {
      const args = ['--url', db.url, '--table', 'bk_t', '--set', SET, '--where', WHERE, '--batch-rows', '200', '--max-rows-per-sec', '8000'];
      const crash = await killDuringPhase(args, 'backfill', 1000, 'backfill');
      expect(crash.killed, `the run ended before its batches (exit ${crash.exitCode}): ${crash.stderr}`).toBe(true);
      expect(await db.helpers('bk_t')).toEqual(['bk_t__state']);
      // Killed part way: some rows done, some not.
      const left = await count(db, 'SELECT COUNT(*) FROM bk_t WHERE email_new IS NULL AND email IS NOT NULL');
      expect(left).toBeGreaterThan(0);

      const engine = await db.engine();
      try {
        const resumed = await backfill(engine, { table: 'bk_t', set: SET, where: WHERE }, { execute: true, resume: true, batchRows: 500 });
        expect(resumed.detail.resumed).toBe(true);
        expect(resumed.detail.batches).toBeGreaterThan(1);
      } finally {
        await engine.close();
      }
    } finally {
      await load.stop();
    }
    expect(load.stats.errors).toEqual([]);
    expect(load.stats.transactions).toBeGreaterThan(0);
    expect(
      await count(
        db,
        `SELECT COUNT(*) FROM bk_t WHERE NOT (${kind === 'mysql' ? 'email_new <=> lower(email)' : 'email_new IS NOT DISTINCT FROM lower(email)'})`,
      ),
    ).toBe(0);
    expect(await wrongRows(db, 'bk_t')).toEqual([]);
    expect(await db.differences('bk_t', 'bk_mirror')).toEqual([]);
    expect(await db.helpers('bk_t')).toEqual([]);
  });
});
