// The MySQL/MariaDB in-place path is held to the server's own counters, not to what the ALTER says:
// a part classified `instant` must, run as the in-place path runs it on the real table, leave every
// InnoDB table and index id as it was and read no rows; a `copy` part must be one the server refuses
// to make without a rebuild, or one the counters show doing work. Its watchdog cuts lock waits only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { LockTimeoutError } from '../src/core/engine/errors.js';
import { createMysqlEngine, type MysqlEngine } from '../src/engines/mysql/index.js';
import { adminPool, helperTables, migrateMysql, mysqlUrl, runCli } from './support/mysql.js';
import { waitFor } from './support/run.js';
import { silentReporter } from '../src/core/report/reporter.js';

let db: mysql.Pool;
let engine: MysqlEngine;
const T = 'ipp_t';
const ROWS = 2000;

const dropAll = () => db.query(`DROP TABLE IF EXISTS ${T}, ${T}__pp, ${T}__pa, ${T}__pb, ${T}__old, ipp_child, ipp_parent, ipp_big, \`ipp-part\``);

beforeAll(async () => {
  db = adminPool();
  engine = await createMysqlEngine(mysqlUrl());
  await dropAll();
});

afterAll(async () => {
  await dropAll();
  await engine.close();
  await db.end();
});

async function create(table: string, rows: number): Promise<void> {
  await db.query(`DROP TABLE IF EXISTS ${table}`);
  await db.query(
    `CREATE TABLE ${table} (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL DEFAULT 'a', n INT NULL, w INT NULL, u INT NULL, c CHAR(3) NULL, ` +
      'KEY kv (v), KEY kn (n)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci',
  );
  await db.query(`INSERT INTO ${table} SELECT seq, CONCAT('v', seq), seq, seq, seq, 'c' FROM seq_1_to_${rows}`);
}

interface Work {
  newIds: string[];
  rowsRead: number;
}

/** The InnoDB ids of a table's indexes, and the Handler reads of `sql` on one session, measured here, not by shadowcut. */
async function serverWork(table: string, sql: string): Promise<Work> {
  const conn = await db.getConnection();
  try {
    const ids = async () => {
      const [rows] = await conn.query<mysql.RowDataPacket[]>(
        `SELECT CONCAT(t.TABLE_ID, ':', i.INDEX_ID) AS id FROM information_schema.INNODB_SYS_TABLES t
           JOIN information_schema.INNODB_SYS_INDEXES i ON i.TABLE_ID = t.TABLE_ID WHERE t.NAME = CONCAT(DATABASE(), '/', ?)`,
        [table],
      );
      return rows.map((r) => String(r.id));
    };
    const reads = async () => {
      const [rows] = await conn.query<mysql.RowDataPacket[]>("SHOW SESSION STATUS LIKE 'Handler\\_read\\_%'");
      return rows.reduce((sum, r) => sum + Number(r.Value), 0);
    };
    const before = await ids();
    const r0 = await reads();
    const r1 = await reads();
    await conn.query(sql);
    const r2 = await reads();
    const after = await ids();
    return { newIds: after.filter((id) => !before.includes(id)), rowsRead: r2 - r1 - (r1 - r0) };
  } finally {
    conn.release();
  }
}

