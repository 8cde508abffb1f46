// Files another OS user can make or change are not obeyed (DESIGN.md invariant 19): a hook runs as
// the user running shadowcut, and a flag file holds back, postpones or stops its run. Reads only the
// file system, so it runs without servers (vitest.config.ts, project `no-servers`).
import { chmodSync, chownSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileExists } from '../src/core/run/throttler.js';
import { validateHooksDir } from '../src/operator/hooks.js';

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
    const dir = mkdtempSync(path.join(tmpdir(), 'sc-flag-'));
    chmodSync(dir, 0o1777);
    const flag = path.join(dir, 'panic');
    expect(await fileExists(flag)).toBe(false);
    writeFileSync(flag, '');
    expect(await fileExists(flag)).toBe(true);
    chownSync(flag, STRANGER, STRANGER);
    expect(await fileExists(flag)).toBe(false);
  });
});
