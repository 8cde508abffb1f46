// docs/crash-and-resume.md's fault matrix, the fleet's line: one target's server restarted (killed -9,
// PostgreSQL stopped -m immediate) at the moment a joint cut-over tells every target to swap. Servers
// share no transaction, so the promise is all or none: either every target ends with the change, each
// exact against its mirror, or the run stops non-zero saying every target has its old table, and each
// is then exactly its mirror that never took the ALTER. Writers go on through the restart on both.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAsync } from './support/cli.js';
import { cliEvents } from './support/kill.js';
import { MirrorWorkload } from './support/workload.js';
import { dialects, ENGINES, twinTables, writes, type Server } from './support/faults.js';

describe.each(ENGINES)("$name: a fleet's joint cut-over with one target's server restarted as they swap", ({ start }) => {
  let servers: Server[] = [];
  let dir: string;
  beforeAll(async () => {
    servers = [await start(), await start()];
    dir = mkdtempSync(path.join(os.tmpdir(), 'sc-fleet-faults-'));
  }, 180_000);
  afterAll(async () => {
    for (const server of servers) await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every target takes the change, or none keeps it and the run says so; each exact against its mirror', async () => {
    const t = 'ff_t';
    const mirror = `${t}_m`;
    const { alter } = dialects[servers[0].db.kind];
    for (const { db } of servers) await twinTables(db, t, mirror);
    const file = path.join(dir, 'targets');
    writeFileSync(file, `${servers.map((s) => s.url).join('\n')}\n`);
    chmodSync(file, 0o600);
    const loads = servers.map(({ db }) => new MirrorWorkload(db, [t, mirror], writes(db), 2, true));
    for (const load of loads) load.start();
    const restarted: Promise<void>[] = [];
    let run: { exitCode: number | null; stderr: string };
    try {
      const args = ['--targets', file, '--table', t, '--alter', alter, '--execute', '--force-copy', '--joint-cutover', '--parallel', '2'];
      run = await cliEvents(['migrate', '--json', ...args, '--lock-timeout-ms', '1000'], (event) => {
        const said = (event as { message?: string }).message ?? '';
        if (!restarted.length && /^fleet: all 2 targets verified and in sync; every one swaps now/.test(said)) restarted.push(servers[1].restart());
      });
      expect(restarted, `the fleet never swapped: ${run.stderr}`).toHaveLength(1);
      await Promise.all(restarted);
      for (const load of loads) await load.untilMoreWrites(20);
    } finally {
      for (const load of loads) await load.stop();
    }
    const swapped = run.exitCode === 0;
    if (!swapped) {
      // One line, naming the target, and every target back on its old table.
      const lines = run.stderr.trim().split('\n');
      expect(lines.at(-1), run.stderr).toMatch(/^shadowcut: .*every target has its old table/);
      expect(run.stderr).not.toMatch(/^\s+at /m);
    }
    for (const { db, url } of servers) {
      if (swapped) await db.query(`ALTER TABLE ${mirror} ${alter}`);
      expect(await db.schema(t)).toBe(await db.schema(mirror));
      expect(await db.differences(t, mirror)).toEqual([]);
      if (swapped) expect(await db.helpers(t)).toEqual([`${t}__old`]);
      else {
        // What a stopped target left (its checkpoint, a shadow swapped back) goes with one cleanup.
        const cleanup = await cliAsync(['cleanup', '--url', url, '--table', t]);
        expect(cleanup.code, cleanup.stderr).toBe(0);
        expect((await db.helpers(t)).filter((h) => h !== `${t}__new`)).toEqual([]);
      }
    }
  });
});
