// PostgreSQL corpus, dependents: foreign keys into and out of the table (self-referencing, ON DELETE
// CASCADE / SET NULL) under writes that fire them, and views over the table.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresEngine } from '../src/engines/postgres/index.js';
import { migrate } from '../src/core/migrate/runner.js';
import { differences, migratePg, migrateUnderWrites, pgDropTables, pgHelpers, pgPool, pgSchemaOf, pgTwins, pgUrl } from './support/pg.js';
import { withMigration } from './support/wrap.js';
import type { Statement } from './support/workload.js';
import { waitFor } from './support/run.js';

let db: pg.Pool;

beforeAll(() => {
  db = pgPool();
});

afterAll(async () => {
  await pgDropTables(db, ['pcd_a_child', 'pcd_b_child', 'pcd_a', 'pcd_b', 'pcd_country', 'pcd_view', 'pcd_view_m', 'pcd_secure', 'pcd_dl_child', 'pcd_dl']);
  await db.query('DROP FUNCTION IF EXISTS pcd_touch');
  await db.query(`DROP FUNCTION IF EXISTS pcd_a_child_drop_parent, pcd_b_child_drop_parent, pcd_a_child_add_parent, pcd_b_child_add_parent`);
  await db.end();
});

const rnd = (n: number) => Math.floor(Math.random() * n);

describe('a writer of a child table queued behind the cut-over', () => {
  it('is never the one a deadlock aborts: the child is locked with the table, not once caught up', async () => {
    // The writer holds the child (its INSERT) and waits for the parent's key under our lock. The swap
    // re-points the child's key, which locks the child: asked for after the catch-up, 600 ms into the
    // writer's wait, with 800 ms of lock_timeout, it made a cycle that the writer's deadlock check
    // (deadlock_timeout, 1 s) found before our timeout ended it, and the writer was aborted.
    await pgDropTables(db, ['pcd_dl_child', 'pcd_dl']);
    await db.query('CREATE TABLE pcd_dl (id int PRIMARY KEY, v int)');
    await db.query('CREATE TABLE pcd_dl_child (id int PRIMARY KEY, parent int NOT NULL REFERENCES pcd_dl (id))');
    await db.query('INSERT INTO pcd_dl SELECT g, g FROM generate_series(1, 1000) g');
    const writer = await db.connect();
    let written: Promise<unknown> | undefined;
    const engine = withMigration(await createPostgresEngine(pgUrl()), (migration) => ({
      cutover: (options) =>
        migration.cutover({
          ...options,
          catchUp: async (session) => {
            if (!written) {
              written = writer.query('BEGIN').then(() => writer.query('INSERT INTO pcd_dl_child VALUES (1, 7)'));
              written.catch(() => {});
              await waitUntilWaiting(writer);
              await new Promise((r) => setTimeout(r, 600));
            }
            return options.catchUp(session);
          },
        }),
    }));
    try {
      const result = await migrate(
        engine,
        { url: pgUrl(), table: 'pcd_dl', alter: 'ADD COLUMN w int' },
        { execute: true, forceCopy: true, lockTimeoutMs: 800 },
      );
      expect(result.cutoverAttempts).toBeGreaterThanOrEqual(1);
      await written;
      await writer.query('COMMIT');
    } finally {
      await writer.query('ROLLBACK').catch(() => {});
      writer.release();
      await engine.close();
    }
    const { rows } = await db.query('SELECT parent FROM pcd_dl_child');
    expect(rows).toEqual([{ parent: '7' }]);
    const { rows: fk } = await db.query(
      `SELECT confrelid::regclass::text AS parent FROM pg_constraint WHERE conrelid = 'pcd_dl_child'::regclass AND contype = 'f'`,
    );
    expect(fk).toEqual([{ parent: 'pcd_dl' }]);
  }, 120_000);
});

