import { describe, expect, it } from 'vitest';
import { silentReporter } from '../src/core/report/reporter.js';
import { databases, migrateOn, useDatabase, type Database } from './support/fixture.js';
import { MirrorWorkload, type Statement } from './support/workload.js';
import { waitFor } from './support/run.js';

const ROWS = 1_000_000;

/**
 * Every part in place at once on a 1M-row table while writers run: one of each kind the engine
 * makes in place. Unnamed constraints, so the mirror's native ALTER names its own the same way.
 */
const WORDS = {
  mysql: {
    create:
      "CREATE TABLE {t} (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL DEFAULT 'a', n INT NOT NULL, u INT NULL, w INT NULL, KEY kn (n), KEY ku (u)) ENGINE=InnoDB",
    fill: "INSERT INTO {t} SELECT g, CONCAT('v', g), g, g, g FROM ({series}) s",
    alter:
      "ADD COLUMN note VARCHAR(20) NOT NULL DEFAULT 'x', DROP COLUMN w, ALTER COLUMN n SET DEFAULT 5, MODIFY v VARCHAR(40) NOT NULL DEFAULT 'd', RENAME INDEX kn TO kn2, DROP INDEX ku",
    small: 'ADD COLUMN note INT NULL',
  },
  postgres: {
    create: 'CREATE TABLE {t} (id int PRIMARY KEY, v varchar(20) NOT NULL, n int NOT NULL, u int, w int)',
    fill: "INSERT INTO {t} SELECT g, 'v' || g, g, g, g FROM ({series}) s",
    alter: "ADD COLUMN note text DEFAULT 'x', DROP COLUMN w, ALTER COLUMN v TYPE varchar(40), ALTER COLUMN u SET NOT NULL, ADD CHECK (n > 0), ADD UNIQUE (u)",
    small: 'ADD COLUMN note int',
  },
};

/** Writers touch only what the ALTER keeps: updates of n, inserts with fresh keys (and unique u). */
function writes(db: Database): (worker: number) => Statement {
  let next = ROWS;
  return (worker) => {
    if (worker === 0) {
      next += 1;
      return {
        sql: `INSERT INTO {t} (id, v, n, u) VALUES (${db.param(1)}, ${db.param(2)}, ${db.param(3)}, ${db.param(4)})`,
        values: [next, `w${next}`, next, next],
      };
    }
    const id = 1 + Math.floor(Math.random() * ROWS);
    return { sql: `UPDATE {t} SET n = n + 1 WHERE id = ${db.param(1)}`, values: [id] };
  };
}

/** Constraints and indexes without their names (PostgreSQL; on MySQL schema() has them all). */
async function shapes(db: Database, table: string): Promise<string[]> {
  if (db.kind === 'mysql') return [];
  const rows = await db.query(
    `SELECT 'constraint ' || contype::text || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = '${table}'::regclass
     UNION ALL SELECT 'index ' || indisvalid || ' ' || regexp_replace(pg_get_indexdef(indexrelid), '^.* USING ', '') FROM pg_index WHERE indrelid = '${table}'::regclass
     ORDER BY 1`,
  );
  return rows.map((r) => String(r[0]));
}

describe.each(databases)('in place ($name)', ({ kind, open }) => {
  const db = useDatabase(open, 'ip_t', 'ip_mirror', 'ip_s');
  const w = WORDS[kind];
  const create = async (table: string, rows: number) => {
    await db.drop(table);
    await db.query(w.create.replace('{t}', table));
    await db.query(w.fill.replace('{t}', table).replace('{series}', db.series(rows)));
  };

  it('a 1M-row table under writers: every part made in place, nothing copied, the schema a native ALTER gives', async () => {
    await create('ip_t', ROWS);
    await create('ip_mirror', ROWS);
    const load = new MirrorWorkload(db, ['ip_t', 'ip_mirror'], writes(db), 3);
    load.start();
    let result;
    try {
      await load.untilMoreWrites();
      result = await migrateOn(db, 'ip_t', w.alter, { forceCopy: false, lockTimeoutMs: 500, cutoverAttempts: 20 });
      await load.untilMoreWrites();
    } finally {
      await load.stop();
    }
    expect(load.stats.errors).toEqual([]);
    expect(load.stats.transactions).toBeGreaterThan(0);
    expect(result.path).toBe('in-place');
    expect(result.executed).toBe(true);
    expect(result.rowsCopied).toBe(0);
    expect(result.plan).toBeNull();
    expect(result.inPlaceStatements.length).toBeGreaterThan(0);
    // No shadow, no old table, no checkpoint: nothing was copied.
    expect(await db.helpers('ip_t')).toEqual([]);
    await db.query(`ALTER TABLE ${kind === 'mysql' ? '`ip_mirror`' : 'ip_mirror'} ${w.alter}`);
    expect(await db.schema('ip_t')).toBe(await db.schema('ip_mirror'));
    expect(await shapes(db, 'ip_t')).toEqual(await shapes(db, 'ip_mirror'));
    expect(await db.differences('ip_t', 'ip_mirror')).toEqual([]);
  });

  it('--force-copy takes the copy for an ALTER that could be made in place', async () => {
    await create('ip_s', 2000);
    const r = db.cli(['migrate', '--url', '$URL', '--table', 'ip_s', '--alter', w.small, '--execute', '--force-copy', '--json']);
    expect(r.code).toBe(0);
    const result = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((e) => e.event === 'result');
    expect(result.path).toBe('copy');
    expect(result.pathReason).toBe('--force-copy');
    expect(result.parts).toEqual([]);
    expect(result.rowsCopied).toBe(2000);
    expect(await db.helpers('ip_s')).toEqual(['ip_s__old']);
  });

  it('a lock held elsewhere: each attempt waits at most the lock timeout, then backs off and tries again', async () => {
    await create('ip_s', 2000);
    const blocker = await db.session();
    const warnings: string[] = [];
    const reporter = { ...silentReporter, warn: (message: string) => void warnings.push(message) };
    let result;
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT * FROM ip_s LIMIT 1');
      // Held until an attempt has given up within the lock timeout (the run says so), then released.
      const release = waitFor('an attempt given up', () => warnings.some((m) => / attempt 1 failed /.test(m)), null).then(() => blocker.query('COMMIT'));
      result = await migrateOn(db, 'ip_s', w.small, { forceCopy: false, lockTimeoutMs: 100, cutoverAttempts: 40, reporter });
      await release;
    } finally {
      blocker.release();
    }
    expect(result.path).toBe('in-place');
    expect(warnings[0]).toMatch(/^in place, ".*" attempt 1 failed \(.*\); retrying in \d+ ms$/);
    expect(await db.helpers('ip_s')).toEqual([]);
  });

  it('the CLI without --force-copy makes it in place and says so', async () => {
    await create('ip_s', 2000);
    const r = db.cli(['migrate', '--url', '$URL', '--table', 'ip_s', '--alter', w.small, '--execute']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^path: in-place/m);
    expect(r.stdout).toMatch(/done: made in place/);
    expect(await db.helpers('ip_s')).toEqual([]);
  });
});

