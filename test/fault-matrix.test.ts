// docs/crash-and-resume.md's fault matrix: each phase of a run crossed with what a DBA's night holds,
// on servers of the test's own (a fault here breaks the server for everyone else). Each cell runs
// under mirrored writes and asserts the whole outcome: the run ends by itself, or stops with one line
// and a non-zero exit and `--resume` ends it; then the table is exactly the native ALTER's on the
// mirror, nothing of the run is left (no slot, no publication) and no write was lost or doubled.
// SIGKILL of shadowcut at each phase is test/resume.test.ts's (copy, catch-up, verify), and
// test/revert-window.test.ts's in the window.
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExtraMariadb, type ExtraMariadb } from './support/extra-mariadb.js';
import { startExtraPostgres, type ExtraPostgres } from './support/extra-postgres.js';
import type { Database } from './support/database.js';
import { cliAsync } from './support/cli.js';
import { cliEvents } from './support/kill.js';
import { mysqlDatabase } from './support/mysql.js';
import { postgresDatabase } from './support/pg.js';
import { waitFor } from './support/run.js';
import { MirrorWorkload, OwnedIds, type Statement } from './support/workload.js';
import { FAULTS, PHASES, type Fault, type Phase } from './support/faults.js';

const ROWS = 30_000;

interface Server {
  /** What the writers and the oracle use: another account (MariaDB) or application name (PostgreSQL) than shadowcut's. */
  db: Database;
  /** shadowcut's own URL. */
  url: string;
  restart(): Promise<void>;
  /** Ends every session of shadowcut's on the server, as a proxy's idle timeout or a DBA's KILL would. */
  killShadowcut(): Promise<number>;
  stop(): Promise<void>;
}

async function mariadb(): Promise<Server> {
  const server: ExtraMariadb = await startExtraMariadb([]);
  const root = await server.root();
  await root.query(`CREATE DATABASE faults; CREATE USER 'app'@'%' IDENTIFIED BY 'app'; GRANT ALL ON faults.* TO 'app'@'%'`);
  await root.end();
  const db = mysqlDatabase({ url: server.url('faults').replace('shadowcut:shadowcut', 'app:app') });
  return {
    db,
    url: server.url('faults'),
    restart: () => server.restart(),
    async killShadowcut() {
      const ids = await db.query(`SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'shadowcut'`);
      for (const [id] of ids) await db.query(`KILL ${Number(id)}`).catch(() => {}); // one that ended meanwhile is what was wanted
      return ids.length;
    },
    async stop() {
      await db.close();
      await server.stop();
    },
  };
}

async function postgres(): Promise<Server> {
  const server: ExtraPostgres = await startExtraPostgres({
    settings: ['wal_level = logical', 'max_replication_slots = 8', 'max_wal_senders = 8'],
    hba: ['host all all 127.0.0.1/32 trust', 'host replication all 127.0.0.1/32 trust'],
  });
  const url = `postgres://postgres@127.0.0.1:${server.port}/postgres`;
  const db = postgresDatabase({ url: `${url}?application_name=writers` });
  return {
    db,
    url,
    restart: () => server.restart(),
    async killShadowcut() {
      const pids = await db.query(`SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'shadowcut%' AND pid <> pg_backend_pid()`);
      for (const [pid] of pids) await db.query('SELECT pg_terminate_backend($1)', [pid]);
      return pids.length;
    },
    async stop() {
      await db.close();
      await server.stop();
    },
  };
}

const dialects = {
  mysql: {
    create: (t: string) => `CREATE TABLE ${t} (id INT PRIMARY KEY, qty INT NOT NULL, at DATETIME(6) NOT NULL, body TEXT)`,
    fill: (t: string) =>
      `INSERT INTO ${t} SELECT seq, seq % 50, '2024-01-01 00:00:00.000001' + INTERVAL seq SECOND, REPEAT('b', seq % 300) FROM seq_1_to_${ROWS}`,
    alter: 'ADD COLUMN note VARCHAR(50) NULL, MODIFY qty BIGINT NOT NULL',
    later: 'at + INTERVAL 1 MICROSECOND',
  },
  postgres: {
    create: (t: string) => `CREATE TABLE ${t} (id int PRIMARY KEY, qty int NOT NULL, at timestamptz NOT NULL, body text)`,
    fill: (t: string) =>
      `INSERT INTO ${t} SELECT g, g % 50, '2024-01-01 00:00:00.000001+00'::timestamptz + g * interval '1 second', repeat('b', g % 300) FROM generate_series(1, ${ROWS}) g`,
    alter: 'ALTER COLUMN qty TYPE bigint, ADD COLUMN note text',
    later: `at + interval '1 microsecond'`,
  },
};

/** Updates (the key moved too), deletes and inserts, each writer on ids of its own. */
function writes(db: Database): (worker: number) => Statement {
  const ids = new OwnedIds(ROWS);
  const p = (n: number) => db.param(n);
  const { later } = dialects[db.kind];
  return (w) => {
    const r = Math.random();
    if (r < 0.5) return { sql: `UPDATE {t} SET qty = qty + 1, at = ${later} WHERE id = ${p(1)}`, values: [ids.pick(w)] };
    if (r < 0.6) return { sql: `UPDATE {t} SET id = ${p(1)} WHERE id = ${p(2)}`, values: [ids.fresh(w), ids.remove(w)] };
    if (r < 0.8) return { sql: `DELETE FROM {t} WHERE id = ${p(1)}`, values: [ids.remove(w)] };
    return { sql: `INSERT INTO {t} (id, qty, at, body) VALUES (${p(1)}, 1, '2025-05-05 05:05:05.000005', 'new')`, values: [ids.fresh(w)] };
  };
}

