import { keyId } from './change-buffer.js';
import type { Key } from '../types.js';
import { UNIQUE_PATIENCE_MS } from '../retry.js';

/**
 * Keys whose apply met a unique conflict that applying every pending key with them did not resolve:
 * the value's other holder changes later (a later poll of a trigger log, a later transaction). They
 * are tried again with every apply until then.
 */
export class HeldKeys {
  private keys = new Map<string, Key>();
  private since: number | null = null;

  get size(): number {
    return this.keys.size;
  }

  hold(keys: Key[]): void {
    for (const key of keys) this.keys.set(keyId(key), key);
    this.since ??= Date.now();
  }

  /** The keys to try again; their conflict's age is kept until an apply of them succeeds (`settled`). */
  take(): Key[] {
    const keys = [...this.keys.values()];
    this.keys = new Map();
    return keys;
  }

  settled(): void {
    if (this.keys.size === 0) this.since = null;
  }

  /** Held for longer than the patience. */
  get overdue(): boolean {
    return this.since !== null && Date.now() - this.since > UNIQUE_PATIENCE_MS;
  }
}
