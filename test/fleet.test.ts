// Issue 59, item 3: one change over many servers (`migrate --targets FILE`). Four targets under writes,
// three databases on the server with the change stream and one on the server as it comes (trigger
// capture), each table exact against its mirror, which took the same writes and the native ALTER. With
// --joint-cutover and an application transaction holding one target's table open, no target swaps
// for good: a non-zero exit, and every target keeps its old definition.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectMirrored, type Database } from './support/fixture.js';
import { cliEvents } from './support/kill.js';
import { mysqlDatabase, runCliAsync } from './support/mysql.js';
import { postgresDatabase } from './support/pg.js';
import { ownedRowsPair, ownedRowWrites } from './support/owned-writes.js';
import { waitUntil } from './support/wait.js';
import { MirrorWorkload } from './support/workload.js';

const dialects = {
  mysql: {
    open: (choice: { plain: true } | { database: string }) => mysqlDatabase(choice),
    primary: () => mysqlDatabase(),
    create: (t: string) =>
      `CREATE TABLE ${t} (id BIGINT PRIMARY KEY, qty INT NOT NULL, label VARCHAR(20) COLLATE utf8mb4_bin, at DATETIME(6) NOT NULL, price DECIMAL(30,10)) ENGINE=InnoDB`,
    alter: "ADD COLUMN note VARCHAR(100) NOT NULL DEFAULT 'none', MODIFY qty BIGINT NOT NULL",
    at: `'2024-01-01 00:00:00.000001' + INTERVAL g SECOND`,
    makeDatabase: (name: string) => `CREATE DATABASE IF NOT EXISTS ${name}`,
    dropDatabase: (name: string) => `DROP DATABASE IF EXISTS ${name}`,
    hold: 'SELECT count(*) FROM fleet_t',
  },
  postgres: {
    open: (choice: { plain: true } | { database: string }) => postgresDatabase(choice),
    primary: () => postgresDatabase(),
    create: (t: string) =>
      `CREATE TABLE ${t} (id int8 PRIMARY KEY, qty int NOT NULL, label varchar(20) COLLATE "C", at timestamptz NOT NULL, price numeric(30,10))`,
    alter: "ADD COLUMN note text NOT NULL DEFAULT 'none', ALTER COLUMN qty TYPE bigint",
    at: `'2024-01-01 00:00:00.000001+00'::timestamptz + g * interval '1.000001 second'`,
    makeDatabase: (name: string) => `CREATE DATABASE ${name}`,
    dropDatabase: (name: string) => `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`,
    hold: 'SELECT count(*) FROM fleet_t',
  },
};

const ROWS = 3000;

