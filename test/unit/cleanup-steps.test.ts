// cleanupSteps (src/core/engine/cleanup-steps.ts): what a migration's cleanup removes, for every
// combination the runner and the revert window ask for. Both engines carry these steps out, so the
// table here is what each engine's cleanup removed before the decision moved to core.
import { describe, expect, it } from 'vitest';
import { cleanupSteps } from '../../src/core/engine/cleanup-steps.js';

describe('cleanupSteps', () => {
  it('a forward run that did not cut over drops its shadow and the window capture on it, and its checkpoint; never the old table', () => {
    for (const dropOld of [false, true]) {
      expect(cleanupSteps(false, { dropOld, cutOver: false })).toEqual({ shadow: true, old: false, reverseCapture: 'shadow', checkpoint: true });
    }
  });

  it('a forward run that cut over keeps the old table unless asked, and removes any window capture from the new table', () => {
    expect(cleanupSteps(false, { dropOld: false, cutOver: true })).toEqual({ shadow: false, old: false, reverseCapture: 'table', checkpoint: true });
    expect(cleanupSteps(false, { dropOld: true, cutOver: true, keepCheckpoint: false })).toEqual({
      shadow: false,
      old: true,
      reverseCapture: 'table',
      checkpoint: true,
    });
  });

  it('a revert window that follows keeps the old table (its shadow), its capture and the checkpoint', () => {
    expect(cleanupSteps(false, { dropOld: false, cutOver: true, keepCheckpoint: true })).toEqual({
      shadow: false,
      old: false,
      reverseCapture: null,
      checkpoint: false,
    });
    // --drop-old is refused with --revert-window; asked all the same, the window's shadow stays.
    expect(cleanupSteps(false, { dropOld: true, cutOver: true, keepCheckpoint: true })?.old).toBe(false);
  });

  it('the way back removes nothing until the window is over, then only its checkpoint: no table, and its capture is its own change source', () => {
    expect(cleanupSteps(true, { dropOld: false, cutOver: false })).toBeNull();
    expect(cleanupSteps(true, { dropOld: true, cutOver: false })).toBeNull();
    expect(cleanupSteps(true, { dropOld: true, cutOver: true })).toEqual({ shadow: false, old: false, reverseCapture: null, checkpoint: true });
  });
});
