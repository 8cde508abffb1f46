import { describe, expect, it } from 'vitest';
import { silentReporter } from '../src/core/report/reporter.js';
import { databases, migrateOn, useDatabase } from './support/fixture.js';
import { waitFor } from './support/run.js';

/**
 * PostgreSQL's in-place path held to what it claims (docs/invariants.md, invariant 10 and 11): a part is
 * `instant` only when the server reads, rewrites and rebuilds nothing for it on the real table; the
 * change applies whole or not at all; an online index build is not failed by unrelated old
 * transactions; plan's probes never meet the user's tables.
 */
const db = useDatabase(databases[1].open, 'pp_t', 'pp_p', 'pp_i', 'pp_u', 'pp_r', 'pp_a', 'pp_w', 'pp_other', 'pp_b', 'pp_b__pb');

const classes = async (table: string, alter: string) => {
  const engine = await db.engine();
  try {
    const c = await engine.classifyAlter(table, alter);
    return { path: c.path, classes: c.parts.map((p) => p.class), why: c.why, reasons: c.parts.map((p) => p.reason) };
  } finally {
    await engine.close();
  }
};

/** Rows the server reads from the table (or its partitions and children) for a native ALTER, and whether it rewrites it; rolled back. */
async function nativeWork(table: string, alter: string): Promise<{ read: boolean; rewritten: boolean }> {
  const s = await db.session();
  const counters = `SELECT coalesce(sum(pg_stat_get_xact_numscans(c.oid)), 0)::text, string_agg(c.relfilenode::text, ',' ORDER BY c.relname)
      FROM pg_class c WHERE c.oid = '${table}'::regclass OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = '${table}'::regclass)`;
  try {
    await s.query('BEGIN');
    const [before] = await s.query(counters);
    await s.query(`ALTER TABLE ${table} ${alter}`);
    const [after] = await s.query(counters);
    return { read: before[0] !== after[0], rewritten: before[1] !== after[1] };
  } finally {
    await s.query('ROLLBACK');
    s.release();
  }
}

