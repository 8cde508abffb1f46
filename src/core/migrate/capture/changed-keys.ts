import type { Key } from '../../engine/types.js';

/**
 * The keys applied since the last consistent view of both tables. A checksum proves parity only
 * as of its view; these are the rows that may have drifted since, and the ones compared row by
 * row under the cut-over lock (docs/invariants.md, invariant 4). Bounded: past `capacity` it only
 * remembers that it overflowed, and the runner proves parity with a fresh checksum instead.
 */
export class ChangedKeys {
  /** By their values' text: a stream and a query may type one value apart (123 and '123'), and both mean one row. */
  private keys = new Map<string, Key>();
  private overflow = false;

  constructor(readonly capacity = 100_000) {}

  add(keys: Key[]): void {
    if (this.overflow) return;
    for (const key of keys) this.keys.set(keyText(key), key);
    if (this.keys.size > this.capacity) {
      this.overflow = true;
      this.keys.clear();
    }
  }

  get size(): number {
    return this.keys.size;
  }

  get overflowed(): boolean {
    return this.overflow;
  }

  /** Whether the key was applied since the restart; never, once overflowed (nothing is remembered then). */
  has(key: Key): boolean {
    return this.keys.has(keyText(key));
  }

  /** Puts back what `restart` returned, when the view it was for could not be opened. */
  putBack(last: { keys: Key[]; overflowed: boolean }): void {
    if (last.overflowed) {
      this.overflow = true;
      this.keys.clear();
      return;
    }
    this.add(last.keys);
  }

  list(): Key[] {
    return [...this.keys.values()];
  }

  /** A new view was opened: what was applied before it is in it. Returns what the last period held. */
  restart(): { keys: Key[]; overflowed: boolean } {
    const last = { keys: this.list(), overflowed: this.overflow };
    this.keys = new Map();
    this.overflow = false;
    return last;
  }
}

/** A key as the text of its values (bytes as hex): equal for the same row however a driver typed it. */
function keyText(key: Key): string {
  return JSON.stringify(key.map((v) => (Buffer.isBuffer(v) ? `x${v.toString('hex')}` : v === null ? null : String(v))));
}
