/** Where `queue` keeps its entries, on the server, so runners on several hosts share one queue. */
export interface EngineQueue {
  /** The queue of migrations that `queue run` works through (`shadowcut_queue`). */
  readonly queue: QueueStore;
}

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
}

/**
 * The queue's table (`shadowcut_queue`), one per database (MySQL) or in the `public` schema
 * (PostgreSQL), shadowcut's own helper like the history. Every change is one conditional statement,
 * so two runners (two cron hosts) and an operator never overwrite each other's decisions; leases
 * are timed by the server's clock, not by the hosts'.
 */
export interface QueueStore {
  /** Refuses a `shadowcut_queue` that is not shadowcut's own. */
  check(): Promise<void>;
  add(spec: QueueSpec): Promise<number>;
  /** Oldest first; empty when there is no queue table yet. */
  list(): Promise<QueueRow[]>;
  get(id: number): Promise<QueueRow | null>;
  /** The server's clock, which times the leases. */
  now(): Promise<Date>;
  /**
   * Takes entry `id` for `runner` if it is queued, or running under a lease that has lapsed (its
   * runner died). True when this call took it.
   */
  claim(id: number, runner: string, leaseSeconds: number): Promise<boolean>;
  /** Extends the lease; false when `runner` no longer holds the entry. */
  renew(id: number, runner: string, leaseSeconds: number, status: QueueStatus): Promise<boolean>;
  /**
   * Runs `fn` holding the queue's lock (a server lock, one holder at a time), so that reading the
   * queue, deciding what is due and claiming it is one step for all runners together.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** The runner holding `id` ends its run with `state` (an operator's request is kept when it goes back to `queued`); false when it no longer held it. */
  finish(id: number, runner: string, state: QueueState, status: QueueStatus): Promise<boolean>;
  /** Moves `id` to `to` when it is in one of `from`; false otherwise. `status` replaces the status when given. */
  transition(id: number, from: QueueState[], to: QueueState, status?: QueueStatus, spec?: QueueSpec): Promise<boolean>;
  /** Sets (or clears, with null) the operator's request; only on a running or queued entry. */
  request(id: number, request: QueueRequest | null): Promise<boolean>;
  /** A queued entry's reason for waiting; nothing when it is no longer queued. */
  wait(id: number, reason: string): Promise<void>;
}
