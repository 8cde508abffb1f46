// docs/crash-and-resume.md's fault matrix: each phase of a run crossed with what a DBA's night holds,
// on servers of the test's own (a fault here breaks the server for everyone else). Each cell runs
// under mirrored writes and asserts the whole outcome: the run ends by itself, or stops with one line
// and a non-zero exit and `--resume` ends it; then the table is exactly the native ALTER's on the
// mirror, nothing of the run is left (no slot, no publication) and no write was lost or doubled.
// SIGKILL of shadowcut at each phase is test/resume.test.ts's (copy, catch-up, verify), and
// test/revert-window.test.ts's in the window.
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAsync } from './support/cli.js';
import { cliEvents } from './support/kill.js';
import { waitFor } from './support/run.js';
import { MirrorWorkload } from './support/workload.js';
import {
  dialects,
  ENGINES,
  FAULTS,
  PHASES,
  postgres,
  postgresWithStandby,
  ROWS,
  twinTables,
  writes,
  type Fault,
  type Phase,
  type Server,
} from './support/faults.js';

/** A run's end as a DBA sees it: the exit code and its stderr's last lines. */
interface Ended {
  exitCode: number | null;
  stderr: string;
}

describe.each(ENGINES)('$name: a fault at each phase', ({ start }) => {
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
    const { alter } = dialects[db.kind];
    await twinTables(db, t, mirror);
    const load = new MirrorWorkload(db, [t, mirror], writes(db), 3, true);
    load.start();
    const args = ['--url', server.url, '--table', t, '--alter', alter, '--force-copy', '--chunk-time-ms', '10', '--lock-timeout-ms', '1000'];
    // The copy paced to last seconds, so that the fault lands in it however fast the machine.
    const paced = phase === 'copy' ? ['--max-rows-per-sec', String(ROWS / 4)] : [];
    const waits = phase === 'postponed' ? ['--postpone-cutover'] : phase === 'revert window' ? ['--revert-window', '10m'] : [];
    const asked = ASKED[phase];
    let faulted: Promise<string> | null = null;
    const warned: string[] = [];
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
        if (faulted && event.event === 'warning') warned.push(String((event as { message?: string }).message));
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
      // A run that rode a restart out in a phase it spends waiting said so, with what it does next.
      if (first.exitCode === 0 && fault === 'the server restarted' && SAYS_OUTAGE.has(phase))
        expect(warned.join('\n'), `${phase}: nothing said of the restart`).toMatch(/retrying in \d+ ms|reopening from the last applied position/);
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

describe('PostgreSQL with a standby: the standby stopped for three seconds', () => {
  let server: Awaited<ReturnType<typeof postgresWithStandby>>;
  beforeAll(async () => {
    server = await postgresWithStandby();
  }, 120_000);
  afterAll(() => server?.stop());

  // An unreachable standby cannot be measured, and counts as lagging (fail closed): the copy holds,
  // and so does the cut-over, until it answers again; then the run ends by itself.
  it.each(['copy', 'cutover'] as const)('in the %s: the run holds while it is away, then ends exact, nothing left', async (phase) => {
    const { db } = server;
    const t = `fs_${phase}`;
    const mirror = `${t}_m`;
    const { alter } = dialects.postgres;
    await twinTables(db, t, mirror);
    const load = new MirrorWorkload(db, [t, mirror], writes(db), 3);
    load.start();
    const down: Promise<void>[] = [];
    let held = false;
    try {
      const paced = phase === 'copy' ? ['--max-rows-per-sec', String(ROWS / 4)] : [];
      const args = ['--url', server.url, '--replica', server.standbyUrl, '--table', t, '--alter', alter, '--force-copy', '--chunk-time-ms', '10', ...paced];
      const run = await cliEvents(['migrate', '--json', '--execute', ...args], (event) => {
        if (typeof event.throttle === 'string' && /^replica/.test(event.throttle)) held = true;
        if (!down.length && event.event === 'phase' && event.phase === phase) down.push(server.standbyDown(3000));
      });
      await Promise.all(down);
      expect(down, `the run ended before its ${phase} phase: ${run.stderr}`).toHaveLength(1);
      expect(run.exitCode, run.stderr).toBe(0);
      // The copy's progress says why it holds; the cut-over's wait is before its lock, where no progress is told.
      if (phase === 'copy') expect(held).toBe(true);
      await load.untilMoreWrites(20);
    } finally {
      await load.stop();
    }
    expect(load.stats.errors).toEqual([]);
    await db.query(`ALTER TABLE ${mirror} ${alter}`);
    expect(await db.schema(t)).toBe(await db.schema(mirror));
    expect(await db.differences(t, mirror)).toEqual([]);
    expect(await db.helpers(t)).toEqual([`${t}__old`]);
    await db.drop(t, mirror);
  });
});

/** The phases a run spends reading the server (copying, comparing, following the stream): a restart there is always met. */
const SAYS_OUTAGE = new Set<Phase>(['copy', 'verify', 'postponed', 'revert window']);

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

// What the DBA sees while it happens: the server away for four seconds in the copy, and `shadowcut
// status` asked meanwhile from another terminal (the run's control socket needs no server).
describe('PostgreSQL away for four seconds: what status says meanwhile', () => {
  let server: Server;
  beforeAll(async () => {
    server = await postgres();
  }, 120_000);
  afterAll(() => server?.stop());

  it('a connection line saying what failed and when the next try is; then the run ends exact by itself', async () => {
    const { db } = server;
    const [t, mirror] = ['f_said', 'f_said_m'];
    const { alter } = dialects.postgres;
    await twinTables(db, t, mirror);
    const load = new MirrorWorkload(db, [t, mirror], writes(db), 2, true);
    load.start();
    const said: Promise<string>[] = [];
    try {
      const args = ['--url', server.url, '--table', t, '--alter', alter, '--force-copy', '--max-rows-per-sec', String(ROWS / 4)];
      const run = await cliEvents(['migrate', '--json', '--execute', ...args], (event) => {
        if (said.length || event.event !== 'phase' || event.phase !== 'copy') return;
        said.push(
          (async () => {
            const away = server.server!.restart(4000);
            let line = '';
            await waitFor(
              'status to show the lost connection',
              async () => {
                line = (await cliAsync(['status', '--table', `public.${t}`])).stdout.split('\n').find((l) => /^\s*connection\b/.test(l)) ?? '';
                return line !== '';
              },
              null,
              30_000,
              100,
            );
            await away;
            return line;
          })(),
        );
      });
      expect(said, run.stderr).toHaveLength(1);
      expect(await said[0]).toMatch(/connection\s*:?\s+.* failed \(.*\); retrying in \d+ ms \(retry \d of 8, then the run stops\)/);
      expect(run.exitCode, run.stderr).toBe(0);
      await load.untilMoreWrites(20);
    } finally {
      await load.stop();
    }
    await db.query(`ALTER TABLE ${mirror} ${alter}`);
    expect(await db.differences(t, mirror)).toEqual([]);
    expect(await db.helpers(t)).toEqual([`${t}__old`]);
  });
});
