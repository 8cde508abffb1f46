import type { Applier } from './applier.js';
import type { RunContext } from './context.js';
import { UserError } from '../errors.js';
import type { ConsistentView, KeyRange } from '../types.js';
import { walkChunks } from '../walk-chunks.js';

const ROUNDS = 3;

/**
 * Parity is proven, not assumed (DESIGN.md invariant 4): both tables are checksummed chunk by chunk
 * in one consistent view; ranges that differ are re-copied with `repair` and the whole table is
 * checked again, until a round finds no difference. The stream is applied between chunks, so a long
 * verification never builds a backlog. Returns the number of rounds it took.
 */
export async function checksumRounds(ctx: RunContext, applier: Applier, repair: (range: KeyRange) => Promise<number>): Promise<number> {
  const { migration, report } = ctx;
  for (let round = 1; round <= ROUNDS; round++) {
    // A view whose session is lost cannot be read on: the round starts again on a new one.
    const mismatched = await ctx.transient('a checksum round', async () => {
      const view = await applier.underLock('checksum lock', () => migration.consistentView(applier.catchUpLocked, ctx.config.lockTimeoutMs));
      // Everything applied before the view is covered by its checksum.
      applier.changed.restart();
      try {
        return await compareAll(ctx, applier, view);
      } finally {
        await view.close().catch(() => {});
      }
    });
    if (mismatched.length === 0) {
      report.info(`checksum round ${round}: tables match`);
      return round;
    }
    report.warn(`checksum round ${round}: ${mismatched.length} chunk(s) differ; re-copying them`, { ranges: mismatched.length });
    for (const range of mismatched) {
      ctx.checkAbort();
      await repair(range);
      await applier.applyPending();
    }
  }
  throw new UserError(`checksums still differ after ${ROUNDS} rounds of repair; not cutting over`);
}

async function compareAll(ctx: RunContext, applier: Applier, view: ConsistentView): Promise<KeyRange[]> {
  const mismatched: KeyRange[] = [];
  await walkChunks(
    (after, rows) => view.nextBoundary(after, rows),
    ctx.config.checksumChunkRows,
    async (range) => {
      ctx.checkAbort();
      const [original, shadow] = await view.checksum(range);
      if (original.rows !== shadow.rows || original.digest !== shadow.digest) mismatched.push(range);
      await applier.applyPending();
    },
  );
  return mismatched;
}
