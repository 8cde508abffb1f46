import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate } from '../src/core/migrate/runner.js';
import { createPostgresEngine } from '../src/engines/postgres/index.js';
import { PgTriggerLog } from '../src/engines/postgres/capture/trigger/log.js';
import { openEnginePool } from '../src/engines/postgres/server/connect.js';
import { parsePgUrl } from '../src/engines/postgres/server/target.js';
import { expectMirrored, migrateOn, useDatabase } from './support/fixture.js';
import { killDuringPhase } from './support/kill.js';
import { runCli } from './support/mysql.js';
import { pgUrl, postgresDatabase } from './support/pg.js';
import { background, runState, waitFor } from './support/run.js';
import { MirrorWorkload, OwnedIds, type Statement } from './support/workload.js';

/**
 * Trigger capture on PostgreSQL, each known failure of the design with a test of its own. On the
 * normal server (wal_level = logical) with `capture: 'trigger'`; the role test takes `auto` as a
 * role without REPLICATION.
 */
const alter = 'ALTER COLUMN qty TYPE bigint, ADD COLUMN note text';
const trigger = { request: { capture: 'trigger' as const } };
const create = (t: string) => `CREATE TABLE ${t} (id int PRIMARY KEY, qty int NOT NULL, label text)`;

describe('trigger capture (PostgreSQL)', () => {
  const tables = [
    'tc_mix',
    'tc_mix_m',
    'tc_gap',
    'tc_gap_m',
    'tc_old',
    'tc_old_m',
    'tc_own',
    'tc_own_m',
    'tc_rep',
    'tc_rep_m',
    'tc_trunc',
    'tc_kill',
    'tc_kill_m',
  ];
  const db = useDatabase(() => postgresDatabase(), ...tables, 'tc_left', 'tc_foreign', 'tc_dis', 'tc_dis_m', 'tc_dom', 'tc_dom_m', 'tc_part');
  const pool = new pg.Pool({ connectionString: pgUrl(), max: 6 });
  afterAll(() => pool.end());

  /** The table and its mirror, both with `rows` rows. */
  async function twins(t: string, rows: number): Promise<void> {
    await db.drop(t, `${t}_m`);
    for (const x of [t, `${t}_m`]) {
      await db.query(create(x));
      await db.query(`INSERT INTO ${x} SELECT g, g % 7, 'row ' || g FROM generate_series(1, ${rows}) g`);
    }
  }

  /** Runs `sql` on the table and on its mirror, in one transaction each. */
  async function both(t: string, sql: string): Promise<void> {
    for (const x of [t, `${t}_m`]) await pool.query(sql.replaceAll('{t}', x));
  }

  const captureTriggers = async (t: string) =>
    (await db.query(`SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname LIKE '%\\_\\_t_' ORDER BY 1`, [t])).map(
      (r) => `${String(r[0])}:${String(r[1])}`,
    );
  const inShadow = async (t: string, where: string) => Number((await db.query(`SELECT count(*) FROM ${t}__new WHERE ${where}`))[0][0]) > 0;

  /** Inserts, updates, deletes and key-moving updates; worker w owns the ids congruent to w mod 3. */
  function writes(seed: number): (worker: number) => Statement {
    const ids = new OwnedIds(seed, 1_000_000);
    return (w) => {
      const r = Math.random();
      if (r < 0.4 && ids.size(w)) return { sql: 'UPDATE {t} SET qty = qty + 1, label = $1 WHERE id = $2', values: [`u${Math.random()}`, ids.pick(w)] };
      if (r < 0.65 || ids.size(w) < 100) return { sql: `INSERT INTO {t} VALUES ($1, 1, 'new')`, values: [ids.fresh(w)] };
      if (r < 0.8) return { sql: 'DELETE FROM {t} WHERE id = $1', values: [ids.remove(w)] };
      const from = ids.remove(w);
      return { sql: 'UPDATE {t} SET id = $1 WHERE id = $2', values: [ids.fresh(w), from] };
    };
  }

  it('ends equal to a mirror under concurrent inserts, updates, deletes and key changes', async () => {
    await twins('tc_mix', 60_000);
    const load = new MirrorWorkload(db, ['tc_mix', 'tc_mix_m'], writes(60_000));
    const state = runState('tc_mix', alter, 'postgres', { chunkTimeMs: 20 });
    load.start();
    try {
      const migration = migrateOn(db, 'tc_mix', alter, { state }, trigger);
      const run = background(migration);
      // The run follows the table through its triggers (enabled always), not a slot.
      await waitFor('the capture triggers', async () => (await captureTriggers('tc_mix')).length === 4, run);
      expect(await captureTriggers('tc_mix')).toEqual(['tc_mix__td:A', 'tc_mix__ti:A', 'tc_mix__tt:A', 'tc_mix__tu:A']);
      // Its function, and no slot or publication (which share its name).
      expect((await db.helpers('tc_mix')).filter((h) => h.startsWith('shadowcut_'))).toHaveLength(1);
      await waitFor('the run to end', () => run.settled, null, 120_000);
      expect(run.error).toBeUndefined();
      // The triggers delivered every change: verification had nothing to repair.
      expect((await migration).checksumRounds).toBe(1);
      await load.untilMoreWrites();
    } finally {
      await load.stop();
    }
    expect(load.stats.errors).toEqual([]);
    expect(load.stats.transactions).toBeGreaterThan(50);
    await db.query(`ALTER TABLE tc_mix_m ${alter}`);
    await expectMirrored(db, 'tc_mix', 'tc_mix_m');
    expect(await captureTriggers('tc_mix__old')).toEqual([]);
  });

  it('applies a change whose log sequence is lower than one already applied (a transaction that committed later)', async () => {
    await twins('tc_gap', 1000);
    const state = runState('tc_gap', alter, 'postgres');
    const run = background(migrateOn(db, 'tc_gap', alter, { state, postponeCutover: true }, trigger));
    await waitFor('the postponed cut-over', () => state.status.state === 'postponed', run);
    const a = await pool.connect();
    const b = await pool.connect();
    try {
      await a.query('BEGIN');
      await a.query(`INSERT INTO tc_gap VALUES (5001, 1, 'a')`); // takes the lower sequence, stays open
      await b.query('BEGIN');
      await b.query(`INSERT INTO tc_gap VALUES (5002, 2, 'b')`);
      await b.query('COMMIT');
      await waitFor('B applied to the shadow', () => inShadow('tc_gap', 'id = 5002'), run);
      // A's entry is the lower one, invisible to the run until A commits (each transaction sees its own).
      const seqA = Number((await a.query('SELECT seq FROM tc_gap__log WHERE o_1 = 5001')).rows[0].seq);
      const seqB = Number((await db.query('SELECT last_value FROM tc_gap__log_seq_seq'))[0][0]);
      expect(seqA).toBeLessThan(seqB);
      await a.query('COMMIT');
    } finally {
      a.release();
      b.release();
    }
    // Before the cut-over (whose locked drain reads the whole log anyway): the unlocked polls find it.
    await waitFor('A applied to the shadow', () => inShadow('tc_gap', 'id = 5001'), run, 10_000);
    await pool.query(`INSERT INTO tc_gap_m VALUES (5001, 1, 'a'), (5002, 2, 'b')`);
    state.cutoverRequested = true;
    await waitFor('the run to end', () => run.settled, null, 60_000);
    expect(run.error).toBeUndefined();
    await db.query(`ALTER TABLE tc_gap_m ${alter}`);
    expect(await db.differences('tc_gap', 'tc_gap_m')).toEqual([]);
  });

  it('waits for a transaction that wrote the table before the run and commits later', async () => {
    await twins('tc_old', 1000);
    const early = await pool.connect();
    try {
      await early.query('BEGIN');
      await early.query(`UPDATE tc_old SET label = 'early' WHERE id = 10`);
      const run = background(migrateOn(db, 'tc_old', alter, { lockTimeoutMs: 100, cutoverAttempts: 200 }, trigger));
      await waitFor(
        'the trigger install waiting for the open transaction',
        async () => Number((await db.query(`SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'CREATE TRIGGER%'`))[0][0]) > 0,
        run,
      );
      await early.query(`UPDATE tc_old SET qty = 99 WHERE id = 11`);
      await early.query('COMMIT');
      await waitFor('the run to end', () => run.settled, null, 60_000);
      expect(run.error).toBeUndefined();
    } finally {
      early.release();
    }
    await pool.query(`UPDATE tc_old_m SET label = 'early' WHERE id = 10`);
    await pool.query(`UPDATE tc_old_m SET qty = 99 WHERE id = 11`);
    await db.query(`ALTER TABLE tc_old_m ${alter}`);
    await expectMirrored(db, 'tc_old', 'tc_old_m');
  });

  it("captures what the table's own BEFORE and AFTER triggers do", async () => {
    await twins('tc_own', 3000);
    await pool.query(`CREATE OR REPLACE FUNCTION tc_own_before() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN NEW.label := upper(coalesce(NEW.label, '')) || '!'; NEW.qty := NEW.qty * 2; RETURN NEW; END $$`);
    // The AFTER trigger writes another row of the same table: that write must be captured too.
    await pool.query(`CREATE OR REPLACE FUNCTION tc_own_after() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.id > 1000000 THEN EXECUTE format('UPDATE %I.%I SET qty = qty + 1000 WHERE id = $1', TG_TABLE_SCHEMA, TG_TABLE_NAME) USING NEW.id % 3000 + 1; END IF;
      RETURN NULL; END $$`);
    for (const t of ['tc_own', 'tc_own_m']) {
      await pool.query(`CREATE TRIGGER a_before BEFORE INSERT OR UPDATE ON ${t} FOR EACH ROW EXECUTE FUNCTION tc_own_before()`);
      await pool.query(`CREATE TRIGGER z_after AFTER INSERT ON ${t} FOR EACH ROW EXECUTE FUNCTION tc_own_after()`);
    }
    const load = new MirrorWorkload(db, ['tc_own', 'tc_own_m'], writes(3000), 1);
    const state = runState('tc_own', alter, 'postgres');
    load.start();
    try {
      const migration = migrateOn(db, 'tc_own', alter, { state, postponeCutover: true }, trigger);
      const run = background(migration);
      await waitFor('the postponed cut-over', () => state.status.state === 'postponed', run);
      const before = load.stats.transactions;
      await waitFor('more writes while postponed', () => load.stats.transactions > before + 30, run);
      state.cutoverRequested = true;
      await waitFor('the run to end', () => run.settled, null, 60_000);
      expect(run.error).toBeUndefined();
      expect((await migration).checksumRounds).toBe(1);
    } finally {
      await load.stop();
    }
    expect(load.stats.errors).toEqual([]);
    await db.query(`ALTER TABLE tc_own_m ${alter}`);
    await expectMirrored(db, 'tc_own', 'tc_own_m');
    // The user's triggers moved to the new table; ours did not.
    const names = (await db.query(`SELECT tgname FROM pg_trigger WHERE tgrelid = 'tc_own'::regclass AND NOT tgisinternal ORDER BY 1`)).map((r) => r[0]);
    expect(names).toEqual(['a_before', 'z_after']);
  });

  it('captures writers with session_replication_role = replica', async () => {
    await twins('tc_rep', 1000);
    const state = runState('tc_rep', alter, 'postgres');
    const run = background(migrateOn(db, 'tc_rep', alter, { state, postponeCutover: true }, trigger));
    await waitFor('the postponed cut-over', () => state.status.state === 'postponed', run);
    const replica = await pool.connect();
    try {
      await replica.query('SET session_replication_role = replica');
      await both('tc_rep', `UPDATE {t} SET label = 'seen' WHERE id = 7`); // the mirror's half, and a normal write
      await replica.query(`UPDATE tc_rep SET qty = 4242 WHERE id = 8`);
      await replica.query(`DELETE FROM tc_rep WHERE id = 9`);
    } finally {
      await replica.query('RESET session_replication_role');
      replica.release();
    }
    await pool.query(`UPDATE tc_rep_m SET qty = 4242 WHERE id = 8`);
    await pool.query(`DELETE FROM tc_rep_m WHERE id = 9`);
    // Before the cut-over, whose verification would repair a missed change: the triggers saw them.
    await waitFor(
      'the replica-role writes applied',
      async () => (await inShadow('tc_rep', 'id = 8 AND qty = 4242')) && !(await inShadow('tc_rep', 'id = 9')),
      run,
      10_000,
    );
    state.cutoverRequested = true;
    await waitFor('the run to end', () => run.settled, null, 60_000);
    expect(run.error).toBeUndefined();
    await db.query(`ALTER TABLE tc_rep_m ${alter}`);
    await expectMirrored(db, 'tc_rep', 'tc_rep_m');
  });

  it('fails with one line on a TRUNCATE during the run and leaves the original in place', async () => {
    await db.drop('tc_trunc');
    await db.query(create('tc_trunc'));
    await db.query(`INSERT INTO tc_trunc SELECT g, g, 'x' FROM generate_series(1, 500) g`);
    const oid = (await db.query(`SELECT 'tc_trunc'::regclass::oid`))[0][0];
    const state = runState('tc_trunc', alter, 'postgres');
    const run = background(migrateOn(db, 'tc_trunc', alter, { state, postponeCutover: true }, trigger));
    await waitFor('the postponed cut-over', () => state.status.state === 'postponed', run);
    await pool.query('TRUNCATE tc_trunc');
    await pool.query(`INSERT INTO tc_trunc VALUES (1, 1, 'after')`);
    await waitFor('the run to end', () => run.settled, null, 30_000);
    const message = (run.error as Error | undefined)?.message ?? '';
    expect(message).toMatch(/truncated during the migration/);
    expect(message).not.toContain('\n');
    expect((await db.query(`SELECT 'tc_trunc'::regclass::oid`))[0][0]).toBe(oid);
    expect(await db.query('SELECT * FROM tc_trunc')).toEqual([['1', '1', 'after']]);
    expect(await db.helpers('tc_trunc')).toEqual([]);
    expect(await captureTriggers('tc_trunc')).toEqual([]);
  });

  /** A run of `t` held at its postponed cut-over while `tamper` runs, then asked to cut over: the message it fails with. */
  const cutOverAfter = async (t: string, tamper: () => Promise<void>) => {
    const state = runState(t, alter, 'postgres');
    const run = background(migrateOn(db, t, alter, { state, postponeCutover: true }, trigger));
    await waitFor('the postponed cut-over', () => state.status.state === 'postponed', run);
    await tamper();
    state.cutoverRequested = true;
    await waitFor('the run to end', () => run.settled, null, 60_000);
    return (run.error as Error | undefined)?.message;
  };

  it('refuses to cut over when a capture trigger was disabled during the run, and leaves the original in place', async () => {
    await twins('tc_dis', 500);
    const error = await cutOverAfter('tc_dis', async () => {
      // What an operator's DISABLE TRIGGER ALL (for a bulk load, say) does to ours too.
      await pool.query('ALTER TABLE tc_dis DISABLE TRIGGER ALL');
      await pool.query(`UPDATE tc_dis SET qty = -1 WHERE id = 5`);
    });
    expect(error).toMatch(
      /the capture trigger\(s\) tc_dis__ti, tc_dis__tu, tc_dis__td, tc_dis__tt on public\.tc_dis were dropped or disabled during the migration/,
    );
    expect(await db.helpers('tc_dis')).toEqual([]);
    expect(await db.query('SELECT qty FROM tc_dis WHERE id = 5')).toEqual([['-1']]);
    expect(await captureTriggers('tc_dis')).toEqual([]);
  });

  it("refuses to cut over when a row trigger's clone was disabled on one partition alone", async () => {
    await db.drop('tc_part');
    await db.query('CREATE TABLE tc_part (id int PRIMARY KEY, qty int NOT NULL, label text) PARTITION BY RANGE (id)');
    await db.query('CREATE TABLE tc_part_a PARTITION OF tc_part FOR VALUES FROM (MINVALUE) TO (250)');
    await db.query('CREATE TABLE tc_part_b PARTITION OF tc_part FOR VALUES FROM (250) TO (MAXVALUE)');
    await db.query(`INSERT INTO tc_part SELECT g, g % 7, 'row ' || g FROM generate_series(1, 500) g`);
    const error = await cutOverAfter('tc_part', async () => {
      // The clone on one partition only: the parent's trigger still looks enabled.
      await pool.query('ALTER TABLE tc_part_b DISABLE TRIGGER tc_part__tu');
      await pool.query(`UPDATE tc_part SET qty = -1 WHERE id = 300`);
    });
    expect(error).toMatch(/the capture trigger\(s\) tc_part__tu on public\.tc_part_b were dropped or disabled during the migration/);
    expect(await db.query('SELECT qty FROM tc_part WHERE id = 300')).toEqual([['-1']]);
    expect(await captureTriggers('tc_part')).toEqual([]);
    expect(await captureTriggers('tc_part_b')).toEqual([]);
  });

  it('logs a key of a NOT NULL domain type without failing the writes', async () => {
    await db.drop('tc_dom', 'tc_dom_m');
    await pool.query('DROP DOMAIN IF EXISTS tc_positive');
    await pool.query('CREATE DOMAIN tc_positive AS int NOT NULL CHECK (VALUE > 0)');
    for (const t of ['tc_dom', 'tc_dom_m']) {
      await pool.query(`CREATE TABLE ${t} (id tc_positive PRIMARY KEY, qty int NOT NULL, label text)`);
      await pool.query(`INSERT INTO ${t} SELECT g, g, 'x' FROM generate_series(1, 500) g`);
    }
    const state = runState('tc_dom', alter, 'postgres');
    const run = background(migrateOn(db, 'tc_dom', alter, { state, postponeCutover: true }, trigger));
    await waitFor('the postponed cut-over', () => state.status.state === 'postponed', run);
    // An update that keeps the key and one that moves it: the entry's unused key is NULL.
    await both('tc_dom', `UPDATE {t} SET qty = -qty WHERE id = 3`);
    await both('tc_dom', `UPDATE {t} SET id = 1000 WHERE id = 4`);
    await both('tc_dom', `DELETE FROM {t} WHERE id = 5`);
    await waitFor('the writes applied', async () => (await inShadow('tc_dom', 'id = 1000')) && (await inShadow('tc_dom', 'id = 3 AND qty = -3')), run, 10_000);
    state.cutoverRequested = true;
    await waitFor('the run to end', () => run.settled, null, 60_000);
    expect(run.error).toBeUndefined();
    await db.query(`ALTER TABLE tc_dom_m ${alter}`);
    expect(await db.differences('tc_dom', 'tc_dom_m')).toEqual([]);
  });

  it('resumes after kill -9 during the copy, exact', async () => {
    await twins('tc_kill', 300_000);
    const load = new MirrorWorkload(db, ['tc_kill', 'tc_kill_m'], writes(300_000));
    load.start();
    try {
      const args = ['--url', db.url, '--table', 'tc_kill', '--alter', alter, '--chunk-time-ms', '10', '--capture', 'trigger'];
      const crash = await killDuringPhase(args, 'copy', 300);
      expect(crash.killed, `the run ended before the copy (exit ${crash.exitCode}): ${crash.stderr}`).toBe(true);
      // The dead run's triggers go on logging; a fresh run is refused and told about them.
      expect(await captureTriggers('tc_kill')).toEqual(['tc_kill__td:A', 'tc_kill__ti:A', 'tc_kill__tt:A', 'tc_kill__tu:A']);
      const fresh = db.cli(['migrate', '--force-copy', '--url', '$URL', '--table', 'tc_kill', '--alter', alter, '--execute']);
      expect(fresh.stderr).toMatch(/left a checkpoint.*; capture trigger public\.tc_kill__ti of an earlier run is still on the table, logging every write/);
      const result = await migrateOn(db, 'tc_kill', alter, { resume: true });
      expect(result.resumed).toBe(true);
      expect(result.checksumRounds).toBe(1); // nothing missed: verification had nothing to repair
      await load.untilMoreWrites();
    } finally {
      await load.stop();
    }
    expect(load.stats.errors).toEqual([]);
    await db.query(`ALTER TABLE tc_kill_m ${alter}`);
    await expectMirrored(db, 'tc_kill', 'tc_kill_m');
  });

  it('uses triggers for a role without REPLICATION (capture auto), and the plan says why', async () => {
    const role = 'tc_norep';
    await pool.query(`DROP SCHEMA IF EXISTS tc_norep CASCADE`);
    await pool.query(`DROP ROLE IF EXISTS ${role}`);
    await pool.query(`CREATE ROLE ${role} LOGIN PASSWORD 'norep-pass' NOREPLICATION NOSUPERUSER`);
    await pool.query(`CREATE SCHEMA tc_norep AUTHORIZATION ${role}`);
    const url = new URL(pgUrl());
    url.username = role;
    url.password = 'norep-pass';
    const own = new pg.Pool({ connectionString: url.toString(), max: 4 });
    try {
      for (const t of ['tc_norep.t', 'tc_norep.m']) {
        await own.query(create(t));
        await own.query(`INSERT INTO ${t} SELECT g, g % 5, 'r' || g FROM generate_series(1, 2000) g`);
      }
      const plan = runCli(['plan', '--url', '$URL', '--table', 'tc_norep.t', '--alter', alter], url.toString());
      expect(plan.stderr).toBe('');
      expect(plan.stdout).toContain('changes: triggers recording keys into a log table (logical decoding is unavailable: ');
      expect(plan.stdout).toMatch(/lacks REPLICATION/);
      expect(plan.stdout).not.toMatch(/FAIL/);

      const engine = await createPostgresEngine(url.toString());
      const mirrorDb = postgresDatabase(own);
      const load = new MirrorWorkload(mirrorDb, ['tc_norep.t', 'tc_norep.m'], writes(2000), 2);
      load.start();
      try {
        const result = await migrate(engine, { url: url.toString(), table: 'tc_norep.t', alter }, { execute: true, forceCopy: true });
        expect(result.executed).toBe(true);
        await load.untilMoreWrites();
      } finally {
        await load.stop();
        await engine.close();
      }
      expect(load.stats.errors).toEqual([]);
      await own.query(`ALTER TABLE tc_norep.m ${alter}`);
      expect(await db.differences('tc_norep.t', 'tc_norep.m')).toEqual([]);
      expect(
        (await own.query(`SELECT relname FROM pg_class WHERE relnamespace = 'tc_norep'::regnamespace AND relkind = 'r' ORDER BY 1`)).rows.map((r) => r.relname),
      ).toEqual(['m', 'shadowcut_history', 't', 't__old']);
      expect((await own.query(`SELECT proname FROM pg_proc WHERE pronamespace = 'tc_norep'::regnamespace`)).rows).toEqual([]);
    } finally {
      await own.end();
      await pool.query(`DROP SCHEMA IF EXISTS tc_norep CASCADE`);
      await pool.query(`DROP ROLE IF EXISTS ${role}`);
    }
  });

  it("names a dead run's leftover trigger in the preflight, and cleanup removes triggers, function and log", async () => {
    await db.drop('tc_left');
    await db.query(create('tc_left'));
    await db.query(`INSERT INTO tc_left SELECT g, g, 'x' FROM generate_series(1, 100) g`);
    // A run that died after making its capture (and before its first checkpoint).
    const { pool: enginePool } = await openEnginePool(parsePgUrl(pgUrl(), 'url'));
    try {
      await new PgTriggerLog(enginePool, 'public', 'tc_left', ['id']).install(1000);
    } finally {
      await enginePool.end();
    }
    await pool.query(`UPDATE tc_left SET qty = 0 WHERE id = 1`);
    expect(Number((await db.query('SELECT count(*) FROM tc_left__log'))[0][0])).toBe(1);
    const dry = db.cli(['migrate', '--force-copy', '--url', '$URL', '--table', 'tc_left', '--alter', alter]);
    expect(dry.stdout).toMatch(/capture trigger public\.tc_left__ti of an earlier run is still on the table, logging every write/);
    expect(dry.stdout).toMatch(/shadowcut cleanup --url \.\.\. --table public\.tc_left \(the capture triggers and the log public\.tc_left__log\)/);
    const cleaned = db.cli(['cleanup', '--url', '$URL', '--table', 'tc_left']);
    for (const e of ['ti', 'tu', 'td', 'tt']) expect(cleaned.stdout).toContain(`public.tc_left__${e} (capture trigger)`);
    expect(cleaned.stdout).toMatch(/public\.shadowcut_tc_left_\w+\(\) \(capture function\)/);
    expect(cleaned.stdout).toContain('public.tc_left__log');
    expect(await captureTriggers('tc_left')).toEqual([]);
    expect(await db.helpers('tc_left')).toEqual([]);
    // Writes go on without the capture.
    await pool.query(`UPDATE tc_left SET qty = 1 WHERE id = 1`);
  });

  it('refuses a log table another role made', async () => {
    await db.drop('tc_foreign');
    await pool.query('DROP TABLE IF EXISTS tc_foreign__log');
    await pool.query('DROP ROLE IF EXISTS tc_other');
    await pool.query('CREATE ROLE tc_other');
    try {
      await db.query(create('tc_foreign'));
      await db.query(`INSERT INTO tc_foreign SELECT g, g, 'x' FROM generate_series(1, 100) g`);
      await pool.query('CREATE TABLE tc_foreign__log (seq bigint, truncated boolean, o_1 int, n_1 int)');
      await pool.query('ALTER TABLE tc_foreign__log OWNER TO tc_other');
      const outcome = await migrateOn(db, 'tc_foreign', alter, {}, trigger).then(
        () => null,
        (error: Error) => error,
      );
      expect(outcome?.message).toMatch(/refusing to use public\.tc_foreign__log: it is owned by tc_other/);
      expect(await captureTriggers('tc_foreign')).toEqual([]);
      // Neither the failed run's cleanup nor shadowcut cleanup removes it.
      const cleaned = db.cli(['cleanup', '--url', '$URL', '--table', 'tc_foreign']);
      expect(cleaned.code).toBe(0);
      expect(cleaned.stdout).not.toContain('tc_foreign__log');
      expect((await db.query(`SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'tc_foreign__log'::regclass`))[0][0]).toBe('tc_other');
    } finally {
      await pool.query('DROP TABLE IF EXISTS tc_foreign__log');
      await pool.query('DROP ROLE IF EXISTS tc_other');
    }
  });
});
