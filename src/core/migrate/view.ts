import type { Applier } from './applier.js';
import type { Planned, RunContext } from './context.js';
import type { MigrationVerification } from '../engine/ports/verification.js';
import type { ConsistentView, Key, KeyRange } from '../engine/types.js';

/**
 * A view of both tables for a checksum round or a comparison of changed rows, and the keys applied
 * before it (which it covers). Where the engine can, it is opened with no lock at all: the changed
 * keys restart first, the original is read at one instant, the applier then brings the shadow past
 * that instant, and the shadow is read. A row whose change came after the original's instant may then
 * differ for no fault, but only if the applier applied it after the restart: so such rows are
 * excused here and compared again later (at the latest under the cut-over lock, with everything
 * changed since this view). A row that differs and was not applied since the restart is a real
 * difference. Without an engine's snapshot view, writers are held for the view's brief lock as before.
 */
export interface OpenedView {
  view: ConsistentView;
  /** What the changed keys held before this view: rows the view covers. */
  since: { keys: Key[]; overflowed: boolean };
  /** The keys among these that differ for a real fault, not because they changed after the original was read. */
  unexcused(keys: Key[]): Key[];
  /** Whether the range's rows differ for a real fault, its digests having differed. */
  rangeDiffers(range: KeyRange): Promise<boolean>;
}

export async function openView(ctx: RunContext<Planned & MigrationVerification>, applier: Applier): Promise<OpenedView> {
  const changed = applier.changed;
  if (ctx.migration.snapshotView) {
    const since = changed.restart();
    // Keys applied from here on may be newer in the shadow than in the original's instant.
    const view = await ctx.migration
      .snapshotView(() => applier.catchUp())
      .catch((error: unknown) => {
        changed.putBack(since);
        throw error;
      });
    if (view) {
      const unexcused = (keys: Key[]) => keys.filter((key) => !changed.has(key));
      return { view, since, unexcused, rangeDiffers: async (range) => unexcused(await view.differingKeysIn(range)).length > 0 };
    }
    changed.putBack(since);
  }
  const view = await applier.underLock('checksum lock', () => ctx.migration.consistentView(applier.catchUpLocked, ctx.config.lockTimeoutMs));
  // Everything applied before the view is covered by its checksum.
  return { view, since: changed.restart(), unexcused: (keys) => keys, rangeDiffers: () => Promise.resolve(true) };
}
