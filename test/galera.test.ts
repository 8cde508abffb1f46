// A three-node MariaDB Galera cluster of its own (scripts/servers.sh galera-up), started here and
// stopped in afterAll. Issue 34: the copy path's cut-over (LOCK TABLES on one session, the RENAME
// queued on another) wedged a whole cluster, since LOCK TABLES is node-local and the RENAME runs in
// total order isolation, where it cannot be killed; it was then refused. The copy path there now
// holds writers with the gate (src/engines/mysql/galera/gate.ts). Nothing here may hang: every
// statement of the test's own has a client-side timer that fails the test instead.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMysqlEngine } from '../src/engines/mysql/index.js';
import { adminPool } from './support/mysql.js';
import { killDuringPhase } from './support/kill.js';
import type { CaptureMode } from '../src/core/engine/ports/capture.js';
import { chaos, summary } from './chaos/run.js';
import type { PathMode, SeedOutcome } from './chaos/scenario.js';
import { openMysqlProbes } from '../src/engines/mysql/throttle/probes.js';
import { GATE_SLOTS } from '../src/engines/mysql/galera/gate.js';
import { Recorder } from './support/pg.js';
import { waitFor } from './support/run.js';
import { waitUntil } from './support/wait.js';
import { clusterState, within } from './support/galera-state.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const script = path.join(repo, 'scripts', 'servers.sh');
const cli = path.join(repo, 'dist', 'bin', 'shadowcut.js');

/** Bounds: what an INSERT or a DDL on a healthy loopback cluster takes is far below these. */
const STATEMENT_MS = 15_000;
/** A refusal takes seconds; the unchanged code copied 50k rows before it wedged. */
const RUN_MS = 240_000;

let urls: string[] = [];
let pools: mysql.Pool[] = [];

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

/** A statement that must end within `ms`. */
async function bounded(db: mysql.Pool, sql: string, ms = STATEMENT_MS): Promise<number> {
  const t0 = Date.now();
  try {
    await within(db.query({ sql, timeout: ms }), ms + 1_000, `"${sql}"`);
  } catch (error) {
    // mysql2's own timer, which usually fires first.
    const hung = (error as { code?: string }).code === 'PROTOCOL_SEQUENCE_TIMEOUT' || /^hang detected/.test((error as Error).message);
    if (hung) throw new Error(`hang detected: "${sql}" did not end within ${ms} ms\n${await clusterState(urls, repo)}`);
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
    db.query<mysql.RowDataPacket[]>({
      sql: "SELECT TRIGGER_NAME n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME LIKE CONCAT(?, '\\_\\_%')",
      values: [table],
      timeout: STATEMENT_MS,
    }),
    STATEMENT_MS,
    'listing triggers',
  );
  return [...tables, ...triggers].map((r) => String(r.n));
}

/** Writes on one node until stopped: the longest one's time, and how many failed for what. */
function writer(db: mysql.Pool, table: string, rows: number) {
  const out = { writes: 0, longestMs: 0, errors: new Map<string, number>() };
  return repeated(out, async () => {
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
  });
}

