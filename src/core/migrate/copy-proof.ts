import type { KeyRange } from '../engine/types.js';

/** Past this many ranges whose copy-time checksum differed, the verification checksums the whole table. */
const MAX_UNPROVEN = 1_000;

/**
 * What the copy's own checksums proved. Each range is checksummed on both tables in its copy's
 * transaction, while its pages are cached (`Migration.copyAndChecksum`): a match proves the range
 * level as of that moment. A row that changes afterwards is applied from the stream, and every key
 * applied since the copy started is in the applier's changed keys. So the verification's view only
 * has to compare those keys row by row, and checksum again the ranges that did not match (a writer
 * came between the copy and its checksum, or the copy was a retry without one), instead of reading
 * both tables again from disk.
 *
 * It holds only when this process copied the whole table: a resumed run, too many unmatched ranges,
 * or more changed keys than the applier remembers, and the verification reads the whole table as before.
 * Off by default: what it does not look for is a write to the shadow that bypasses us, or a change
 * the stream lost, after a range's copy; reading both tables whole finds those too.
 */
export class CopyProof {
  private readonly unproven: KeyRange[] = [];
  private whole: boolean;

  constructor(active: boolean) {
    this.whole = active;
  }

  get active(): boolean {
    return this.whole;
  }

  /** A range copied; `matched` null when it was copied without a checksum. */
  record(range: KeyRange, matched: boolean | null): void {
    if (!this.whole || matched === true) return;
    this.unproven.push(range);
    if (this.unproven.length > MAX_UNPROVEN) this.giveUp();
  }

  /** The ranges the verification must still checksum, or null for the whole table. Taken once: later verifications read the whole table. */
  take(): KeyRange[] | null {
    const ranges = this.whole ? [...this.unproven] : null;
    this.giveUp();
    return ranges;
  }

  private giveUp(): void {
    this.whole = false;
    this.unproven.length = 0;
  }
}
