import type { Key } from '../contract-values.js';
import type { CheckpointOwner } from './run-ledger.js';

/** What a killed backfill needs to go on; saved in the same transaction as the batch it follows. */
export interface BackfillCheckpoint {
  version: 1;
  command: 'backfill';
  set: string;
  where: string | null;
  keyColumns: string[];
  /** The last key of the last committed batch; null before the first. */
  after: Key | null;
  done: boolean;
  /** Batches committed, this one included: a retry after a lost commit acknowledgement reads it to tell whether its batch committed. */
  batches: number;
  rowsScanned: number;
  rowsUpdated: number;
  startedAt: string;
  savedAt: string;
  /** Whose it is: checked by the one function that opens a checkpoint (checkpoint.ts). */
  owner: CheckpointOwner;
}
