/**
 * The contract between the engine-neutral runner and an engine (MySQL/MariaDB, PostgreSQL).
 * The runner owns the phases, the ordering of copy and apply, retries and progress;
 * an engine owns SQL, locks and the change stream, and knows nothing of phases.
 */
import type { Backfill, BackfillRequest } from '../backfill/types.js';
import type { HistoryStore } from '../history/entry.js';
import type { QueueStore } from '../queue/types.js';
import type { RestoreTarget } from '../restore/types.js';
import type { AlterClassification, InPlaceStep, WorkWaits } from '../in-place/types.js';
import type { DiskSpace, SampleProbe, TableSize } from '../plan/types.js';
import type { ComparisonRequest, RowComparison } from '../compare/types.js';
import type { Contraction, ContractRequest } from '../contract/types.js';
import type { ChangeSource, Reference } from '../migrate/capture/change-source.js';
import type { CaptureChoice, CaptureMode } from '../migrate/capture/capture-choice.js';
import type { CleanupOptions } from '../migrate/cleanup-steps.js';
import type { CheckResult, Key, KeyRange, Probes, RangeDigest, Session } from './primitives.js';
import type { EngineWords } from './engine-words.js';

export type { CheckResult, Key, KeyRange, KeyValue, Position, Probes, RangeDigest, Session } from './primitives.js';
export type { ChangeSink, ChangeSource, ChangeStream, Reference } from '../migrate/capture/change-source.js';

export interface MigrationRequest {
  url: string;
  table: string;
  alter: string;
  /** Migrate a table with foreign keys to other tables; the new table has none (gh-ost's flag of the same name). */
  discardForeignKeys?: boolean;
  /** Move the table's triggers to the new table, renamed with this suffix (gh-ost's --include-triggers). */
  triggers?: { suffix: string; removeSuffixIfExists: boolean };
  /**
   * Build the new table's non-unique secondary indexes after the copy instead of maintaining them
   * row by row during it. `auto` lets the engine judge whether the build can hold up replicas.
   */
  deferIndexes?: DeferIndexes;
  /** How changes are followed during the copy; `auto` when absent. */
  capture?: CaptureMode;
  /**
   * The other tables (qualified) changed with this one in one cut-over: foreign keys between them are
   * rebuilt between the new tables instead of carried to (or refused for) the old ones.
   */
  set?: string[];
}

export type DeferIndexes = 'auto' | 'on' | 'off';

/**
 * Everything the runner needs to know about a migration; `detail` is the engine's own. Plain JSON:
 * the checkpoint carries it, and a resumed run gets its migration back from it (`Engine.resume`).
 */
export interface Plan<Detail = unknown> {
  /** e.g. `shop.orders` */
  table: string;
  shadowTable: string;
  oldTable: string;
  alter: string;
  keyColumns: string[];
  estimatedRows: number;
  /** The change source the run uses; a resumed run keeps its dead run's (checkpoints from before triggers have none: the stream). */
  capture?: CaptureChoice;
  /** Human lines describing the column mapping and anything notable (printed by the dry run). */
  summary: string[];
  /**
   * The way back of a run with a revert window (`Migration.reversed`): the new table is this plan's
   * original, the old table its shadow (already level), and `<table>__new` where the new table goes
   * when the revert swaps them back. Its change source is the reverse capture on the new table.
   */
  reverse?: true;
  detail: Detail;
}

/** Brings the shadow up to the change source's head, read and applied on `session` (which holds writers off the original). */
export type CatchUp = (session: Session) => Promise<void>;

/** Both tables as of one instant, for checksums. */
/** A range copied and checksummed in one transaction (`Migration.copyAndChecksum`). */
export interface CheckedCopy {
  rows: number;
  matched: boolean;
}

export interface ConsistentView {
  /** On a reader of its own, so the next chunk's boundary is found while this one is hashed. */
  nextBoundary(after: Key | null, rows: number): Promise<Key | null>;
  checksum(range: KeyRange): Promise<[RangeDigest, RangeDigest]>;
  /** The keys among these whose rows differ (or exist on one side only), compared row by row. */
  compareKeys(keys: Key[]): Promise<Key[]>;
  close(): Promise<void>;
}

export interface CutoverOptions {
  lockTimeoutMs: number;
  catchUp: CatchUp;
}

export interface CutoverResult {
  /** How long writers to the table were blocked, as measured by the engine. */
  lockedMs: number;
}

