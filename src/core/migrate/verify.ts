import type { Applier } from './applier.js';
import type { Planned, RunContext } from './context.js';
import type { MigrationVerification } from '../engine/ports/verification.js';
import { UserError, CLOSING, ignoreFailure } from '../engine/errors.js';
import type { Key, KeyRange } from '../engine/types.js';
import { openView, type OpenedView } from './view.js';
import { walkChunks } from '../run/walk-chunks.js';

const ROUNDS = 3;

/** What a round found: ranges whose digests differ, and single keys that differ. */
interface Difference {
  ranges: KeyRange[];
  keys: Key[];
}

/**
 * Parity is proven, not assumed (docs/invariants.md, invariant 4): both tables are checksummed chunk by chunk
 * in one consistent view; what differs is re-copied with `repair` (ranges) or applied again (keys)
 * and the whole table is checked again, until a round finds no difference. The stream is applied
 * between chunks, so a long verification never builds a backlog. Returns the number of rounds it took.
 *
 * `copied`: the ranges the copy's own checksums left unproven (see copy-proof.ts), or null. With it,
 * the first round checksums only those and compares row by row the keys applied since the copy started.
 */
export async function checksumRounds(
  ctx: RunContext<Planned & MigrationVerification>,
  applier: Applier,
  repair: (range: KeyRange) => Promise<number>,
  copied: KeyRange[] | null = null,
): Promise<number> {
  const { report, result } = ctx;
  for (let round = 1; round <= ROUNDS; round++) {
    let attempt = 0;
    // Level before the lock: under it, catching up has only the lock's budget.
    await applier.catchUp();
    // A view whose session is lost cannot be read on: the round starts again on a new one.
    let narrowed: { chunksRechecked: number; keysCompared: number } | null = null;
    const found = await ctx.transient('a checksum round', async () => {
      const opened = await openView(ctx, applier);
      const { since } = opened;
      // A retried round lost the keys its first attempt took: it reads the whole table.
      const narrow = round === 1 && attempt++ === 0 && copied !== null && !since.overflowed;
      try {
        narrowed = null;
        if (!narrow) return await compareAll(ctx, applier, opened);
        result.keysCompared += since.keys.length;
        narrowed = { chunksRechecked: copied.length, keysCompared: since.keys.length };
        return await compareSinceCopy(ctx, applier, opened, copied, since.keys);
      } finally {
        await opened.view.close().catch(ignoreFailure(CLOSING));
      }
    });
    const { ranges, keys } = found;
    if (ranges.length === 0 && keys.length === 0) {
      if (narrowed) result.copyTimeProof = narrowed;
      report.info(`checksum round ${round}: tables match${narrowed ? " (the copy's own chunk digests for the rest)" : ''}`);
      return round;
    }
    report.warn(`checksum round ${round}: ${ranges.length} chunk(s) and ${keys.length} row(s) differ; copying them again`, {
      ranges: ranges.length,
      rows: keys.length,
    });
    if (keys.length > 0) {
      applier.requeue(keys);
      await applier.applyPending();
    }
    for (const range of ranges) {
      ctx.checkAbort();
      await repair(range);
      await applier.applyPending();
    }
  }
  throw new UserError(`checksums still differ after ${ROUNDS} rounds of repair; not cutting over`);
}

/** The rows changed since the copy started, row by row, and the ranges its checksums left unproven. */
async function compareSinceCopy(
  ctx: RunContext<Planned & MigrationVerification>,
  applier: Applier,
  opened: OpenedView,
  unproven: KeyRange[],
  changed: Key[],
): Promise<Difference> {
  const keys = opened.unexcused(await opened.view.compareKeys(changed));
  const ranges: KeyRange[] = [];
  for (const range of unproven) {
    ctx.checkAbort();
    if (await differs(opened, range)) ranges.push(range);
    await applier.applyPending();
  }
  ctx.report.info(`checksummed while copying: ${changed.length} row(s) changed since compared, ${unproven.length} chunk(s) checksummed again`, {
    keysCompared: changed.length,
    rangesRechecked: unproven.length,
  });
  return { ranges, keys };
}

async function compareAll(ctx: RunContext<Planned & MigrationVerification>, applier: Applier, opened: OpenedView): Promise<Difference> {
  const ranges: KeyRange[] = [];
  await walkChunks(
    (after, rows) => opened.view.nextBoundary(after, rows),
    ctx.config.checksumChunkRows,
    async (range) => {
      ctx.checkAbort();
      if (await differs(opened, range)) ranges.push(range);
      await applier.applyPending();
    },
  );
  return { ranges, keys: [] };
}

/** Whether the range's rows differ: by its digests, and in a view of two instants, row by row where they do. */
async function differs(opened: OpenedView, range: KeyRange): Promise<boolean> {
  const [original, shadow] = await opened.view.checksum(range);
  if (original.rows === shadow.rows && original.digest === shadow.digest) return false;
  return opened.rangeDiffers(range);
}