describe('the classifier is proven by what the server does (PostgreSQL)', () => {
  const shapes: [string, string[], string, string, 'instant' | 'copy'][] = [
    // [what, setup, table, part, class]
    [
      'a CHECK mentions the retyped column',
      ['CREATE TABLE pp_t (id int PRIMARY KEY, name varchar(20) CHECK (length(name) > 0), other varchar(20), k int)'],
      'pp_t',
      'ALTER COLUMN name TYPE varchar(40)',
      'copy',
    ],
    [
      'no CHECK mentions the retyped column',
      ['CREATE TABLE pp_t (id int PRIMARY KEY, name varchar(20) CHECK (length(name) > 0), other varchar(20), k int)'],
      'pp_t',
      'ALTER COLUMN other TYPE varchar(40)',
      'instant',
    ],
    [
      'a CHECK on one partition only',
      [
        'CREATE TABLE pp_p (id int, name varchar(20), k int) PARTITION BY RANGE (k)',
        'CREATE TABLE pp_p1 PARTITION OF pp_p FOR VALUES FROM (0) TO (10000)',
        'CREATE TABLE pp_p2 PARTITION OF pp_p FOR VALUES FROM (10000) TO (30000)',
        'ALTER TABLE pp_p2 ADD CONSTRAINT pp_p2_name CHECK (length(name) > 0)',
      ],
      'pp_p',
      'ALTER COLUMN name TYPE varchar(40)',
      'copy',
    ],
    [
      'a partitioned table, a column no CHECK or index mentions',
      ['CREATE TABLE pp_p (id int, name varchar(20), k int) PARTITION BY RANGE (k)', 'CREATE TABLE pp_p1 PARTITION OF pp_p FOR VALUES FROM (0) TO (30000)'],
      'pp_p',
      'ALTER COLUMN name TYPE varchar(40)',
      'instant',
    ],
    [
      // PostgreSQL rebuilds the partitions' indexes on the column even for a binary-coercible change.
      'an index of a partitioned table on the retyped column',
      [
        'CREATE TABLE pp_p (id int, name varchar(20), k int) PARTITION BY RANGE (k)',
        'CREATE TABLE pp_p1 PARTITION OF pp_p FOR VALUES FROM (0) TO (30000)',
        'CREATE INDEX ON pp_p (name)',
      ],
      'pp_p',
      'ALTER COLUMN name TYPE varchar(40)',
      'copy',
    ],
    [
      'a CHECK on an inheritance child only',
      ['CREATE TABLE pp_i (id int PRIMARY KEY, name varchar(20), k int)', 'CREATE TABLE pp_i_child (CHECK (length(name) > 0)) INHERITS (pp_i)'],
      'pp_i',
      'ALTER COLUMN name TYPE varchar(40)',
      'copy',
    ],
    [
      'PRIMARY KEY USING INDEX over a nullable column',
      ['CREATE TABLE pp_u (id int, name varchar(20), k int)', 'CREATE UNIQUE INDEX pp_u_id ON pp_u (id)'],
      'pp_u',
      'ADD CONSTRAINT pp_u_pk PRIMARY KEY USING INDEX pp_u_id',
      'copy',
    ],
    [
      'an index expression on the retyped column',
      ['CREATE TABLE pp_t (id int PRIMARY KEY, name varchar(20), k int)', 'CREATE INDEX pp_t_lower ON pp_t (lower(name))'],
      'pp_t',
      'ALTER COLUMN name TYPE varchar(40)',
      'copy',
    ],
    [
      'a partial index predicate on the retyped column',
      ['CREATE TABLE pp_t (id int PRIMARY KEY, name varchar(20), k int)', "CREATE INDEX pp_t_part ON pp_t (k) WHERE name <> ''"],
      'pp_t',
      'ALTER COLUMN name TYPE varchar(40)',
      'copy',
    ],
    [
      'SET NOT NULL that a validated CHECK already proves',
      ['CREATE TABLE pp_t (id int PRIMARY KEY, name varchar(20), k int CHECK (k IS NOT NULL))'],
      'pp_t',
      'ALTER COLUMN k SET NOT NULL',
      'instant',
    ],
    [
      'a type change on a table with an inheritance child',
      ['CREATE TABLE pp_i (id int PRIMARY KEY, name varchar(20), k int)', 'CREATE TABLE pp_i_child () INHERITS (pp_i)'],
      'pp_i',
      'ALTER COLUMN name TYPE varchar(40)',
      'instant',
    ],
  ];

  it.each(shapes)('%s: %s -> %s', async (_what, setup, table, part, expected) => {
    await db.query('DROP TABLE IF EXISTS pp_t, pp_p, pp_i, pp_u CASCADE');
    for (const sql of setup) await db.query(sql);
    await db.query(`INSERT INTO ${table} (id, name, k) SELECT g, 'n' || g, g FROM generate_series(1, 20000) g`);
    const got = await classes(table, part);
    expect(got.classes, got.reasons.join('; ')).toEqual([expected]);
    // The proof on the real table: what the native ALTER makes the server do.
    const work = await nativeWork(table, part);
    expect(work.read || work.rewritten).toBe(expected !== 'instant');
  });

  it('parts that cost nothing alone but a scan together: the steps themselves are proven on the probe', async () => {
    await db.query('DROP TABLE IF EXISTS pp_t CASCADE');
    await db.query('CREATE TABLE pp_t (id int PRIMARY KEY, name varchar(20), k int)');
    await db.query(`INSERT INTO pp_t SELECT g, 'n' || g, g FROM generate_series(1, 2000) g`);
    // Alone, a retype to the same type reads nothing; after the NOT NULL's helper CHECK is validated, it re-validates it under its lock.
    const got = await classes('pp_t', 'ALTER COLUMN k TYPE int, ALTER COLUMN k SET NOT NULL');
    expect(got.classes).toEqual(['instant', 'validate-later']);
    expect(got.path).toBe('copy');
    expect(got.why).toMatch(/^for the parts together, the server reads pp_t .* under the last step's ACCESS EXCLUSIVE lock/);
  });
});

/** What a reader of the table waited at most, while `run` ran. */
async function longestReaderWait(table: string, run: () => Promise<unknown>): Promise<number> {
  const reader = await db.session();
  let stop = false;
  let longest = 0;
  const loop = (async () => {
    while (!stop) {
      const started = performance.now();
      await reader.query(`SELECT count(*) FROM ${table}`);
      longest = Math.max(longest, performance.now() - started);
    }
  })();
  try {
    await run();
  } finally {
    stop = true;
    await loop;
    reader.release();
  }
  return longest;
}

describe('every class holds on a 20k-row table with a reader (PostgreSQL)', () => {
  const LOCK_TIMEOUT_MS = 300;
  const MARGIN_MS = 700;
  const parts: [string, string][] = [
    ['ADD COLUMN note text', 'instant'],
    ['ADD COLUMN c int NOT NULL DEFAULT 7', 'instant'],
    ['DROP COLUMN w', 'instant'],
    ["ALTER COLUMN v SET DEFAULT 'b'", 'instant'],
    ['ALTER COLUMN v TYPE varchar(40)', 'instant'],
    ['RENAME COLUMN w TO w2', 'instant'],
    ['ADD CHECK (n > 0) NOT VALID', 'instant'],
    ['ADD CHECK (n > 0)', 'validate-later'],
    ['ALTER COLUMN u SET NOT NULL', 'validate-later'],
    ['ADD UNIQUE (u)', 'online-index'],
  ];

  it.each(parts)('%s (%s)', async (part, expected) => {
    await db.drop('pp_r');
    await db.query('CREATE TABLE pp_r (id int PRIMARY KEY, v varchar(20) NOT NULL, n int NOT NULL CHECK (n >= 0), u int, w int)');
    await db.query(`INSERT INTO pp_r SELECT g, 'v' || g, g, g, g FROM generate_series(1, 20000) g`);
    expect((await classes('pp_r', part)).classes).toEqual([expected]);
    if (expected === 'instant') expect(await nativeWork('pp_r', part)).toEqual({ read: false, rewritten: false });
    let result: Awaited<ReturnType<typeof migrateOn>> | undefined;
    const wait = await longestReaderWait('pp_r', async () => {
      result = await migrateOn(db, 'pp_r', part, { forceCopy: false, lockTimeoutMs: LOCK_TIMEOUT_MS, cutoverAttempts: 20 });
    });
    expect(result!.path).toBe('in-place');
    expect(wait).toBeLessThan(LOCK_TIMEOUT_MS + MARGIN_MS);
  });
});

/** The table as a native ALTER would see it: columns with types and defaults, constraints, indexes, and every row. */
async function definitionAndRows(table: string): Promise<string[]> {
  const rows = await db.query(
    `SELECT format('column %s %s %s %s', attname, format_type(atttypid, atttypmod), attnotnull, pg_get_expr(d.adbin, d.adrelid))
       FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE attrelid = '${table}'::regclass AND attnum > 0 AND NOT attisdropped
     UNION ALL SELECT format('constraint %s %s %s', conname, pg_get_constraintdef(oid), convalidated) FROM pg_constraint WHERE conrelid = '${table}'::regclass
     UNION ALL SELECT format('index %s %s', indisvalid, pg_get_indexdef(indexrelid)) FROM pg_index WHERE indrelid = '${table}'::regclass
     UNION ALL SELECT 'rows ' || md5(string_agg(r::text, '|' ORDER BY r.id)) FROM ${table} r
     ORDER BY 1`,
  );
  return rows.map((r) => String(r[0]));
}

describe('in place is all or nothing, as the native ALTER (PostgreSQL)', () => {
  const seed = async () => {
    await db.drop('pp_a');
    await db.query("CREATE TABLE pp_a (id int PRIMARY KEY, amount int, legacy_note text DEFAULT 'x', u int, v varchar(20) DEFAULT 'd', z int)");
    // amount has negatives, u repeats, z has NULLs.
    await db.query(
      "INSERT INTO pp_a SELECT g, g - 10, 'note ' || g, (g + 1) / 2, 'v' || g, CASE WHEN g % 100 = 0 THEN NULL ELSE g END FROM generate_series(1, 5000) g",
    );
  };
  const mixes = [
    'DROP COLUMN legacy_note, ADD CONSTRAINT amount_positive CHECK (amount > 0)',
    'ADD COLUMN extra int DEFAULT 1, ADD UNIQUE (u)',
    'ALTER COLUMN v DROP DEFAULT, ALTER COLUMN z SET NOT NULL',
    'ALTER COLUMN v TYPE text, ADD CHECK (amount > 0)',
    'DROP COLUMN legacy_note, ALTER COLUMN z SET NOT NULL, ADD UNIQUE (id, amount)',
  ];

  it.each(mixes)('%s: fails whole, the table exactly as before', async (alter) => {
    await seed();
    const before = await definitionAndRows('pp_a');
    // The native ALTER fails too.
    const native = await db.session();
    try {
      await native.query('BEGIN');
      await expect(native.query(`ALTER TABLE pp_a ${alter}`)).rejects.toThrow();
    } finally {
      await native.query('ROLLBACK');
      native.release();
    }
    expect((await classes('pp_a', alter)).path).toBe('in-place');
    const r = db.cli(['migrate', '--url', '$URL', '--table', 'pp_a', '--alter', alter, '--execute']);
    expect(r.code).toBe(2);
    const refusal = r.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('shadowcut:'));
    expect(refusal).toEqual([expect.stringMatching(/; nothing was changed$/)]);
    expect(await definitionAndRows('pp_a')).toEqual(before);
  });

  it('interrupted between steps: what was made is undone, the column is still there', async () => {
    await seed();
    await db.query('UPDATE pp_a SET amount = abs(amount) + 1');
    const before = await definitionAndRows('pp_a');
    const stop = new AbortController();
    // Ctrl-C right after the CHECK was validated, before the DROP.
    const reporter = { ...silentReporter, info: (message: string) => void (message.startsWith('in place: validate') && stop.abort('interrupted')) };
    await expect(
      migrateOn(db, 'pp_a', 'DROP COLUMN legacy_note, ADD CONSTRAINT amount_positive CHECK (amount > 0)', { forceCopy: false, reporter, signal: stop.signal }),
    ).rejects.toThrow(
      /^aborted: in place, "ALTER TABLE .* DROP COLUMN legacy_note" failed: aborted: interrupted; undone \(.*DROP CONSTRAINT IF EXISTS "amount_positive"\); nothing was changed$/,
    );
    expect(await definitionAndRows('pp_a')).toEqual(before);
  });

  it('a part that checks a column another part changes is the copy, and says why', async () => {
    await seed();
    for (const alter of [
      'ADD COLUMN c int DEFAULT -1, ADD CHECK (c > 0)',
      'ALTER COLUMN v TYPE text, ADD UNIQUE (v)',
      'ADD COLUMN c int DEFAULT 1, ADD UNIQUE (c)',
    ]) {
      const got = await classes('pp_a', alter);
      expect(got.path, alter).toBe('copy');
      expect(got.why).toMatch(/could not be checked before the change and still be all or nothing/);
    }
  });
});

