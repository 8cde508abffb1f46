import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { databases, useDatabase } from './support/fixture.js';
import { runCliAsync } from './support/mysql.js';

// The state key is refused when another OS user owns it or can read or write it; its directory was
// not looked at when it existed (issue 60, item 5). Whoever can write the directory can rename the
// key away and put one of their own (or a link to another of our files) in its place, and the run
// ledger lives there too. A run is refused in one line before it makes anything, with the key not made.

const root = mkdtempSync(path.join(os.tmpdir(), 'shadowcut-keydir-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe.each(databases)("$name: the state key's directory", ({ open, kind }) => {
  const db = useDatabase(open, 'kd_t');
  const dir = path.join(root, kind);
  const key = path.join(dir, 'state.key');
  const backfill = (keyFile = key) =>
    runCliAsync(['backfill', '--url', '$URL', '--table', 'kd_t', '--set', 'n = n + 1', '--execute'], db.url, { SHADOWCUT_STATE_KEY_FILE: keyFile });
  const untouched = async () => Number((await db.query('SELECT COUNT(*) FROM kd_t WHERE n <> id'))[0][0]) === 0;

  function expectRefused(r: { code: number | null; stderr: string }, pattern: RegExp): void {
    expect(r.stderr).toMatch(pattern);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  }

  it('writable by others, or owned by another user, is refused in one line before anything is made', async () => {
    await db.drop('kd_t');
    await db.query(kind === 'mysql' ? 'CREATE TABLE kd_t (id INT PRIMARY KEY, n INT NOT NULL)' : 'CREATE TABLE kd_t (id int PRIMARY KEY, n int NOT NULL)');
    await db.query(`INSERT INTO kd_t SELECT g, g FROM (${db.series(100)}) s`);
    mkdirSync(dir);

    chmodSync(dir, 0o777);
    expectRefused(await backfill(), /^shadowcut: the state key's directory \S+ can be written by other users \(mode 777\): chmod 700 it$/m);
    expect(existsSync(key)).toBe(false);
    expect(await untouched()).toBe(true);
    expect(await db.helpers('kd_t')).toEqual([]);

    if (process.getuid?.() === 0) {
      // root can hand the directory to another user, as a shared host's administrator might.
      chmodSync(dir, 0o700);
      chownSync(dir, 65534, 65534);
      expectRefused(await backfill(), /^shadowcut: the state key's directory \S+ belongs to another OS user \(uid 65534\)$/m);
      expect(existsSync(key)).toBe(false);
      expect(await untouched()).toBe(true);
      chownSync(dir, 0, 0);
    }

    // The running user's own, mode 700: the key is made and the run goes ahead.
    chmodSync(dir, 0o700);
    const made = await backfill();
    expect(made.code, made.stderr).toBe(0);
    expect(existsSync(key)).toBe(true);
    expect(Number((await db.query('SELECT COUNT(*) FROM kd_t WHERE n = id + 1'))[0][0])).toBe(100);
  });

  it('under a directory others can write, made or not yet, is refused too: each directory above counts (issue 68, item 3)', async () => {
    const before = Number((await db.query('SELECT COUNT(*) FROM kd_t WHERE n = id + 1'))[0][0]);
    const open = path.join(root, `${kind}-open`);
    mkdirSync(open);
    chmodSync(open, 0o777);
    const below = path.join(open, 'keys');
    mkdirSync(below, { mode: 0o700 });
    for (const keyFile of [path.join(below, 'state.key'), path.join(open, 'not-made', 'state.key')]) {
      const dirOf = path.dirname(keyFile);
      expectRefused(
        await backfill(keyFile),
        new RegExp(
          `^shadowcut: the state key's directory ${dirOf} is under ${open}, which can be written by other OS users \\(mode 777\\): keep the key in a directory of your own$`,
          'm',
        ),
      );
      expect(existsSync(keyFile)).toBe(false);
    }
    expect(Number((await db.query('SELECT COUNT(*) FROM kd_t WHERE n = id + 1'))[0][0])).toBe(before);
    expect(await db.helpers('kd_t')).toEqual([]);
  });
});
