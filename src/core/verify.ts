import type { Reporter } from './reporter.js';
import { UserError } from './errors.js';
import type { CatchUp, ConsistentView, Engine, Key, KeyRange, Plan } from './types.js';

export interface VerifyOptions {
  /** A view was opened: everything applied before it is covered by its checksum. */
  viewOpened: () => void;
  catchUp: CatchUp;
  lockTimeoutMs: number;
  chunkRows: number;
  /** Called between checksum chunks so the stream keeps being applied during a long verification. */
  between: () => Promise<unknown>;
  /** Re-copy a range whose digests differ. */
  repair: (range: KeyRange) => Promise<number>;
  withLockRetries: <T>(fn: () => Promise<T>) => Promise<T>;
  reporter: Reporter;
  abort: () => void;
  rounds?: number;
}

/**
 * Parity is proven, not assumed (DESIGN.md invariant 4): both tables are checksummed chunk by chunk
 * in one consistent view; ranges that differ are re-copied and the whole table is checked again,
 * until a round finds no difference. Returns the number of rounds it took.
 */
export async function verify(engine: Engine, plan: Plan, o: VerifyOptions): Promise<number> {
  const rounds = o.rounds ?? 3;
  for (let round = 1; round <= rounds; round++) {
    const view = await o.withLockRetries(() => engine.consistentView(plan, o.catchUp, o.lockTimeoutMs));
    o.viewOpened();
    let mismatched: KeyRange[];
    try {
      mismatched = await compareAll(view, o);
    } finally {
      await view.close();
    }
    if (mismatched.length === 0) {
      o.reporter.info(`checksum round ${round}: tables match`);
      return round;
    }
    o.reporter.warn(`checksum round ${round}: ${mismatched.length} chunk(s) differ; re-copying them`, {
      ranges: mismatched.length,
    });
    for (const range of mismatched) {
      o.abort();
      await o.repair(range);
      await o.between();
    }
  }
  throw new UserError(`checksums still differ after ${rounds} rounds of repair; not cutting over`);
}

async function compareAll(view: ConsistentView, o: VerifyOptions): Promise<KeyRange[]> {
  const mismatched: KeyRange[] = [];
  let after: Key | null = null;
  let upTo = await view.nextBoundary(after, o.chunkRows);
  for (;;) {
    o.abort();
    const range: KeyRange = { after, upTo };
    const [[original, shadow], following] = await Promise.all([
      view.checksum(range),
      upTo === null ? Promise.resolve(null) : view.nextBoundary(upTo, o.chunkRows),
    ]);
    if (original.rows !== shadow.rows || original.digest !== shadow.digest) mismatched.push(range);
    await o.between();
    if (upTo === null) return mismatched;
    after = upTo;
    upTo = following;
  }
}
