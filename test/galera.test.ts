// A three-node MariaDB Galera cluster of its own (scripts/servers.sh galera-up), started here and
// stopped in afterAll. Issue 34: the copy path's cut-over (LOCK TABLES on one session, the RENAME
// queued on another) wedged a whole cluster, since LOCK TABLES is node-local and the RENAME runs in
// total order isolation, where it cannot be killed. Nothing here may hang: every statement of the
// test's own has a client-side timer that fails the test instead.
import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMysqlEngine } from '../src/engines/mysql/index.js';
import { adminPool } from './support/mysql.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const script = path.join(repo, 'scripts', 'servers.sh');
const cli = path.join(repo, 'dist', 'src', 'cli', 'main.js');

/** Bounds: what an INSERT or a DDL on a healthy loopback cluster takes is far below these. */
const STATEMENT_MS = 15_000;
/** A refusal takes seconds; the unchanged code copied 50k rows before it wedged. */
const RUN_MS = 240_000;

let urls: string[] = [];
let pools: mysql.Pool[] = [];
let healthy = false;

function servers(command: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [script, command], { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`servers.sh ${command} failed: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

function pool(url: string): mysql.Pool {
  // A node that does not answer must fail the test, not hang it.
  return adminPool(url, { connectTimeout: 5_000 });
}

/**
 * `work`, or a rejection at `ms` whatever it waits for (a pool's free connection, a connect, the
 * statement): mysql2's own query timeout does not cover the first two. What hangs is left behind.
 */
function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`hang detected: ${what} did not end within ${ms} ms`)), ms)));
  work.catch(() => {}); // a late failure of what was given up on
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** A statement that must end within `ms`. */
async function bounded(db: mysql.Pool, sql: string, ms = STATEMENT_MS): Promise<number> {
  const t0 = Date.now();
  try {
    await within(db.query({ sql, timeout: ms }), ms + 1_000, `"${sql}"`);
  } catch (error) {
    // mysql2's own timer, which usually fires first.
    if ((error as { code?: string }).code === 'PROTOCOL_SEQUENCE_TIMEOUT') throw new Error(`hang detected: "${sql}" did not end within ${ms} ms`);
    throw error;
  }
  return Date.now() - t0;
}

/** A fresh 100-row table `t`, made on node 1 (the cluster has it everywhere once it returns). */
const smallTable = (t: string) =>
  bounded(
    pools[0],
    `DROP TABLE IF EXISTS ${t}; CREATE TABLE ${t} (id INT PRIMARY KEY, v INT) ENGINE=InnoDB; INSERT INTO ${t} SELECT seq, seq FROM seq_1_to_100`,
  );

/**
 * shadowcut's helper objects on one node: tables of the table's helper names, and triggers; with
 * `history`, also the history table that a run which changed something writes (a refusal must not).
 */
async function helpers(db: mysql.Pool, table: string, history = false): Promise<string[]> {
  const [tables] = await within(
    db.query<mysql.RowDataPacket[]>({
      sql: "SELECT TABLE_NAME n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND (TABLE_NAME LIKE CONCAT(?, '\\_\\_%') OR TABLE_NAME = ?)",
      values: [table, history ? 'shadowcut_history' : ''],
      timeout: STATEMENT_MS,
    }),
    STATEMENT_MS,
    'listing tables',
  );
  const [triggers] = await within(
    db.query<mysql.RowDataPacket[]>({ sql: 'SELECT TRIGGER_NAME n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()', timeout: STATEMENT_MS }),
    STATEMENT_MS,
    'listing triggers',
  );
  return [...tables, ...triggers].map((r) => String(r.n));
}

/** Writes on one node until stopped: the longest one's time, and how many failed for what. */
function writer(db: mysql.Pool, table: string, rows: number) {
  let stop = false;
  const out = { writes: 0, longestMs: 0, errors: new Map<string, number>() };
  const done = (async () => {
    while (!stop) {
      const id = 1 + Math.floor(Math.random() * rows);
      const t0 = Date.now();
      try {
        const write =
          Math.random() < 0.5
            ? db.query({ sql: `INSERT INTO ${table} (v) VALUES (?)`, values: [`w${t0}`], timeout: STATEMENT_MS })
            : db.query({ sql: `UPDATE ${table} SET n = n + 1 WHERE id = ?`, values: [id], timeout: STATEMENT_MS });
        await within(write, STATEMENT_MS + 1_000, 'a write');
        out.writes++;
      } catch (error) {
        const code = String((error as { code?: string }).code ?? (error as Error).message.replace(/ within .*/, ''));
        out.errors.set(code, (out.errors.get(code) ?? 0) + 1);
        // A connection given up on by the timer is gone: a wedged cluster answers no new one either.
        if (/hang detected|TIMEOUT/.test(code)) await new Promise((r) => setTimeout(r, 200));
      }
      out.longestMs = Math.max(out.longestMs, Date.now() - t0);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    out,
    async stop() {
      stop = true;
      await done;
      return out;
    },
  };
}

/** `migrate`, killed at `ms`: null when it did not end by itself. */
function migrateBounded(url: string, args: string[], ms = RUN_MS) {
  return cliBounded(['migrate', '--url', url, ...args], ms);
}

/** The CLI, killed at `ms`: null when it did not end by itself. */
async function cliBounded(args: string[], ms: number): Promise<{ code: number | null; stdout: string; stderr: string } | null> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const ended = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  const code = await Promise.race([ended, timeout]);
  clearTimeout(timer);
  if (code === 'timeout') {
    child.kill('SIGKILL');
    await ended;
    return null;
  }
  return { code, stdout, stderr };
}

beforeAll(async () => {
  const env = await servers('galera-up', 280_000);
  const line = env.split('\n').find((l) => l.startsWith('export SHADOWCUT_GALERA_URLS='));
  if (!line) throw new Error(`servers.sh galera-up printed no SHADOWCUT_GALERA_URLS:\n${env}`);
  urls = line.replace('export SHADOWCUT_GALERA_URLS=', '').trim().split(',');
  expect(urls).toHaveLength(3);
  pools = urls.map(pool);
  const [[size]] = await within(pools[0].query<mysql.RowDataPacket[]>("SHOW GLOBAL STATUS LIKE 'wsrep_cluster_size'"), STATEMENT_MS, 'the cluster size');
  expect(Number(size.Value)).toBe(3);
}, 300_000);

afterAll(async () => {
  // A pool whose server is wedged would wait for it: destroyed, not ended.
  await Promise.race([Promise.all(pools.map((p) => p.end().catch(() => {}))), new Promise((r) => setTimeout(r, 3_000))]);
  if (!(healthy && process.env.SHADOWCUT_KEEP_SERVERS)) await servers('galera-down', 120_000);
}, 150_000);

describe('MariaDB Galera cluster', () => {
  it('a copy-path migrate with writes on two other nodes ends, and the cluster still takes writes and DDL on every node', async () => {
    const [n1, n2, n3] = pools;
    const t = 'g_wedge';
    await bounded(n1, `DROP TABLE IF EXISTS ${t}, ${t}__new, ${t}__old, ${t}__state, ${t}__hb, ${t}__log, g_ddl`);
    await bounded(n1, `CREATE TABLE ${t} (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40) NOT NULL, n INT NOT NULL DEFAULT 0) ENGINE=InnoDB`);
    await bounded(n1, `INSERT INTO ${t} (v) SELECT CONCAT('v', seq) FROM seq_1_to_50000`, 120_000);
    const writers = [writer(n2, t, 50_000), writer(n3, t, 50_000)];
    let run: Awaited<ReturnType<typeof migrateBounded>>;
    try {
      await new Promise((r) => setTimeout(r, 500));
      run = await migrateBounded(urls[0], ['--table', t, '--alter', 'ADD COLUMN x INT NULL, ADD KEY (n)', '--force-copy', '--execute']);
    } finally {
      const seen = await Promise.all(writers.map((w) => w.stop()));
      console.log(
        'writers',
        seen.map((s) => ({ writes: s.writes, longestMs: s.longestMs, errors: Object.fromEntries(s.errors) })),
      );
    }
    console.log('migrate', run === null ? 'did not end' : { code: run.code, stderr: run.stderr.trim().slice(-600) });
    // The cluster after it: an INSERT on every node, and a DDL (which every node runs in total order).
    for (const [i, db] of pools.entries()) await bounded(db, `INSERT INTO ${t} (v) VALUES ('after on node ${i + 1}')`);
    await bounded(n1, 'CREATE TABLE g_ddl (id INT PRIMARY KEY) ENGINE=InnoDB');
    await bounded(n2, 'DROP TABLE g_ddl');
    expect(run, 'migrate did not end within the bound').not.toBeNull();
    // Refused (until a cut-over safe under TOI exists): before anything was made, on any node.
    expect(run!.code).not.toBe(0);
    for (const db of pools) expect(await helpers(db, t, true)).toEqual([]);
    healthy = true;
  }, 400_000);

  it('the copy path is refused in one line that names Galera, before anything is made on any node; the dry run says why', async () => {
    const t = 'g_refuse';
    await smallTable(t);
    const run = await migrateBounded(urls[0], ['--table', t, '--alter', 'ADD COLUMN x INT', '--force-copy', '--execute'], 60_000);
    expect(run).not.toBeNull();
    expect(run!.code).not.toBe(0);
    const lines = run!.stderr.trim().split('\n');
    expect(lines, run!.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/Galera/);
    expect(lines[0]).toMatch(/total order isolation/);
    for (const db of pools) expect(await helpers(db, t, true)).toEqual([]);

    // contract --backup-to of a column makes its backup final under LOCK TABLES: refused the same way.
    const contract = await cliBounded(['contract', '--url', urls[0], '--table', t, '--drop-column', 'v', '--backup-to', `${t}_kept`, '--execute'], 60_000);
    expect(contract!.code).not.toBe(0);
    expect(contract!.stderr.trim().split('\n'), contract!.stderr).toHaveLength(1);
    expect(contract!.stderr).toMatch(/Galera.*--backup-to/);
    for (const db of pools) {
      const [cols] = await within(db.query<mysql.RowDataPacket[]>(`SHOW COLUMNS FROM ${t} LIKE 'v'`), STATEMENT_MS, 'SHOW COLUMNS');
      expect(cols).toHaveLength(1);
      expect(await helpers(db, `${t}_kept`)).toEqual([]);
      const [kept] = await within(db.query<mysql.RowDataPacket[]>(`SHOW TABLES LIKE '${t}\\_kept'`), STATEMENT_MS, 'SHOW TABLES');
      expect(kept).toHaveLength(0);
    }

    const dry = await migrateBounded(urls[0], ['--table', t, '--alter', 'ADD COLUMN x INT', '--force-copy'], 60_000);
    expect(dry!.code).not.toBe(0);
    expect(dry!.stdout + dry!.stderr).toMatch(/Galera/);
    for (const db of pools) expect(await helpers(db, t, true)).toEqual([]);
  }, 150_000);

  it('in place, a metadata-only ALTER is made on every node while writers on every node go on; a rebuild in place is refused like the copy', async () => {
    const t = 'g_inplace';
    await bounded(
      pools[0],
      `DROP TABLE IF EXISTS ${t}; CREATE TABLE ${t} (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40) NOT NULL, n INT NOT NULL DEFAULT 0) ENGINE=InnoDB`,
    );
    await bounded(pools[0], `INSERT INTO ${t} (v) SELECT CONCAT('v', seq) FROM seq_1_to_5000`);
    const writers = pools.map((db) => writer(db, t, 5_000));
    let run: Awaited<ReturnType<typeof migrateBounded>>;
    try {
      await new Promise((r) => setTimeout(r, 300));
      run = await migrateBounded(urls[0], ['--table', t, '--alter', 'ADD COLUMN y INT NULL', '--execute'], 90_000);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      const seen = await Promise.all(writers.map((w) => w.stop()));
      for (const w of seen) expect(w.longestMs, JSON.stringify(Object.fromEntries(w.errors))).toBeLessThan(5_000);
    }
    expect(run, 'migrate did not end').not.toBeNull();
    expect(run!.code, run!.stderr).toBe(0);
    expect(run!.stdout).toMatch(/path: in-place .*Galera/);
    for (const db of pools) {
      const [cols] = await within(db.query<mysql.RowDataPacket[]>(`SHOW COLUMNS FROM ${t} LIKE 'y'`), STATEMENT_MS, 'SHOW COLUMNS');
      expect(cols).toHaveLength(1);
      expect(await helpers(db, t)).toEqual([]);
    }

    // An index build in place would hold every node for its whole length under TOI: it takes the copy, refused here.
    const rebuild = await migrateBounded(urls[0], ['--table', t, '--alter', 'ADD KEY (v)', '--execute'], 90_000);
    expect(rebuild!.code).not.toBe(0);
    expect(rebuild!.stderr.trim().split('\n')).toHaveLength(1);
    expect(rebuild!.stderr).toMatch(/Galera.*copy path is refused/);
    for (const db of pools) expect(await helpers(db, t)).toEqual([]);
  }, 240_000);

  it('wsrep_OSU_method=RSU is refused on either path in one line, before anything is made', async () => {
    const t = 'g_rsu';
    await bounded(pools[0], `DROP TABLE IF EXISTS ${t}; CREATE TABLE ${t} (id INT PRIMARY KEY, v INT) ENGINE=InnoDB`);
    await bounded(pools[0], "SET GLOBAL wsrep_OSU_method = 'RSU'");
    try {
      for (const extra of [[], ['--force-copy']]) {
        const run = await migrateBounded(urls[0], ['--table', t, '--alter', 'ADD COLUMN x INT', '--execute', ...extra], 60_000);
        expect(run!.code).not.toBe(0);
        expect(run!.stderr.trim().split('\n'), run!.stderr).toHaveLength(1);
        expect(run!.stderr).toMatch(/wsrep_OSU_method=RSU/);
      }
    } finally {
      await bounded(pools[0], "SET GLOBAL wsrep_OSU_method = 'TOI'");
    }
    for (const db of pools) {
      expect(await helpers(db, t)).toEqual([]);
      const [cols] = await within(db.query<mysql.RowDataPacket[]>(`SHOW COLUMNS FROM ${t} LIKE 'x'`), STATEMENT_MS, 'SHOW COLUMNS');
      expect(cols).toHaveLength(0);
    }
  }, 150_000);

  it('an in-place ALTER that waits on its own node is never cut short, even by max_statement_time: the other nodes made it the moment it was ordered, so a cancel would split the schema', async () => {
    const t = 'g_split';
    await smallTable(t);
    // A server-wide statement time limit, as a DBA may set: it interrupts a TOI statement waiting on its own
    // node (KILL cannot), after the other nodes made it.
    const engine = await createMysqlEngine(urls[0]);
    // A session of node 1 holds the table (LOCK TABLES: Galera aborts transactions in a DDL's way, not table locks).
    const holder = await within(pools[0].getConnection(), STATEMENT_MS, 'a connection');
    let outcome: unknown = 'done';
    try {
      await within(holder.query(`LOCK TABLES ${t} WRITE`), STATEMENT_MS, 'LOCK TABLES');
      await bounded(pools[0], 'SET GLOBAL max_statement_time = 1');
      const sql = `ALTER TABLE ${t} ADD COLUMN y INT NULL, ALGORITHM=INSTANT`;
      const step = within(engine.runInPlaceStep({ what: sql, sql: [sql], transaction: false, undo: [] }, 300), 60_000, 'the in-place step').catch(
        (error: Error) => (outcome = error.message),
      );
      await new Promise((r) => setTimeout(r, 2_500));
      await within(holder.query('UNLOCK TABLES'), STATEMENT_MS, 'UNLOCK TABLES');
      await step;
    } finally {
      await bounded(pools[0], 'SET GLOBAL max_statement_time = 0');
      holder.release();
      await engine.close();
    }
    const shapes: string[] = [];
    for (const db of pools) {
      const [[row]] = await within(db.query<mysql.RowDataPacket[]>(`SHOW CREATE TABLE ${t}`), STATEMENT_MS, 'SHOW CREATE TABLE');
      shapes.push(String(row['Create Table']));
    }
    expect(shapes[1], `node 2 differs from node 1 (the step: ${String(outcome)})`).toBe(shapes[0]);
    expect(shapes[2], 'node 3 differs from node 1').toBe(shapes[0]);
    expect(outcome).toBe('done');
    expect(shapes[0]).toMatch(/`y` int/);
  }, 150_000);
});
