import { StateSealError, seal, unseal } from './state-seal.js';
import { newRunId, recordRun, runRecord, type CheckpointOwner } from './run-ledger.js';
import type { Key, Plan, Position } from '../types.js';
import type { BackfillCheckpoint } from './backfill-checkpoint.js';

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
  /** Whose it is: checked by openCheckpoint, the one function that reads a checkpoint back. */
  owner: CheckpointOwner;
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

/** A database and how it names tables: where a checkpoint belongs (every engine is one). */
export interface CheckpointScope {
  readonly database: string;
  qualify(table: string): string;
}

/** A checkpoint as stored: migrate's, or a backfill's (which says so in `command`). */
export type StoredCheckpoint = Checkpoint | BackfillCheckpoint;

export function isBackfill(checkpoint: StoredCheckpoint): checkpoint is BackfillCheckpoint {
  return (checkpoint as { command?: string }).command === 'backfill';
}

/**
 * The one way a checkpoint is read back: its seal proven (state-seal.ts), then its owner checked
 * against the table it was read from and against this host's run ledger (run-ledger.ts). Refused
 * (StateSealError, one line) before anything in it is used: a checkpoint of another table or
 * database moved here, one of a run that ended on this host, or one older than a checkpoint this
 * host saved since for its run, each put back by whoever can write the state table.
 */
export function openCheckpoint(text: string, scope: CheckpointScope, table: string): StoredCheckpoint {
  const place = { database: scope.database, table: scope.qualify(table) };
  const what = `the checkpoint of ${place.table}`;
  const checkpoint = unsealJson(text, what) as StoredCheckpoint;
  const owner = (checkpoint as { owner?: Partial<CheckpointOwner> }).owner;
  if (!owner || typeof owner.run !== 'string' || typeof owner.seq !== 'number' || typeof owner.table !== 'string' || typeof owner.database !== 'string') {
    throw new StateSealError(`refusing ${what}: it names no table or run (sealed by an older shadowcut); nothing in it was used`);
  }
  if (owner.database !== place.database || owner.table !== place.table) {
    // MySQL's qualified names carry their database already; PostgreSQL's (schema.table) do not.
    const whose =
      owner.database === place.database || owner.table.startsWith(`${owner.database}.`) ? owner.table : `${owner.table} in database ${owner.database}`;
    throw new StateSealError(`refusing ${what}: it is the checkpoint of ${whose}, moved here; nothing in it was used`);
  }
  const known = runRecord(owner.run);
  if (known?.ended) {
    throw new StateSealError(`refusing ${what}: its run ended on this host, and it was put back after that run removed it; nothing in it was used`);
  }
  if (known && owner.seq < known.seq) {
    throw new StateSealError(
      `refusing ${what}: it is an older checkpoint of its run (save ${owner.seq}; this host saved ${known.seq} since), put back; nothing in it was used`,
    );
  }
  return checkpoint;
}

/**
 * One run's identity as its checkpoints carry it: the table and database it runs on, a random id,
 * and the count of its saves. A resumed run goes on with the id and count of the checkpoint it
 * resumes; the ledger learns each save once the database has it, and the run's end.
 */
export class CheckpointRun {
  private constructor(
    private readonly owner: Omit<CheckpointOwner, 'seq'>,
    private seq: number,
  ) {}

  /** A run that starts on `table` now. */
  static fresh(scope: CheckpointScope, table: string): CheckpointRun {
    return new CheckpointRun({ database: scope.database, table: scope.qualify(table), run: newRunId() }, 0);
  }

  /** The run that saved `checkpoint` (opened by openCheckpoint), going on. */
  static continuing(checkpoint: StoredCheckpoint): CheckpointRun {
    const { seq, ...owner } = checkpoint.owner;
    return new CheckpointRun(owner, seq);
  }

  get id(): string {
    return this.owner.run;
  }

  /**
   * `body` with this run as its owner and the next sequence number, sealed as stored (JSON, Buffers
   * kept exact as hex); `saved()` once the database has committed it.
   */
  seal(body: object): { text: string; saved(): void } {
    const owner: CheckpointOwner = { ...this.owner, seq: ++this.seq };
    const text = sealJson({ ...body, owner });
    return { text, saved: () => recordRun(owner.run, { seq: owner.seq, ended: false }) };
  }

  /**
   * The run removed its checkpoint: none of its checkpoints is to be read again on this host. Said,
   * not thrown, when the ledger cannot be written: the run itself is over and did what it should.
   */
  ended(report: { warn(message: string): void }): void {
    try {
      recordRun(this.owner.run, { seq: this.seq, ended: true });
    } catch (error) {
      report.warn(`${(error as Error).message}: a copy of this run's checkpoint put back later would not be told from a live one`);
    }
  }
}

function sealJson(value: unknown): string {
  return seal(
    'checkpoint',
    JSON.stringify(value, (_key, v) =>
      v && typeof v === 'object' && v.type === 'Buffer' && Array.isArray(v.data) ? { $hex: Buffer.from(v.data).toString('hex') } : v,
    ),
  );
}

/** Refuses (StateSealError, one line) a checkpoint whose seal does not prove shadowcut wrote it, before reading anything in it. */
function unsealJson(text: string, what: string): unknown {
  return JSON.parse(unseal('checkpoint', text, what), (_key, v) =>
    v && typeof v === 'object' && typeof v.$hex === 'string' && Object.keys(v).length === 1 ? Buffer.from(v.$hex, 'hex') : v,
  );
}