describe('the in-place classes, held to the server counters (MariaDB)', () => {
  it('MODIFY ... COLLATE on an indexed column: NOCOPY accepts it and rebuilds the index, so it is the copy', async () => {
    await create(T, ROWS);
    const classified = await engine.classifyAlter(T, "MODIFY v VARCHAR(20) COLLATE utf8mb4_bin NOT NULL DEFAULT 'a'");
    expect(classified.path).toBe('copy');
    expect(classified.parts.map((p) => p.class)).toEqual(['copy']);
    expect(classified.parts[0].reason).toMatch(/rebuilds index kv/);
    // The same part on a column no index covers is metadata only.
    const plain = await engine.classifyAlter(T, 'MODIFY c CHAR(3) COLLATE utf8mb4_bin NULL');
    expect(plain.parts.map((p) => p.class)).toEqual(['instant']);
    expect(await helperTables(db, T)).toEqual([]);
  });

  // [part, class]: every `instant` one does nothing to the real table's rows, ids or indexes.
  const PARTS: [string, 'instant' | 'copy'][] = [
    ['ADD COLUMN note INT NULL', 'instant'],
    ['ADD COLUMN first_one INT NULL FIRST', 'instant'],
    ['DROP COLUMN w', 'instant'],
    ['DROP COLUMN n', 'instant'],
    ['ALTER COLUMN n SET DEFAULT 5', 'instant'],
    ['RENAME COLUMN u TO u2', 'instant'],
    ['RENAME INDEX kn TO kn2', 'instant'],
    ['DROP INDEX kn', 'instant'],
    ["MODIFY v VARCHAR(40) NOT NULL DEFAULT 'a'", 'instant'],
    ['MODIFY c CHAR(3) COLLATE utf8mb4_bin NULL', 'instant'],
    ["MODIFY v VARCHAR(20) COLLATE utf8mb4_bin NOT NULL DEFAULT 'a'", 'copy'],
    ['ADD INDEX ku (u)', 'copy'],
    ['ADD UNIQUE KEY uu (u)', 'copy'],
    ['MODIFY n BIGINT NULL', 'copy'],
    ['MODIFY u INT NOT NULL', 'copy'],
    ['FORCE', 'copy'],
  ];

  it.each(PARTS)('%s -> %s, as the counters say', async (part, expected) => {
    await create(T, ROWS);
    const classified = await engine.classifyAlter(T, part);
    expect(classified.parts.map((p) => p.class)).toEqual([expected]);
    if (expected === 'instant') {
      // The very statement the in-place path runs, on the real table.
      const work = await serverWork(T, classified.steps[0].sql[0]);
      expect(work.newIds).toEqual([]);
      expect(work.rowsRead).toBeLessThan(ROWS);
    } else {
      // Refused without a rebuild, or the work shows.
      const tried = await serverWork(T, `ALTER TABLE ${T} ${part}, ALGORITHM=NOCOPY, LOCK=NONE`).catch((e: Error) => e);
      if (!(tried instanceof Error)) expect(tried.newIds.length + (tried.rowsRead >= ROWS ? 1 : 0)).toBeGreaterThan(0);
    }
  });

  it('a partitioned table is watched partition by partition; a name InnoDB spells differently (a dash) is found', async () => {
    await db.query('DROP TABLE IF EXISTS `ipp-part`');
    await db.query(
      'CREATE TABLE `ipp-part` (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL, u INT, KEY kv (v)) DEFAULT CHARSET=utf8mb4 PARTITION BY HASH (id) PARTITIONS 3',
    );
    await db.query('INSERT INTO `ipp-part` SELECT seq, seq, seq FROM seq_1_to_300');
    const classes = async (alter: string) => (await engine.classifyAlter('ipp-part', alter)).parts.map((p) => p.class);
    expect(await classes('ADD COLUMN note INT NULL')).toEqual(['instant']);
    expect(await classes('ADD INDEX ku (u)')).toEqual(['copy']);
    expect(await classes('MODIFY v VARCHAR(20) COLLATE utf8mb4_bin NOT NULL')).toEqual(['copy']);
    await db.query('DROP TABLE `ipp-part`');
  });

  it('without the PROCESS privilege nothing can be proven: every part takes the copy, and the reason says why', async () => {
    await create(T, 100);
    await db.query('DROP USER IF EXISTS ipp_noproc');
    await db.query("CREATE USER ipp_noproc IDENTIFIED BY 'ipp-secret'");
    await db.query('GRANT ALL ON ' + '`' + new URL(mysqlUrl()).pathname.slice(1) + '`.* TO ipp_noproc');
    const url = new URL(mysqlUrl());
    url.username = 'ipp_noproc';
    url.password = 'ipp-secret';
    const limited = await createMysqlEngine(url.toString());
    try {
      const classified = await limited.classifyAlter(T, 'ADD COLUMN note INT NULL');
      expect(classified.parts.map((p) => p.class)).toEqual(['copy']);
      expect(classified.parts[0].reason).toMatch(/PROCESS privilege/);
    } finally {
      await limited.close();
      await db.query('DROP USER ipp_noproc');
    }
  });

  it('an in-place run under a reader: the reader never waits much longer than the lock timeout, even behind a long transaction', async () => {
    await create(T, 200_000);
    const lockTimeoutMs = 150;
    const blocker = await db.getConnection();
    const reader = await db.getConnection();
    let longest = 0;
    let reading = true;
    const reads = (async () => {
      while (reading) {
        const started = performance.now();
        await reader.query(`SELECT v FROM ${T} WHERE id = ?`, [1 + Math.floor(Math.random() * 200_000)]);
        longest = Math.max(longest, performance.now() - started);
      }
    })();
    try {
      // An open transaction holds the table's metadata lock until six attempts have given up: each
      // attempt's ALTER queues the reader behind it until the watchdog cuts the wait. Their lock waits
      // alone (6 x 150 ms) outlast the bound asserted below: a reader waiting without a bound would break it.
      await blocker.query('BEGIN');
      await blocker.query(`SELECT * FROM ${T} LIMIT 1`);
      const failed: string[] = [];
      const reporter = { ...silentReporter, warn: (message: string) => void failed.push(message) };
      const release = waitFor('six attempts given up', () => failed.filter((m) => / attempt \d+ failed /.test(m)).length >= 6, null, 60_000).then(() =>
        blocker.query('COMMIT'),
      );
      const result = await migrateMysql(
        T,
        "ADD COLUMN note VARCHAR(10) NULL, DROP COLUMN w, RENAME INDEX kn TO kn2, MODIFY v VARCHAR(40) NOT NULL DEFAULT 'a'",
        {
          forceCopy: false,
          lockTimeoutMs,
          cutoverAttempts: 40,
          reporter,
        },
      );
      await release;
      expect(result.path).toBe('in-place');
      expect(result.parts.every((p) => p.class === 'instant')).toBe(true);
      expect(result.executed).toBe(true);
    } finally {
      reading = false;
      await reads;
      blocker.release();
      reader.release();
    }
    // Without a bound on the waits the reader would wait for the blocker's whole hold (six attempts).
    expect(longest).toBeLessThan(lockTimeoutMs + 700);
    const [cols] = await db.query<mysql.RowDataPacket[]>(`SHOW COLUMNS FROM ${T}`);
    expect(cols.map((c) => c.Field)).toEqual(['id', 'v', 'n', 'u', 'c', 'note']);
  });
});