/** A statement that needs the lock an application's write to the table needs, on a connection of its own. */
export interface LockProbe {
  probe(): Promise<void>;
  close(): Promise<void>;
}

/** Sampled rows put through the user's ALTER by the server and through the copy's mapping, compared. */
export interface ProbeComparison {
  rows: number;
  /** Rows present on one side only. */
  unmatched: number;
  columns: {
    /** The column's name in the new schema. */
    name: string;
    /** Rows in which the two results differ in this column. */
    differing: number;
    /** Not copied, and filled per row by the server (a sequence, a volatile default): not expected to agree. */
    generatedByServer: boolean;
    /** The first differing row, as text for a message. */
    example?: { key: string; alter: string | null; copy: string | null };
  }[];
}

/** What is the same for every table on one server: connections, names, the run's claim, leftovers. */
export interface Engine {
  readonly kind: 'mysql' | 'postgres';
  /**
   * The chunk time a copy or a batch aims at where none is given (`--chunk-time-ms`): shorter where
   * each batch holds others up longer (a Galera cluster applies every writeset on every node in
   * commit order, and the writers there wait behind it).
   */
  readonly chunkTimeMs: number;
  /** The server's own words for what core's messages name (a session, an error, a grant). */
  readonly words: EngineWords;
  /** Every table's timeline of stages (`shadowcut_history`), for the runbook. */
  readonly history: HistoryStore;
  /** The queue of migrations that `queue run` works through (`shadowcut_queue`). */
  readonly queue: QueueStore;
  /** The table's qualified name (`db.table`, `schema.table`), as plans and sockets name it. */
  qualify(table: string): string;
  /** A session of its own holding the table's run lock (see core/run/claim.ts, and ClaimSession below); one run per table at a time. */
  openClaim(table: string): Promise<ClaimSession>;
  /**
   * Each part of the ALTER classified (instant, online index, validate later, copy), the server asked
   * where it can tell, and the in-place path's steps; nothing is left behind. Throws UserError for a
   * table that does not exist or an ALTER the server rejects.
   */
  classifyAlter(table: string, alter: string): Promise<AlterClassification>;
  /**
   * Runs one in-place step, each statement waiting at most `lockTimeoutMs` for its locks; throws
   * LockTimeoutError when one was not had in time (a transaction step then changed nothing). A wait
   * for older transactions to end (not for a lock) is bounded by `waits` instead, where the engine has one.
   */
  runInPlaceStep(step: InPlaceStep, lockTimeoutMs: number, waits?: WorkWaits): Promise<void>;
  /** The table's estimated rows and its data and index bytes. */
  tableSize(table: string): Promise<TableSize>;
  /** Free space where the server keeps its data, when that can be seen from this host. */
  diskSpace(): Promise<DiskSpace>;
  /**
   * Swaps several tables in one lock set (MySQL: one RENAME; PostgreSQL: one transaction), each
   * caught up on the locking session by its `catchUp`; LockTimeoutError as `Migration.cutover`. A
   * set's ways back (`Migration.reversed`) swap through it too, for a set's revert window.
   */
  jointCutover(parts: { migration: Migration; catchUp: CatchUp }[], lockTimeoutMs: number): Promise<CutoverResult>;
  /** Inspect the table and parse the ALTER; throws UserError for anything unusable. */
  prepare(request: MigrationRequest): Promise<Migration>;
  /** The migration an interrupted run's checkpoint describes. */
  resume(plan: Plan): Migration;
  /** A keyset UPDATE of the table (`shadowcut backfill`), on the key `prepare` would choose; throws UserError when there is none. */
  prepareBackfill(request: BackfillRequest): Promise<Backfill>;
  /** The checkpoint of an interrupted run on `table`, or null. */
  loadCheckpoint(table: string): Promise<string | null>;
  /**
   * Remove what a dead run left for `table` (shadow, sentry, stream objects; the old table only if
   * asked), or with `dryRun` only name them. A replication slot is named with the WAL it retains.
   */
  cleanupLeftovers(table: string, options: { dropOld: boolean; dryRun?: boolean }): Promise<string[]>;
  /** A lost connection or restarting server, worth retrying with backoff (not a bad statement). */
  isTransient(error: unknown): boolean;
  /** `shadowcut verify`: the table against an expectation or another table (core/compare); throws UserError for bad input. */
  openComparison(request: ComparisonRequest): Promise<RowComparison>;
  /** `shadowcut contract`: a column, index or the table to drop, with its checks (core/contract); throws UserError for bad input. */
  prepareContract(request: ContractRequest): Promise<Contraction>;
  /** `shadowcut restore`: the table and a contract's backup as the catalogs describe them (core/restore); throws UserError for bad names. */
  prepareRestore(request: { table: string; backup: string }): Promise<RestoreTarget>;
  close(): Promise<void>;
}

