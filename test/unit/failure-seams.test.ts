// The cut-over's test seams as an object (core/engine/failure-seams.ts): which step a variable names, the
// one failure in all, the `@suffix` form, and nothing at all when no variable is set. The kill and
// the pause are left to the server tests that use them.
import { describe, expect, it } from 'vitest';
import { LockTimeoutError } from '../../src/core/engine/errors.js';
import { seamsOf } from '../../src/core/engine/failure-seams.js';

describe('seamsOf', () => {
  it('does nothing where no variable is set', async () => {
    const seams = seamsOf({});
    await expect(seams.at('before-lock')).resolves.toBeUndefined();
    expect(seams.fails('rename-after-unlock', 't__new')).toBe(false);
  });

  it('fails the named step once, as a lock timeout, and only that step', async () => {
    const seams = seamsOf({ SHADOWCUT_TEST_FAIL_AT: 'after-children-pointed' });
    await expect(seams.at('before-lock')).resolves.toBeUndefined();
    await expect(seams.at('after-children-pointed')).rejects.toThrow(new LockTimeoutError('failed at after-children-pointed (SHADOWCUT_TEST_FAIL_AT)'));
    await expect(seams.at('after-children-pointed')).resolves.toBeUndefined();
  });

  it('names a step only in a swap whose shadow ends with the suffix', () => {
    const seams = seamsOf({ SHADOWCUT_TEST_FAIL_AT: 'rename-after-unlock@__old' });
    expect(seams.fails('rename-after-unlock', 't__new')).toBe(false);
    expect(seams.fails('rename-after-unlock', 't__old')).toBe(true);
    expect(seams.fails('rename-after-unlock', 't__old')).toBe(false);
  });

  it('reads the variables at each step, so a test may set one after the seams were made', () => {
    const env: NodeJS.ProcessEnv = {};
    const seams = seamsOf(env);
    expect(seams.fails('rename-after-unlock')).toBe(false);
    env.SHADOWCUT_TEST_FAIL_AT = 'rename-after-unlock';
    expect(seams.fails('rename-after-unlock')).toBe(true);
  });
});
