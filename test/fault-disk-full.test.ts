// docs/crash-and-resume.md's fault matrix, the disk: the table's files on a small filesystem of the
// test's own (a tmpfs, where the machine lets a test mount one), filled in the middle of the copy by
// the shadow itself, as a table twice the free space fills a server's disk. The run must stop with
// one line and keep what it copied; once there is room, `--resume` ends it exact.
import { spawnSync } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAsync } from './support/cli.js';
import { dialects, ENGINES, ROWS, twinTables, writes, type Server } from './support/faults.js';
import { MirrorWorkload } from './support/workload.js';

/** A tmpfs of `mb` MiB at a directory of its own, or why the machine does not allow one. */
function smallFilesystem(mb: number): { dir: string; unmount(): void } | string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'shadowcut-small-fs-'));
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${mb}m`, 'tmpfs', dir], { encoding: 'utf8' });
  if (mount.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return `no small filesystem of its own (mount: ${mount.stderr?.trim() || mount.error?.message})`;
  }
  return {
    dir,
    unmount() {
      spawnSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The engine's way to put a table's files on the small filesystem. */
const placed = {
  /** A tablespace there (owned by the server's OS user), and the table moved into it. */
  async postgres(server: Server, dir: string, t: string) {
    const space = path.join(dir, 'space');
    mkdirSync(space, { recursive: true });
    const owner = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout) || process.getuid!();
    chownSync(space, owner, owner);
    await server.db.query(`CREATE TABLESPACE small LOCATION '${space}'`);
    await server.db.query(`ALTER TABLE ${t} SET TABLESPACE small`);
  },
  /** InnoDB's DATA DIRECTORY, which the shadow takes from the table's definition as the native ALTER keeps it. */
  async mysql(server: Server, dir: string, t: string) {
    await server.db.query(`ALTER TABLE ${t} RENAME TO ${t}_x`);
    await server.db.query(`${dialects.mysql.create(t)} DATA DIRECTORY = '${dir}'`);
    await server.db.query(`INSERT INTO ${t} SELECT * FROM ${t}_x`);
    await server.db.query(`DROP TABLE ${t}_x`);
  },
};

// Each engine's cell has a filesystem of its own: what one leaves there (its old table) is no room of the other's.
const probe = smallFilesystem(1);
const unavailable = typeof probe === 'string' ? probe : (probe.unmount(), null);
if (unavailable) console.warn(`fault-disk-full.test.ts skipped: ${unavailable}`);
const DISK_FULL = /could not extend file|No space left|is full|Disk full|errno: 28/i;

describe.skipIf(unavailable).each(ENGINES)('$name: the disk fills in the copy', ({ start }) => {
  let server: Server;
  let disk: { dir: string; unmount(): void };
  beforeAll(async () => {
    const made = smallFilesystem(64);
    if (typeof made === 'string') throw new Error(made);
    disk = made;
    server = await start();
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    disk?.unmount();
  });

  it('stops with one line and keeps what it copied; once there is room, --resume ends exact, nothing left', async () => {
    const { db } = server;
    const { dir } = disk;
    const [t, mirror] = ['f_disk', 'f_disk_m'];
    const { alter } = dialects[db.kind];
    await twinTables(db, t, mirror);
    await placed[db.kind](server, path.join(dir, db.kind), t);
    // Room for half a copy of what the table takes on the disk: the shadow fills it in its middle.
    const ballast = path.join(dir, `${db.kind}.ballast`);
    const { bavail, bsize, blocks } = statfsSync(dir);
    writeFileSync(ballast, Buffer.alloc(Math.max(0, (bavail - Math.round((blocks - bavail) / 2)) * bsize)));
    const load = new MirrorWorkload(db, [t, mirror], writes(db), 3, true);
    load.start();
    const args = ['--url', server.url, '--table', t, '--alter', alter, '--force-copy', '--chunk-time-ms', '10', '--max-rows-per-sec', String(ROWS / 2)];
    try {
      const first = await cliAsync(['migrate', '--execute', ...args]);
      expect(first.code, first.stderr).not.toBe(0);
      expect(first.stderr.trim().split('\n').at(-1)).toMatch(
        /^shadowcut: the server ran out of disk space in the copy \(.*\): the run stopped and keeps .*--resume.*cleanup/,
      );
      expect(first.stderr).not.toMatch(/^\s+at /m);
      // Kept for the resume: the shadow as far as it got, and the checkpoint.
      expect(await db.helpers(t)).toEqual(expect.arrayContaining([`${t}__new`, `${t}__state`]));
      rmSync(ballast);
      const resumed = await cliAsync(['migrate', '--execute', '--resume', ...args]);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stdout + resumed.stderr).toMatch(/resum/i);
      await load.untilMoreWrites(20);
    } finally {
      await load.stop();
      rmSync(ballast, { force: true });
    }
    // The writers' own writes to the full disk failed too, whole, on both sides; nothing else did.
    expect(load.stats.errors.filter((e) => !DISK_FULL.test(e))).toEqual([]);
    await db.query(`ALTER TABLE ${mirror} ${alter}`);
    expect(await db.differences(t, mirror)).toEqual([]);
    expect(await db.helpers(t)).toEqual([`${t}__old`]);
    // Where the native ALTER leaves the table's files: on MariaDB in its DATA DIRECTORY still.
    if (db.kind === 'mysql') expect(String((await db.query(`SHOW CREATE TABLE ${t}`))[0][1])).toContain(`DATA DIRECTORY='${path.join(dir, 'mysql')}/'`);
  });
});
