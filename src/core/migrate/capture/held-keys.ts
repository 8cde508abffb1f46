import { keyId } from '../../engine/capture/key-id.js';
import type { Key } from '../../engine/types.js';
import { UNIQUE_PATIENCE_MS } from '../../engine/retry/retry.js';

/**
 * Keys whose apply, alone, met a unique conflict: the value's other holder changes later (a later
 * poll of a trigger log, a later transaction). They are tried again with every apply until then,
 * each with the age of its own conflict, which only an apply of that key ends.
 */
export class HeldKeys {
  private keys = new Map<string, Key>();
  /** When each key's conflict began: kept while it is retried (taken and held again), dropped once it applies. */
  private readonly since = new Map<string, number>();

  get size(): number {
    return this.keys.size;
  }

  hold(keys: Key[]): void {
    const now = Date.now();
    for (const key of keys) {
      const id = keyId(key);
      this.keys.set(id, key);
      if (!this.since.has(id)) this.since.set(id, now);
    }
  }

  /** The keys to try again. */
  take(): Key[] {
    const keys = [...this.keys.values()];
    this.keys = new Map();
    return keys;
  }

  /** These keys are in the shadow now: their conflicts, if they had any, are over. */
  applied(keys: Key[]): void {
    if (this.since.size === 0) return;
    for (const key of keys) this.since.delete(keyId(key));
  }

  /** A key held now whose conflict is older than the patience. */
  get overdue(): boolean {
    const now = Date.now();
    for (const id of this.keys.keys()) if (now - (this.since.get(id) ?? now) > UNIQUE_PATIENCE_MS) return true;
    return false;
  }
}
