import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../src/core/migrate/runner.js';
import { createPostgresEngine } from '../src/engines/postgres/index.js';
import { catalogTwins, type CatalogTwins } from './support/pg-catalog-oracle.js';
import { runCli } from './support/mysql.js';
import { beforeCopying } from './support/wrap.js';

/**
 * DESIGN invariant 19, PostgreSQL: helper tables are writable by shadowcut's role alone, whatever
 * the default privileges hand out, and one another role can write is refused; the new table has
 * exactly the original's rights, the shadow too while it is copied into. In databases of their
 * own (catalogTwins): ALTER DEFAULT PRIVILEGES would otherwise reach every other test's tables.
 */
let twins: CatalogTwins;
const rows = async (sql: string, values: unknown[] = []) => (await twins.pool.query(sql, values)).rows;

/** Every entry of a relation's ACL and its columns' as sorted text, read through acldefault as the server does. */
const aclOf = async (relation: string, on = twins.pool) =>
  (
    await on.query(
      `SELECT coalesce((SELECT array_agg(x::text ORDER BY x::text) FROM unnest(coalesce(c.relacl, acldefault('r', c.relowner))) x), '{}') AS acl,
              (SELECT json_object_agg(a.attname, (SELECT array_agg(x::text ORDER BY x::text) FROM unnest(a.attacl) x))
                 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL) AS columns,
              pg_get_userbyid(c.relowner) AS owner
         FROM pg_class c WHERE c.oid = $1::regclass`,
      [relation],
    )
  ).rows[0] as { acl: string; columns: unknown; owner: string };

/** The roles other than the owner with any right on a relation or one of its columns. */
const othersOn = async (relation: string) =>
  (
    await rows(
      `SELECT DISTINCT CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(g.grantee)::text END AS who
         FROM pg_class c CROSS JOIN LATERAL (SELECT (aclexplode(c.relacl)).* UNION ALL
                                            SELECT (aclexplode(a.attacl)).* FROM pg_attribute a WHERE a.attrelid = c.oid) g
        WHERE c.oid = $1::regclass AND g.grantee <> c.relowner ORDER BY 1`,
      [relation],
    )
  ).map((r) => String(r.who));

