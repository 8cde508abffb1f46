import type { Launcher, StageProcess } from './stage-process.js';
import type { QueueEvent } from './types.js';
import type { SealedQueue } from './sealed-queue.js';
import type { Attempt, QueueRow, QueueSpec, QueueStatus } from '../engine/ports/queue.js';

// What a runner is told (its command line), what it works with (the store, the stage launcher, the
// history and hooks) and what it keeps of each stage it runs: kept apart from the runner so the files
// that share its work can name them without importing one another.

export interface RunnerOptions {
  /** Who claims: `user@host:pid:nonce`, kept on the entries it runs. */
  runner: string;
  /** Entries running at once on the server, whichever runner runs them. */
  maxConcurrent: number;
  /** `once`: start what is due now and wait for it; `drain`: until nothing is due or running; `daemon`: for ever. */
  mode: 'once' | 'drain' | 'daemon';
  /** When the runner stops (its own clock); a copy still going is stopped as a crash would, to resume from its checkpoint. */
  until?: Date;
  leaseSeconds: number;
  pollMs: number;
  /** Options every stage gets from the runner's own command line (replicas, hooks, report directory). */
  stageArgs: string[];
}

export interface RunnerDeps {
  /** The queue, as far as its seals prove it. */
  store: SealedQueue;
  launch: Launcher;
  /** The environment a stage needs to connect (the URL), never its arguments. */
  env: Record<string, string>;
  /** Whether the table's history has this entry's stage succeeding since `since`. */
  succeededSince(spec: QueueSpec, since: string): Promise<boolean>;
  /**
   * Whether the history of the entry's tables has this very entry's stage succeeding since it was
   * added (its history entries name the entry): one about to start afresh that has is an older
   * document of the entry put back, on a host that never saw its later ones.
   */
  ranBefore(row: QueueRow): Promise<boolean>;
  /** What `shadowcut plan` says a migrate entry takes, in ms, or null when it cannot say. */
  estimateMs(spec: QueueSpec): Promise<number | null>;
  log(line: string): void;
  /** Each line a stage prints on stdout (`queue run --json` passes its JSON on). */
  stageOutput?: (entry: number, line: string) => void;
  /**
   * Enters in the table's history what the stage itself could not: its runner stopped it (to be
   * resumed), or failed the entry without running it. A stage records its own run.
   */
  record(row: QueueRow, outcome: 'suspended' | 'failure', line: string): Promise<void>;
  /** The runner's own hooks (`queue run --hooks-dir`), if any. */
  /** `table` and `stage` only for an entry whose document shadowcut proved it wrote. */
  hook?: (event: QueueEvent, entry: { id: number; table?: string; stage?: string }, error?: string) => Promise<void>;
}

/** A stage this runner runs. */
export interface Running {
  row: QueueRow;
  status: QueueStatus;
  attempt: Attempt;
  process: StageProcess;
  resumed: boolean;
  cancelling: boolean;
  /** Why the runner stopped the stage itself, to be resumed later; null while it runs on. */
  suspended: string | null;
  /** When its lease was last renewed (this host's clock): a runner cut off from the database stops its stages before the lease lapses. */
  renewedAt: number;
  renewer: NodeJS.Timeout;
  /** Settles once its end is written (or lost). */
  done: Promise<void>;
}
