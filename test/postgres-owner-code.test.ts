import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from './support/mysql.js';
import { pgPool, postgresDatabase } from './support/pg.js';
import { makePublication } from '../src/engines/postgres/capture/logical/publication.js';
import { UserError } from '../src/core/engine/errors.js';
import { migrateOn, useDatabase } from './support/fixture.js';
import { background, runState, waitFor } from './support/run.js';

/**
 * docs/invariants.md, invariant 16: code that the table's owner (a role other than a superuser or the
 * migrating role) can define never runs with the migrating superuser's rights. The owner, oc_app,
 * owns the table, an enum type in it and a cast of that type whose function makes oc_app
 * superuser whenever a superuser calls it.
 */
describe('PostgreSQL: code the table owner wrote', () => {
  const db = useDatabase(postgresDatabase, 'oc_t', 'oc_t_bak', 'oc_x', 'oc_cb', 'oc_cb_bak', 'oc_dq', 'oc$shadowcut$q');
  const superuser = async () => String((await db.query(`SELECT rolsuper FROM pg_roles WHERE rolname = 'oc_app'`))[0][0]);
  const asApp = async (sql: string) => {
    const s = await db.session();
    try {
      await s.query('SET ROLE oc_app');
      await s.query(sql);
    } finally {
      await s.query('RESET ROLE');
      s.release();
    }
  };
  /** The cast every `::text` of an oc_color takes, which escalates its caller's owner when the caller is a superuser. */
  const escalatingCast = () =>
    asApp(
      `CREATE FUNCTION public.oc_color_text(oc_color) RETURNS text LANGUAGE plpgsql AS $$
         BEGIN
           IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN EXECUTE 'ALTER ROLE oc_app SUPERUSER'; END IF;
           RETURN format('%s', $1);
         END $$;
       CREATE CAST (oc_color AS text) WITH FUNCTION public.oc_color_text(oc_color)`,
    );
  const ran = (r: { code: number | null; stderr: string }, what: string) => {
    expect(r.stderr, what).not.toMatch(/^shadowcut: |internal error/m);
    expect(r.code, what).toBe(0);
  };
  /** oc_app's table: an oc_color column and a few rows (an oc_color key when `key` is 'c'). */
  const appTable = async (t: string, extra = '', key: 'id' | 'c' = 'id') => {
    await db.drop(t);
    await db.query(`CREATE TABLE ${t} (id int NOT NULL, c oc_color NOT NULL, v int NOT NULL${extra}, PRIMARY KEY (${key}))`);
    await db.query(`INSERT INTO ${t} (id, c, v) SELECT row_number() OVER (), c, 1 FROM unnest(enum_range(NULL::oc_color)) c`);
    await db.query(`ALTER TABLE ${t} OWNER TO oc_app`);
  };

  beforeAll(async () => {
    await db.query('DROP TABLE IF EXISTS oc_t, oc_t__new, oc_t__old, oc_t__log CASCADE');
    await db.query('DROP OWNED BY oc_app').catch(() => {});
    await db.query('DROP ROLE IF EXISTS oc_app');
    await db.query('CREATE ROLE oc_app LOGIN NOSUPERUSER');
    await db.query('GRANT CREATE ON SCHEMA public TO oc_app');
    await asApp(`CREATE TYPE public.oc_color AS ENUM ('red', 'green', 'blue')`);
  });
  beforeEach(async () => {
    await db.query('ALTER ROLE oc_app NOSUPERUSER');
    await db.query('DROP CAST IF EXISTS (oc_color AS text)');
    await db.query('DROP FUNCTION IF EXISTS public.oc_color_text(oc_color)');
  });
  afterAll(async () => {
    await db.query('DROP OWNED BY oc_app CASCADE');
    await db.query('DROP ROLE oc_app');
  });

  it("trigger capture: the owner's write during a postponed cut-over runs shadowcut's capture function with the owner's rights only", async () => {
    await appTable('oc_t');
    const alter = 'ADD COLUMN note text';
    const state = runState('oc_t', alter, 'postgres');
    const run = background(migrateOn(db, 'oc_t', alter, { state, postponeCutover: true }, { request: { capture: 'trigger' } }));
    await waitFor('the postponed cut-over', () => state.status.state === 'postponed', run);
    // Made after the preflight: only who the capture function runs as stands between it and the cast.
    await escalatingCast();
    await asApp('UPDATE public.oc_t SET v = v + 1');
    expect(await superuser()).toBe('f');
    // The run still recognises its capture (now the owner's) and cuts over with the owner's write.
    await db.query('DROP CAST (oc_color AS text)');
    state.cutoverRequested = true;
    await waitFor('the run to end', () => run.settled, null);
    expect(run.error).toBeUndefined();
    expect(await db.query('SELECT c::text, v, note FROM oc_t ORDER BY c')).toEqual([
      ['blue', '2', null],
      ['green', '2', null],
      ['red', '2', null],
    ]);
    expect(await superuser()).toBe('f');
  });

  /** An immutable function of oc_app's (index expressions need one) that makes oc_app superuser when a superuser calls it. */
  const escalatingFunction = () =>
    asApp(
      `CREATE FUNCTION public.oc_escalate() RETURNS void LANGUAGE plpgsql AS $$
         BEGIN
           IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN EXECUTE 'ALTER ROLE oc_app SUPERUSER'; END IF;
         END $$;
       CREATE FUNCTION public.oc_f(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM public.oc_escalate(); RETURN $1; END $$`,
    );
  const refusedWith = (r: { code: number | null; stderr: string }, line: string) => {
    expect(r.code).not.toBe(0);
    expect(
      r.stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('shadowcut: ')),
    ).toEqual([`shadowcut: ${line}`]);
  };
  /** Nothing of a run on `t`: no shadow, helper tables, slot, publication, functions or triggers. */
  const nothingMade = async (t: string) => {
    expect(await db.helpers(t)).toEqual([]);
    expect(await db.query(`SELECT tgname FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal`, [t])).toEqual([]);
    expect(await db.query(`SELECT proname FROM pg_proc WHERE proname LIKE 'shadowcut%'`)).toEqual([]);
  };

  it('the stream path: a cast the checksums and the mapping proof would call is refused in one line, and nothing is made', async () => {
    await appTable('oc_t');
    await escalatingCast();
    const r = db.cli(['migrate', '--url', '$URL', '--table', 'oc_t', '--alter', 'ADD COLUMN note text', '--capture', 'stream', '--force-copy', '--execute']);
    refusedWith(
      r,
      "table public.oc_t: function public.oc_color_text(public.oc_color) (cast public.oc_color -> text), owned by role oc_app, would run with the rights of postgres; run shadowcut as oc_app, the table's owner",
    );
    await nothingMade('oc_t');
    expect(await superuser()).toBe('f');
  });

  it.each([
    ['a DEFAULT', ', w int DEFAULT public.oc_f(0)', 'DEFAULT of column w'],
    ['an index expression', '', 'index oc_x_idx', 'CREATE INDEX oc_x_idx ON oc_x ((public.oc_f(v)))'],
    ['a CHECK', ', CONSTRAINT oc_x_positive CHECK (public.oc_f(v) > 0)', 'constraint oc_x_positive'],
  ])("%s calling the owner's function is refused", async (_, extra, why, after?: string) => {
    await db.drop('oc_x');
    await escalatingFunction();
    try {
      await db.query(`CREATE TABLE oc_x (id int PRIMARY KEY, v int NOT NULL${extra})`);
      await db.query('INSERT INTO oc_x (id, v) SELECT g, g FROM generate_series(1, 10) g');
      if (after) await db.query(after);
      await db.query('ALTER TABLE oc_x OWNER TO oc_app');
      await db.query('ALTER ROLE oc_app NOSUPERUSER');
      const r = db.cli(['migrate', '--url', '$URL', '--table', 'oc_x', '--alter', 'ADD COLUMN note text', '--force-copy', '--execute']);
      refusedWith(
        r,
        `table public.oc_x: function public.oc_f(integer) (${why}), owned by role oc_app, would run with the rights of postgres; run shadowcut as oc_app, the table's owner`,
      );
      await nothingMade('oc_x');
      expect(await superuser()).toBe('f');
    } finally {
      await db.drop('oc_x');
      await db.query('DROP FUNCTION public.oc_f(int), public.oc_escalate()');
    }
  });

  it.each([
    ['a CHECK the ALTER adds, in place', ['ADD CONSTRAINT oc_x_positive CHECK (public.oc_f(v) > 0)'], 'constraint oc_x_positive'],
    [
      "a DEFAULT the ALTER adds, on the copy path (the plan's probe would evaluate it)",
      ['ADD COLUMN w int DEFAULT public.oc_f(1)', '--force-copy'],
      'DEFAULT of column w',
    ],
  ])("%s: the owner's function is refused before anything runs it", async (_, [alter, ...flags], why) => {
    await db.drop('oc_x');
    await escalatingFunction();
    try {
      await db.query('CREATE TABLE oc_x (id int PRIMARY KEY, v int NOT NULL)');
      await db.query('INSERT INTO oc_x (id, v) SELECT g, g FROM generate_series(1, 10) g');
      await db.query('ALTER TABLE oc_x OWNER TO oc_app');
      const r = db.cli(['migrate', '--url', '$URL', '--table', 'oc_x', '--alter', alter, ...flags, '--execute']);
      refusedWith(
        r,
        `table public.oc_x: function public.oc_f(integer) (${why}), owned by role oc_app, would run with the rights of postgres; run shadowcut as oc_app, the table's owner`,
      );
      expect(await superuser()).toBe('f');
      await nothingMade('oc_x');
      expect(await db.query(`SELECT count(*)::text FROM pg_constraint WHERE conrelid = 'oc_x'::regclass AND contype = 'c'`)).toEqual([['0']]);
    } finally {
      await db.drop('oc_x');
      await db.query('DROP FUNCTION public.oc_f(int), public.oc_escalate()');
    }
  });

  it.each([
    ['migrate in place', ['migrate', '--alter', 'ADD COLUMN note text', '--execute'], 'constraint oc_x_positive'],
    ['verify --expect', ['verify', '--expect', 'public.oc_f(v) = v'], '--expect'],
  ])("%s refuses before it evaluates the owner's function", async (_, [command, ...args], why) => {
    await db.drop('oc_x');
    await escalatingFunction();
    try {
      await db.query('CREATE TABLE oc_x (id int PRIMARY KEY, v int NOT NULL, CONSTRAINT oc_x_positive CHECK (public.oc_f(v) > 0))');
      await db.query('INSERT INTO oc_x (id, v) SELECT g, g FROM generate_series(1, 10) g');
      await db.query('ALTER TABLE oc_x OWNER TO oc_app');
      await db.query('ALTER ROLE oc_app NOSUPERUSER');
      const r = db.cli([command, '--url', '$URL', '--table', 'oc_x', ...args]);
      refusedWith(
        r,
        `table public.oc_x: function public.oc_f(integer) (${why}), owned by role oc_app, would run with the rights of postgres; run shadowcut as oc_app, the table's owner`,
      );
      await nothingMade('oc_x');
      expect(await db.query('SELECT sum(v)::text FROM oc_x')).toEqual([['55']]);
      expect(await superuser()).toBe('f');
    } finally {
      await db.drop('oc_x');
      await db.query('DROP FUNCTION public.oc_f(int), public.oc_escalate()');
    }
  });

  it("contract --backup-to refuses a dropped column whose type's cast is the owner's", async () => {
    await db.drop('oc_t_bak');
    await appTable('oc_t', ', shade oc_color');
    await escalatingCast();
    const r = db.cli(['contract', '--url', '$URL', '--table', 'oc_t', '--drop-column', 'shade', '--backup-to', 'oc_t_bak', '--execute']);
    refusedWith(
      r,
      "table public.oc_t: function public.oc_color_text(public.oc_color) (cast public.oc_color -> text), owned by role oc_app, would run with the rights of postgres; run shadowcut as oc_app, the table's owner",
    );
    expect(
      await db.query(`SELECT to_regclass('oc_t_bak')::text, count(*)::text FROM pg_attribute WHERE attrelid = 'oc_t'::regclass AND attname = 'shade'`),
    ).toEqual([[null, '1']]);
    expect(await superuser()).toBe('f');
  });

  it('the owner migrating its own table runs, its code with its own rights', async () => {
    // A schema of its own: the helper tables (shadowcut_history) must be the migrating role's.
    await db.query('DROP SCHEMA IF EXISTS oc_own CASCADE');
    await db.query('CREATE SCHEMA oc_own AUTHORIZATION oc_app');
    try {
      await appTable('oc_own.oc_t', ', w int DEFAULT 0', 'c');
      await escalatingCast();
      const url = new URL(db.url);
      url.username = 'oc_app';
      const args = [
        'migrate',
        '--url',
        '$URL',
        '--table',
        'oc_own.oc_t',
        '--alter',
        'ALTER COLUMN w TYPE bigint',
        '--capture',
        'trigger',
        '--force-copy',
        '--execute',
      ];
      ran(runCli(args, url.toString()), 'migrate as the owner');
      expect(await superuser()).toBe('f');
      // The test's own ::text would call the cast as a superuser.
      await db.query('DROP CAST (oc_color AS text)');
      expect(await db.query(`SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'oc_own.oc_t'::regclass AND attname = 'w'`)).toEqual([
        ['bigint'],
      ]);
      expect(await db.query('SELECT c::text, w::text FROM oc_own.oc_t ORDER BY 1')).toEqual([
        ['blue', '0'],
        ['green', '0'],
        ['red', '0'],
      ]);
      expect(await superuser()).toBe('f');
    } finally {
      await db.query('DROP SCHEMA oc_own CASCADE');
    }
  });

  it("a publication of the stream's name that the owner made first (after the checks looked) is refused as such, and left to its owner", async () => {
    await appTable('oc_t');
    // Made and given away (oc_app may not create in the database; an owner that could is no different to us).
    await db.query('CREATE PUBLICATION oc_taken FOR TABLE oc_t');
    await db.query('ALTER PUBLICATION oc_taken OWNER TO oc_app');
    const pool = pgPool();
    try {
      const made = await makePublication(pool, 'oc_taken', ['public.oc_t']).then(
        () => null,
        (error: unknown) => error,
      );
      expect(made).toBeInstanceOf(UserError);
      expect((made as Error).message).toMatch(/^a publication named oc_taken already exists and another role owns it/);
      const owner = await db.query(`SELECT pg_get_userbyid(pubowner) FROM pg_publication WHERE pubname = 'oc_taken'`);
      expect(owner).toEqual([['oc_app']]);
    } finally {
      await db.query('DROP PUBLICATION IF EXISTS oc_taken');
      await pool.end();
    }
  });

  it("a superuser's function in a DEFAULT is no reason to refuse", async () => {
    await db.query('CREATE OR REPLACE FUNCTION public.oc_su_f(int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT $1 $$');
    try {
      await appTable('oc_t', ', w int DEFAULT public.oc_su_f(7)');
      ran(db.cli(['migrate', '--url', '$URL', '--table', 'oc_t', '--alter', 'ALTER COLUMN w TYPE bigint', '--force-copy', '--execute']), 'migrate');
      expect(await db.query(`SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'oc_t'::regclass`)).toEqual([['oc_su_f(7)']]);
    } finally {
      await db.drop('oc_t');
      await db.query('DROP FUNCTION public.oc_su_f(int)');
    }
  });

  it('trigger capture: a capture function its owner made SECURITY INVOKER is no longer ours, and the cut-over stops', async () => {
    await appTable('oc_t');
    const alter = 'ADD COLUMN note text';
    const state = runState('oc_t', alter, 'postgres');
    const run = background(migrateOn(db, 'oc_t', alter, { state, postponeCutover: true }, { request: { capture: 'trigger' } }));
    await waitFor('the postponed cut-over', () => state.status.state === 'postponed', run);
    const [[fn]] = await db.query(
      `SELECT p.oid::regprocedure::text FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid WHERE t.tgrelid = 'oc_t'::regclass LIMIT 1`,
    );
    // Its owner may (they own it); as INVOKER a replaced body would run with each writer's rights.
    await asApp(`ALTER FUNCTION ${String(fn)} SECURITY INVOKER`);
    state.cutoverRequested = true;
    await waitFor('the run to end', () => run.settled, null);
    expect(String(run.error)).toMatch(
      /the capture trigger\(s\) oc_t__ti, oc_t__tu, oc_t__td, oc_t__tt on public\.oc_t were dropped or disabled during the migration/,
    );
    expect(await db.query(`SELECT count(*)::text FROM pg_attribute WHERE attrelid = 'oc_t'::regclass AND attname = 'note'`)).toEqual([['0']]);
  });

  it("contract's backup capture is ENABLE ALWAYS: a write from a session_replication_role = replica session reaches the backup", async () => {
    await db.drop('oc_cb', 'oc_cb_bak');
    await db.query('CREATE TABLE oc_cb (id int PRIMARY KEY, note text)');
    await db.query(`INSERT INTO oc_cb SELECT g, 'real' || g FROM generate_series(1, 6) g`);
    // The owner's: the capture, theirs too, needs its rights on the backup.
    await db.query('ALTER TABLE oc_cb OWNER TO oc_app');
    const holder = await db.session();
    let run: Promise<{ code: number | null; stderr: string }> | undefined;
    try {
      // A held row keeps the backup's later chunks retrying while row 1 is already backed up.
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM oc_cb WHERE id = 5 FOR UPDATE');
      run = db.cliAsync([
        'contract',
        '--url',
        '$URL',
        '--table',
        'oc_cb',
        '--drop-column',
        'note',
        '--backup-to',
        'oc_cb_bak',
        '--execute',
        '--chunk-rows',
        '2',
      ]);
      await waitFor('row 1 in the backup', async () => (await db.query(`SELECT 1 FROM pg_class WHERE relname = 'oc_cb_bak'`)).length > 0, null);
      await waitFor('row 1 in the backup', async () => (await db.query('SELECT 1 FROM oc_cb_bak WHERE id = 1')).length > 0, null);
      const replica = await db.session();
      try {
        await replica.query('SET session_replication_role = replica');
        await replica.query(`UPDATE oc_cb SET note = 'from a replica session' WHERE id = 1`);
      } finally {
        await replica.query('RESET session_replication_role');
        replica.release();
      }
    } finally {
      await holder.query('COMMIT');
      holder.release();
    }
    const r = await run;
    expect(r.code, r.stderr).toBe(0);
    expect(await db.query('SELECT id::text, note FROM oc_cb_bak ORDER BY id')).toEqual([
      ['1', 'from a replica session'],
      ...[2, 3, 4, 5, 6].map((g) => [String(g), `real${g}`]),
    ]);
    // The capture's rights on the backup went with it: the backup is final.
    expect(
      await db.query(
        `SELECT has_any_column_privilege('oc_app', 'oc_cb_bak', 'SELECT, INSERT, UPDATE') OR has_table_privilege('oc_app', 'oc_cb_bak', 'DELETE')`,
      ),
    ).toEqual([['f']]);
  }, 60_000);

  it('a table and a key column named with $shadowcut$ do not break the capture functions', async () => {
    const t = 'oc$shadowcut$q';
    await db.drop(t, `${t}_bak`);
    await db.query(`CREATE TABLE "${t}" ("k$shadowcut$" int PRIMARY KEY, "n$shadowcut$" text, v int)`);
    await db.query(`INSERT INTO "${t}" SELECT g, 'n' || g, g FROM generate_series(1, 10) g`);
    const migrated = db.cli([
      'migrate',
      '--url',
      '$URL',
      '--table',
      `"${t}"`,
      '--alter',
      'ADD COLUMN w int',
      '--capture',
      'trigger',
      '--force-copy',
      '--execute',
    ]);
    ran(migrated, 'migrate');
    const contracted = db.cli(['contract', '--url', '$URL', '--table', `"${t}"`, '--drop-column', 'n$shadowcut$', '--backup-to', `"${t}_bak"`, '--execute']);
    ran(contracted, 'contract');
    expect(await db.query(`SELECT count(*)::text, sum("k$shadowcut$")::text FROM "${t}_bak" WHERE "n$shadowcut$" = 'n' || "k$shadowcut$"`)).toEqual([
      ['10', '55'],
    ]);
    await db.query(`DROP TABLE IF EXISTS "${t}_bak", "${t}__old"`);
  });
  /** One refusal line naming `what`, nothing made, the owner still not superuser. */
  const refusedNaming = async (r: { code: number | null; stderr: string }, what: RegExp, t: string) => {
    expect(r.code).not.toBe(0);
    const lines = r.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('shadowcut: '));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(what);
    await nothingMade(t);
    expect(await superuser()).toBe('f');
  };
  const migrate = (t: string, alter: string, ...more: string[]) =>
    db.cli(['migrate', '--url', '$URL', '--table', t, '--alter', alter, '--force-copy', '--execute', ...more]);

  it("trust goes by owner, not by what a function is now: the owner's SECURITY DEFINER function in a DEFAULT is refused", async () => {
    await db.drop('oc_x');
    // SECURITY DEFINER today; its owner can make it INVOKER while the copy runs.
    await asApp('CREATE OR REPLACE FUNCTION public.oc_sd(int) RETURNS int LANGUAGE sql SECURITY DEFINER AS $$ SELECT $1 $$');
    try {
      await db.query('CREATE TABLE oc_x (id int PRIMARY KEY, v int NOT NULL, w int DEFAULT public.oc_sd(3))');
      await db.query('ALTER TABLE oc_x OWNER TO oc_app');
      await refusedNaming(
        migrate('oc_x', 'ALTER COLUMN v TYPE bigint'),
        /function public\.oc_sd\(integer\) \(DEFAULT of column w\), owned by role oc_app/,
        'oc_x',
      );
    } finally {
      await db.drop('oc_x');
      await db.query('DROP FUNCTION public.oc_sd(int)');
    }
  });

  it("a column of the owner's domain is refused (a constraint added to it later would run in the copy's inserts), and so is a domain's DEFAULT calling the owner's function", async () => {
    await db.drop('oc_x');
    await escalatingFunction();
    await asApp('CREATE DOMAIN public.oc_dom AS int');
    // A superuser's domain whose DEFAULT is the owner's function: an added column of it takes the DEFAULT in every copied row.
    await db.query('CREATE DOMAIN public.oc_su_dom AS int DEFAULT public.oc_f(1)');
    try {
      await db.query('CREATE TABLE oc_x (id int PRIMARY KEY, v public.oc_dom NOT NULL)');
      await db.query('ALTER TABLE oc_x OWNER TO oc_app');
      await refusedNaming(
        migrate('oc_x', 'ADD COLUMN note text'),
        /domain public\.oc_dom \(its owner can give it a constraint at any time\), owned by role oc_app/,
        'oc_x',
      );
      await db.query('ALTER TABLE oc_x ALTER COLUMN v TYPE int');
      await refusedNaming(
        migrate('oc_x', 'ADD COLUMN z public.oc_su_dom'),
        /function public\.oc_f\(integer\) \(DEFAULT of domain (public\.)?oc_su_dom\), owned by role oc_app/,
        'oc_x',
      );
    } finally {
      await db.drop('oc_x');
      await db.query('DROP DOMAIN public.oc_su_dom');
      await db.query('DROP DOMAIN public.oc_dom');
      await db.query('DROP FUNCTION public.oc_f(int), public.oc_escalate()');
    }
  });

  it("a table in a schema another role owns is refused: that role could drop shadowcut's helper tables and put its own there", async () => {
    await db.query('DROP SCHEMA IF EXISTS oc_s CASCADE');
    await db.query('CREATE SCHEMA oc_s AUTHORIZATION oc_app');
    try {
      // The table is the migrating role's own; the schema is not.
      await db.query('CREATE TABLE oc_s.t (id int PRIMARY KEY, v int NOT NULL)');
      await db.query('INSERT INTO oc_s.t SELECT g, g FROM generate_series(1, 10) g');
      const r = db.cli(['migrate', '--url', '$URL', '--table', 'oc_s.t', '--alter', 'ALTER COLUMN v TYPE bigint', '--force-copy', '--execute']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/schema oc_s belongs to role oc_app, which can drop shadowcut's helper tables there/);
      expect(await db.query(`SELECT relname FROM pg_class WHERE relnamespace = 'oc_s'::regnamespace AND relkind = 'r' ORDER BY 1`)).toEqual([['t']]);
    } finally {
      await db.query('DROP SCHEMA oc_s CASCADE');
    }
  });

  it("a cast the owner gives its enum after the look is never called: checksums and comparisons take the type's output function", async () => {
    await appTable('oc_t', ', shade oc_color');
    const alter = 'ADD COLUMN note text';
    const state = runState('oc_t', alter, 'postgres');
    const run = background(migrateOn(db, 'oc_t', alter, { state, postponeCutover: true }, { request: { capture: 'stream' } }));
    await waitFor('the postponed cut-over', () => state.status.state === 'postponed', run);
    // Made after the preflight: the cut-over's comparison of the changed keys (as text, under the
    // lock) and the checksums would take it for every oc_color.
    await escalatingCast();
    await asApp(`UPDATE public.oc_t SET v = v + 1, shade = 'blue'`);
    state.cutoverRequested = true;
    await waitFor('the run to end', () => run.settled, null);
    expect(run.error).toBeUndefined();
    expect(await superuser()).toBe('f');
    expect(await db.query(`SELECT c::text, v::text, shade::text FROM oc_t ORDER BY 1`)).toEqual([
      ['blue', '2', 'blue'],
      ['green', '2', 'blue'],
      ['red', '2', 'blue'],
    ]);
    await db.drop('oc_t');
  });

  it("an ALTER that converts a column of the owner's type is refused: the cast the conversion takes is looked up at every statement", async () => {
    await appTable('oc_t', ', shade oc_color');
    await refusedNaming(
      migrate('oc_t', 'ALTER COLUMN shade TYPE text'),
      /type public\.oc_color \(a column is converted from or to it, and its owner can give it a cast at any time\), owned by role oc_app/,
      'oc_t',
    );
    await db.drop('oc_t');
  });

  it("the owner's look at the ALTER cannot step back to the superuser: a DEFAULT that resets the role gets nowhere", async () => {
    await db.drop('oc_x');
    await db.query('DROP SEQUENCE IF EXISTS public.oc_escapes');
    await db.query('CREATE SEQUENCE public.oc_escapes');
    // Non-volatile, so the ALTER evaluates it once even on an empty table; after a SET ROLE it
    // could reset the role to the session's superuser and do anything there.
    await asApp(
      `CREATE FUNCTION public.oc_back() RETURNS int LANGUAGE plpgsql STABLE AS $$
         BEGIN
           PERFORM pg_catalog.set_config('role', 'none', true);
           IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN PERFORM nextval('public.oc_escapes'); END IF;
           RETURN 1;
         END $$`,
    );
    try {
      await db.query('CREATE TABLE oc_x (id int PRIMARY KEY, v int NOT NULL)');
      await db.query('INSERT INTO oc_x SELECT g, g FROM generate_series(1, 10) g');
      await db.query('ALTER TABLE oc_x OWNER TO oc_app');
      for (const more of [['--force-copy'], []]) {
        const r = db.cli(['migrate', '--url', '$URL', '--table', 'oc_x', '--alter', 'ADD COLUMN w int DEFAULT public.oc_back()', ...more, '--execute']);
        // A sequence's increment survives the rollback of the probe's transaction.
        expect(await db.query('SELECT is_called::text FROM public.oc_escapes')).toEqual([['false']]);
        await refusedNaming(r, /cannot set parameter "role" within security-definer function/, 'oc_x');
      }
    } finally {
      await db.drop('oc_x');
      await db.query('DROP FUNCTION public.oc_back()');
      await db.query('DROP SEQUENCE public.oc_escapes');
    }
  });

  it("a key of the owner's enum is refused: every keyset predicate (k > $1) is parsed again, and an implicit cast added later would win it", async () => {
    await appTable('oc_t', '', 'c');
    await refusedNaming(
      migrate('oc_t', 'ADD COLUMN note text'),
      /type public\.oc_color \(key column c, compared or converted at every chunk: its owner can give it a cast at any time\), owned by role oc_app/,
      'oc_t',
    );
    await db.drop('oc_t');
  });

  it("backfill on another role's table is refused: it writes the table, whose owner can give it a trigger at any moment", async () => {
    await appTable('oc_t');
    const r = db.cli(['backfill', '--url', '$URL', '--table', 'oc_t', '--set', 'v = v + 1', '--execute']);
    await refusedNaming(
      r,
      /^shadowcut: backfill writes table public\.oc_t itself: its owner oc_app can give it a trigger, a CHECK or a generated column at any moment, which would run with the rights of postgres; run shadowcut backfill as oc_app$/,
      'oc_t',
    );
    expect(await db.query('SELECT sum(v)::text FROM oc_t')).toEqual([['3']]);
    await db.drop('oc_t');
  });

  it("verify --against whose --where compares a column of the owner's enum is refused: each chunk parses it again", async () => {
    await appTable('oc_t');
    await db.drop('oc_t_copy');
    await db.query('CREATE TABLE oc_t_copy (LIKE oc_t INCLUDING ALL)');
    await db.query('INSERT INTO oc_t_copy SELECT * FROM oc_t');
    try {
      const r = db.cli(['verify', '--url', '$URL', '--table', 'oc_t', '--against', 'oc_t_copy', '--where', "c = 'red'"]);
      await refusedNaming(r, /type public\.oc_color \((column c in )?--where, compared or converted at every chunk/, 'oc_t');
    } finally {
      await db.drop('oc_t', 'oc_t_copy');
    }
  });

  it('a revert window on a table another role owns is refused: the window writes into its old table for days', async () => {
    await appTable('oc_t');
    const r = migrate('oc_t', 'ADD COLUMN note text', '--revert-window', '1h');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/the table belongs to role oc_app: run shadowcut as oc_app for a revert window/);
    await nothingMade('oc_t');
    await db.drop('oc_t');
  });
});
