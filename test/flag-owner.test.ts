// Flag files another OS user made (docs/invariants.md, invariant 19; issue 68, item 7). The operator's
// `touch` of a file `nobody` made keeps `nobody` as its owner, so the run cannot tell such a flag from
// the operator's: a run given such a path is refused at the start; one that appears during a run holds
// it the safe way, from the run's start, and says why once: a throttle flag holds the copy back, a
// postpone flag keeps the cut-over postponed until it is gone or the operator's own, and a panic flag
// stops the run, changing no table. Needs root, to be a second user.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databases, useDatabase } from './support/fixture.js';
import type { RunningAnswer } from '../src/operator/control-server.js';
import { background, waitFor } from './support/run.js';

const root = process.getuid?.() === 0;
/** `nobody` on Debian: an OS user other than the one running the tests. */
const STRANGER = 65534;
const ALTER = 'ADD COLUMN note INT NULL';

// Sockets in a control directory of this file's own (inherited by the CLI runs), flags in a shared one, like /tmp.
let controlDir: string;
let shared: string;
const outerDir = process.env.SHADOWCUT_CONTROL_DIR;

beforeAll(() => {
  controlDir = mkdtempSync(path.join(os.tmpdir(), 'sc-flag-ctl-'));
  process.env.SHADOWCUT_CONTROL_DIR = controlDir;
  shared = mkdtempSync(path.join(os.tmpdir(), 'sc-flag-shared-'));
  chmodSync(shared, 0o1777);
});

afterAll(() => {
  if (outerDir === undefined) delete process.env.SHADOWCUT_CONTROL_DIR;
  else process.env.SHADOWCUT_CONTROL_DIR = outerDir;
  rmSync(controlDir, { recursive: true, force: true });
  rmSync(shared, { recursive: true, force: true });
});

/** A file made at `file` by `nobody`, as another local user would make it first. */
function strangersFile(file: string): void {
  writeFileSync(file, '');
  chownSync(file, STRANGER, STRANGER);
}