beforeAll(async () => {
  twins = await catalogTwins('rights');
  // Roles are the cluster's: made once, kept for reruns of this file.
  for (const role of ['sc_app', 'sc_owner', 'sc_auditor', 'sc_reader']) {
    await twins.pool.query(`DO $$ BEGIN CREATE ROLE ${role}; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
  }
  // The common setup of issue 50: whatever the migrating role makes, app may read and write.
  await twins.setup(
    `ALTER DEFAULT PRIVILEGES GRANT SELECT, INSERT, UPDATE ON TABLES TO sc_app; ALTER DEFAULT PRIVILEGES GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO sc_app;
     GRANT CREATE ON SCHEMA public TO sc_owner`,
  );
});
afterAll(async () => {
  await twins?.close();
});

describe('PostgreSQL: helper tables and who can write them', () => {
  it('makes the queue, checkpoint, history and trigger log with no rights for anyone but shadowcut', async () => {
    await twins.pool.query(`DROP TABLE IF EXISTS h_t, h_t__old, shadowcut_queue, shadowcut_history; CREATE TABLE h_t (id int PRIMARY KEY, v int)`);
    await twins.pool.query(`INSERT INTO h_t SELECT g, g FROM generate_series(1, 500) g`);
    const add = runCli(['queue', 'add', '--url', '$URL', '--table', 'h_t', '--alter', 'ADD COLUMN w int'], twins.url);
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    expect(await othersOn('shadowcut_queue')).toEqual([]);
    expect(await othersOn('shadowcut_queue_id_seq')).toEqual([]);
    expect((await rows(`SELECT has_table_privilege('sc_app', 'shadowcut_queue', 'INSERT, UPDATE') AS w`))[0].w).toBe('f');
    await twins.pool.query('DELETE FROM shadowcut_queue');

    // During the copy: every helper there is (checkpoint, trigger log), marked as shadowcut's.
    const seen: Record<string, string[]> = {};
    let looked = false;
    const engine = beforeCopying(await createPostgresEngine(twins.url), async () => {
      if (looked) return;
      looked = true;
      const helpers = await rows(`SELECT c.relname AS name FROM pg_class c WHERE c.relkind = 'r' AND obj_description(c.oid, 'pg_class') LIKE 'shadowcut:%'`);
      for (const h of helpers) seen[String(h.name)] = await othersOn(String(h.name));
    });
    try {
      await migrate(engine, { url: twins.url, table: 'h_t', alter: 'ADD COLUMN w int', capture: 'trigger' }, { execute: true, forceCopy: true });
    } finally {
      await engine.close();
    }
    expect(Object.keys(seen).sort()).toEqual(expect.arrayContaining(['h_t__log', 'h_t__state']));
    for (const [name, others] of Object.entries(seen)) expect(others, name).toEqual([]);
    // The history is the CLI's: written at the end of a run.
    const ran = runCli(['migrate', '--url', '$URL', '--table', 'h_t', '--alter', 'ADD COLUMN x int', '--execute'], twins.url);
    expect(ran.stderr).not.toMatch(/^shadowcut: /m);
    expect(await othersOn('shadowcut_history')).toEqual([]);
  });

  it('refuses, in one line and with nothing changed, a queue or history another role can write', async () => {
    await twins.pool.query(`DROP TABLE IF EXISTS r_t, r_t__old; CREATE TABLE r_t (id int PRIMARY KEY, v int); INSERT INTO r_t VALUES (1, 1)`);
    const first = runCli(['queue', 'add', '--url', '$URL', '--table', 'r_t', '--alter', 'ADD COLUMN w int'], twins.url);
    expect(first.code).toBe(0);
    const entries = async () => Number((await rows('SELECT count(*) AS n FROM shadowcut_queue'))[0].n);
    const before = await entries();
    const tables = async () =>
      (await rows(`SELECT relname AS name FROM pg_class WHERE relname LIKE 'r\\_t%' AND relkind IN ('r', 'p') ORDER BY 1`)).map((r) => String(r.name));
    const refused = (r: { code: number | null; stdout: string; stderr: string }, object: string, writer: string) => {
      expect(r.code).not.toBe(0);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^shadowcut: refusing to use ${object.replace('.', '\\.')}: it is writable by ${writer}; `));
    };

    await twins.pool.query('GRANT UPDATE ON shadowcut_queue TO sc_app');
    refused(
      runCli(['queue', 'add', '--url', '$URL', '--table', 'r_t', '--alter', 'ADD COLUMN x int'], twins.url),
      'public.shadowcut_queue',
      'sc_app \\(UPDATE\\)',
    );
    refused(runCli(['queue', 'run', '--url', '$URL'], twins.url), 'public.shadowcut_queue', 'sc_app \\(UPDATE\\)');
    expect(await entries()).toBe(before);
    // A column's grant is as good as the table's for rewriting a queued --set.
    await twins.pool.query('REVOKE UPDATE ON shadowcut_queue FROM sc_app; GRANT UPDATE (spec) ON shadowcut_queue TO PUBLIC');
    refused(runCli(['queue', 'list', '--url', '$URL'], twins.url), 'public.shadowcut_queue', 'PUBLIC \\(UPDATE\\)');
    await twins.pool.query('REVOKE UPDATE (spec) ON shadowcut_queue FROM PUBLIC');
    expect(runCli(['queue', 'list', '--url', '$URL'], twins.url).code).toBe(0);

    // The history (made by an earlier run) another role may write: the run is refused before it makes anything.
    await twins.pool.query(`DROP TABLE IF EXISTS shadowcut_history`);
    const ran = runCli(['migrate', '--url', '$URL', '--table', 'r_t', '--alter', 'ADD COLUMN w int', '--execute'], twins.url);
    expect(ran.stderr).not.toMatch(/^shadowcut: /m);
    expect(ran.code).toBe(0);
    const history = async () => Number((await rows('SELECT count(*) AS n FROM shadowcut_history'))[0].n);
    const logged = await history();
    await twins.pool.query('GRANT INSERT, DELETE ON shadowcut_history TO sc_app');
    const columns = async () =>
      (await rows(`SELECT attname FROM pg_attribute WHERE attrelid = 'r_t'::regclass AND attnum > 0 ORDER BY attnum`)).map((r) => r.attname);
    const shape = await columns();
    refused(
      runCli(['migrate', '--url', '$URL', '--table', 'r_t', '--alter', 'ADD COLUMN z int', '--execute'], twins.url),
      'public.shadowcut_history',
      'sc_app \\(DELETE, INSERT\\)',
    );
    expect(await tables()).toEqual(['r_t']);
    expect(await columns()).toEqual(shape);
    expect(await history()).toBe(logged);
    await twins.pool.query('DROP TABLE shadowcut_history');
  });
});

