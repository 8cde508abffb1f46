// Flag files another OS user made first (docs/invariants.md, invariant 19): they never count, and that is said
// aloud. The operator's `touch` of a file `nobody` made keeps `nobody` as its owner, so a run given
// such a path is refused at the start; one that appears during a run is warned about and shown by
// `shadowcut status`, and does not stop or postpone the run. Needs root, to be a second user.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databases, useDatabase } from './support/fixture.js';
import type { RunningAnswer } from '../src/operator/control-server.js';
import { waitFor } from './support/run.js';

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

  it('a panic flag nobody makes during the run is warned about and shown by status, and does not stop the run', async () => {
    const panic = path.join(shared, `panic-${db.kind}`);
    const run = db.cliAsync([
      'migrate',
      '--url',
      '$URL',
      '--table',
      'flag_t',
      '--alter',
      ALTER,
      '--force-copy',
      '--execute',
      '--postpone-cutover',
      '--panic-flag-file',
      panic,
      '--json',
    ]);
    try {
      await until('the postponed cut-over', () => status()?.status.state === 'postponed');
      strangersFile(panic);
      const seen = await until('the warning in the status', () => status()?.status.untrustedFlags['--panic-flag-file']);
      expect(seen).toBe(`--panic-flag-file ${panic} belongs to another OS user (uid 65534), so it does not count: remove it and make it again as yourself`);
      expect(db.cli(['status', '--table', 'flag_t']).stdout).toContain(`warning    ${seen}`);
      expect(status()).toMatchObject({ abortReason: null, status: { state: 'postponed' } });
    } finally {
      db.cli(['cutover', '--table', 'flag_t']);
    }
    const done = await run;
    expect(done.code, done.stderr).toBe(0);
    const events = done.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { event?: string; message?: string });
    expect(events.filter((e) => e.event === 'warning' && e.message?.startsWith('--panic-flag-file')).length).toBeGreaterThan(0);
    expect(await db.schema('flag_t')).toMatch(/note/);
  });
});