describe('in place adds under the names the server would give, and its undo drops only what it made (PostgreSQL)', () => {
  // The probe has no foreign keys and lives in pg_temp: a name it found free can be taken on the
  // real table or in its schema, and the failed step's undo dropped the user's object by that name.
  it("a second foreign key, a UNIQUE whose index name another table's index has, a name the user wrote that a foreign key has", async () => {
    await db.query('DROP TABLE IF EXISTS pp_names, pp_names_other, pp_names_parent CASCADE');
    await db.query('CREATE TABLE pp_names_parent (id int PRIMARY KEY)');
    await db.query('INSERT INTO pp_names_parent SELECT generate_series(1, 10)');
    await db.query(
      'CREATE TABLE pp_names (id int PRIMARY KEY, pid int REFERENCES pp_names_parent (id), v int, x int, CONSTRAINT c FOREIGN KEY (pid) REFERENCES pp_names_parent (id))',
    );
    await db.query('INSERT INTO pp_names SELECT g, 1 + g % 10, g, g FROM generate_series(1, 1000) g');
    await db.query('CREATE TABLE pp_names_other (id int PRIMARY KEY, w int)');
    await db.query('CREATE UNIQUE INDEX pp_names_v_key ON pp_names_other (w)');
    const objects = async () =>
      [
        ...(await db.query(`SELECT conname || ' ' || contype::text FROM pg_constraint WHERE conrelid = 'pp_names'::regclass ORDER BY 1`)),
        ...(await db.query(
          `SELECT indexrelid::regclass || ' on ' || indrelid::regclass FROM pg_index WHERE indrelid IN ('pp_names'::regclass, 'pp_names_other'::regclass) ORDER BY 1`,
        )),
      ].map((row) => String(row[0]));
    try {
      for (const alter of ['ADD CONSTRAINT c CHECK (v > 0)', 'ADD CONSTRAINT pp_names_v_key UNIQUE (x)']) {
        const before = await objects();
        const r = db.cli(['migrate', '--url', '$URL', '--table', 'pp_names', '--alter', alter, '--execute']);
        expect(r.code, alter).toBe(2);
        expect(r.stderr.trim().split('\n').pop(), alter).toMatch(
          /^shadowcut: the ALTER fails: (constraint "c" for relation "pp_names"|relation "pp_names_v_key") already exists$/,
        );
        expect(await objects(), alter).toEqual(before);
      }
      for (const alter of ['ADD FOREIGN KEY (pid) REFERENCES pp_names_parent (id)', 'ADD UNIQUE (v)']) {
        const r = db.cli(['migrate', '--url', '$URL', '--table', 'pp_names', '--alter', alter, '--execute']);
        expect(r.code, `${alter}: ${r.stderr}`).toBe(0);
      }
      expect(await objects()).toEqual([
        'c f',
        'pp_names_pid_fkey f',
        'pp_names_pid_fkey1 f',
        'pp_names_pkey p',
        'pp_names_v_key1 u',
        'pp_names_other_pkey on pp_names_other',
        'pp_names_pkey on pp_names',
        'pp_names_v_key on pp_names_other',
        'pp_names_v_key1 on pp_names',
      ]);
    } finally {
      await db.query('DROP TABLE IF EXISTS pp_names, pp_names_other, pp_names_parent CASCADE');
    }
  }, 60_000);
});

