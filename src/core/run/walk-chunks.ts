import type { Key, KeyRange } from '../engine/types.js';

/**
 * Visits the whole key space in keyset ranges of about `rows` rows, in key order; the last range is
 * open-ended, so rows past the last boundary (or only on the other side of a comparison) are in it.
 * The next boundary is found while a range is visited: `next` must read on a connection of its own.
 */
export async function walkChunks(
  next: (after: Key | null, rows: number) => Promise<Key | null>,
  rows: number,
  visit: (range: KeyRange) => Promise<void>,
): Promise<void> {
  let after: Key | null = null;
  let upTo = await next(after, rows);
  for (;;) {
    const range: KeyRange = { after, upTo };
    const [, following] = await Promise.all([visit(range), upTo === null ? Promise.resolve(null) : next(upTo, rows)]);
    if (upTo === null) return;
    after = upTo;
    upTo = following;
  }
}