describe.each(['mysql', 'postgres'] as const)('%s: a fleet of four targets, one with triggers', (kind) => {
  const d = dialects[kind];
  const names = ['sc_fleet_1', 'sc_fleet_2', 'sc_fleet_3'];
  let admin: Database;
  let targets: Database[];
  let dir: string;

  beforeAll(async () => {
    admin = d.primary();
    for (const name of names) {
      await admin.query(d.dropDatabase(name));
      await admin.query(d.makeDatabase(name));
    }
    targets = [...names.map((database) => d.open({ database })), d.open({ plain: true })];
    dir = mkdtempSync(path.join(os.tmpdir(), 'sc-fleet-'));
  });

  afterAll(async () => {
    for (const t of targets ?? []) {
      await t.drop('fleet_t', 'fleet_t_mirror').catch(() => {});
      await t.close();
    }
    for (const name of names) await admin.query(d.dropDatabase(name)).catch(() => {});
    await admin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Every target's table and mirror made afresh, the targets file written (private), and writers on every target. */
  async function underWrites(): Promise<{ file: string; loads: MirrorWorkload[] }> {
    for (const t of targets) await ownedRowsPair(t, 'fleet_t', ROWS, d.create, d.at);
    const file = path.join(dir, 'targets');
    writeFileSync(file, `# the fleet\n${targets.map((t) => t.url).join('\n')}\n`);
    chmodSync(file, 0o600);
    const loads = targets.map((t) => new MirrorWorkload(t, ['fleet_t', 'fleet_t_mirror'], ownedRowWrites(t, ROWS), 2));
    for (const load of loads) load.start();
    return { file, loads };
  }

  it('every target changed, each exact against its mirror; two at once after the first alone', async () => {
    const { file, loads } = await underWrites();
    const run = await runCliAsync([
      'migrate',
      '--targets',
      file,
      '--table',
      'fleet_t',
      '--alter',
      d.alter,
      '--execute',
      '--force-copy',
      '--parallel',
      '2',
      '--canary',
      '1',
    ]);
    for (const load of loads) expect((await load.stop()).errors).toEqual([]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.match(/^target .*: done$/gm)).toHaveLength(4);
    for (const t of targets) {
      await t.query(`ALTER TABLE fleet_t_mirror ${d.alter}`);
      await expectMirrored(t, 'fleet_t', 'fleet_t_mirror');
    }
  });

  it("--resume of a fleet killed in its second target's copy: the first named done before, the second resumed, the rest run; each exact", async () => {
    // Targets with no timeline yet: what --resume reads to tell a target done (docs/fleets.md).
    for (const t of targets) await t.query('DROP TABLE IF EXISTS shadowcut_history');
    const { file, loads } = await underWrites();
    // An ALTER of its own: a target is taken as done by its history's last migrate of the table, and the
    // first case ran d.alter on tables made again since (docs/fleets.md says so).
    const alter = `${d.alter}, ADD COLUMN resumed_note int`;
    const args = ['migrate', '--targets', file, '--table', 'fleet_t', '--alter', alter, '--execute', '--force-copy', '--max-rows-per-sec', '1500'];
    let copies = 0;
    const killed = await cliEvents([...args, '--json'], (event, child) => {
      if (event.event !== 'phase' || event.phase !== 'copy' || ++copies !== 2) return;
      // Once the second target has saved a checkpoint: a kill -9 of the whole fleet in its copy.
      const look = async (): Promise<void> => {
        const saved = await targets[1].query('SELECT count(*) FROM fleet_t__state').catch(() => [[0]]);
        if (Number(saved[0][0]) > 0) child.kill('SIGKILL');
        else setTimeout(() => void look(), 20);
      };
      void look();
    });
    expect(killed.exitCode, killed.stderr).toBeNull();
    const resumed = await runCliAsync([...args, '--resume']);
    for (const load of loads) expect((await load.stop()).errors).toEqual([]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/^target .*sc_fleet_1: done before \(its migrate of .*fleet_t finished /m);
    expect(resumed.stdout.match(/^target .*: done$/gm)).toHaveLength(3);
    expect(resumed.stdout).toMatch(/^target .*sc_fleet_2: resuming from its checkpoint$/m);
    expect(resumed.stdout.match(/^target .*: no checkpoint and no finished migrate of this ALTER: starting from the beginning$/gm)).toHaveLength(2);
    // A joint fleet is not resumed as a whole: refused in one line before any target is reached.
    const joint = await runCliAsync([...args, '--resume', '--joint-cutover']);
    expect(joint.code).toBe(2);
    expect(joint.stderr.trim()).toBe('shadowcut: --resume of a fleet with --joint-cutover is not supported: resume each target with --url and its --table');
    for (const t of targets) {
      await t.query(`ALTER TABLE fleet_t_mirror ${alter}`);
      await expectMirrored(t, 'fleet_t', 'fleet_t_mirror');
    }
  });

  it('--joint-cutover: one target held by an open transaction, so no target keeps the new table; a non-zero exit says so', async () => {
    const { file, loads } = await underWrites();
    // An application's transaction that read the table and stays open: the swap's lock waits for it, and gives up.
    const holder = await targets[2].session();
    await holder.query('BEGIN');
    await holder.query(d.hold);
    const run = await runCliAsync([
      'migrate',
      '--targets',
      file,
      '--table',
      'fleet_t',
      '--alter',
      d.alter,
      '--execute',
      '--joint-cutover',
      '--parallel',
      '4',
      '--lock-timeout-ms',
      '200',
      '--cutover-attempts',
      '2',
      '--old-snapshot-wait',
      '1s',
    ]);
    await holder.query('ROLLBACK');
    holder.release();
    for (const load of loads) expect((await load.stop()).errors).toEqual([]);
    expect(run.code, run.stdout + run.stderr).not.toBe(0);
    // On MariaDB the holder's read view is the server's, so every target there waits for it, and fails.
    expect(run.stderr).toMatch(/target .* failed \(.*\); every target has its old table/);
    expect(run.stdout).toMatch(/^target .*sc_fleet_3: failed$/m);
    // No ALTER on the mirrors: every table has its old definition and every write.
    for (const t of targets) {
      expect(await t.schema('fleet_t')).toBe(await t.schema('fleet_t_mirror'));
      expect(await t.differences('fleet_t', 'fleet_t_mirror')).toEqual([]);
    }
    expect(run.stdout).toMatch(/swapped back/);
  });

  it('--joint-cutover with the postpone flag file there: every target waits verified, none swaps, until one "shadowcut cutover" reaches them all', async () => {
    // Issue 68, item 2: the joint release passed over the operator's own hold.
    const { file, loads } = await underWrites();
    const flag = path.join(dir, 'hold');
    writeFileSync(flag, '');
    let held: Promise<{ schemas: boolean[]; release: Awaited<ReturnType<typeof runCliAsync>> }> | null = null;
    const args = ['migrate', '--json', '--targets', file, '--table', 'fleet_t', '--alter', d.alter, '--execute', '--joint-cutover', '--parallel', '4'];
    const run = await cliEvents([...args, '--postpone-cutover-flag-file', flag], (event) => {
      const said = (event as { message?: string }).message ?? '';
      if (held || !/^fleet: all 4 targets verified and in sync; cut-over postponed while /.test(said)) return;
      held = (async () => ({
        // Held by the flag: no target has the new table yet.
        schemas: await Promise.all(targets.map(async (t) => (await t.schema('fleet_t')) === (await t.schema('fleet_t_mirror')))),
        release: await runCliAsync(['cutover', '--table', 'fleet_t'], ''),
      }))();
    });
    for (const load of loads) expect((await load.stop()).errors).toEqual([]);
    expect(held, run.stderr).not.toBeNull();
    const { schemas, release } = await held!;
    expect(schemas).toEqual([true, true, true, true]);
    // One command, every target: each answers under its place in the targets file.
    expect(release.code, release.stderr).toBe(0);
    expect(release.stdout.match(/^\S*fleet_t@[1-4]: cut-over released$/gm), release.stdout).toHaveLength(4);
    expect(run.exitCode, run.stderr).toBe(0);
    for (const t of targets) {
      await t.query(`ALTER TABLE fleet_t_mirror ${d.alter}`);
      await expectMirrored(t, 'fleet_t', 'fleet_t_mirror');
    }
  });

  it('the queue holds a fleet change with its cut-over postponed: run by queue run, released by one "queue cutover", every target changed exactly', async () => {
    const { file, loads } = await underWrites();
    const queueUrl = targets[0].url;
    const add = await runCliAsync(
      ['queue', 'add', '--json', '--url', '$URL', '--table', 'fleet_t', '--alter', d.alter, '--targets', file, '--force-copy', '--postpone-cutover'],
      queueUrl,
    );
    expect(add.code, add.stderr).toBe(0);
    const id = String((JSON.parse(add.stdout) as { id: number }).id);
    const running = runCliAsync(['queue', 'run', '--once', '--url', '$URL'], queueUrl);
    // The first target alone (--parallel 1), verified and held.
    await waitUntil('the first target held', async () =>
      /"state":"postponed"/.test((await runCliAsync(['status', '--table', 'fleet_t', '--json'], '')).stdout),
    );
    const asked = await runCliAsync(['queue', 'cutover', '--url', '$URL', id], queueUrl);
    expect(asked.stdout, asked.stderr).toMatch(/cut-over asked/);
    // The runner passes it to the fleet's first target; the fleet gives it to the three after it.
    const run = await running;
    for (const load of loads) expect((await load.stop()).errors).toEqual([]);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout + run.stderr).toMatch(/#\d+: complete/);
    for (const t of targets) {
      await t.query(`ALTER TABLE fleet_t_mirror ${d.alter}`);
      await expectMirrored(t, 'fleet_t', 'fleet_t_mirror');
    }
    const list = await runCliAsync(['queue', 'list', '--url', '$URL'], queueUrl);
    expect(list.stdout).toMatch(/complete/);
  });
});