describe('an online index build waits for older transactions, not within the lock timeout (PostgreSQL)', () => {
  it('an idle transaction holding an old snapshot on another table: ADD UNIQUE waits, names it, succeeds; readers go on', async () => {
    await db.drop('pp_w', 'pp_other');
    await db.query('CREATE TABLE pp_w (id int PRIMARY KEY, u int)');
    await db.query('INSERT INTO pp_w SELECT g, g FROM generate_series(1, 20000) g');
    await db.query('CREATE TABLE pp_other (id int)');
    const old = await db.session();
    const warnings: string[] = [];
    const reporter = { ...silentReporter, warn: (message: string) => void warnings.push(message) };
    let result: Awaited<ReturnType<typeof migrateOn>> | undefined;
    try {
      const [[pid]] = await old.query('SELECT pg_backend_pid()');
      await old.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await old.query('SELECT * FROM pp_other');
      // Open until the build says it waits for this transaction, then ended.
      const ends = waitFor('the build waiting for the old transaction', () => warnings.some((m) => m.includes(`pid ${pid} `)), null).then(() =>
        old.query('COMMIT'),
      );
      const wait = await longestReaderWait('pp_w', async () => {
        result = await migrateOn(db, 'pp_w', 'ADD UNIQUE (u)', { forceCopy: false, lockTimeoutMs: 200, cutoverAttempts: 2, reporter });
      });
      await ends;
      expect(result!.path).toBe('in-place');
      expect(result!.executed).toBe(true);
      expect(wait).toBeLessThan(900);
      expect(warnings.some((w) => w.includes(`waits for an older transaction to end: pid ${pid} `) && w.includes('SELECT * FROM pp_other'))).toBe(true);
    } finally {
      await old.query('ROLLBACK').catch(() => {});
      old.release();
    }
    expect(await db.query(`SELECT conname FROM pg_constraint WHERE conrelid = 'pp_w'::regclass AND contype = 'u'`)).toEqual([['pp_w_u_key']]);
  });

  it("the build's wait for the table's own lock is still bounded by the lock timeout, and retried", async () => {
    await db.drop('pp_w', 'pp_other');
    await db.query('CREATE TABLE pp_w (id int PRIMARY KEY, u int)');
    await db.query('INSERT INTO pp_w SELECT g, g FROM generate_series(1, 2000) g');
    const blocker = await db.session();
    const warnings: string[] = [];
    const reporter = { ...silentReporter, warn: (message: string) => void warnings.push(message) };
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE pp_w IN SHARE UPDATE EXCLUSIVE MODE');
      // Held until an attempt has given up within the lock timeout (the run says so), then released.
      const release = waitFor('an attempt given up', () => warnings.some((m) => / attempt 1 failed /.test(m)), null).then(() => blocker.query('COMMIT'));
      const result = await migrateOn(db, 'pp_w', 'ADD UNIQUE (u)', { forceCopy: false, lockTimeoutMs: 200, cutoverAttempts: 40, reporter });
      await release;
      expect(result.executed).toBe(true);
    } finally {
      blocker.release();
    }
    expect(warnings[0]).toMatch(
      /^in place, "build pp_w_u_key concurrently" attempt 1 failed \(build pp_w_u_key concurrently: lock not granted in time\); retrying in \d+ ms$/,
    );
  });

  it('past --snapshot-wait-ms it gives up, names the transaction, and leaves nothing', async () => {
    await db.drop('pp_w', 'pp_other');
    await db.query('CREATE TABLE pp_w (id int PRIMARY KEY, u int)');
    await db.query('INSERT INTO pp_w SELECT g, g FROM generate_series(1, 2000) g');
    await db.query('CREATE TABLE pp_other (id int)');
    const old = await db.session();
    try {
      await old.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await old.query('SELECT * FROM pp_other');
      const r = await db.cliAsync(['migrate', '--url', '$URL', '--table', 'pp_w', '--alter', 'ADD UNIQUE (u)', '--execute', '--snapshot-wait-ms', '1000']);
      expect(r.code).toBe(2);
      expect(
        r.stderr
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('shadowcut:')),
      ).toEqual([
        expect.stringMatching(
          /for older transactions to end, last pid \d+ \(transaction started .*SELECT \* FROM pp_other\); end it or raise --snapshot-wait-ms; undone .*; nothing was changed$/,
        ),
      ]);
    } finally {
      await old.query('ROLLBACK');
      old.release();
    }
    expect(await db.query(`SELECT count(*)::int FROM pg_index WHERE indrelid = 'pp_w'::regclass`)).toEqual([['1']]);
  });
});

describe("plan's probes never meet the user's tables (PostgreSQL)", () => {
  it("a table of the timed sample's old name (<table>__pb) is neither dropped nor in the way", async () => {
    await db.drop('pp_b', 'pp_b__pb');
    await db.query('CREATE TABLE pp_b (id int PRIMARY KEY, v int)');
    await db.query('INSERT INTO pp_b SELECT g, g FROM generate_series(1, 2000) g');
    await db.query("CREATE TABLE pp_b__pb (mine text); INSERT INTO pp_b__pb VALUES ('keep me')");
    const r = db.cli(['plan', '--url', '$URL', '--table', 'pp_b', '--alter', 'ALTER COLUMN v TYPE bigint', '--json', '--sample-rows', '500']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).detail.estimate.sample.rows).toBe(500);
    expect(await db.query('SELECT mine FROM pp_b__pb')).toEqual([['keep me']]);
  });
});
