import { afterAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { adminPool, differences, runCli, runCliAsync, schemaOf } from './support/mysql.js';
import { childParents, createFkTree, dropFkTree, fkServers, fkTree, FkTreeWriter } from './support/fk-tree.js';
import { waitFor } from './support/run.js';

const ROWS = 20_000;
const ALTER = 'ADD COLUMN extra INT NULL, MODIFY note VARCHAR(40)';

describe.each(fkServers)('$name: a table other tables reference', ({ url }) => {
  const t = fkTree('fkp');
  let db: mysql.Pool;
  const pool = () => (db ??= adminPool(url()));
  const cli = (args: string[], env: Record<string, string> = {}) => runCliWithEnv(args, url(), env);

  afterAll(async () => {
    await dropFkTree(pool(), t);
    await pool().end();
  });

  async function expectMirrored() {
    await pool().query(`ALTER TABLE ${t.mirror.parent} ${ALTER}`);
    expect(await differences(pool(), t.real.parent, t.mirror.parent)).toEqual([]);
    expect(await differences(pool(), t.real.cascade, t.mirror.cascade)).toEqual([]);
    expect(await differences(pool(), t.real.restrict, t.mirror.restrict)).toEqual([]);
  }

  /** After the swap: both keys reference the new table, are enforced and cascade; the old table has no children. */
  async function expectKeysOnNewTable() {
    expect(await childParents(pool(), t)).toEqual({ [t.real.cascade]: t.real.parent, [t.real.restrict]: t.real.parent });
    expect(await schemaOf(pool(), t.real.parent)).toMatch(/`extra`/);
    await expect(pool().query(`INSERT INTO ${t.real.restrict} (id, pid, w) VALUES (9999999, 88888888, 0)`)).rejects.toMatchObject({ errno: 1452 });
    const [[victim]] = await pool().query<mysql.RowDataPacket[]>(
      `SELECT pid FROM ${t.real.cascade} WHERE pid NOT IN (SELECT pid FROM ${t.real.restrict} WHERE pid IS NOT NULL) LIMIT 1`,
    );
    await pool().query(`DELETE FROM ${t.real.parent} WHERE id = ?`, [victim.pid]);
    const [[left]] = await pool().query<mysql.RowDataPacket[]>(`SELECT COUNT(*) n FROM ${t.real.cascade} WHERE pid = ?`, [victim.pid]);
    expect(Number(left.n)).toBe(0);
    const [old] = await pool().query<mysql.RowDataPacket[]>(
      'SELECT TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME = ?',
      [`${t.real.parent}__old`],
    );
    expect(old).toEqual([]);
  }

  it('is migrated under writes to it and its children: the children then reference the new table, exactly as the mirror', async () => {
    await createFkTree(pool(), t, ROWS);
    const plan = cli(['plan', '--url', '$URL', '--table', t.real.parent, '--alter', ALTER, '--force-copy', '--json']);
    expect(plan.code, plan.stderr).toBe(0);
    const planned = JSON.parse(plan.stdout.trim().split('\n').pop()!) as { checks: { name: string; message: string }[] };
    const keysIn = planned.checks.find((c) => c.name === 'foreign keys in')!.message;
    expect(keysIn).toMatch(
      /^re-pointed to the new table at the cut-over: fkp_cc\.fkp_cc_fk \(pid\) -> \(id\) ON DELETE CASCADE ON UPDATE RESTRICT; fkp_cr\.fkp_cr_fk/,
    );
    const dry = cli(['migrate', '--force-copy', '--url', '$URL', '--table', t.real.parent, '--alter', ALTER]);
    expect(dry.stdout).toMatch(
      /child foreign key fkp_cr\.fkp_cr_fk \(pid\) -> \(id\) ON DELETE RESTRICT ON UPDATE RESTRICT: re-pointed to the new table at the cut-over/,
    );

    const writer = new FkTreeWriter(pool(), t, ROWS);
    writer.start();
    const run = await runCliAsync(
      ['migrate', '--force-copy', '--url', '$URL', '--table', t.real.parent, '--alter', ALTER, '--execute', '--chunk-time-ms', '5'],
      url(),
    );
    const stats = await writer.stop();
    expect(run.code, run.stderr).toBe(0);
    expect(stats.errors).toEqual([]);
    expect(stats.mismatches).toEqual([]);
    expect(stats.writes).toBeGreaterThan(0);
    await expectMirrored();
    await expectKeysOnNewTable();
  });

  it('a cut-over that fails after the keys moved leaves them on the original, which serves on; the next attempt succeeds', async () => {
    await createFkTree(pool(), t, 2000);
    const before = await Promise.all([t.real.cascade, t.real.restrict].map((c) => schemaOf(pool(), c)));
    const args = ['migrate', '--force-copy', '--url', '$URL', '--table', t.real.parent, '--alter', ALTER, '--execute'];
    const failed = cli([...args, '--cutover-attempts', '1'], { SHADOWCUT_TEST_FAIL_AT: 'after-children-pointed' });
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toMatch(/after-children-pointed/);
    expect(await childParents(pool(), t)).toEqual({ [t.real.cascade]: t.real.parent, [t.real.restrict]: t.real.parent });
    expect(await Promise.all([t.real.cascade, t.real.restrict].map((c) => schemaOf(pool(), c)))).toEqual(before);
    expect(await schemaOf(pool(), t.real.parent)).not.toMatch(/`extra`/);
    // A retry in the same run (the binlog reader meets the failed attempt's moves of the keys on its way).
    const writer = new FkTreeWriter(pool(), t, 2000);
    writer.start();
    const run = await runCliAsync(args, url(), { SHADOWCUT_TEST_FAIL_AT: 'after-children-pointed' });
    const stats = await writer.stop();
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr + run.stdout).toMatch(/after-children-pointed/);
    expect(stats.errors).toEqual([]);
    expect(stats.mismatches).toEqual([]);
    await expectMirrored();
    await expectKeysOnNewTable();
  });

  it('killed between moving the keys and the RENAME: the keys point at the shadow; --resume points them back first and ends exact', async () => {
    await createFkTree(pool(), t, ROWS);
    const args = ['migrate', '--force-copy', '--url', '$URL', '--table', t.real.parent, '--alter', ALTER, '--execute'];
    const killed = cli(args, { SHADOWCUT_TEST_KILL_AT: 'after-children-pointed' });
    expect(killed.signal).toBe('SIGKILL');
    expect(await childParents(pool(), t)).toEqual({ [t.real.cascade]: `${t.real.parent}__new`, [t.real.restrict]: `${t.real.parent}__new` });
    const writer = new FkTreeWriter(pool(), t, ROWS);
    const resumed = runCliAsync([...args, '--resume'], url());
    // Until the resumed run has pointed them back, writes are unguarded (src/engines/mysql/cutover/README.md): wait for it.
    await waitFor(
      'the keys pointed back at the original',
      async () => {
        const parents = await childParents(pool(), t);
        return parents[t.real.cascade] === t.real.parent && parents[t.real.restrict] === t.real.parent;
      },
      null,
    );
    writer.start();
    const run = await resumed;
    const stats = await writer.stop();
    expect(run.code, run.stderr).toBe(0);
    expect(stats.errors).toEqual([]);
    expect(stats.mismatches).toEqual([]);
    await expectMirrored();
    await expectKeysOnNewTable();
  });

  it('a transaction that writes a child and then the parent, queued behind the cut-over lock, neither stalls nor fails the swap', async () => {
    await createFkTree(pool(), t, ROWS);
    const args = ['migrate', '--force-copy', '--url', '$URL', '--table', t.real.parent, '--alter', ALTER, '--execute', '--cutover-attempts', '1'];
    const run = runCliAsync(args, url(), { SHADOWCUT_TEST_PAUSE_AT: 'after-children-pointed' });
    // The keys reference the shadow only under the cut-over lock, at the seam.
    await waitFor('the keys pointed at the shadow', async () => (await childParents(pool(), t))[t.real.cascade] === `${t.real.parent}__new`, null);
    const writer = await pool().getConnection();
    try {
      await writer.query('BEGIN');
      // Queued on the child's lock: without a holder it would get the child before the RENAME, row-lock
      // its parent in the shadow, then wait on the parent's metadata lock, which the RENAME holds.
      const written = writer
        .query(`INSERT INTO ${t.real.cascade} (id, pid, w) VALUES (88000001, 1, 7)`)
        .then(() => writer.query(`UPDATE ${t.real.parent} SET v = 4242 WHERE id = 1`))
        .then(() => writer.query('COMMIT'));
      const r = await run;
      await written;
      expect(r.code, r.stderr).toBe(0);
    } finally {
      writer.release();
    }
    const [[row]] = await pool().query<mysql.RowDataPacket[]>(
      `SELECT p.v, c.w FROM ${t.real.parent} p JOIN ${t.real.cascade} c ON c.pid = p.id WHERE c.id = 88000001`,
    );
    expect({ v: Number(row.v), w: Number(row.w) }).toEqual({ v: 4242, w: 7 });
    await expectKeysOnNewTable();
  }, 120_000);

  it('a RENAME that fails after the UNLOCK: the children’s keys are back on the original, and a run after cleanup succeeds', async () => {
    await createFkTree(pool(), t, ROWS);
    const args = ['migrate', '--force-copy', '--url', '$URL', '--table', t.real.parent, '--alter', ALTER, '--execute'];
    const failed = cli([...args, '--cutover-attempts', '1'], { SHADOWCUT_TEST_FAIL_AT: 'rename-after-unlock' });
    expect(failed.code).not.toBe(0);
    expect(await childParents(pool(), t)).toEqual({ [t.real.cascade]: t.real.parent, [t.real.restrict]: t.real.parent });
    expect(cli(['cleanup', '--url', '$URL', '--table', t.real.parent]).code).toBe(0);
    await createFkTree(pool(), t, ROWS);
    const run = await runCliAsync(args, url());
    expect(run.code, run.stderr).toBe(0);
    await expectMirrored();
    await expectKeysOnNewTable();
  });

  it('killed there, then cleanup: the keys reference the original again and nothing is left', async () => {
    await createFkTree(pool(), t, 2000);
    const killed = cli(['migrate', '--force-copy', '--url', '$URL', '--table', t.real.parent, '--alter', ALTER, '--execute'], {
      SHADOWCUT_TEST_KILL_AT: 'after-children-pointed',
    });
    expect(killed.signal).toBe('SIGKILL');
    const clean = cli(['cleanup', '--url', '$URL', '--table', t.real.parent]);
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stdout).toMatch(/fkp_cc\.fkp_cc_fk \(pointed back at fkp\)/);
    expect(await childParents(pool(), t)).toEqual({ [t.real.cascade]: t.real.parent, [t.real.restrict]: t.real.parent });
    const [left] = await pool().query<mysql.RowDataPacket[]>(
      "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'fkp\\_\\_%'",
    );
    expect(left).toEqual([]);
  });

  it.each([
    ['changes the referenced column type', 'MODIFY id BIGINT NOT NULL', /fkp_cc\.fkp_cc_fk: column id would change from int\(11\) to bigint\(20\)/],
    ['makes the referenced column unsigned', 'MODIFY id INT UNSIGNED NOT NULL', /column id would change from int\(11\) to int\(10\) unsigned/],
  ])('an ALTER that %s is refused with one line, and nothing is left', async (_what, alter, message) => {
    await createFkTree(pool(), t, 200);
    const before = await schemaOf(pool(), t.real.parent);
    for (const execute of [[], ['--execute']]) {
      const r = cli(['migrate', '--force-copy', '--url', '$URL', '--table', t.real.parent, '--alter', alter, ...execute]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
    expect(await schemaOf(pool(), t.real.parent)).toBe(before);
    const [left] = await pool().query<mysql.RowDataPacket[]>(
      "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'fkp\\_\\_%'",
    );
    expect(left).toEqual([]);
  });

  it('DROP FOREIGN KEY on the copy path: the new table has no such key, the plan says so, and a name the table lacks is refused', async () => {
    await createFkTree(pool(), t, 500);
    const dropped = cli([
      'migrate',
      '--force-copy',
      '--url',
      '$URL',
      '--table',
      t.real.restrict,
      '--alter',
      `DROP FOREIGN KEY ${t.real.restrict}_fk, ADD COLUMN z INT`,
    ]);
    expect(dropped.code, dropped.stderr).toBe(0);
    expect(dropped.stdout).toMatch(/foreign keys dropped by the ALTER \(the new table is made without them\): fkp_cr_fk/);
    const wrong = cli(['migrate', '--force-copy', '--url', '$URL', '--table', t.real.restrict, '--alter', 'DROP FOREIGN KEY nope']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/Can't DROP FOREIGN KEY `nope`/);
    // The restricting child has no cascade into it: with its only key dropped it needs no --discard-foreign-keys.
    const run = cli(['migrate', '--force-copy', '--url', '$URL', '--table', t.real.restrict, '--alter', `DROP FOREIGN KEY ${t.real.restrict}_fk`, '--execute']);
    expect(run.code, run.stderr).toBe(0);
    expect(await schemaOf(pool(), t.real.restrict)).not.toMatch(/FOREIGN KEY/);
    expect(await differences(pool(), t.real.restrict, t.mirror.restrict)).toEqual([]);
  });
});

/** runCli with extra environment (the cut-over's test seams), and the signal that ended it. */
function runCliWithEnv(args: string[], url: string, env: Record<string, string>) {
  const saved = Object.keys(env).map((k) => [k, process.env[k]] as const);
  Object.assign(process.env, env);
  try {
    return runCli(args, url);
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
