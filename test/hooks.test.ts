import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { UserError } from '../src/core/engine/errors.js';
import { hooksFromDir, validateHooksDir, type HookRun } from '../src/operator/hooks.js';
import { RunState } from '../src/core/run/run-state.js';
import { adminPool, helperTables, migrateMysql, mysqlUrl, schemaOf } from './support/mysql.js';
import { waitFor } from './support/run.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'shadowcut-hooks-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function hook(name: string, body: string, mode = 0o755): Promise<void> {
  await writeFile(path.join(dir, name), `#!/bin/sh\n${body}\n`);
  await chmod(path.join(dir, name), mode);
}

function state(): RunState {
  const s = new RunState(
    { chunkTimeMs: 100, maxLagMs: 1500, maxLoad: {}, criticalLoad: {}, maxRowsPerSec: 0, niceRatio: 0, maxRedoFill: 0, maxWriterSlowdown: 0 },
    { table: 'shop.orders', alter: 'ADD COLUMN note TEXT', engine: 'mysql' },
  );
  Object.assign(s.status, { phase: 'verify', rowsCopied: 1200, rowsEstimated: 1500, changesApplied: 42 });
  s.status.startedAt = new Date(Date.now() - 65_000).toISOString();
  return s;
}

/** Whether a process is gone (or a zombie waiting to be reaped, which is as good as gone). */
function gone(pid: number): Promise<boolean> {
  const ended = async () => {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
    return stat === null || stat.split(') ')[1]?.startsWith('Z') === true;
  };
  return waitFor(`process ${pid} gone`, ended, null, 2_000).then(
    () => true,
    () => false,
  );
}

describe('validateHooksDir', () => {
  it('refuses a missing directory or a file', async () => {
    await expect(validateHooksDir(path.join(dir, 'nope'))).rejects.toThrow(UserError);
    await hook('some-file', 'true');
    await expect(validateHooksDir(path.join(dir, 'some-file'))).rejects.toThrow(/is not a directory/);
  });

  it('lists the events that have a hook and ignores other files', async () => {
    await hook('before-cutover', 'true');
    await hook('success', 'true');
    await writeFile(path.join(dir, 'README'), 'notes');
    expect(await validateHooksDir(dir)).toEqual(['before-cutover', 'success']);
  });

  it('refuses a hook that is not executable, rather than skipping it at the cut-over', async () => {
    await hook('before-cutover', 'true', 0o644);
    await expect(validateHooksDir(dir)).rejects.toThrow(/before-cutover is not an executable file \(chmod \+x it\)/);
    await rm(path.join(dir, 'before-cutover'));
    await mkdir(path.join(dir, 'success'));
    await expect(validateHooksDir(dir)).rejects.toThrow(/success is not an executable file/);
  });
});

