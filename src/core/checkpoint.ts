import type { Key, Plan, Position } from './types.js';

/**
 * What a crashed run needs to go on: the plan (so the shadow is used as built), how far the copy got,
 * and a change-stream position from which replaying is safe (everything before it was applied).
 * Replaying more than needed is harmless: applying a key twice gives the same row.
 */
export interface Checkpoint {
  version: 1;
  alter: string;
  phase: string;
  plan: Plan;
  /** Upper bound of the last committed chunk; null before the first one. */
  copiedUpTo: Key | null;
  copyDone: boolean;
  position: Position;
  rowsCopied: number;
  changesApplied: number;
  startedAt: string;
  savedAt: string;
}

/** Why a new run is refused where a dead one left its checkpoint, and the way out, on every engine. */
export function checkpointLeftOver(table: string, note = ''): string {
  return `an interrupted run on ${table} left a checkpoint${note}: continue it with --resume, or remove it with "shadowcut cleanup --url ... --table ${table}"`;
}

/** JSON with Buffers (binary key values) kept exact as hex. */
export function encodeCheckpoint(cp: Checkpoint): string {
  return JSON.stringify(cp, (_key, value) =>
    value && typeof value === 'object' && value.type === 'Buffer' && Array.isArray(value.data)
      ? { $hex: Buffer.from(value.data).toString('hex') }
      : value,
  );
}

export function decodeCheckpoint(text: string): Checkpoint {
  return JSON.parse(text, (_key, value) =>
    value && typeof value === 'object' && typeof value.$hex === 'string' && Object.keys(value).length === 1
      ? Buffer.from(value.$hex, 'hex')
      : value,
  ) as Checkpoint;
}
