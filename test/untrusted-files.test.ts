// Files another OS user can make or change are not obeyed (docs/invariants.md, invariant 19): a hook runs as
// the user running shadowcut, a flag file holds back, postpones or stops its run, and a URL, targets,
// certificate or option file says where to connect and with what. Reads only the file system, so it
// runs without servers (vitest.config.ts, project `no-servers`).
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { resolveUrl } from '../src/cli/connection.js';
import { readTargets } from '../src/cli/fleet.js';
import { postponed } from '../src/core/migrate/cutover/postponement.js';
import type { RunContext } from '../src/core/migrate/context.js';
import { defaultSettings } from '../src/core/run/config.js';
import { checkFlagFiles, flagHolds, watchFlagFiles, type FlagOption } from '../src/core/run/flag-files.js';
import { RunState, settingsOf } from '../src/core/run/run-state.js';
import { Throttler } from '../src/core/run/throttler.js';
import { parseMysqlUrl } from '../src/engines/mysql/server/target.js';
import { parsePgUrl } from '../src/engines/postgres/server/target.js';
import { validateHooksDir } from '../src/operator/hooks.js';
import { waitFor } from './support/run.js';

const root = process.getuid?.() === 0;
/** `nobody` on Debian: an OS user other than the one running the tests. */
const STRANGER = 65534;

function hooksDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sc-hooks-'));
  writeFileSync(path.join(dir, 'success'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  return dir;
}

describe('hooks and flag files another OS user controls', () => {
  it('a hooks directory others can write is refused, and so is a hook they can', async () => {
    const dir = hooksDir();
    await expect(validateHooksDir(dir)).resolves.toEqual(['success']);
    chmodSync(dir, 0o777);
    await expect(validateHooksDir(dir)).rejects.toThrow(/--hooks-dir .* can be written by other OS users \(chmod go-w it\): a hook put there would run as you/);
    chmodSync(dir, 0o755);
    chmodSync(path.join(dir, 'success'), 0o777);
    await expect(validateHooksDir(dir)).rejects.toThrow(/hook .*success can be written by other OS users/);
  });

  it.runIf(root)('a hook another OS user owns is refused', async () => {
    const dir = hooksDir();
    chownSync(path.join(dir, 'success'), STRANGER, STRANGER);
    await expect(validateHooksDir(dir)).rejects.toThrow(/hook .*success belongs to another OS user \(uid 65534\): it would run as you/);
  });

  it('a hooks directory under a directory others can write is refused', async () => {
    const above = mkdtempSync(path.join(tmpdir(), 'sc-hooks-above-'));
    made.push(above);
    chmodSync(above, 0o777);
    const dir = path.join(above, 'hooks');
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(path.join(dir, 'success'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    await expect(validateHooksDir(dir)).rejects.toThrow(
      `--hooks-dir ${dir} is under ${above}, which can be written by other OS users (mode 777): a hook put there would run as you`,
    );
  });
});

describe('flag files the run cannot trust hold it the safe way (issue 68, item 7)', () => {
  it.runIf(root)("another user's throttle or postpone flag holds, the running user's too, and none does not", () => {
    const state = newState();
    const warnings: string[] = [];
    const warn = (message: string) => warnings.push(message);
    for (const option of ['--throttle-flag-file', '--postpone-cutover-flag-file'] as const) {
      const flag = sharedFlag();
      expect(flagHolds(option, flag, state, warn)).toBe(false);
      writeFileSync(flag, '');
      expect(flagHolds(option, flag, state, warn)).toBe(true);
      expect(state.status.untrustedFlags).toEqual({});
      chownSync(flag, STRANGER, STRANGER);
      // The operator's touch keeps nobody as its owner: held all the same, and said why.
      execFileSync('touch', [flag]);
      expect(flagHolds(option, flag, state, warn)).toBe(true);
      expect(state.status.untrustedFlags[option]).toBe(`${option} ${flag} belongs to another OS user (uid 65534), so it may not be yours: ${HOLD[option]}`);
      rmSync(flag);
      expect(flagHolds(option, flag, state, warn)).toBe(false);
      expect(state.status.untrustedFlags).toEqual({});
    }
    expect(warnings).toHaveLength(2);
  });

  it.runIf(root)("another user's flag met during a run is said once, from the run's start, until it is gone or the operator's own", async () => {
    const state = newState();
    const warnings: string[] = [];
    const warn = (message: string) => warnings.push(message);
    const [throttle, panic, postpone] = [sharedFlag('throttle'), sharedFlag('panic'), sharedFlag('postpone')];
    for (const flag of [throttle, postpone]) {
      writeFileSync(flag, '');
      chownSync(flag, STRANGER, STRANGER);
    }
    // Watched from the start: the postpone flag is said during the copy, long before the cut-over looks at it.
    const stop = watchFlagFiles({ flagFile: throttle, panicFlagFile: panic, postponeFlagFile: postpone }, state, warn);
    try {
      await until(() => Object.keys(state.status.untrustedFlags).length === 2);
      const throttler = new Throttler(state, null, { flagFile: throttle }, warn);
      expect(await throttler.hold()).toEqual({ kind: 'flag', message: state.status.untrustedFlags['--throttle-flag-file'] });
      const ctx = { state, config: { postponeCutover: false, postponeFlagFile: postpone }, report: { warn } } as unknown as RunContext;
      expect(await postponed(ctx)).toBe(true);
      expect(state.abortReason).toBeNull();
      // Said once each, however many looks (4 a second, and the throttler's and the cut-over's own), and not again a minute on.
      vi.useFakeTimers({ toFake: ['Date'] });
      try {
        vi.setSystemTime(Date.now() + 61_000);
        expect(await postponed(ctx)).toBe(true);
      } finally {
        vi.useRealTimers();
      }
      expect(warnings.map((w) => w.split(' ')[0]).sort()).toEqual(['--postpone-cutover-flag-file', '--throttle-flag-file']);

      // Made again by the running user, each holds as the operator's, and its warning goes.
      for (const flag of [throttle, postpone]) {
        rmSync(flag);
        writeFileSync(flag, '');
      }
      expect(await throttler.hold(new Date(Date.now() + 1000))).toEqual({ kind: 'flag', message: `flag file ${throttle} exists` });
      expect(await postponed(ctx)).toBe(true);
      expect(state.status.untrustedFlags).toEqual({});

      // A panic flag nobody makes stops the run all the same, and says whose it is.
      writeFileSync(panic, '');
      chownSync(panic, STRANGER, STRANGER);
      await until(() => state.abortReason !== null);
      expect(state.abortReason).toBe(`panic flag file ${panic} exists (it belongs to another OS user (uid 65534): stopped all the same)`);
      expect(warnings.filter((w) => w.startsWith('--panic-flag-file'))).toEqual([
        `--panic-flag-file ${panic} belongs to another OS user (uid 65534), so it may not be yours: ${HOLD['--panic-flag-file']}`,
      ]);
    } finally {
      stop();
    }
  });

  it.runIf(root)("a flag path that holds another user's file refuses the run at the start, even after the operator's touch", () => {
    const flag = sharedFlag();
    expect(() => checkFlagFiles({ '--panic-flag-file': flag })).not.toThrow();
    writeFileSync(flag, '');
    chownSync(flag, STRANGER, STRANGER);
    execFileSync('touch', [flag]);
    for (const option of OPTIONS) {
      expect(() => checkFlagFiles({ [option]: flag })).toThrow(
        new RegExp(`^${option} \\S+ belongs to another OS user \\(uid 65534\\), so it does not count: remove it after checking whose it is`),
      );
    }
    rmSync(flag);
    writeFileSync(flag, '');
    expect(() => checkFlagFiles({ '--postpone-cutover-flag-file': flag })).not.toThrow();
  });

  it('a flag path in a directory others can write (not sticky), or in none, is refused at the start, and holds during a run', () => {
    const flag = sharedFlag();
    const dir = path.dirname(flag);
    chmodSync(dir, 0o777);
    for (const option of OPTIONS) {
      expect(() => checkFlagFiles({ [option]: flag })).toThrow(
        `${option} ${flag} is in ${dir}, which can be written by other OS users (mode 777), so a flag there could be anyone's: use a directory only you can write, or a sticky one such as /tmp`,
      );
    }
    // Anyone could remove the operator's flag there: no file does not mean no flag.
    const state = newState();
    expect(flagHolds('--postpone-cutover-flag-file', flag, state, () => {})).toBe(true);
    expect(flagHolds('--panic-flag-file', flag, state, () => {})).toBe(false);
    chmodSync(dir, 0o1777);
    expect(() => checkFlagFiles({ '--throttle-flag-file': flag })).not.toThrow();
    const missing = path.join(dir, 'no-such-dir', 'flag');
    expect(() => checkFlagFiles({ '--throttle-flag-file': missing })).toThrow(
      `--throttle-flag-file ${missing} is in ${path.dirname(missing)}, which does not exist: make it first (only you may write it), or name another path`,
    );
  });
});

describe('files read as trusted: whose they are and where (issue 68, item 5)', () => {
  const home = process.env.HOME;
  afterEach(() => {
    if (home === undefined) delete process.env.HOME;
    else process.env.HOME = home;
  });

  it.runIf(root)('a --url-file or --targets file another OS user owns is refused, private as it is', () => {
    const file = path.join(privateDir(), 'url');
    writeFileSync(file, 'mysql://u@127.0.0.1/shop\n', { mode: 0o600 });
    chownSync(file, STRANGER, STRANGER);
    expect(() => resolveUrl({ urlFile: file }, {})).toThrow(`--url-file ${file} belongs to another OS user (uid 65534): use a file of your own`);
    expect(() => readTargets(file)).toThrow(`--targets ${file} belongs to another OS user (uid 65534): use a file of your own`);
    chownSync(file, 0, 0);
    expect(resolveUrl({ urlFile: file }, {})).toBe('mysql://u@127.0.0.1/shop');
    expect(readTargets(file)).toEqual(['mysql://u@127.0.0.1/shop']);
  });

  it('a file in a directory others can write, /tmp too, or under one, or a link to such a file, is refused', () => {
    const fix = 'keep it in a directory only you (or root) can write';
    const shared = sharedFlag('url');
    writeFileSync(shared, 'mysql://u@127.0.0.1/shop\n', { mode: 0o600 });
    const sharedDir = path.dirname(shared);
    expect(() => resolveUrl({ urlFile: shared }, {})).toThrow(
      `--url-file ${shared} is in ${sharedDir}, which can be written by other OS users (mode 1777): ${fix}`,
    );
    // A link from a private directory is resolved once: the file's own place is what counts.
    const link = path.join(privateDir(), 'url');
    symlinkSync(shared, link);
    expect(() => readTargets(link)).toThrow(`--targets ${link} is in ${sharedDir}, which can be written by other OS users (mode 1777): ${fix}`);
    const above = privateDir();
    chmodSync(above, 0o777);
    const below = path.join(above, 'private');
    mkdirSync(below, { mode: 0o700 });
    const file = path.join(below, 'url');
    writeFileSync(file, 'mysql://u@127.0.0.1/shop\n', { mode: 0o600 });
    expect(() => resolveUrl({ urlFile: file }, {})).toThrow(`--url-file ${file} is under ${above}, which can be written by other OS users (mode 777): ${fix}`);
    chmodSync(above, 0o755);
    expect(resolveUrl({ urlFile: file }, {})).toBe('mysql://u@127.0.0.1/shop');
  });

  it.runIf(root)('certificates (~/.postgresql too) and option files the same way', () => {
    const dir = privateDir();
    const ca = path.join(dir, 'ca.crt');
    writeFileSync(ca, 'not checked here\n');
    chownSync(ca, STRANGER, STRANGER);
    for (const [url, parameter] of [
      [`postgres://u@localhost/shop?sslmode=verify-full&sslrootcert=${ca}`, 'sslrootcert'],
      [`mysql://u@localhost/shop?ssl-mode=VERIFY_IDENTITY&ssl-ca=${ca}`, 'ssl-ca'],
    ]) {
      const parse = () => (url.startsWith('postgres') ? parsePgUrl(url, '--url') : parseMysqlUrl(url));
      expect(parse).toThrow(`${parameter} ${ca} belongs to another OS user (uid 65534): use a file of your own`);
    }
    const options = path.join(dir, 'my.cnf');
    writeFileSync(options, '[client]\npassword=secret\n', { mode: 0o600 });
    chownSync(options, STRANGER, STRANGER);
    expect(() => parseMysqlUrl(`mysql://u@localhost/shop?defaults-file=${options}`)).toThrow(
      `the option file ${options} belongs to another OS user (uid 65534): use a file of your own`,
    );

    // libpq's own ~/.postgresql/root.crt, in a directory others can write: refused, never taken (nor passed over).
    process.env.HOME = privateDir();
    const libpq = path.join(process.env.HOME, '.postgresql');
    mkdirSync(libpq);
    chmodSync(libpq, 0o777);
    writeFileSync(path.join(libpq, 'root.crt'), 'not checked here\n');
    expect(() => parsePgUrl('postgres://u@localhost/shop?sslmode=require', '--url')).toThrow(
      `sslrootcert ${path.join(libpq, 'root.crt')} is in ${libpq}, which can be written by other OS users (mode 777): keep it in a directory only you (or root) can write`,
    );
    chmodSync(libpq, 0o700);
    expect(parsePgUrl('postgres://u@localhost/shop?sslmode=require', '--url')[0].ssl).toMatchObject({ rejectUnauthorized: true });
  });
});

const OPTIONS: FlagOption[] = ['--throttle-flag-file', '--panic-flag-file', '--postpone-cutover-flag-file'];

const made: string[] = [];
afterAll(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** What an untrusted flag does to the run, as the run says it. */
const HOLD: Record<FlagOption, string> = {
  '--throttle-flag-file': 'the run holds back until it is gone or made again by you',
  '--postpone-cutover-flag-file': 'the cut-over stays postponed until it is gone or made again by you (or "shadowcut cutover")',
  '--panic-flag-file': 'the run stops all the same, as a panic flag asks (the table is left as it was); find out who made it',
};

/** A directory of the running user's own, mode 700. */
function privateDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sc-own-'));
  made.push(dir);
  return dir;
}

/** A flag's path in a directory everyone can write, as /tmp. */
function sharedFlag(name = 'flag'): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sc-flag-'));
  made.push(dir);
  chmodSync(dir, 0o1777);
  return path.join(dir, name);
}

function newState(): RunState {
  return new RunState(settingsOf(defaultSettings), { table: 'shop.t', alter: 'ADD COLUMN note INT', engine: 'mysql' });
}

/** Polls until `check` holds; bounded, so a look that never comes fails the test. */
async function until(check: () => boolean): Promise<void> {
  await waitFor('the look', check, null, 10_000);
  expect(check()).toBe(true);
}
