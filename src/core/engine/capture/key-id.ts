import type { Key } from '../contract-values.js';

/** A stable identity for a key, so the same row changed many times is applied once. */
export function keyId(key: Key): string {
  return JSON.stringify(key.map((v) => (Buffer.isBuffer(v) ? { b: v.toString('hex') } : v)));
}
