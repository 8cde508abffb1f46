/** The commands a queue entry can run, each as `shadowcut <stage>` would. */
export const STAGES = ['migrate', 'backfill', 'verify', 'contract'] as const;
export type Stage = (typeof STAGES)[number];

/**
 * An entry's life. `queued` waits for its turn (its window, its predecessor, a free table, a slot);
 * `running` has a runner's claim on it, with a lease; the last three are final until `retry`.
 */
export type QueueState = 'queued' | 'running' | 'complete' | 'failed' | 'cancelled';

/** What an operator asked of an entry, for its runner to carry out (the runner may be on another host). */
export type QueueRequest = 'cancel' | 'cutover' | 'revert';

/** What was queued: fixed when the entry is added. No URL, no password: the runner brings its own. */
export interface QueueSpec {
  stage: Stage;
  /** The table as the operator named it (qualified by the engine when added). */
  table: string;
  /**
   * Migrate only: the further tables swapped in the same cut-over as `table`, in the order given;
   * the n-th `--alter` among `args` is the n-th table's (`table` first).
   */
  set?: string[];
  /** The stage's own options, as they would follow `shadowcut <stage>` (never --execute, the URL or a file path). */
  args: string[];
  /** Daily window `HH:MM-HH:MM` in `tz`; absent: any time. */
  window?: string;
  /** IANA time zone of the window; absent: the runner's. */
  tz?: string;
  /** Entry that must be complete first. */
  after?: number;
  /** Not launched until `queue retry` releases it. */
  postponed?: boolean;
  /** Migrate only: after verification, keep in sync until `queue cutover`. */
  postponeCutover?: boolean;
  addedBy: string;
  /**
   * Set when read back, never stored: why the stored spec is not proven shadowcut's (its seal is
   * missing or wrong). Such an entry is shown, and failed by the runner, never run.
   */
  unproven?: string;
}

export interface Attempt {
  runner: string;
  startedAt: string;
  endedAt?: string;
  /** `suspended`: stopped by its runner to resume later; `lost`: its runner died and the lease lapsed. */
  outcome?: 'complete' | 'failed' | 'cancelled' | 'suspended' | 'lost';
  /** The stage's exit code and its last line on stderr, when it failed. */
  error?: string;
}

/** What the runners keep up to date while an entry waits or runs. */
export interface QueueStatus {
  attempts: Attempt[];
  /** Why a queued entry is not started yet ("outside its window 01:00-05:00 Europe/Berlin"). */
  waiting?: string;
  phase?: string;
  percent?: number;
  etaSeconds?: number | null;
  /** The running attempt's migration swapped the tables (its "cut-over done"): a stop after it leaves only its cleanup. */
  swapped?: boolean;
  lastError?: string;
}

/** An entry as shadowcut reads it: what its seal proves (core/queue/sealed-queue.ts). */
export interface QueueRow {
  id: number;
  state: QueueState;
  request: QueueRequest | null;
  claimedBy: string | null;
  /** When the claim lapses unless renewed, by the server's clock (ISO). */
  leaseUntil: string | null;
  spec: QueueSpec;
  status: QueueStatus;
  createdAt: string;
  updatedAt: string;
  /** The sealed document's generation: every write of the entry advances it by one at least. */
  generation: number;
  /**
   * Why nothing in the row is proven shadowcut's (no seal, another row's or another queue's
   * document, an older document put back): the other fields are then the row's plain columns, shown
   * and never acted on. A runner never runs, resumes or waits on such an entry.
   */
  refused?: string;
  /** Plain columns another account changed after shadowcut wrote them: the fields above are the sealed values, which is what counts. */
  changed?: string[];
}

/** One row of the queue's table as stored, every column as text (times as ISO). */
export interface StoredEntry {
  id: number;
  state: string;
  request: string | null;
  claimedBy: string | null;
  leaseUntil: string | null;
  /** The `spec` column: the sealed document (core/queue/entry-document.ts) that every other column must agree with. */
  sealed: string;
  status: string;
  createdAt: string;
  updatedAt: string;
}

/** What one write puts in a row: the sealed document and the plain columns it vouches for. */
export interface EntryColumns {
  state: QueueState;
  request: QueueRequest | null;
  claimedBy: string | null;
  /** ISO, UTC. */
  leaseUntil: string | null;
  sealed: string;
  /** The status as JSON. */
  status: string;
}

/**
 * The queue's table (`shadowcut_queue`), kept on the server so runners on several hosts share one
 * queue: one per database (MySQL) or in the `public` schema (PostgreSQL), a helper table like the
 * history (core/queue/queue-table.ts stores and fetches its rows over the engine's helper tables).
 * What a row may say, who may change it and when is decided by core/queue/sealed-queue.ts. Every write is conditional on the row still holding the sealed document its
 * writer read, so two runners (two cron hosts) and an operator never overwrite each other's decisions.
 */
export interface QueueTable {
  /** The queue as a sealed document names it: its database (and schema) and table. */
  name(): Promise<string>;
  /** Refuses a `shadowcut_queue` that is not shadowcut's own. */
  check(): Promise<void>;
  /**
   * Makes the table on first use and inserts a row for `table` created at `createdAt` (ISO, the
   * server's clock), giving it `columns(id)` in the same transaction: a document names its row's id.
   */
  insert(table: string, createdAt: string, columns: (id: number) => EntryColumns): Promise<number>;
  /** Oldest first; empty when there is no queue table yet. */
  list(): Promise<StoredEntry[]>;
  get(id: number): Promise<StoredEntry | null>;
  /** The server's clock, which times the leases. */
  now(): Promise<Date>;
  /** Writes `columns` into row `id` if its `spec` column still holds `expected`; true when it did. */
  write(id: number, expected: string, columns: EntryColumns): Promise<boolean>;
  /**
   * Runs `fn` holding the queue's lock (a server lock, one holder at a time), so that reading the
   * queue, deciding what is due and claiming it is one step for all runners together.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}