/** A run's end as a DBA sees it: the exit code and its stderr's last lines. */
interface Ended {
  exitCode: number | null;
  stderr: string;
}

describe.each([
  { name: 'MariaDB', start: mariadb },
  { name: 'PostgreSQL', start: postgres },
])('$name: a fault at each phase', ({ start }) => {
  let server: Server;
  beforeAll(async () => {
    server = await start();
  }, 120_000);
  afterAll(() => server?.stop());

  const cells = PHASES.flatMap((phase) => FAULTS.map((fault) => [phase, fault] as const));
  it.each(cells)('%s, %s: ends exact by itself or by --resume, nothing left', async (phase: Phase, fault: Fault) => {
    const { db } = server;
    const t = `f_${PHASES.indexOf(phase)}_${FAULTS.indexOf(fault)}`;
    const mirror = `${t}_m`;
    const { create, fill, alter } = dialects[db.kind];
    await db.drop(t, mirror);
    for (const table of [t, mirror]) {
      await db.query(create(table));
      await db.query(fill(table));
    }
    const load = new MirrorWorkload(db, [t, mirror], writes(db), 3, true);
    load.start();
    const args = ['--url', server.url, '--table', t, '--alter', alter, '--force-copy', '--chunk-time-ms', '10', '--lock-timeout-ms', '1000'];
    // The copy paced to last seconds, so that the fault lands in it however fast the machine.
    const paced = phase === 'copy' ? ['--max-rows-per-sec', String(ROWS / 4)] : [];
    const waits = phase === 'postponed' ? ['--postpone-cutover'] : phase === 'revert window' ? ['--revert-window', '10m'] : [];
    const asked = ASKED[phase];
    let faulted: Promise<string> | null = null;
    const act = async (child: ChildProcess): Promise<string> => {
      const what = fault === 'the server restarted' ? (await server.restart(), 'restarted') : `${await server.killShadowcut()} session(s) killed`;
      if (asked) {
        await load.untilMoreWrites(20);
        // The DBA's word, once the run is back at its wait (a run that stopped has no socket: resumed below).
        if (child.exitCode === null) await askWhenListening(asked, t);
      }
      return what;
    };
    try {
      const first: Ended = await cliEvents(['migrate', '--json', '--execute', ...args, ...paced, ...waits], (event, child) => {
        if (faulted || event.event !== 'phase' || event.phase !== phase) return;
        faulted = act(child);
      });
      expect(faulted, `the run ended before its ${phase} phase (exit ${first.exitCode}): ${first.stderr}`).not.toBeNull();
      const applied = await faulted!;
      let ended = first;
      if (ended.exitCode !== 0) {
        // A stop is one clear line, never a stack trace; then --resume ends what it left.
        const lines = ended.stderr.trim().split('\n');
        expect(lines.at(-1), `${applied}: ${ended.stderr}`).toMatch(/^shadowcut: /);
        expect(ended.stderr).not.toMatch(/^\s+at /m);
        ended = await resumed(args, phase, t);
      }
      expect(ended.exitCode, `${applied}; the run: ${first.stderr.trim()}; then: ${ended.stderr}`).toBe(0);
      await load.untilMoreWrites(20);
    } finally {
      await load.stop();
    }
    // Only a restarted server ends the writers' own sessions; a killed session of shadowcut's costs them nothing.
    if (fault !== 'the server restarted') expect(load.stats.errors).toEqual([]);
    // Reverted, the table is the mirror that never took the ALTER, with the new table kept beside it.
    const reverted = asked === 'revert';
    if (!reverted) await db.query(`ALTER TABLE ${mirror} ${alter}`);
    expect(await db.schema(t)).toBe(await db.schema(mirror));
    expect(await db.differences(t, mirror)).toEqual([]);
    expect(await db.helpers(t)).toEqual([reverted ? `${t}__new` : `${t}__old`]);
    await db.drop(t, mirror);
  });
});

/** What the DBA asks of a run that waits for them in the phase, once the fault is over. */
const ASKED: Partial<Record<Phase, 'cutover' | 'revert'>> = { postponed: 'cutover', 'revert window': 'revert' };

/**
 * `--resume`. A run that stopped at its postponed wait is resumed without the hold, its release
 * having been asked for; one that stopped in its revert window is asked for the revert again there.
 */
async function resumed(args: string[], phase: Phase, table: string): Promise<Ended> {
  const asked = ASKED[phase];
  if (asked !== 'revert') return cliAsync(['migrate', '--execute', '--resume', ...args]).then((r) => ({ exitCode: r.code, stderr: r.stderr }));
  const asking: Promise<void>[] = [];
  const ended = await cliEvents(['migrate', '--json', '--execute', '--resume', ...args], (event) => {
    if (!asking.length && event.event === 'phase' && event.phase === phase) asking.push(askWhenListening(asked, table));
  });
  await Promise.all(asking);
  return ended;
}

/** `shadowcut cutover` or `revert` for the table, tried until a run answers on its control socket. */
async function askWhenListening(command: 'cutover' | 'revert', table: string): Promise<void> {
  await waitFor(`the run of ${table} to take the ${command} request`, async () => (await cliAsync([command, '--table', table])).code === 0, null, 60_000, 200);
}
