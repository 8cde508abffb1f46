/**
 * The values the engine contract (types.ts) and the command folders' types share: keys, positions,
 * ranges, check results. Kept apart and importing nothing, so those types can use them without an
 * import circle through types.ts.
 */
/** One column value of a key as it travels through the client: the server's text or bytes, never a lossy JS type. */
export type KeyValue = string | number | Buffer | null;

/** The values of the chosen unique key's columns, in key order. */
export type Key = KeyValue[];

/** An engine-specific, JSON-serialisable position in the change stream (binlog file/offset, LSN). */
export type Position = Record<string, string | number>;

export interface CheckResult {
  name: string;
  ok: boolean;
  /** What was found; for a failed check, what is wrong and how to fix it. */
  message: string;
}

/** A half-open keyset range: rows with key > after (or from the start) and key <= upTo (or to the end). */
export interface KeyRange {
  after: Key | null;
  upTo: Key | null;
}

export interface RangeDigest {
  rows: number;
  digest: string;
}

/** An engine connection the runner passes back to the engine, e.g. one holding the cut-over lock. */
export interface Session {
  readonly id: string;
}

/** Measurements for throttling; see Throttler. */
export interface Probes {
  /** Lag of each watched replica in ms; null when it cannot be measured (the throttler fails closed). */
  replicaLag(): Promise<{ replica: string; lagMs: number | null; error?: string }[]>;
  /** Current values of the named server load indicators (e.g. Threads_running; active_backends on PostgreSQL). */
  load(names: string[]): Promise<Record<string, number>>;
  /** The rows an operator's query returns on the primary, each as an array of values (--throttle-query). */
  rows(sql: string): Promise<unknown[][]>;
  /**
   * How full the primary's redo log is, in percent of the point where the server makes every writer
   * wait for its flushing (InnoDB: checkpoint age against its maximum); null where the engine has no
   * such point or cannot read it.
   */
  redoFill(): Promise<number | null>;
  /**
   * Why a cluster of synchronous replication (Galera) wants the copy to hold back now (a node's
   * receive queue, flow control), or null; absent where there is no such cluster.
   */
  clusterPressure?(): Promise<string | null>;
  /**
   * Where the heartbeat runs: `listener` is told how long each of its writes took, commit included,
   * and of each write another session's lock kept from being made (the copy's pacing by the writers,
   * core/run/writer-pace.ts).
   */
  timeWrites?(listener: WriteTimes): void;
  close(): Promise<void>;
}

/** What the heartbeat's writes tell the copy's pacing (core/run/writer-pace.ts). */
export interface WriteTimes {
  /** A stand-in write took `ms`, commit included. */
  took(ms: number): void;
  /** A stand-in write was not made: another session holds its row or table (`why` says so). */
  held(why: string): void;
}