describe("PostgreSQL: the new table's rights", () => {
  it('are exactly the original’s at every moment, against default privileges, and take grants made during the run', async () => {
    // The owner is not the migrating role; app's rights were taken away; an auditor may read two
    // columns, and the table with a grant option it used.
    const setup = `DROP TABLE IF EXISTS secret, secret__old;
      CREATE TABLE secret (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, card text, n int);
      INSERT INTO secret SELECT g, 'card ' || g, g FROM generate_series(1, 3000) g;
      GRANT USAGE ON SEQUENCE secret_id_seq TO sc_auditor; REVOKE ALL ON SEQUENCE secret_id_seq FROM sc_app;
      ALTER TABLE secret OWNER TO sc_owner;
      GRANT SELECT, INSERT ON secret TO sc_app;
      REVOKE ALL ON secret FROM sc_app;
      GRANT SELECT (id, n), UPDATE (n) ON secret TO sc_auditor;
      SET ROLE sc_owner; GRANT SELECT ON secret TO sc_auditor WITH GRANT OPTION;
      SET ROLE sc_auditor; GRANT SELECT ON secret TO sc_reader; RESET ROLE`;
    await twins.setup(setup);
    const alter = 'ALTER COLUMN n TYPE bigint, ADD COLUMN note text';
    const before = await aclOf('secret');
    expect(before.acl).not.toMatch(/sc_app/);

    let during: { original: Awaited<ReturnType<typeof aclOf>>; shadow: Awaited<ReturnType<typeof aclOf>>; readable: string } | null = null;
    let looked = false;
    const engine = beforeCopying(await createPostgresEngine(twins.url), async () => {
      // Ranges may be copied several at once: the first one looks, alone.
      if (looked) return;
      looked = true;
      const shadow = 'secret__new';
      during = {
        original: await aclOf('secret'),
        shadow: await aclOf(shadow),
        readable: String((await rows(`SELECT has_table_privilege('sc_app', $1::regclass, 'SELECT') AS r`, [shadow]))[0].r),
      };
      // A grant made while the copy runs, on both: the native ALTER would keep it.
      await twins.setup('GRANT DELETE ON secret TO sc_auditor');
    });
    try {
      await migrate(engine, { url: twins.url, table: 'secret', alter }, { execute: true, forceCopy: true });
    } finally {
      await engine.close();
    }
    await twins.alterTwin('secret', alter);

    expect(during).not.toBeNull();
    const { original, shadow, readable } = during!;
    expect(readable).toBe('f');
    // The shadow is the migrating role's until the swap: the owners' own entries and the grantor
    // (each owner) are the one difference.
    const me = String((await rows('SELECT current_user AS me'))[0].me);
    const others = (acl: string) =>
      acl
        .replace(/^\{|\}$/g, '')
        .split(',')
        .filter((e) => e && !e.startsWith(`${me}=`) && !e.startsWith('sc_owner='))
        .map((e) => e.replace(/\/.*$/, ''));
    expect(others(shadow.acl)).toEqual(others(original.acl));
    const grantees = (columns: unknown) => JSON.stringify(columns).replace(/\/\w+/g, '');
    expect(grantees(shadow.columns)).toBe(grantees(original.columns));

    const after = await aclOf('secret');
    const twin = await aclOf('secret', twins.twin);
    expect(after).toEqual(twin);
    expect(after.owner).toBe('sc_owner');
    expect(await aclOf('secret_id_seq')).toEqual(await aclOf('secret_id_seq', twins.twin));
    expect((await rows(`SELECT has_table_privilege('sc_app', 'secret', 'SELECT') AS r`))[0].r).toBe('f');
    expect((await rows(`SELECT has_table_privilege('sc_auditor', 'secret', 'DELETE') AS r`))[0].r).toBe('t');
    // The twin has only this test's tables; the first database has the other tests' too.
    expect((await twins.difference(['secret__old'])).filter((e) => /\bsecret\b/.test(e))).toEqual([]);
  });
});