/** Until `client`'s statement waits for a lock. */
async function waitUntilWaiting(client: pg.PoolClient): Promise<void> {
  const pid = (client as unknown as { processID: number }).processID;
  const waits = async () => (await db.query(`SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1`, [pid])).rows[0]?.wait_event_type === 'Lock';
  await waitFor('the writer waiting for a lock', waits, null, 10_000);
}

describe('foreign keys into and out of the table, self-referencing, with cascades', () => {
  // Each twin world: pcd_a (migrated) with its child pcd_a_child, pcd_b (mirror) with pcd_b_child.
  // Both reference the shared pcd_country. Worker w owns parents with id % 3 = w and their children.
  const SEED = 12_000;
  const parents: number[][] = [[], [], []];
  let nextParent = SEED;
  let nextChild = 10 * SEED;

  beforeAll(async () => {
    await pgDropTables(db, ['pcd_a_child', 'pcd_b_child', 'pcd_a', 'pcd_b', 'pcd_country']);
    await db.query(`CREATE TABLE pcd_country (code text PRIMARY KEY)`);
    await db.query(`INSERT INTO pcd_country VALUES ('DE'), ('FR'), ('NZ')`);
    await pgTwins(
      db,
      ['pcd_a', 'pcd_b'],
      // The manager is always in the same region (id % 3), so a cascade never crosses workers.
      `CREATE TABLE {t} (id int PRIMARY KEY, name text NOT NULL, country text NOT NULL REFERENCES pcd_country (code),
                         manager int REFERENCES {t} (id) ON DELETE SET NULL);
       CREATE TABLE {t}_child (id int PRIMARY KEY, parent int NOT NULL REFERENCES {t} (id) ON DELETE CASCADE, v text);`,
      `INSERT INTO {t} SELECT g, 'p' || g, (ARRAY['DE', 'FR', 'NZ'])[1 + g % 3], CASE WHEN g > 3 AND g % 4 <> 0 THEN g - 3 END
         FROM generate_series(1, ${SEED}) g;
       INSERT INTO {t}_child SELECT g, 1 + g % ${SEED}, 'c' || g FROM generate_series(1, ${2 * SEED}) g`,
    );
    for (let g = 1; g <= SEED; g++) parents[g % 3].push(g);
  }, 60_000);

  function writes(w: number): Statement {
    const r = Math.random();
    const mine = parents[w];
    if (r < 0.25) {
      do nextParent++;
      while (nextParent % 3 !== w);
      const manager = mine[rnd(mine.length)];
      mine.push(nextParent);
      return {
        sql: `INSERT INTO {t} VALUES ($1, 'new', $2, $3)`,
        values: [nextParent, ['DE', 'FR', 'NZ'][rnd(3)], manager],
      };
    }
    if (r < 0.5) {
      return { sql: `INSERT INTO {t}_child VALUES ($1, $2, 'new')`, values: [++nextChild * 3 + w, mine[rnd(mine.length)]] };
    }
    if (r < 0.7) return { sql: `UPDATE {t} SET name = name || '+', country = 'NZ' WHERE id = $1`, values: [mine[rnd(mine.length)]] };
    // Deletes cascade to the children and set the reports' manager to NULL (an update of this table).
    return { sql: `DELETE FROM {t} WHERE id = $1`, values: [mine.splice(rnd(mine.length), 1)[0]] };
  }

  it('moves every foreign key to the new table, validated, and the cascades keep working', async () => {
    const alter = `ALTER COLUMN name TYPE varchar(100), ADD COLUMN extra int DEFAULT 0`;
    // Writers insert children (child, then the parent's row) and delete parents (parent, then the cascade
    // into the child): whichever order the cut-over takes its locks in, one of them can deadlock with it,
    // and the cut-over is the one that gives way (its lock timeout is below deadlock_timeout). On a
    // loaded machine 10 attempts in a row once did (a fresh-clone CI); this test is about the keys.
    const options = { chunkTimeMs: 20, cutoverAttempts: 30 };
    const { stats } = await migrateUnderWrites(db, ['pcd_a', 'pcd_b'], alter, writes, { options });
    expect(stats.errors).toEqual([]);
    expect(stats.transactions).toBeGreaterThan(20);
    expect(await pgSchemaOf(db, 'pcd_a')).toEqual(await pgSchemaOf(db, 'pcd_b'));
    expect(await differences(db, 'pcd_a', 'pcd_b')).toEqual([]);
    expect(await differences(db, 'pcd_a_child', 'pcd_b_child')).toEqual([]);
    expect(await pgHelpers(db, 'pcd_a')).toEqual(['pcd_a__old']);

    // Every constraint now joins the new table (the same names), and is valid.
    const { rows: fks } = await db.query(
      `SELECT conname, conrelid::regclass::text AS child, confrelid::regclass::text AS parent, convalidated
         FROM pg_constraint WHERE contype = 'f' AND (conrelid = 'pcd_a'::regclass OR confrelid = 'pcd_a'::regclass) ORDER BY conname`,
    );
    expect(fks).toEqual([
      { conname: 'pcd_a_child_parent_fkey', child: 'pcd_a_child', parent: 'pcd_a', convalidated: 't' },
      { conname: 'pcd_a_country_fkey', child: 'pcd_a', parent: 'pcd_country', convalidated: 't' },
      { conname: 'pcd_a_manager_fkey', child: 'pcd_a', parent: 'pcd_a', convalidated: 't' },
    ]);
    // Nothing references the old table any more.
    const { rows: old } = await db.query(
      `SELECT count(*) AS n FROM pg_constraint WHERE contype = 'f' AND confrelid = 'pcd_a__old'::regclass AND conrelid <> 'pcd_a__old'::regclass`,
    );
    expect(old[0].n).toBe('0');

    // The cascades act on the new table: a parent's delete takes its children and clears its reports' manager.
    const { rows: victim } = await db.query(
      `SELECT p.id FROM pcd_a p WHERE EXISTS (SELECT 1 FROM pcd_a_child c WHERE c.parent = p.id)
                                  AND EXISTS (SELECT 1 FROM pcd_a r WHERE r.manager = p.id) LIMIT 1`,
    );
    expect(victim).toHaveLength(1);
    for (const t of ['pcd_a', 'pcd_b']) await db.query(`DELETE FROM ${t} WHERE id = $1`, [victim[0].id]);
    const owner = parents[Number(victim[0].id) % 3];
    owner.splice(owner.indexOf(Number(victim[0].id)), 1);
    const { rows: after } = await db.query(
      `SELECT (SELECT count(*) FROM pcd_a_child WHERE parent = $1) AS children, (SELECT count(*) FROM pcd_a WHERE manager = $1) AS reports`,
      [victim[0].id],
    );
    expect(after[0]).toEqual({ children: '0', reports: '0' });
    expect(await differences(db, 'pcd_a', 'pcd_b')).toEqual([]);
    expect(await differences(db, 'pcd_a_child', 'pcd_b_child')).toEqual([]);
    // And they still refuse what they should.
    await expect(db.query(`INSERT INTO pcd_a_child VALUES (-1, -1, 'orphan')`)).rejects.toThrow(/pcd_a_child_parent_fkey/);
    await expect(db.query(`INSERT INTO pcd_a VALUES (-1, 'x', 'XX', NULL)`)).rejects.toThrow(/pcd_a_country_fkey/);
    await expect(db.query(`INSERT INTO pcd_a VALUES (-1, 'x', 'DE', -5)`)).rejects.toThrow(/pcd_a_manager_fkey/);
  }, 90_000);

  it("follows a child table whose rows are deleted by the parent's cascade", async () => {
    // Now the child is migrated; deletes of parents reach it only through ON DELETE CASCADE.
    const alter = `ALTER COLUMN v TYPE varchar(50), ADD COLUMN extra int DEFAULT 0`;
    // The workload names only the migrated table ({t}); each world's parent is reached through a function.
    for (const [child, parent] of [
      ['pcd_a_child', 'pcd_a'],
      ['pcd_b_child', 'pcd_b'],
    ]) {
      await db.query(`CREATE OR REPLACE FUNCTION ${child}_drop_parent(p int) RETURNS void LANGUAGE sql AS 'DELETE FROM ${parent} WHERE id = p'`);
      await db.query(
        `CREATE OR REPLACE FUNCTION ${child}_add_parent(p int) RETURNS void LANGUAGE sql AS 'INSERT INTO ${parent} VALUES (p, ''new'', ''DE'', NULL)'`,
      );
    }
    const childWrites = (w: number): Statement => {
      const r = Math.random();
      const mine = parents[w];
      if (r < 0.35) return { sql: `INSERT INTO {t} VALUES ($1, $2, 'new')`, values: [++nextChild * 3 + w, mine[rnd(mine.length)]] };
      if (r < 0.5) {
        do nextParent++;
        while (nextParent % 3 !== w);
        mine.push(nextParent);
        return { sql: `SELECT {t}_add_parent($1)`, values: [nextParent] };
      }
      if (r < 0.75) return { sql: `UPDATE {t} SET v = v || '+' WHERE parent = $1`, values: [mine[rnd(mine.length)]] };
      return { sql: `SELECT {t}_drop_parent($1)`, values: [mine.splice(rnd(mine.length), 1)[0]] };
    };
    const { result, stats } = await migrateUnderWrites(db, ['pcd_a_child', 'pcd_b_child'], alter, childWrites, {
      options: { chunkTimeMs: 20, lockTimeoutMs: 2000 },
    });
    expect(stats.errors).toEqual([]);
    expect(result.changesApplied).toBeGreaterThan(0);
    expect(await pgSchemaOf(db, 'pcd_a_child')).toEqual(await pgSchemaOf(db, 'pcd_b_child'));
    expect(await differences(db, 'pcd_a_child', 'pcd_b_child')).toEqual([]);
    expect(await pgHelpers(db, 'pcd_a_child')).toEqual(['pcd_a_child__old']);
    const { rows } = await db.query(
      `SELECT conname, confrelid::regclass::text AS parent, convalidated FROM pg_constraint WHERE conrelid = 'pcd_a_child'::regclass AND contype = 'f'`,
    );
    expect(rows).toEqual([{ conname: 'pcd_a_child_parent_fkey', parent: 'pcd_a', convalidated: 't' }]);
    const { rows: orphans } = await db.query(`SELECT count(*) AS n FROM pcd_a_child c WHERE NOT EXISTS (SELECT 1 FROM pcd_a p WHERE p.id = c.parent)`);
    expect(orphans[0].n).toBe('0');
    expect(await differences(db, 'pcd_a', 'pcd_b')).toEqual([]);
  }, 90_000);
});