/** One migration of one table, holding its plan: everything the phases ask of the server. */
export interface Migration {
  readonly plan: Plan;
  /** Preflight: everything that would make the run unsafe, each with its fix. */
  checks(options: { resuming: boolean }): Promise<CheckResult[]>;
  /** `shadowcut plan`: a probe shaped like the shadow, for the run's own statements to be timed on; `close` leaves nothing behind. */
  openSampleProbe(): Promise<SampleProbe>;
  /**
   * Puts up to `rows` rows of the original (taken after each of `anchors`, null standing for the
   * table's start, or spread over the table when the list itself is null) through the user's ALTER on a probe table, and through the copy's mapping into
   * another, and compares the two column by column. Leaves nothing behind. Throws UserError when
   * the server's ALTER itself fails on those rows.
   */
  compareWithAlter(anchors: (Key | null)[] | null, rows: number): Promise<ProbeComparison>;
  createShadow(): Promise<void>;
  /** A resumed run: undo what the dead run's cut-over attempt may have left on the shadow. */
  resumeShadow?(): Promise<void>;
  /** Where changes to the original table come from while the copy runs (see ../migrate/capture/change-source.ts). */
  readonly changes: ChangeSource;
  /** The key of the `rows`-th row after `after`, or null when fewer rows remain. */
  nextBoundary(after: Key | null, rows: number): Promise<Key | null>;
  /** Make the shadow's rows in `range` equal to the original's current committed rows. Throws UniqueViolationError on a unique key conflict. */
  copyRange(range: KeyRange): Promise<number>;
  /**
   * `copyRange`, then in the same transaction, while the range's pages are still cached, both
   * tables' digests over the range as the verification computes them (see ../migrate/copy-proof.ts).
   * `matched` is false also when a writer changed the range between the copy and the digests.
   */
  copyAndChecksum(range: KeyRange): Promise<CheckedCopy>;
  /**
   * Make the shadow's rows for these keys equal to the original's current committed rows: all of the
   * keys' old rows are removed before any is inserted, so values moving between these keys never conflict.
   * Throws UniqueViolationError on a unique key conflict.
   */
  applyKeys(keys: Key[], session?: Session): Promise<void>;
  /**
   * The keys of the rows these references reach (ChangeSink.references), read on `session` under a
   * lock; present where the change source reports references.
   */
  keysReferencing?(references: Reference[], session?: Session): Promise<Key[]>;
  /**
   * The shadow has no key yet (PostgreSQL's copy fills a bare heap): no change can be applied to
   * it, so the applier holds them (bounded by its buffer) until `buildKey` has run.
   */
  readonly holdsChanges?: boolean;
  /** Builds the shadow's key if it has none; the first thing after the copy, before any apply. */
  buildKey?(): Promise<void>;
  /** Work to do after the copy and before verification, e.g. building secondary indexes. */
  afterCopy(): Promise<void>;
  /** `afterCopy` builds a unique index: the shadow must be level first, or a value still moving looks duplicated. */
  readonly buildsUniqueAfterCopy: boolean;
  /** Pause writers briefly, let `catchUp` bring the shadow level, and open a view of both tables at that instant. */
  consistentView(catchUp: CatchUp, lockTimeoutMs: number): Promise<ConsistentView>;
  /**
   * The keys among these whose rows differ between the original and the shadow, row by row, read on
   * `session` (which holds the cut-over lock). Compares what the checksum compares.
   */
  compareKeys(keys: Key[], session: Session): Promise<Key[]>;
  /** Swap the tables; throws LockTimeoutError if the locks could not be had in time (nothing changed). */
  cutover(options: CutoverOptions): Promise<CutoverResult>;
  /** What times the writers' wait at the cut-over (core/migrate/cutover/writer-wait.ts). */
  openLockProbe(): Promise<LockProbe>;
  /**
   * Remove helper objects: which ones core decides from these options (`cleanupSteps` in
   * core/migrate/cleanup-steps.ts), and the engine removes them. After a successful cut-over the old
   * table is kept unless `dropOld`. `keepCheckpoint`: the checkpoint table stays (a revert window's
   * follows this run's). A run that did not cut over also removes the reverse capture (log and
   * triggers) if it installed one. A reverse migration's cleanup never drops its shadow (the old
   * table): without `cutOver` it only stops its streams.
   */
  cleanup(options: CleanupOptions): Promise<void>;
  /** True when the swap has committed (a resumed run then only cleans up). */
  swapped(): Promise<boolean>;
  /**
   * For a resume: whether the table the plan names is another than the one it was planned on
   * (dropped and made again, or rebuilt, since), by the identity the plan recorded (PostgreSQL's
   * OID, InnoDB's table ids). False once the swap has committed, when the name holds the new table,
   * and for a plan that recorded none (a checkpoint of an older version).
   */
  tableReplaced(): Promise<boolean>;
  /** Store the runner's checkpoint (opaque text) next to the table; removed by cleanup. */
  saveCheckpoint(checkpoint: string): Promise<void>;
  /** Probes for throttling: heartbeat-based replica lag for `replicas` (URLs), and server load. */
  openProbes(replicas: string[]): Promise<Probes>;
  /**
   * Why the old table could not follow the new one back after the cut-over (`--revert-window`),
   * judged from the plan: a column the ALTER drops, a key it changes, what the engine's reverse does
   * not carry (foreign keys, moved triggers, partitions). Empty when it can; the dry run prints it.
   */
  revertRefusals(): string[];
  /**
   * The reverse mapping proven by the server on sampled rows (as `compareWithAlter` proves the
   * forward one): rows of the original (taken after each of `anchors`, or spread over the table)
   * through the copy's mapping into a probe with the new schema, then through the reverse mapping
   * into a probe with the original's, compared with the original's rows column by column (names are
   * the original's). Leaves nothing behind. A value that does not come back (a shorter type, a lost
   * fraction) shows as a differing column; a server error on the way back throws UserError.
   */
  proveReverse(anchors: (Key | null)[] | null, rows: number): Promise<ProbeComparison>;
  /**
   * After the copy and before the cut-over of a run with a revert window: row triggers on the shadow
   * log its changed keys into the reverse log, so the old table can follow the new one from the
   * swap's instant (the triggers move with the shadow at the swap). Idempotent. LockTimeoutError as
   * the capture triggers' install; what the attempt made is removed again.
   */
  installReverseCapture(lockTimeoutMs: number): Promise<void>;
  /**
   * After the swap: the migration back (`Plan.reverse`), read from the catalogs as they are now. Its
   * `changes` is the reverse capture, opened with a position (never installed again); its `cutover`
   * swaps the tables back, with the new table going to `<table>__new`.
   */
  reversed(): Promise<Migration>;
  /**
   * Other sessions' transactions holding a snapshot, which would read the new table as of before the
   * swap (see core/migrate/cutover/old-snapshots.ts). With `session` (holding the cut-over lock), those queued
   * behind that lock are left out where the engine can tell. Null when the role cannot see them.
   */
  oldSnapshots(session?: Session): Promise<OldSnapshot[] | null>;
  /**
   * Just before the cut-over lock, where the list of transactions is a cache refilled only after it
   * went unread a while (MySQL's INNODB_TRX): left unread from now, so the look under the lock reads
   * at once and sees the server as it is then.
   */
  readyLockedLook?(): Promise<void>;
}

/** A transaction of another session that holds a snapshot; fields the role may not see are null. */
export interface OldSnapshot {
  /** The server's session id: PostgreSQL's pid, MySQL's connection id. */
  session: string;
  /** Tells this transaction from a later one of the same session. */
  transaction: string;
  user: string | null;
  /** Where it comes from: application name and client address, or host. */
  client: string | null;
  /** When its transaction began, as the server tells it. */
  since: string | null;
  state: string | null;
  /** Its current or last statement, cut short. */
  query: string | null;
}

/**
 * The engine's part of a claim: one server session of its own holding a named lock (MySQL's
 * GET_LOCK, PostgreSQL's session advisory lock). The server frees the lock when the session ends,
 * so a run killed with SIGKILL leaves no claim behind for its resumed run to trip over.
 */
export interface ClaimSession {
  /** Takes the lock without waiting; false when another session holds it. */
  take(): Promise<boolean>;
  /** Which server session holds it, for the message (null when nobody does or it cannot be told). */
  holder(): Promise<string | null>;
  /** A round trip; fails when the session, and so the lock, is gone. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