/** A table whose index builds take a while: wide random keys to sort. */
async function createBig(): Promise<void> {
  await db.query('DROP TABLE IF EXISTS ipp_big');
  await db.query('CREATE TABLE ipp_big (id INT PRIMARY KEY, w INT NOT NULL, pad VARCHAR(250) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=latin1');
  await db.query('INSERT INTO ipp_big SELECT seq, seq, REPEAT(MD5(seq), 7) FROM seq_1_to_300000');
}

describe('the in-place watchdog cuts waits, not work (MariaDB)', () => {
  it('a step that works longer than the lock timeout is not killed', async () => {
    await createBig();
    // Not less: InnoDB's own background work (statistics after the fill) may hold the table's lock a moment.
    const lockTimeoutMs = 150;
    const started = performance.now();
    await engine.runInPlaceStep(
      { what: 'build', sql: ['ALTER TABLE ipp_big ADD INDEX kw (pad, w), ALGORITHM=NOCOPY, LOCK=NONE'], transaction: false, undo: [] },
      lockTimeoutMs,
    );
    // It did work well past its deadline (else this test proves nothing), and it is made.
    expect(performance.now() - started).toBeGreaterThan(lockTimeoutMs * 2);
    const [keys] = await db.query<mysql.RowDataPacket[]>("SHOW INDEX FROM ipp_big WHERE Key_name = 'kw'");
    expect(keys.map((k) => k.Column_name)).toEqual(['pad', 'w']);
  });

  it('a step past its deadline that then waits for the lock at its end is cut as soon as it waits', async () => {
    await createBig();
    const blocker = await db.getConnection();
    try {
      const started = performance.now();
      const step = engine.runInPlaceStep(
        { what: 'build', sql: ['ALTER TABLE ipp_big ADD INDEX ku (pad), ALGORITHM=NOCOPY, LOCK=NONE'], transaction: false, undo: [] },
        150,
      );
      const outcome = step.then(
        () => null,
        (e: Error) => e,
      );
      // Once the build runs past its deadline, a transaction reads the table and stays open: the ALTER
      // cannot upgrade its lock at the end.
      const altering = async () => {
        const [rows] = await db.query<mysql.RowDataPacket[]>(
          "SELECT STATE AS s FROM information_schema.PROCESSLIST WHERE INFO LIKE 'ALTER TABLE ipp\\_big ADD INDEX ku%'",
        );
        return rows.length > 0 && rows[0].s === 'altering table' && performance.now() - started > 200;
      };
      await waitFor('the build altering the table past its deadline', altering, null, 10_000);
      await blocker.query('BEGIN');
      await blocker.query('SELECT * FROM ipp_big LIMIT 1');
      // Held until the step ends: cut, it ends while the blocker still holds. Not timed from here,
      // since the build still works on (seconds on a busy machine) before it waits. Watched once at
      // the deadline only, it would wait for the blocker (lock_wait_timeout: a day), and succeed once
      // the blocker commits below.
      let patience: NodeJS.Timeout | undefined;
      const givenUp = new Promise((r) => (patience = setTimeout(() => r('still waiting'), 60_000)));
      const ended = await Promise.race([outcome, givenUp]);
      clearTimeout(patience);
      expect(ended).toBeInstanceOf(LockTimeoutError);
    } finally {
      await blocker.query('COMMIT');
      blocker.release();
    }
    const [keys] = await db.query<mysql.RowDataPacket[]>("SHOW INDEX FROM ipp_big WHERE Key_name = 'ku'");
    expect(keys).toEqual([]);
  });

  it("a step waiting for another session's metadata lock is cut within the bound", async () => {
    await create(T, 100);
    const blocker = await db.getConnection();
    try {
      await blocker.query('BEGIN');
      await blocker.query(`SELECT * FROM ${T} LIMIT 1`);
      const started = performance.now();
      const step = engine.runInPlaceStep(
        { what: 'add', sql: [`ALTER TABLE ${T} ADD COLUMN z INT NULL, ALGORITHM=INSTANT`], transaction: false, undo: [] },
        200,
      );
      await expect(step).rejects.toBeInstanceOf(LockTimeoutError);
      expect(performance.now() - started).toBeLessThan(200 + 800);
    } finally {
      await blocker.query('COMMIT');
      blocker.release();
    }
    const [cols] = await db.query<mysql.RowDataPacket[]>(`SHOW COLUMNS FROM ${T} LIKE 'z'`);
    expect(cols).toEqual([]);
  });
});