describe('a view over the table', () => {
  const SEED = 10_000;
  beforeAll(async () => {
    await pgTwins(
      db,
      ['pcd_view', 'pcd_view_m'],
      `CREATE TABLE {t} (id int PRIMARY KEY, qty int NOT NULL, label text);
       CREATE VIEW {t}_big AS SELECT id, qty, upper(label) AS label FROM {t} WHERE qty > 5;
       CREATE VIEW {t}_sum AS SELECT count(*) AS n, sum(qty) AS total FROM {t}_big`,
      `INSERT INTO {t} SELECT g, g % 10, 'l' || g FROM generate_series(1, ${SEED}) g`,
    );
  }, 60_000);

  function writes(w: number): Statement {
    const id = 3 * rnd(SEED / 3) + w || 3;
    return Math.random() < 0.7
      ? { sql: `UPDATE {t} SET qty = (qty + 3) % 10 WHERE id = $1`, values: [id] }
      : { sql: `DELETE FROM {t} WHERE id = $1`, values: [id] };
  }

  it('reads the new table after the cut-over, views on the view too', async () => {
    const { stats } = await migrateUnderWrites(db, ['pcd_view', 'pcd_view_m'], `ADD COLUMN extra int DEFAULT 1, ALTER COLUMN label SET NOT NULL`, writes, {
      options: { chunkTimeMs: 20 },
    });
    expect(stats.errors).toEqual([]);
    expect(await differences(db, 'pcd_view', 'pcd_view_m')).toEqual([]);
    expect(await differences(db, 'pcd_view_big', 'pcd_view_m_big')).toEqual([]);
    expect(await differences(db, 'pcd_view_sum', 'pcd_view_m_sum')).toEqual([]);
    const { rows } = await db.query(
      `SELECT DISTINCT refobjid::regclass::text AS t FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
        WHERE d.classid = 'pg_rewrite'::regclass AND r.ev_class = 'pcd_view_big'::regclass AND d.refobjid <> r.ev_class`,
    );
    expect(rows).toEqual([{ t: 'pcd_view' }]);
    await db.query(`INSERT INTO pcd_view VALUES (-1, 9, 'after', 2)`);
    expect((await db.query(`SELECT label FROM pcd_view_big WHERE id = -1`)).rows).toEqual([{ label: 'AFTER' }]);
  }, 90_000);
});