describe('hooksFromDir', () => {
  it('passes the run in the environment, the error for failure, and inherits ours', async () => {
    process.env.HOOKS_TEST_INHERITED = 'yes';
    process.env.SHADOWCUT_ERROR = 'stale, from an outer run';
    await hook('failure', 'env');
    await hook('success', 'env');
    const runs: HookRun[] = [];
    try {
      const run = hooksFromDir(dir, { onRun: (r) => runs.push(r) });
      await run('failure', state(), new UserError('the cut-over lock timed out'));
      await run('success', state());
    } finally {
      delete process.env.HOOKS_TEST_INHERITED;
      delete process.env.SHADOWCUT_ERROR;
    }
    const envOf = (r: HookRun) =>
      Object.fromEntries(
        r.stdout
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
    expect(runs.map((r) => [r.event, r.exitCode, r.signal, r.timedOut, r.stderr])).toEqual([
      ['failure', 0, null, false, ''],
      ['success', 0, null, false, ''],
    ]);
    expect(envOf(runs[0])).toMatchObject({
      HOOKS_TEST_INHERITED: 'yes',
      SHADOWCUT_EVENT: 'failure',
      SHADOWCUT_TABLE: 'shop.orders',
      SHADOWCUT_ALTER: 'ADD COLUMN note TEXT',
      SHADOWCUT_ENGINE: 'mysql',
      SHADOWCUT_PHASE: 'verify',
      SHADOWCUT_STATE: 'running',
      SHADOWCUT_ROWS_COPIED: '1200',
      SHADOWCUT_ROWS_ESTIMATED: '1500',
      SHADOWCUT_CHANGES_APPLIED: '42',
      SHADOWCUT_ELAPSED_SECONDS: '65',
      SHADOWCUT_ERROR: 'the cut-over lock timed out',
    });
    expect(envOf(runs[1])).toMatchObject({ SHADOWCUT_EVENT: 'success', HOOKS_TEST_INHERITED: 'yes' });
    expect(envOf(runs[1])).not.toHaveProperty('SHADOWCUT_ERROR');
  });

  it('never hands a hook the URL or a password inside an error', async () => {
    process.env.SHADOWCUT_URL = 'postgres://app:s3cr3t@db.example/shop';
    await hook('failure', 'env');
    const runs: HookRun[] = [];
    try {
      await hooksFromDir(dir, { onRun: (r) => runs.push(r) })('failure', state(), new Error('connect to mysql://app:s3cr3t@db:3306/shop refused'));
    } finally {
      delete process.env.SHADOWCUT_URL;
    }
    expect(runs[0].stdout).toMatch(/SHADOWCUT_ERROR=connect to mysql:\/\/app:\*\*\*@db:3306\/shop refused/);
    expect(runs[0].stdout).not.toContain('s3cr3t');
    expect(runs[0].stdout).not.toContain('SHADOWCUT_URL=');
  });

  it('skips an event without a hook', async () => {
    const runs: HookRun[] = [];
    await hooksFromDir(dir, { onRun: (r) => runs.push(r) })('startup', state());
    expect(runs).toEqual([]);
  });

  it('rejects on a non-zero exit with the code and the last line of stderr', async () => {
    await hook('before-cutover', 'echo "checking replicas"\necho "first problem" >&2\necho "replica db2 is behind" >&2\nexit 3');
    await expect(hooksFromDir(dir)('before-cutover', state())).rejects.toThrow(`${path.join(dir, 'before-cutover')} exited with code 3: replica db2 is behind`);
  });

  it('falls back to the last line of stdout when stderr is empty', async () => {
    await hook('before-copy', 'echo "not in the window"\nexit 1');
    await expect(hooksFromDir(dir)('before-copy', state())).rejects.toThrow(/exited with code 1: not in the window$/);
  });

  it('rejects a hook killed by a signal', async () => {
    await hook('startup', 'kill -TERM $$');
    await expect(hooksFromDir(dir)('startup', state())).rejects.toThrow(/was killed by SIGTERM/);
  });

  it('kills a hook that runs too long, with what it started', async () => {
    const pidFile = path.join(dir, 'pid');
    await hook('before-cutover', `sleep 30 &\necho $! > ${pidFile}\necho "waiting for approval" >&2\nwait`);
    const started = Date.now();
    await expect(hooksFromDir(dir, { timeoutMs: 300 })('before-cutover', state())).rejects.toThrow(
      /before-cutover ran longer than 300 ms and was killed: waiting for approval$/,
    );
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await gone(Number(await readFile(pidFile, 'utf8')))).toBe(true);
  });

  it('does not wait for a background process the hook left holding its output', async () => {
    const pidFile = path.join(dir, 'pid');
    await hook('success', `sleep 30 &\necho $! > ${pidFile}\necho notified`);
    const runs: HookRun[] = [];
    const started = Date.now();
    try {
      await hooksFromDir(dir, { onRun: (r) => runs.push(r) })('success', state());
      expect(Date.now() - started).toBeLessThan(5000);
      expect(runs[0]).toMatchObject({ exitCode: 0, stdout: 'notified\n' });
    } finally {
      process.kill(Number(await readFile(pidFile, 'utf8')), 'SIGKILL');
    }
  });

  it('keeps only the tail of a long output', async () => {
    await hook('copy-complete', "head -c 100000 /dev/zero | tr '\\0' x\necho\necho the end");
    const runs: HookRun[] = [];
    await hooksFromDir(dir, { onRun: (r) => runs.push(r) })('copy-complete', state());
    expect(runs[0].stdout.length).toBe(16 * 1024);
    expect(runs[0].stdout.endsWith('x\nthe end\n')).toBe(true);
  });

  it('rejects a hook that cannot be run', async () => {
    await hook('before-copy', 'true', 0o644);
    await expect(hooksFromDir(dir)('before-copy', state())).rejects.toThrow(/cannot run .*before-copy: .*EACCES/);
  });
});