/** The run's log lines are timestamped; the refusal is the one line that starts with `shadowcut:`. */
const refusal = (stderr: string) =>
  stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('shadowcut:'));

describe('in place, when a step fails (PostgreSQL)', () => {
  const db = useDatabase(databases[1].open, 'ip_f');
  const seed = async () => {
    await db.drop('ip_f');
    await db.query('CREATE TABLE ip_f (id int PRIMARY KEY, u int, n int)');
    // u repeats (1, 1, 2, 2, ...); n has a negative value.
    await db.query(`INSERT INTO ip_f SELECT g, (g + 1) / 2, g - 10 FROM (${db.series(5000)}) s`);
  };
  const leftovers = async () =>
    (
      await db.query(
        `SELECT relname FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid WHERE i.indrelid = 'ip_f'::regclass AND NOT i.indisprimary
       UNION ALL SELECT conname FROM pg_constraint WHERE conrelid = 'ip_f'::regclass AND contype <> 'p'`,
      )
    ).map((r) => String(r[0]));

  it('a UNIQUE index the rows violate: the INVALID index is dropped, one line, the column added with it is not', async () => {
    await seed();
    const r = db.cli(['migrate', '--url', '$URL', '--table', 'ip_f', '--alter', 'ADD COLUMN note text, ADD UNIQUE (u)', '--execute']);
    expect(r.code).toBe(2);
    expect(refusal(r.stderr)).toEqual([
      expect.stringMatching(
        /^shadowcut: in place, "build ip_f_u_key concurrently" failed: could not create unique index .*undone \(DROP INDEX CONCURRENTLY IF EXISTS [^)]*\); nothing was changed$/,
      ),
    ]);
    expect(await db.query(`SELECT attname FROM pg_attribute WHERE attrelid = 'ip_f'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`)).toEqual([
      ['id'],
      ['u'],
      ['n'],
    ]);
    expect(await leftovers()).toEqual([]);
    expect((await db.query(`SELECT count(*) FROM pg_index WHERE NOT indisvalid AND indrelid = 'ip_f'::regclass`))[0][0]).toBe('0');
  });

  it('a CHECK the rows violate: the NOT VALID constraint is dropped again', async () => {
    await seed();
    const r = db.cli(['migrate', '--url', '$URL', '--table', 'ip_f', '--alter', 'ADD CHECK (n > 0)', '--execute']);
    expect(r.code).toBe(2);
    expect(refusal(r.stderr)).toEqual([
      expect.stringMatching(
        /^shadowcut: in place, "validate ip_f_n_check" failed: .*violated by some row; undone \(ALTER TABLE "public"\."ip_f" DROP CONSTRAINT IF EXISTS "ip_f_n_check"\); nothing was changed$/,
      ),
    ]);
    expect(await leftovers()).toEqual([]);
  });

  it('SET NOT NULL on a column with NULLs: the helper CHECK is dropped again', async () => {
    await seed();
    await db.query('UPDATE ip_f SET u = NULL WHERE id = 77');
    const r = db.cli(['migrate', '--url', '$URL', '--table', 'ip_f', '--alter', 'ALTER COLUMN u SET NOT NULL', '--execute']);
    expect(r.code).toBe(2);
    expect(refusal(r.stderr)).toEqual([
      expect.stringMatching(/^shadowcut: in place, "validate ip_f_u_not_null_sc_chk" failed: .*violated by some row; undone/),
    ]);
    expect(await leftovers()).toEqual([]);
    expect((await db.query(`SELECT attnotnull FROM pg_attribute WHERE attrelid = 'ip_f'::regclass AND attname = 'u'`))[0][0]).toBe('f');
  });
});
