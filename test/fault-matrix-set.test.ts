// docs/crash-and-resume.md's fault matrix, the set's line: two tables changed with one cut-over, and
// the server restarted (or shadowcut's sessions killed) as that cut-over begins, so that the fault
// falls among its locks and renames. The swap is one transaction (PostgreSQL) or one RENAME TABLE
// statement (MariaDB, atomic through a crash), so a run that stops there must leave both tables old
// or both new, never one of each; then it, or its --resume, ends both exact against their mirrors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAsync } from './support/cli.js';
import { cliEvents } from './support/kill.js';
import { MirrorWorkload } from './support/workload.js';
import { dialects, ENGINES, FAULTS, twinTables, writes, type Fault, type Server } from './support/faults.js';

describe.each(ENGINES)('$name: a set of two tables, a fault as its one cut-over begins', ({ start }) => {
  let server: Server;
  beforeAll(async () => {
    server = await start();
  }, 120_000);
  afterAll(() => server?.stop());

  it.each(FAULTS)('%s: both tables swap or neither; the run or its --resume ends both exact, nothing left', async (fault: Fault) => {
    const { db } = server;
    const tables = [0, 1].map((n) => `fs${FAULTS.indexOf(fault)}_${n}`);
    const { alter } = dialects[db.kind];
    for (const t of tables) await twinTables(db, t, `${t}_m`);
    const loads = tables.map((t) => new MirrorWorkload(db, [t, `${t}_m`], writes(db), 2, true));
    for (const load of loads) load.start();
    const args = [
      '--url',
      server.url,
      ...tables.flatMap((t) => ['--table', t, '--alter', alter]),
      '--force-copy',
      '--chunk-time-ms',
      '10',
      '--lock-timeout-ms',
      '1000',
    ];
    const faulted: Promise<unknown>[] = [];
    try {
      const first = await cliEvents(['migrate', '--json', '--execute', ...args], (event) => {
        if (faulted.length || event.event !== 'phase' || event.phase !== 'cutover') return;
        faulted.push(fault === 'the server restarted' ? server.restart() : server.killShadowcut());
      });
      expect(faulted, `the run ended before its cut-over: ${first.stderr}`).toHaveLength(1);
      await Promise.all(faulted);
      if (first.exitCode !== 0) {
        expect(first.stderr.trim().split('\n').at(-1), first.stderr).toMatch(/^shadowcut: /);
        expect(first.stderr).not.toMatch(/^\s+at /m);
        // Stopped: the set is on one side of its swap, both tables alike.
        const shadows = await Promise.all(tables.map(async (t) => (await db.helpers(t)).includes(`${t}__new`)));
        expect(shadows[0], `one table swapped and not the other: ${first.stderr}`).toBe(shadows[1]);
        const resumed = await cliAsync(['migrate', '--execute', '--resume', ...args]);
        expect(resumed.code, `${first.stderr}\nthen: ${resumed.stderr}`).toBe(0);
      }
      for (const load of loads) await load.untilMoreWrites(20);
    } finally {
      for (const load of loads) await load.stop();
    }
    for (const t of tables) {
      await db.query(`ALTER TABLE ${t}_m ${alter}`);
      expect(await db.schema(t)).toBe(await db.schema(`${t}_m`));
      expect(await db.differences(t, `${t}_m`)).toEqual([]);
      expect(await db.helpers(t)).toEqual([`${t}__old`]);
    }
  });
});
