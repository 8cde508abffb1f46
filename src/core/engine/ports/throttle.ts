export interface ProbeOptions {
  heartbeat?: boolean;
}

/** What the throttler reads to hold the copy back: the engine measures, core's throttler decides. */
export interface MigrationThrottle {
  /**
   * Probes for throttling: heartbeat-based replica lag for `replicas` (URLs), and server load.
   * `heartbeat`: write the heartbeat even with no replica, for its writes' times (`Probes.timeWrites`).
   */
  openProbes(replicas: string[], options?: ProbeOptions): Promise<Probes>;
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