describe('row level security, policies and the state of triggers', () => {
  /** What the cut-over must carry over exactly: RLS flags, policies, and each trigger's enabled state. */
  async function security(table: string) {
    const flags = await db.query(`SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = $1::regclass`, [table]);
    const policies = await db.query(
      `SELECT polname, polcmd, polpermissive, polroles::regrole[]::text, pg_get_expr(polqual, polrelid) AS qual, pg_get_expr(polwithcheck, polrelid) AS chk
         FROM pg_policy WHERE polrelid = $1::regclass ORDER BY polname`,
      [table],
    );
    const triggers = await db.query(`SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal ORDER BY tgname`, [table]);
    return { flags: flags.rows, policies: policies.rows, triggers: triggers.rows };
  }

  it('are carried over to the new table as they were', async () => {
    await pgDropTables(db, ['pcd_secure']);
    await db.query('CREATE TABLE pcd_secure (id int PRIMARY KEY, tenant int NOT NULL, touched int NOT NULL DEFAULT 0)');
    await db.query('INSERT INTO pcd_secure SELECT g, g % 3, 0 FROM generate_series(1, 1000) g');
    await db.query(`CREATE OR REPLACE FUNCTION pcd_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.touched := NEW.touched + 1; RETURN NEW; END $$`);
    for (const [name, state] of [
      ['t_disabled', 'DISABLE'],
      ['t_replica', 'ENABLE REPLICA'],
      ['t_always', 'ENABLE ALWAYS'],
      ['t_plain', null],
    ] as const) {
      await db.query(`CREATE TRIGGER ${name} BEFORE UPDATE ON pcd_secure FOR EACH ROW EXECUTE FUNCTION pcd_touch()`);
      if (state) await db.query(`ALTER TABLE pcd_secure ${state} TRIGGER ${name}`);
    }
    await db.query('ALTER TABLE pcd_secure ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY');
    await db.query('CREATE POLICY tenant_read ON pcd_secure FOR SELECT TO PUBLIC USING (tenant = 1)');
    await db.query(`CREATE POLICY tenant_write ON pcd_secure AS RESTRICTIVE FOR UPDATE TO postgres USING (tenant > 0) WITH CHECK (tenant < 3)`);
    const before = await security('pcd_secure');
    await migratePg('pcd_secure', 'ADD COLUMN note text', { dropOld: true });
    expect(await security('pcd_secure')).toEqual(before);
    expect(before.triggers.map((t: { tgenabled: string }) => t.tgenabled)).toEqual(['A', 'D', 'O', 'R']);
    expect(before.policies).toHaveLength(2);
  });
});