describe('hooks in a MariaDB migration', () => {
  const TABLE = 'hooks_t';
  let db: mysql.Pool;
  let log: string;
  /** As hooks see it: the engine qualifies the name with the database. */
  let qualified: string;

  beforeAll(async () => {
    db = adminPool();
    qualified = `${new URL(mysqlUrl()).pathname.slice(1)}.${TABLE}`;
    await db.query(`DROP TABLE IF EXISTS ${TABLE}, ${TABLE}__new, ${TABLE}__old, ${TABLE}__state, ${TABLE}__hb`);
    await db.query(`CREATE TABLE ${TABLE} (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NOT NULL)`);
    await db.query(`INSERT INTO ${TABLE} SELECT seq, CONCAT('row ', seq) FROM seq_1_to_1000`);
  });

  afterAll(async () => {
    await db.query(`DROP TABLE IF EXISTS ${TABLE}, ${TABLE}__new, ${TABLE}__old, ${TABLE}__state, ${TABLE}__hb`);
    await db.end();
  });

  beforeEach(async () => {
    log = path.join(dir, 'events.log');
    for (const event of ['startup', 'before-copy', 'copy-complete', 'before-cutover', 'success', 'failure']) {
      await hook(event, `echo "$SHADOWCUT_EVENT $SHADOWCUT_TABLE $SHADOWCUT_ROWS_COPIED" >> ${log}`);
    }
  });

  const events = async () => (await readFile(log, 'utf8')).trim().split('\n');

  it('runs each event in order with the run in its environment', async () => {
    await migrateMysql(TABLE, 'ADD COLUMN note VARCHAR(50) NULL', { hook: hooksFromDir(dir), dropOld: true });
    expect(await events()).toEqual([
      `startup ${qualified} 0`,
      `before-copy ${qualified} 0`,
      `copy-complete ${qualified} 1000`,
      `before-cutover ${qualified} 1000`,
      `success ${qualified} 1000`,
    ]);
  });

  it('a failing before-cutover hook stops the run before the cut-over, and the failure hook runs', async () => {
    const before = await schemaOf(db, TABLE);
    await hook('before-cutover', `echo "$SHADOWCUT_EVENT $SHADOWCUT_TABLE $SHADOWCUT_ROWS_COPIED" >> ${log}\necho "change freeze until Monday" >&2\nexit 3`);
    await hook('failure', `echo "$SHADOWCUT_EVENT $SHADOWCUT_TABLE $SHADOWCUT_ROWS_COPIED" >> ${log}\necho "$SHADOWCUT_ERROR" > ${log}.error`);
    await expect(migrateMysql(TABLE, 'ADD COLUMN other INT NULL', { hook: hooksFromDir(dir) })).rejects.toThrow(
      /hook before-cutover failed, stopping before the cut-over: .*exited with code 3: change freeze until Monday/,
    );
    expect(await events()).toEqual([
      `startup ${qualified} 0`,
      `before-copy ${qualified} 0`,
      `copy-complete ${qualified} 1000`,
      `before-cutover ${qualified} 1000`,
      `failure ${qualified} 1000`,
    ]);
    expect(await readFile(`${log}.error`, 'utf8')).toMatch(
      /^hook before-cutover failed, stopping before the cut-over: .*exited with code 3: change freeze until Monday\n$/,
    );
    expect(await schemaOf(db, TABLE)).toBe(before);
    expect(await helperTables(db, TABLE)).toEqual([]);
    const [rows] = await db.query<mysql.RowDataPacket[]>(
      "SELECT TABLE_NAME t FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'hooks\\_t%'",
    );
    expect(rows.map((r) => r.t)).toEqual([TABLE]);
  });
});