describe("probes are shadowcut's own (MariaDB)", () => {
  it.each(['__pp', '__pa', '__pb'])("a user's table named %s stops the run in one line, and is left as it is", async (suffix) => {
    await create(T, 500);
    await db.query(`DROP TABLE IF EXISTS ${T}__pp, ${T}__pa, ${T}__pb, ${T}__old`);
    await db.query(`CREATE TABLE ${T}${suffix} (k INT PRIMARY KEY, note TEXT)`);
    await db.query(`INSERT INTO ${T}${suffix} VALUES (1, 'mine'), (2, 'also mine')`);
    // MODIFY n BIGINT takes the copy: classification (__pp), the plan's sample (__pp), the mapping proof (__pa, __pb).
    for (const args of [
      ['plan', '--url', '$URL', '--table', T, '--alter', 'MODIFY n BIGINT NULL'],
      ['migrate', '--url', '$URL', '--table', T, '--alter', 'MODIFY n BIGINT NULL', '--execute'],
    ]) {
      if (suffix !== '__pp' && args[0] === 'plan') continue; // plan never makes the proof's probes
      const r = runCli(args);
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toEqual([expect.stringContaining(`${T}${suffix} exists and is not a shadowcut probe`)]);
    }
    expect(await helperTables(db, T)).toEqual([]);
    expect(runCli(['cleanup', '--url', '$URL', '--table', T]).code).toBe(0);
    const [rows] = await db.query<mysql.RowDataPacket[]>(`SELECT k, note FROM ${T}${suffix} ORDER BY k`);
    expect(rows.map((r) => [r.k, r.note])).toEqual([
      [1, 'mine'],
      [2, 'also mine'],
    ]);
    const [cols] = await db.query<mysql.RowDataPacket[]>(`SHOW COLUMNS FROM ${T} LIKE 'n'`);
    expect(String(cols[0].Type)).toBe('int(11)');
    await db.query(`DROP TABLE ${T}${suffix}`);
  });

  it('a marked probe a killed run left is dropped, and the run goes on', async () => {
    await create(T, 500);
    await db.query(`DROP TABLE IF EXISTS ${T}__pp, ${T}__pa, ${T}__pb`);
    await db.query(`CREATE TABLE ${T}__pp (stale INT) COMMENT 'shadowcut probe: safe to drop'`);
    const r = runCli(['plan', '--url', '$URL', '--table', T, '--alter', 'ADD COLUMN note INT NULL', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [left] = await db.query<mysql.RowDataPacket[]>(`SHOW TABLES LIKE '${T}\\_\\_p_'`);
    expect(left).toEqual([]);
  });
});

describe('DROP FOREIGN KEY in place (MariaDB)', () => {
  it('the probe carries the foreign keys under names of its own: the server classifies the drop, and it is made in place', async () => {
    await db.query('DROP TABLE IF EXISTS ipp_child, ipp_parent');
    await db.query('CREATE TABLE ipp_parent (id INT PRIMARY KEY) ENGINE=InnoDB');
    await db.query('INSERT INTO ipp_parent SELECT seq FROM seq_1_to_100');
    await db.query(
      'CREATE TABLE ipp_child (id INT PRIMARY KEY, pid INT NOT NULL, qid INT NULL, KEY kp (pid), ' +
        'CONSTRAINT fk_child_parent FOREIGN KEY (pid) REFERENCES ipp_parent (id) ON DELETE CASCADE, ' +
        'CONSTRAINT fk_child_q FOREIGN KEY (qid) REFERENCES ipp_parent (id)) ENGINE=InnoDB',
    );
    await db.query('INSERT INTO ipp_child SELECT seq, 1 + seq % 100, NULL FROM seq_1_to_1000');
    const plan = runCli(['plan', '--url', '$URL', '--table', 'ipp_child', '--alter', 'DROP FOREIGN KEY fk_child_parent', '--json']);
    expect(plan.stderr).toBe('');
    expect(JSON.parse(plan.stdout).detail.parts.map((p: { class: string }) => p.class)).toEqual(['instant']);
    expect((await engine.classifyAlter('ipp_child', 'DROP CONSTRAINT `fk_child_q`')).path).toBe('in-place');
    // The probe's foreign keys hold it to what the real table allows: the index a foreign key needs stays.
    await expect(engine.classifyAlter('ipp_child', 'DROP INDEX kp')).rejects.toThrow(/needed in a foreign key constraint/);

    const result = await migrateMysql('ipp_child', 'DROP FOREIGN KEY fk_child_parent', { forceCopy: false });
    expect(result.path).toBe('in-place');
    expect(result.executed).toBe(true);
    const [fks] = await db.query<mysql.RowDataPacket[]>(
      "SELECT CONSTRAINT_NAME AS n FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = 'ipp_child' ORDER BY 1",
    );
    expect(fks.map((r) => r.n)).toEqual(['fk_child_q']);
    // The probe's own foreign keys went with it.
    const [left] = await db.query<mysql.RowDataPacket[]>(
      "SELECT CONSTRAINT_NAME AS n FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND CONSTRAINT_NAME LIKE 'shadowcut%'",
    );
    expect(left).toEqual([]);
    const [[count]] = await db.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM ipp_child');
    expect(Number(count.n)).toBe(1000);
  });
});