/** `once` again and again until stopped, each time timed into `out.longestMs`, 5 ms apart. */
function repeated<T extends { longestMs: number }>(out: T, once: () => Promise<void>) {
  let stop = false;
  const done = (async () => {
    while (!stop) {
      const t0 = Date.now();
      await once();
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

/**
 * Transactions on one node until stopped, each on `table` and on its mirror alike (update, insert with
 * the id the table gave, delete), so that the two must hold the same rows whatever the cut-over does
 * with the table. Errors are counted by code; the gate's own (`being swapped`) apart.
 */
function mirrorWriter(db: mysql.Pool, table: string, rows: number) {
  const out = { writes: 0, changed: 0, longestMs: 0, gateErrors: 0, errors: new Map<string, number>() };
  return repeated(out, async () => {
    const t0 = Date.now();
    const conn = await within(db.getConnection(), STATEMENT_MS, 'a connection');
    const q = (sql: string, values: unknown[]) => within(conn.query<mysql.ResultSetHeader>({ sql, values, timeout: STATEMENT_MS }), STATEMENT_MS + 1_000, sql);
    try {
      await q('START TRANSACTION', []);
      // Galera spaces the ids a node hands out by the cluster's size: the first row from a random point.
      const [[row]] = (await conn.query<mysql.RowDataPacket[]>(`SELECT id FROM ${table} WHERE id >= ? ORDER BY id LIMIT 1`, [
        1 + Math.floor(Math.random() * rows),
      ])) as unknown as [mysql.RowDataPacket[]];
      const id = row ? Number(row.id) : 0;
      const pick = Math.random();
      let changed = 0;
      if (pick < 0.5) {
        changed = (await q(`UPDATE ${table} SET n = n + 1 WHERE id = ?`, [id]))[0].affectedRows;
        await q(`UPDATE ${table}_mirror SET n = n + 1 WHERE id = ?`, [id]);
      } else if (pick < 0.8) {
        const [made] = await q(`INSERT INTO ${table} (v) VALUES (?)`, [`w${t0}`]);
        changed = made.affectedRows;
        await q(`INSERT INTO ${table}_mirror (id, v) VALUES (?, ?)`, [made.insertId, `w${t0}`]);
      } else {
        changed = (await q(`DELETE FROM ${table} WHERE id = ?`, [id]))[0].affectedRows;
        await q(`DELETE FROM ${table}_mirror WHERE id = ?`, [id]);
      }
      await q('COMMIT', []);
      out.writes++;
      if (changed > 0) out.changed++;
    } catch (error) {
      await conn.query('ROLLBACK').catch(() => {});
      if (/being swapped/.test((error as Error).message)) out.gateErrors++;
      else {
        const code = String((error as { code?: string }).code ?? (error as Error).message.replace(/ within .*/, ''));
        out.errors.set(code, (out.errors.get(code) ?? 0) + 1);
      }
    } finally {
      conn.release();
    }
  });
}

/** A table of `rows` rows and its mirror, made on node 1 and there on every node once this returns. */
async function mirroredTable(t: string, rows: number) {
  await bounded(pools[0], `DROP TABLE IF EXISTS ${t}, ${t}_mirror, ${t}__new, ${t}__old, ${t}__state, ${t}__hb, ${t}__gate`);
  await bounded(pools[0], `CREATE TABLE ${t} (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40) NOT NULL, n INT NOT NULL DEFAULT 0) ENGINE=InnoDB`);
  await bounded(pools[0], `INSERT INTO ${t} (v) SELECT CONCAT('v', seq) FROM seq_1_to_${rows}`, 120_000);
  await bounded(pools[0], `CREATE TABLE ${t}_mirror LIKE ${t}`);
  await bounded(pools[0], `INSERT INTO ${t}_mirror SELECT * FROM ${t}`, 120_000);
  // Writers on the other nodes must find the mirror's rows there: a causal read on each.
  for (const db of pools) await bounded(db, `SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM ${t}_mirror; SET SESSION wsrep_sync_wait = 0`);
}

/** On every node, after a causal read: the rows of `t` that differ from its mirror's, and whether it has `column`. */
async function parityOnEveryNode(t: string, column: string): Promise<{ node: number; differing: number; rows: number; hasColumn: boolean }[]> {
  const seen = [];
  for (const [i, db] of pools.entries()) {
    const conn = await within(db.getConnection(), STATEMENT_MS, 'a connection');
    try {
      const read = async (sql: string) => (await within(conn.query<mysql.RowDataPacket[]>({ sql, timeout: STATEMENT_MS }), STATEMENT_MS + 1_000, sql))[0];
      await read('SET SESSION wsrep_sync_wait = 1');
      const [one] = await read(`SELECT COUNT(*) AS c FROM ${t} a LEFT JOIN ${t}_mirror b USING (id) WHERE b.id IS NULL OR a.v <> b.v OR a.n <> b.n`);
      const [other] = await read(`SELECT COUNT(*) AS c FROM ${t}_mirror b LEFT JOIN ${t} a USING (id) WHERE a.id IS NULL`);
      const [count] = await read(`SELECT COUNT(*) AS c FROM ${t}`);
      const columns = await read(`SHOW COLUMNS FROM ${t} LIKE '${column}'`);
      seen.push({ node: i + 1, differing: Number(one.c) + Number(other.c), rows: Number(count.c), hasColumn: columns.length === 1 });
    } finally {
      conn.release();
    }
  }
  return seen;
}

/**
 * `run` succeeded, and on every node (read causally) `t` has `column` and its mirror's rows, and of
 * what the run made only the old table is left.
 */
async function expectMigratedEverywhere(run: Awaited<ReturnType<typeof cliBounded>>, t: string, column = 'x'): Promise<void> {
  expect(run, 'migrate did not end').not.toBeNull();
  expect(run!.code, run!.stderr).toBe(0);
  for (const node of await parityOnEveryNode(t, column)) expect(node, JSON.stringify(node)).toMatchObject({ differing: 0, hasColumn: true });
  for (const [i, db] of pools.entries()) expect(await helpers(db, t), `node ${i + 1}`).toEqual([`${t}__old`]);
}

/**
 * `migrate --force-copy` on node 1 adding `x` to `t`, its cut-over held by a flag file until `go()`
 * (also for a finally: it may be called twice).
 */
function postponedMigrate(t: string, extra: string[] = []) {
  const flag = path.join(repo, `.galera-postpone-${t}-${process.pid}`);
  writeFileSync(flag, '');
  // What the run has said so far, for a test to wait on while it runs.
  let said = '';
  const listen = (child: ChildProcess) => {
    for (const out of [child.stdout, child.stderr]) out?.on('data', (d: Buffer) => (said += d.toString()));
  };
  const running = migrateBounded(
    urls[0],
    ['--table', t, '--alter', 'ADD COLUMN x INT NULL', '--force-copy', ...extra, '--postpone-cutover-flag-file', flag, '--execute'],
    RUN_MS,
    {},
    listen,
  );
  return { running, go: () => rmSync(flag, { force: true }), said: () => said };
}

/** Until the run on `t` holds its cut-over, postponed: its status then. */
async function untilPostponed(t: string): Promise<string> {
  let said = '';
  await waitFor(
    'the postponed cut-over',
    async () => {
      const status = await cliBounded(['status', '--table', t, '--json'], 10_000);
      said = status?.stdout ?? '';
      return status?.code === 0 && /"state":\s*"postponed"/.test(said);
    },
    null,
    120_000,
  );
  return said;
}

/** `migrate`, killed at `ms`: null when it did not end by itself. */
function migrateBounded(url: string, args: string[], ms = RUN_MS, env: Record<string, string> = {}, spawned?: (child: ChildProcess) => void) {
  return cliBounded(['migrate', '--url', url, ...args], ms, env, spawned);
}

/** The CLI, killed at `ms`: null when it did not end by itself. */
async function cliBounded(
  args: string[],
  ms: number,
  env: Record<string, string> = {},
  spawned: (child: ChildProcess) => void = () => {},
): Promise<{ code: number | null; stdout: string; stderr: string; signal: string | null } | null> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  spawned(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  let signal: string | null = null;
  const ended = new Promise<number | null>((resolve) =>
    child.on('close', (code, killedBy) => {
      signal = killedBy;
      resolve(code);
    }),
  );
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  const code = await Promise.race([ended, timeout]);
  clearTimeout(timer);
  if (code === 'timeout') {
    child.kill('SIGKILL');
    await ended;
    return null;
  }
  return { code, stdout, stderr, signal };
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
  // Kept up for the next run only when asked and every node still answers: a wedged cluster goes down.
  const answers = await Promise.all(
    pools.map((db) =>
      within(db.query('SELECT 1'), 3_000, 'SELECT 1').then(
        () => true,
        () => false,
      ),
    ),
  );
  const healthy = answers.length === 3 && answers.every(Boolean);
  // A pool whose server is wedged would wait for it: destroyed, not ended.
  await within(Promise.all(pools.map((p) => p.end().catch(() => {}))), 3_000, 'ending the pools').catch(() => {});
  if (!(healthy && process.env.SHADOWCUT_KEEP_SERVERS)) await servers('galera-down', 120_000);
}, 150_000);

/**
 * Where shadowcut runs and how `auto` has it follow the changes: node 1 keeps a binlog of every node's
 * writes, node 3 has none (scripts/servers.sh), as the cluster of the report had none.
 */
const WAYS = [
  { way: "node 1's binlog", node: 0, capture: 'stream' },
  { way: 'triggers on node 3, which has no binlog', node: 2, capture: 'trigger' },
];

/** The pools of the nodes other than `node`: where the application writes while shadowcut runs on it. */
const othersOf = (node: number) => pools.filter((_, i) => i !== node);

/**
 * Until every writer has committed more writes than at `from` (its counts at some moment, by default
 * now): the cluster took writes on every writer's node since then, whatever the test did meanwhile.
 */
function untilEachWrote(what: string, writers: { out: { writes: number } }[], from = writers.map((w) => w.out.writes)): Promise<void> {
  return waitFor(what, () => writers.every((w, i) => w.out.writes > from[i]), null, 60_000);
}

describe('MariaDB Galera cluster', () => {
  it.each(WAYS)(
    'the copy path following $way, with writes on the two other nodes: the change made on every node, every node exact against a mirror, and the cluster takes writes and DDL after',
    async ({ node, capture }) => {
      // On the code before issue 34 this wedged the cluster (its cut-over's LOCK TABLES against the RENAME in
      // total order); then it was refused. Now the gate holds writers on every node instead.
      const t = 'g_wedge';
      await bounded(pools[0], 'DROP TABLE IF EXISTS g_ddl');
      await mirroredTable(t, 50_000);
      const writers = othersOf(node).map((db) => mirrorWriter(db, t, 50_000));
      let run: Awaited<ReturnType<typeof migrateBounded>>;
      let seen: Awaited<ReturnType<(typeof writers)[0]['stop']>>[];
      try {
        await untilEachWrote('the writers under way', writers, [0, 0]);
        run = await migrateBounded(urls[node], ['--table', t, '--alter', 'ADD COLUMN x INT NULL, ADD KEY (n)', '--force-copy', '--execute']);
        await untilEachWrote('writes after the swap, on the new table', writers);
      } finally {
        seen = await Promise.all(writers.map((w) => w.stop()));
        console.log(
          capture,
          seen.map((w) => ({ writes: w.writes, longestMs: w.longestMs, gate: w.gateErrors, errors: Object.fromEntries(w.errors) })),
        );
      }
      expect(run, 'migrate did not end within the bound').not.toBeNull();
      expect(run!.code, run!.stderr).toBe(0);
      expect(run!.stdout).toMatch(/ok +galera: Galera cluster/);
      // `auto` chose: the binlog where the node has one that holds every node's writes, triggers on node 3.
      expect(run!.stdout).toMatch(capture === 'trigger' ? /changes: triggers .*binary logging is off/ : /changes: the change stream/);
      // The cluster after it: an INSERT on every node, and a DDL (which every node runs in total order).
      for (const [i, db] of pools.entries()) await bounded(db, `INSERT INTO ${t} (v) VALUES ('after on node ${i + 1}')`);
      await bounded(pools[0], 'CREATE TABLE g_ddl (id INT PRIMARY KEY) ENGINE=InnoDB');
      await bounded(pools[1], 'DROP TABLE g_ddl');
      await bounded(pools[0], `INSERT INTO ${t}_mirror (id, v, n) SELECT id, v, n FROM ${t} WHERE v LIKE 'after on node %'`);
      for (const parity of await parityOnEveryNode(t, 'x')) expect(parity, JSON.stringify(parity)).toMatchObject({ differing: 0, hasColumn: true });
      // Nothing of the gate or the capture is left, anywhere; the old table stays (no --drop-old).
      for (const db of pools) expect(await helpers(db, t)).toEqual([`${t}__old`]);
      // Writers were held, never refused: the gate's error is for a run that died sealed.
      for (const w of seen) expect(w.gateErrors).toBe(0);
    },
    400_000,
  );

  const PHASES = [
    ['copy', 'killed 300 ms into the copy'],
    ['verify', 'killed as the verification starts'],
    ['galera-sealed', 'killed with the gate sealed, before the RENAME'],
    ['galera-renamed', 'killed right after the RENAME, its gates still held'],
  ];
  it.each(WAYS.flatMap(({ way, node }) => PHASES.map(([at, what]) => ({ way, node, at, what }))))(
    'following $way, killed at $at ($what) with writes on two other nodes, then resumed: exact on every node',
    async ({ node, at }) => {
      const t = 'g_kill';
      const url = urls[node];
      await cliBounded(['cleanup', '--url', url, '--table', t, '--drop-old'], 60_000);
      await mirroredTable(t, 30_000);
      const writers = othersOf(node).map((db) => mirrorWriter(db, t, 30_000));
      const alter = 'ADD COLUMN x INT NULL';
      try {
        await untilEachWrote('the writers under way', writers, [0, 0]);
        const common = ['--table', t, '--alter', alter, '--chunk-time-ms', '10'];
        const args = [...common, '--force-copy', '--execute'];
        if (at.startsWith('galera-')) {
          const crash = await migrateBounded(url, args, RUN_MS, { SHADOWCUT_TEST_KILL_AT: at });
          expect(crash, 'the run did not end').not.toBeNull();
          expect(crash!.signal, crash!.stderr).toBe('SIGKILL');
          const before = writers.map((w) => w.out.changed);
          if (at === 'galera-sealed') {
            // Fail closed: with the run dead between its seal and its RENAME, no writer changes a row of the
            // table. Looked at once each writer has met the sealed gate three times since the crash.
            const refused = writers.map((w) => w.out.gateErrors);
            await waitFor('every writer refused at the sealed gate', () => writers.every((w, i) => w.out.gateErrors >= refused[i] + 3), null, 60_000);
            expect(writers.map((w) => w.out.changed)).toEqual(before);
            expect(writers.every((w) => w.out.gateErrors > 0)).toBe(true);
          } else {
            // Swapped: writers go on, on the new table.
            await waitFor('every writer changing rows of the new table', () => writers.every((w, i) => w.out.changed > before[i]), null, 60_000);
            writers.forEach((w, i) => expect(w.out.changed).toBeGreaterThan(before[i]));
          }
        } else {
          const paced = at === 'copy' ? ['--max-rows-per-sec', '10000'] : [];
          const crash = await killDuringPhase(['--url', url, ...common, ...paced], at, at === 'copy' ? 300 : 0);
          expect(crash.killed, `the run ended before ${at} (exit ${crash.exitCode}): ${crash.stderr}`).toBe(true);
          // Writers go on meanwhile, to the original, which the binlog or the triggers still follow.
          const before = writers.map((w) => w.out.changed);
          await waitFor('every writer changing rows of the original', () => writers.every((w, i) => w.out.changed > before[i]), null, 60_000);
          writers.forEach((w, i) => expect(w.out.changed).toBeGreaterThan(before[i]));
        }
        if (at === 'copy' || at === 'galera-sealed') {
          // Resumed on another node: its binlog position and its log's table ids are the first node's. Refused, nothing touched;
          // with the gate sealed, the line says that writers fail at it meanwhile, and what opens it.
          const elsewhere = await migrateBounded(urls[(node + 1) % urls.length], [...args, '--resume']);
          expect(elsewhere?.code, elsewhere?.stderr).toBe(2);
          expect(elsewhere!.stderr.trim().split('\n'), elsewhere!.stderr).toHaveLength(1);
          expect(elsewhere!.stderr).toMatch(new RegExp(`interrupted run was made on node node${node + 1}, not node${((node + 1) % urls.length) + 1}`));
          const sealed = new RegExp(
            `meanwhile every node's writes to ${t} fail at the gate the interrupted run sealed: "shadowcut cleanup --table ${t}" opens it`,
          );
          if (at === 'galera-sealed') expect(elsewhere!.stderr).toMatch(sealed);
          else expect(elsewhere!.stderr).not.toMatch(sealed);
        }
        const resumed = await migrateBounded(url, [...args, '--resume']);
        expect(resumed, 'the resumed run did not end').not.toBeNull();
        expect(resumed!.code, resumed!.stderr).toBe(0);
        await untilEachWrote('writes after the swap, on the new table', writers);
      } finally {
        const seen = await Promise.all(writers.map((w) => w.stop()));
        console.log(
          at,
          seen.map((w) => ({ writes: w.writes, longestMs: w.longestMs, gate: w.gateErrors, errors: Object.fromEntries(w.errors) })),
        );
      }
      for (const node of await parityOnEveryNode(t, 'x')) expect(node, JSON.stringify(node)).toMatchObject({ differing: 0, hasColumn: true });
      for (const db of pools) expect(await helpers(db, t)).toEqual([`${t}__old`]);
    },
    400_000,
  );

  // Seeds whose tables no other table's keys reference (those are refused on Galera), drawn from 1-30,
  // where the others were refused (0 FAIL in 60 runs).
  const CHAOS_SEEDS = [3, 11, 14, 16, 17, 20, 26];
  /** A seed takes about ten seconds on a loaded 2-core machine: this is a hang's bound, not a budget. */
  const RANDOMIZED_MS = 600_000;
  /** The randomized tester on the cluster, shadowcut on node 1: no seed fails, and at least six pass as `counted` says. */
  async function randomized(options: { paths: PathMode[]; capture?: CaptureMode }, counted: (o: SeedOutcome) => boolean): Promise<void> {
    // Each seed's line as it ends, and the cluster's state should the seeds outlast most of the test's
    // time: a stuck seed is then named in CI's output, with what every node was doing. No seed starts
    // in the last two minutes, so that none goes on beside the next tests once this one has failed.
    const began = Date.now();
    const watchdog = setTimeout(
      () =>
        void clusterState(urls, repo).then((state) =>
          console.error(`randomized on Galera: still running after ${Math.round((Date.now() - began) / 1000)} s\n${state}`),
        ),
      RANDOMIZED_MS - 60_000,
    );
    const outcomes = await chaos(
      { engines: ['mysql'], seeds: CHAOS_SEEDS, minutes: (RANDOMIZED_MS - 120_000) / 60_000, rows: 1000, json: null, servers: 'galera', ...options },
      { galeraUrls: urls.join(',') },
      (line) => console.log(`[${Math.round((Date.now() - began) / 1000)} s] ${line}`),
    ).finally(() => clearTimeout(watchdog));
    expect(
      outcomes.filter((o) => o.verdict === 'FAIL'),
      summary(outcomes),
    ).toEqual([]);
    expect(outcomes.filter((o) => counted(o) && o.verdict === 'pass').length, summary(outcomes)).toBeGreaterThanOrEqual(6);
  }

  it(
    `randomized migrations with the writers and the reader on the two other nodes: seeds ${CHAOS_SEEDS.join(', ')} on both paths pass or are refused as the server refuses`,
    () => randomized({ paths: ['default', 'copy'] }, (o) => o.took === 'copy'),
    RANDOMIZED_MS,
  );

  it(
    `randomized migrations with trigger capture on node 1, the writers and the reader on the two other nodes: seeds ${CHAOS_SEEDS.join(', ')} copied`,
    () => randomized({ paths: ['copy'], capture: 'trigger' }, (o) => o.capturedBy === 'trigger'),
    RANDOMIZED_MS,
  );

  it('trigger capture: a change another node numbered below entries already applied here, committed late, is still delivered', async () => {
    // The log's reads start above a floor that only a proof moves. A writer on node 2 numbers its entry
    // with node 2's counter, below what nodes 1 and 3 hand out after it, and node 1 sees neither the
    // entry nor its transaction until it commits: a horizon of node 1's alone moved past it, and the
    // change was never delivered.
    const t = 'g_seq';
    await smallTable(t);
    const engine = await createMysqlEngine(urls[0]);
    const migration = await engine.prepare({ url: urls[0], table: t, alter: 'ADD COLUMN x INT', capture: 'trigger' });
    const sink = new Recorder();
    const stream = await migration.changes.open(sink, undefined, { lockTimeoutMs: 1000, attempts: 3, warn: () => {} });
    const floor = () => (stream as unknown as { floor: string | null }).floor;
    const delivered = (id: number) => sink.received.filter((k) => String(k[0]) === String(id)).length;
    // As the applier does: every delivery applied (here: taken as such) and acknowledged.
    const applier = setInterval(() => void (sink.seen && stream.acknowledge(sink.seen)), 50);
    const early = await within(pools[1].getConnection(), STATEMENT_MS, 'a connection');
    const rounds = async (from: number) => {
      for (let round = from; round < from + 6; round++) {
        for (let i = 0; i < 20; i++) await bounded(pools[round % 2 === 0 ? 0 : 2], `INSERT INTO ${t} VALUES (${2000 + round * 100 + i}, 1)`);
        await waitFor(`round ${round} delivered`, () => delivered(2000 + round * 100 + 19) === 1, null);
        await new Promise((r) => setTimeout(r, 300));
      }
    };
    try {
      await early.query('START TRANSACTION');
      await early.query(`INSERT INTO ${t} VALUES (1001, 1)`);
      const [[entry]] = await early.query<mysql.RowDataPacket[]>(`SELECT MAX(seq) AS seq FROM ${t}__log`);
      await rounds(0);
      expect(delivered(1001)).toBe(0);
      await early.query('COMMIT');
      await waitFor('the late change of node 2', () => delivered(1001) === 1, null, 5_000);
      // Where no writer is open the floor does move, past node 2's entry.
      await rounds(6);
      expect(floor(), 'the reads never left the start of the log').not.toBeNull();
      expect(BigInt(floor()!)).toBeGreaterThan(BigInt(String(entry.seq)));
      expect(sink.failure).toBeNull();
    } finally {
      clearInterval(applier);
      early.release();
      await stream.stop();
      await migration.changes.cleanup();
      await engine.close();
    }
  }, 120_000);

  // On node 2 that is its holder; on node 1 also the session that catches up and renames, and the run's
  // other idle sessions: an attempt that lost one is retried (core/migrate/lost-session.ts).
  it.each([
    { node: 2, on: 1, lost: /hold on node node2 was lost|could not confirm every node's hold/ },
    { node: 1, on: 0, lost: /hold on node node1 was lost|could not confirm every node's hold|cut-over: the session was lost/ },
  ])(
    'the idle sessions of the run on node $node killed while the gate is closed (as a DBA may KILL the blocking sessions): the attempt fails before the swap and the next one swaps; exact on every node',
    async ({ on, lost }) => {
      const t = 'g_holder';
      await cliBounded(['cleanup', '--url', urls[0], '--table', t, '--drop-old'], 60_000);
      await mirroredTable(t, 20_000);
      // The writers as an application account, so that shadowcut's own sessions are the only ones of its user.
      for (const host of ['%', '127.0.0.1', 'localhost']) {
        await bounded(pools[0], `CREATE USER IF NOT EXISTS 'g_app'@'${host}' IDENTIFIED BY 'g_app'; GRANT ALL ON shadowcut_test.* TO 'g_app'@'${host}'`);
      }
      // The other nodes apply the account after node 1 certified it: a causal read on each before its
      // writers log in (CI once met "Access denied" on node 2).
      for (const db of pools)
        await bounded(db, `SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM mysql.user WHERE User = 'g_app'; SET SESSION wsrep_sync_wait = 0`);
      const appPools = urls.map((u) => pool(u.replace('//shadowcut:shadowcut@', '//g_app:g_app@')));
      const writers = [mirrorWriter(appPools[1], t, 20_000), mirrorWriter(appPools[2], t, 20_000)];
      let killed = 0;
      try {
        await new Promise((r) => setTimeout(r, 300));
        // Sessions opened from here on by shadowcut's user are the run's (the test's own are older).
        const [[before]] = await within(
          pools[on].query<mysql.RowDataPacket[]>('SELECT MAX(ID) AS id FROM information_schema.PROCESSLIST'),
          STATEMENT_MS,
          'ids',
        );
        const run = migrateBounded(urls[0], ['--table', t, '--alter', 'ADD COLUMN x INT NULL', '--force-copy', '--execute'], RUN_MS, {
          SHADOWCUT_TEST_PAUSE_AT: 'galera-held',
          SHADOWCUT_TEST_PAUSE_MS: '3000',
        });
        // Shadowcut's sessions on node 2 idle for 700 ms, the gate's holder among them (the seam holds it
        // three seconds, so that a poll slowed by a loaded machine still sees it; the verification's holds
        // last milliseconds), as a DBA may kill them all. A writer held at
        // the gate shows as shadowcut's user too (the trigger's definer), but running its statement.
        // Until 400 ms after the first kill of a holder (the one idle in a transaction): the rest of that
        // pause, not the next attempt's. The flow-control probe's session idles too once the copy is
        // over: killed, it does not end the loop (it once did, before the cut-over, on a loaded machine).
        // Looked for until the run ends: on a loaded machine the copy alone can outlast any fixed count of looks.
        let firstKill = 0;
        let ended = false;
        void run.then(() => (ended = true));
        while (!ended && (killed === 0 || Date.now() - firstKill < 400)) {
          await new Promise((r) => setTimeout(r, 50));
          const [idle] = await within(
            pools[on].query<mysql.RowDataPacket[]>(
              `SELECT ID AS id, ID IN (SELECT trx_mysql_thread_id FROM information_schema.INNODB_TRX) AS holder
               FROM information_schema.PROCESSLIST WHERE USER = 'shadowcut' AND COMMAND = 'Sleep' AND TIME_MS > 700 AND ID > ${Number(before.id)}`,
            ),
            STATEMENT_MS,
            'the holder',
          );
          for (const row of idle) {
            await pools[on].query(`KILL CONNECTION ${Number(row.id)}`).catch(() => {});
            if (Number(row.holder) === 1 && killed++ === 0) firstKill = Date.now();
          }
        }
        const done = await run;
        expect(done, 'migrate did not end').not.toBeNull();
        expect(killed, `no holder was found on node ${on + 1}: ${done!.stdout.slice(-1500)} ${done!.stderr}`).toBeGreaterThan(0);
        expect(done!.code, done!.stderr).toBe(0);
        expect(done!.stdout + done!.stderr).toMatch(lost);
        expect(done!.stdout).toMatch(/cut-over in [2-9] attempt/);
        await new Promise((r) => setTimeout(r, 300));
      } finally {
        const seen = await Promise.all(writers.map((w) => w.stop()));
        console.log(
          'holder',
          seen.map((w) => ({ writes: w.writes, longestMs: w.longestMs, gate: w.gateErrors, errors: Object.fromEntries(w.errors) })),
        );
        await Promise.all(appPools.map((p) => p.end().catch(() => {})));
      }
      for (const node of await parityOnEveryNode(t, 'x')) expect(node, JSON.stringify(node)).toMatchObject({ differing: 0, hasColumn: true });
    },
    400_000,
  );

  it('a transaction on the connected node that passed the gate stays open past the lock timeout: each attempt gives up within it and is retried, writers of the other slots go on, and the swap comes once it commits', async () => {
    // The close once made the gate whole with INSERT IGNORE of every row, which waited for this
    // transaction's slot for innodb_lock_wait_timeout (50 s) and then failed the run; and a holder cut
    // by its max_statement_time (MariaDB's error 1969, which mysql2 leaves without a code) ended the
    // run instead of the attempt.
    const t = 'g_long';
    await cliBounded(['cleanup', '--url', urls[0], '--table', t, '--drop-old'], 60_000);
    await mirroredTable(t, 20_000);
    // On every node: node 1's writers take other slots of the gate than the transaction's.
    const writers = pools.map((db) => mirrorWriter(db, t, 20_000));
    const long = await within(pools[0].getConnection(), STATEMENT_MS, 'a connection');
    let run: Awaited<ReturnType<typeof migrateBounded>> = null;
    let held = 0;
    const { running, go, said } = postponedMigrate(t, ['--lock-timeout-ms', '400']);
    try {
      // Postponed: the gate's triggers are there (made at the first checksum), and nothing waits at it now.
      const status = await untilPostponed(t);
      // No --chunk-time-ms: the cluster's own default, shorter than a lone server's.
      expect(status).toMatch(/"chunkTimeMs":\s*25\b/);
      expect((await helpers(pools[0], t)).filter((h) => /__g[iud]$/.test(h))).toHaveLength(3);
      // READ COMMITTED: it keeps no read view, so the cut-over does not wait for it before its lock as
      // for an older snapshot (at REPEATABLE READ it would, rightly, and no attempt would be made).
      await long.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
      await long.query('START TRANSACTION');
      // A row of its own: a writer on another node changing the same row would abort it (Galera's
      // certification), and a row a writer deleted would fire no gate trigger.
      await long.query(`INSERT INTO ${t} (id, v) VALUES (10000000, 'long')`);
      await long.query(`INSERT INTO ${t}_mirror (id, v) VALUES (10000000, 'long')`);
      const t0 = Date.now();
      const from = said().length;
      go();
      // Open until an attempt to hold the writers (the last checksum's or the cut-over's) gave up within its lock timeout.
      const gaveUp = /could not hold every node's writers within 400 ms/;
      await waitFor('an attempt given up within the lock timeout', () => gaveUp.test(said().slice(from)), null, 120_000);
      const during = writers.map((w) => w.out.changed);
      await long.query('COMMIT');
      held = Date.now() - t0;
      run = await running;
      expect(during.every((n) => n > 0)).toBe(true);
    } finally {
      go();
      long.destroy(); // its session is READ COMMITTED now
      const seen = await Promise.all(writers.map((w) => w.stop()));
      console.log(
        'long transaction',
        held,
        seen.map((w) => ({ writes: w.writes, longestMs: w.longestMs, gate: w.gateErrors, errors: Object.fromEntries(w.errors) })),
      );
      // Their slots are not the transaction's: no writer waited for it.
      for (const w of seen) expect(w.longestMs).toBeLessThan(2_000);
    }
    await expectMigratedEverywhere(run, t);
    expect(run!.stdout + run!.stderr).toMatch(/could not hold every node's writers within 400 ms/);
  }, 400_000);

  it('a shadowcut host that freezes while the gate holds every node is cut off by the servers: the holders end, writers go on, and the run swaps once it wakes', async () => {
    // SIGSTOP keeps the sockets open, so the servers see idle sessions, not a client gone: without a
    // bound of their own the holders would keep every node's writers until wait_timeout (8 hours), and
    // each write would fail after innodb_lock_wait_timeout (50 s) meanwhile.
    const t = 'g_frozen';
    await cliBounded(['cleanup', '--url', urls[0], '--table', t, '--drop-old'], 60_000);
    await mirroredTable(t, 2_000);
    let child: ChildProcess | undefined;
    const running = cliBounded(
      ['migrate', '--url', urls[0], '--table', t, '--alter', 'ADD COLUMN x INT NULL', '--force-copy', '--execute'],
      RUN_MS,
      { SHADOWCUT_TEST_PAUSE_AT: 'galera-held' },
      (c) => (child = c),
    );
    // A holder locks every slot of its node: no writer's transaction locks as many rows. INNODB_TRX is
    // filled again only once unread for 100 ms: looks closer than that would keep it as it was.
    const holding = async () => {
      await new Promise((r) => setTimeout(r, 120));
      // Idle in its transaction: the appliers of the copy's chunks lock as many rows, but run.
      const [[row]] = await within(
        pools[1].query<mysql.RowDataPacket[]>(
          `SELECT MAX(t.trx_rows_locked) AS n FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
            WHERE p.COMMAND = 'Sleep'`,
        ),
        STATEMENT_MS,
        'INNODB_TRX',
      );
      return Number(row.n ?? 0) >= GATE_SLOTS;
    };
    // Stopped while a hold lasts (the cut-over's, which the seam makes a second long; a checksum's is
    // over in milliseconds and may end before the stop): looked at again once stopped.
    for (;;) {
      await waitFor('the gate held on node 2', holding, null, 120_000);
      child!.kill('SIGSTOP');
      if (await holding()) break;
      child!.kill('SIGCONT');
    }
    let wrote: unknown = null;
    try {
      const conn = await within(pools[1].getConnection(), STATEMENT_MS, 'a connection');
      try {
        const q = (sql: string) => within(conn.query({ sql, timeout: 60_000 }), 61_000, sql);
        // A row there: Galera spaces node 1's ids by the cluster's size.
        await q('START TRANSACTION');
        await q(`UPDATE ${t} SET n = n + 1 WHERE id = 4`);
        await q(`UPDATE ${t}_mirror SET n = n + 1 WHERE id = 4`);
        await q('COMMIT');
      } catch (error) {
        wrote = error;
        await conn.query('ROLLBACK').catch(() => {});
      } finally {
        conn.release();
      }
    } finally {
      child!.kill('SIGCONT');
    }
    expect(wrote).toBeNull();
    await expectMigratedEverywhere(await running, t);
  }, 300_000);

  it("the server's default switched to RSU during the run (a DBA's rolling change of their own) does not make the swap on one node alone: shadowcut's sessions pin TOI", async () => {
    const t = 'g_rsu_late';
    await cliBounded(['cleanup', '--url', urls[0], '--table', t, '--drop-old'], 60_000);
    await mirroredTable(t, 2_000);
    let run: Awaited<ReturnType<typeof migrateBounded>> = null;
    const { running, go } = postponedMigrate(t);
    try {
      await untilPostponed(t);
      // The gate's session, the RENAME's, is opened after this: it starts with the server's new default.
      await bounded(pools[0], "SET GLOBAL wsrep_OSU_method = 'RSU'");
      go();
      run = await running;
    } finally {
      go();
      await bounded(pools[0], "SET GLOBAL wsrep_OSU_method = 'TOI'");
    }
    await expectMigratedEverywhere(run, t);
  }, 300_000);

  it('a reader on another node whose snapshot predates the swap is waited for as one on the connected node is: by default named in one line, nothing swapped', async () => {
    // A backup's --single-transaction on node 2 that has not reached the table yet holds no lock on it,
    // so the RENAME does not abort it: after the swap it would read the new table with its old view
    // (error 1412, or rows missing). Node 1's own list of transactions does not show it.
    const t = 'g_reader';
    await smallTable(t);
    const reader = await within(pools[1].getConnection(), STATEMENT_MS, 'a connection');
    try {
      await reader.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await reader.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
      await reader.query('SELECT COUNT(*) FROM information_schema.TABLES');
      const run = await migrateBounded(
        urls[0],
        ['--table', t, '--alter', 'ADD COLUMN x INT', '--force-copy', '--old-snapshot-wait', '0', '--execute'],
        120_000,
      );
      expect(run, 'migrate did not end').not.toBeNull();
      expect(run!.code, run!.stdout).not.toBe(0);
      expect(run!.stderr, run!.stderr).toMatch(new RegExp(`connection node2:${reader.threadId} \\(.*older than the cut-over.*nothing was swapped`));
      const [[count]] = await reader.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${t}`);
      expect(Number(count.n)).toBe(100);
    } finally {
      reader.destroy(); // its session is REPEATABLE READ
    }
    for (const db of pools) {
      expect(await helpers(db, t)).toEqual([]);
      const [cols] = await within(db.query<mysql.RowDataPacket[]>(`SHOW COLUMNS FROM ${t} LIKE 'x'`), STATEMENT_MS, 'SHOW COLUMNS');
      expect(cols).toHaveLength(0);
    }
  }, 200_000);

  it('what the gate cannot hold is refused in one line that names Galera, before anything is made on any node', async () => {
    const t = 'g_refuse';
    await smallTable(t);
    const refusals: [string[], RegExp, (on: boolean) => Promise<unknown>][] = [
      // The way back's capture and swap hold LOCK TABLES.
      [['--revert-window', '10m'], /Galera cluster has no revert window/, () => Promise.resolve()],
      // Node 2 numbering as node 1 does: the trigger log's entries of two nodes would collide, and writers fail certification.
      [
        ['--capture', 'trigger'],
        /Galera cluster: trigger capture numbers its log on every node, and node.* node2 would hand out the same values/,
        (clash) =>
          bounded(
            pools[1],
            clash ? 'SET GLOBAL wsrep_auto_increment_control = OFF, GLOBAL auto_increment_offset = 1' : 'SET GLOBAL wsrep_auto_increment_control = ON',
          ),
      ],
    ];
    for (const [extra, message, setting] of refusals) {
      await setting(true);
      try {
        const run = await migrateBounded(urls[0], ['--table', t, '--alter', 'ADD COLUMN x INT', '--force-copy', '--execute', ...extra], 60_000);
        expect(run).not.toBeNull();
        expect(run!.code).not.toBe(0);
        const lines = run!.stderr.trim().split('\n');
        expect(lines, run!.stderr).toHaveLength(1);
        expect(lines[0]).toMatch(message);
        for (const db of pools) expect(await helpers(db, t)).toEqual([]);
      } finally {
        await setting(false);
      }
    }

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
  }, 150_000);

  it("the copy is paced by the cluster's flow control: a node that cannot apply holds it back until it has caught up", async () => {
    const t = 'g_flow';
    await smallTable(t);
    const engine = await createMysqlEngine(urls[0]);
    const members = await engine.galeraMembers();
    expect(members!.map((m) => m.name)).toHaveLength(3);
    const probes = await openMysqlProbes(engine.target, engine.pool, { database: engine.target.database, table: t }, [], members);
    // Node 3's applier waits behind a table lock there (Galera replicates none): its receive queue grows.
    const holder = await within(pools[2].getConnection(), STATEMENT_MS, 'a connection');
    let writes: Promise<unknown> = Promise.resolve();
    try {
      expect(await probes.clusterPressure!()).toBeNull();
      await within(holder.query(`LOCK TABLES ${t} WRITE`), STATEMENT_MS, 'LOCK TABLES');
      writes = (async () => {
        for (let i = 1; i <= 40; i++) await pools[0].query(`UPDATE ${t} SET v = v + 1 WHERE id = ${i}`);
      })();
      let pressure: string | null = null;
      await waitFor('pressure from the cluster', async () => (pressure = await probes.clusterPressure!()) !== null, null, 10_000);
      expect(pressure).toMatch(/Galera (node node3: \d+ writesets waiting to be applied|flow control paused the cluster)/);
    } finally {
      await within(holder.query('UNLOCK TABLES'), STATEMENT_MS, 'UNLOCK TABLES');
      holder.release();
      await within(writes, 60_000, 'the writes held by flow control');
    }
    // Caught up: nothing holds the copy back (the pause share is measured since the last look).
    // Looks 200 ms apart (waitUntil's), as before: each measures the share since the one before.
    let after: string | null = 'unread';
    await waitUntil('no pressure once caught up', async () => (after = await probes.clusterPressure!()) === null, 10_000);
    expect(after).toBeNull();
    await probes.close();
    await engine.close();
  }, 150_000);

  it('in place, a metadata-only ALTER is made on every node while writers on every node go on; a rebuild takes the copy', async () => {
    const t = 'g_inplace';
    await bounded(
      pools[0],
      `DROP TABLE IF EXISTS ${t}, ${t}__old; CREATE TABLE ${t} (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40) NOT NULL, n INT NOT NULL DEFAULT 0) ENGINE=InnoDB`,
    );
    await bounded(pools[0], `INSERT INTO ${t} (v) SELECT CONCAT('v', seq) FROM seq_1_to_5000`);
    const writers = pools.map((db) => writer(db, t, 5_000));
    let run: Awaited<ReturnType<typeof migrateBounded>>;
    try {
      await untilEachWrote('the writers under way', writers, [0, 0, 0]);
      run = await migrateBounded(urls[0], ['--table', t, '--alter', 'ADD COLUMN y INT NULL', '--execute'], 90_000);
      await untilEachWrote('writes after the ALTER', writers);
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

    // An index build in place would hold every node for its whole length under TOI: it takes the copy, on every node.
    const rebuild = await migrateBounded(urls[0], ['--table', t, '--alter', 'ADD KEY (v)', '--execute'], 90_000);
    expect(rebuild!.code, rebuild!.stderr).toBe(0);
    expect(rebuild!.stdout).toMatch(/path: copy/);
    for (const db of pools) {
      const [keys] = await within(db.query<mysql.RowDataPacket[]>(`SHOW INDEX FROM ${t} WHERE Column_name = 'v'`), STATEMENT_MS, 'SHOW INDEX');
      expect(keys).toHaveLength(1);
      expect(await helpers(db, t)).toEqual([`${t}__old`]);
    }
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
      let stepEnded = false;
      const step = within(engine.runInPlaceStep({ what: sql, sql: [sql], transaction: false, undo: [] }, 300), 60_000, 'the in-place step')
        .catch((error: Error) => (outcome = error.message))
        .finally(() => (stepEnded = true));
      // The ALTER waiting on node 1 well past max_statement_time (or the step already over, which the checks below judge).
      const waitedMs = async () => {
        const [[row]] = await within(
          pools[0].query<mysql.RowDataPacket[]>(
            `SELECT MAX(TIME_MS) AS ms FROM information_schema.PROCESSLIST WHERE INFO LIKE 'ALTER TABLE ${t} ADD COLUMN y%' AND ID <> CONNECTION_ID()`,
          ),
          STATEMENT_MS,
          'PROCESSLIST',
        );
        return Number(row.ms ?? 0);
      };
      await waitFor('the ALTER waiting past max_statement_time', async () => stepEnded || (await waitedMs()) > 2_500, null, 30_000);
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
