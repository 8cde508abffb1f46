import { seal, unseal } from './state-seal.js';
import type { Key, Plan, Position } from '../engine/types.js';

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
  /** Saved after the swap committed: a resumed run only cleans up, whatever of the cleanup was done. */
  cutOver?: boolean;
  /**
   * A run with a revert window. Saved with the forward run's checkpoint from the start, so a crash
   * right after the swap still opens the window.
   */
  revertWindow?: RevertWindowState;
}

export interface RevertWindowState {
  /** How long the window is (`--revert-window`). */
  lengthMs: number;
  /** When it ends: set at the cut-over (a resumed run's window ends when the first run's would have). */
  until?: string;
  /** `shadowcut revert` was asked for: a revert interrupted before its swap committed is carried on by the resumed run. */
  reverting?: boolean;
}

/** Why a new run is refused where a dead one left its checkpoint, and the way out, on every engine. */
export function checkpointLeftOver(table: string, note = ''): string {
  return `an interrupted run on ${table} left a checkpoint${note}: continue it with --resume, or remove it with "shadowcut cleanup --url ... --table ${table}"`;
}

/**
 * The checkpoint as stored: JSON with Buffers (binary key values) kept exact as hex, sealed
 * (state-seal.ts), since the table it is stored in can be written by other accounts.
 */
export function encodeCheckpoint(cp: Checkpoint): string {
  return encodeJson(cp);
}

/** `what` names the checkpoint in a refusal ("the checkpoint of shop.orders"). */
export function decodeCheckpoint(text: string, what = 'the checkpoint'): Checkpoint {
  return decodeJson(text, what) as Checkpoint;
}

/** Any checkpoint (migrate's, backfill's) as stored: JSON, Buffers kept exact as hex, sealed. */
export function encodeJson(value: unknown): string {
  return seal(
    'checkpoint',
    JSON.stringify(value, (_key, v) =>
      v && typeof v === 'object' && v.type === 'Buffer' && Array.isArray(v.data) ? { $hex: Buffer.from(v.data).toString('hex') } : v,
    ),
  );
}

/** Refuses (StateSealError, one line) a checkpoint whose seal does not prove shadowcut wrote it, before reading anything in it. */
export function decodeJson(text: string, what = 'the checkpoint'): unknown {
  return JSON.parse(unseal('checkpoint', text, what), (_key, v) =>
    v && typeof v === 'object' && typeof v.$hex === 'string' && Object.keys(v).length === 1 ? Buffer.from(v.$hex, 'hex') : v,
  );
}

/**
 * `<table>__state` holds the checkpoint of whichever run last died on the table, migrate or backfill
 * (one run per table at a time, so never both); a backfill's says so in `command`.
 */
export function checkpointCommand(text: string, what = 'the checkpoint'): 'migrate' | 'backfill' {
  const parsed = decodeJson(text, what) as { command?: string };
  return parsed.command === 'backfill' ? 'backfill' : 'migrate';
}
