// Files another OS user can make or change are not obeyed (docs/invariants.md, invariant 19): a hook runs as
// the user running shadowcut, and a flag file holds back, postpones or stops its run. Reads only the
// file system, so it runs without servers (vitest.config.ts, project `no-servers`).
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { postponed } from '../src/core/migrate/cutover/postponement.js';
import type { RunContext } from '../src/core/migrate/context.js';
import { defaultSettings } from '../src/core/run/config.js';
import { checkFlagFiles, flagRaised, watchPanicFlagFile, type FlagOption } from '../src/core/run/flag-files.js';
import { RunState, settingsOf } from '../src/core/run/run-state.js';
import { Throttler } from '../src/core/run/throttler.js';
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

  it.runIf(root)("a flag file another OS user made does not count; one of the running user's does", async () => {
    const flag = sharedFlag();
    const state = newState();
    expect(await flagRaised('--throttle-flag-file', flag, state, () => {})).toBe(false);
    writeFileSync(flag, '');
    expect(await flagRaised('--throttle-flag-file', flag, state, () => {})).toBe(true);
    chownSync(flag, STRANGER, STRANGER);
    expect(await flagRaised('--throttle-flag-file', flag, state, () => {})).toBe(false);
  });

  it.runIf(root)("a flag path that holds another user's file refuses the run at the start, even after the operator's touch", () => {
    const flag = sharedFlag();
    expect(() => checkFlagFiles({ '--panic-flag-file': flag })).not.toThrow();
    writeFileSync(flag, '');
    chownSync(flag, STRANGER, STRANGER);
    // The operator's touch of a file nobody made keeps nobody as its owner.
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

  it.runIf(root)("another user's flag met during a run is warned about and shown in the status, by each of the three looks", async () => {
    const state = newState();
    const warnings: string[] = [];
    const warn = (message: string) => warnings.push(message);
    const [throttle, panic, postpone] = [sharedFlag('throttle'), sharedFlag('panic'), sharedFlag('postpone')];
    for (const flag of [throttle, panic, postpone]) {
      writeFileSync(flag, '');
      chownSync(flag, STRANGER, STRANGER);
    }
    const throttler = new Throttler(state, null, { flagFile: throttle }, warn);
    expect(await throttler.hold()).toBeNull();
    const stop = watchPanicFlagFile(panic, state, warn);
    try {
      await until(() => '--panic-flag-file' in state.status.untrustedFlags);
    } finally {
      stop();
    }
    expect(state.abortReason).toBeNull();
    const ctx = { state, config: { postponeCutover: false, postponeFlagFile: postpone }, report: { warn } } as unknown as RunContext;
    expect(await postponed(ctx)).toBe(false);

    for (const option of OPTIONS) {
      expect(state.status.untrustedFlags[option]).toMatch(
        new RegExp(`^${option} \\S+ belongs to another OS user \\(uid 65534\\), so it does not count: remove it and make it again as yourself`),
      );
      // Warned once when first seen, not at each look (the panic flag is looked at 4 times a second).
      expect(warnings.filter((w) => w.startsWith(option))).toHaveLength(1);
    }
    // A minute on, a flag still there is warned about again (the clock moved, not waited for).
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 61_000);
      expect(await postponed(ctx)).toBe(false);
      expect(warnings.filter((w) => w.startsWith('--postpone-cutover-flag-file'))).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }

    // Made again by the running user, each counts and its warning goes.
    for (const flag of [throttle, postpone]) {
      rmSync(flag);
      writeFileSync(flag, '');
    }
    expect(await throttler.hold(new Date(Date.now() + 1000))).toMatchObject({ kind: 'flag' });
    expect(await postponed(ctx)).toBe(true);
    expect(Object.keys(state.status.untrustedFlags)).toEqual(['--panic-flag-file']);
  });
});

const OPTIONS: FlagOption[] = ['--throttle-flag-file', '--panic-flag-file', '--postpone-cutover-flag-file'];

const made: string[] = [];
afterAll(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

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