describe.runIf(root).each(databases)('flag files another OS user made ($name)', ({ open }) => {
  const db = useDatabase(open, 'flag_t');

  beforeAll(async () => {
    await db.drop('flag_t');
    await db.query('CREATE TABLE flag_t (id INT NOT NULL PRIMARY KEY, v VARCHAR(40) NOT NULL)');
    await db.query(`INSERT INTO flag_t SELECT g, 'row' FROM (${db.series(3000)}) s`);
  });

  /** The run's status through the CLI, as the operator would ask. */
  function status(): RunningAnswer | null {
    const r = db.cli(['status', '--table', 'flag_t', '--json']);
    return r.code === 0 ? (JSON.parse(r.stdout) as RunningAnswer) : null;
  }

  /** Polls until `check` holds; bounded, so a run that never gets there fails the test instead of hanging it. */
  async function until<T>(what: string, check: () => T | null | undefined | false): Promise<T> {
    let value: T | null | undefined | false = null;
    await waitFor(what, () => Boolean((value = check())), null, 30_000);
    return value as T;
  }

  it('a postpone flag nobody made, touched by the operator, refuses the run at the start: nothing is made', async () => {
    const flag = path.join(shared, `postpone-${db.kind}`);
    strangersFile(flag);
    execFileSync('touch', [flag]);
    const before = await db.schema('flag_t');
    const r = db.cli(['migrate', '--url', '$URL', '--table', 'flag_t', '--alter', ALTER, '--execute', '--postpone-cutover-flag-file', flag]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      `shadowcut: --postpone-cutover-flag-file ${flag} belongs to another OS user (uid 65534), so it does not count: remove it after checking whose it is; a flag you make then counts`,
    ]);
    expect(await db.schema('flag_t')).toBe(before);
    expect(await db.helpers('flag_t')).toEqual([]);
  });

  /** The run's JSON lines on stdout. */
  const events = (stdout: string) =>
    stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { event?: string; message?: string });

  it('throttle and postpone flags nobody makes during the run hold it, said from the copy on, until they are gone', async () => {
    const [throttle, postpone] = [path.join(shared, `held-throttle-${db.kind}`), path.join(shared, `held-postpone-${db.kind}`)];
    // The operator's own throttle flag holds the copy from the start, so nobody's flags come before the cut-over.
    writeFileSync(throttle, '');
    const args = ['--table', 'flag_t', '--alter', ALTER, '--force-copy', '--execute', '--json'];
    const run = db.cliAsync(['migrate', '--url', '$URL', ...args, '--throttle-flag-file', throttle, '--postpone-cutover-flag-file', postpone]);
    let done: Awaited<typeof run> | undefined;
    try {
      await until('the copy held by the flag', () => status()?.status.throttleKind === 'flag');
      strangersFile(postpone);
      execFileSync('touch', [postpone]);
      // Said while the copy is held, not first at the cut-over.
      const said = await until('the postpone flag in the status', () => status()?.status.untrustedFlags['--postpone-cutover-flag-file']);
      expect(said).toBe(
        `--postpone-cutover-flag-file ${postpone} belongs to another OS user (uid 65534), so it may not be yours: the cut-over stays postponed until it is gone or made again by you (or "shadowcut cutover")`,
      );
      expect(status()?.status.phase).toBe('copy');

      // The operator's throttle flag made again by nobody holds all the same (put in its place at once: no look finds none).
      strangersFile(`${throttle}.new`);
      renameSync(`${throttle}.new`, throttle);
      const held = await until('the throttle flag in the status', () => status()?.status.untrustedFlags['--throttle-flag-file']);
      expect(held).toMatch(/^--throttle-flag-file \S+ belongs to another OS user \(uid 65534\), so it may not be yours: the run holds back until it is gone/);
      expect(status()?.status).toMatchObject({ throttleKind: 'flag', throttleReason: held, phase: 'copy' });

      // Gone: the copy goes on, and the cut-over stays postponed by nobody's postpone flag.
      rmSync(throttle);
      await until('the postponed cut-over', () => status()?.status.state === 'postponed');
      expect(await db.schema('flag_t')).not.toMatch(/note/);
      rmSync(postpone);
      done = await run;
    } finally {
      // A failed wait leaves no run behind for the next test (it would hold the table's claim).
      if (done === undefined) {
        db.cli(['abort', '--table', 'flag_t']);
        await run;
      }
    }
    expect(done.code, done.stderr).toBe(0);
    expect(await db.schema('flag_t')).toMatch(/note/);
    // Each said once, however long it stayed (the copy's hold is announced too, as every hold is: "holding back: ...").
    const warnings = events(done.stdout).filter((e) => e.event === 'warning' && e.message?.startsWith('--'));
    expect(warnings.map((e) => e.message!.split(' ')[0]).sort()).toEqual(['--postpone-cutover-flag-file', '--throttle-flag-file']);
    await db.query('ALTER TABLE flag_t DROP COLUMN note');
    await db.drop('flag_t__old');
  });

  it('a panic flag nobody makes during the run stops it all the same, says whose it is, and changes no table', async () => {
    const panic = path.join(shared, `panic-${db.kind}`);
    const before = await db.schema('flag_t');
    const args = ['--table', 'flag_t', '--alter', ALTER, '--force-copy', '--execute', '--postpone-cutover', '--json'];
    const run = db.cliAsync(['migrate', '--url', '$URL', ...args, '--panic-flag-file', panic]);
    let done: Awaited<typeof run> | undefined;
    try {
      await until('the postponed cut-over', () => status()?.status.state === 'postponed');
      strangersFile(panic);
      const ended = background(run);
      await until('the run to stop', () => ended.settled);
      done = await run;
    } finally {
      // A failed wait leaves no run behind for the next test (it would hold the table's claim).
      if (done === undefined) {
        db.cli(['abort', '--table', 'flag_t']);
        await run;
      }
    }
    expect(done.code, done.stderr).toBe(3);
    expect(done.stderr).toContain(`panic flag file ${panic} exists (it belongs to another OS user (uid 65534): stopped all the same)`);
    expect(events(done.stdout).filter((e) => e.event === 'warning' && e.message?.startsWith('--panic-flag-file'))).toHaveLength(1);
    expect(await db.schema('flag_t')).toBe(before);
    expect(await db.helpers('flag_t')).toEqual([]);
  });
});
