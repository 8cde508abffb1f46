import type { ReadCost } from '../read-cost.js';
import type { Key, Position, Session } from '../contract-values.js';

/**
 * The seam between the runner and a way of capturing changes (the binlog, logical decoding, later
 * triggers). Each engine keeps its implementations under `engines/<engine>/capture/<kind>/` and hands
 * one to the runner as `Migration.changes`; the runner only opens it, reads what it delivers into its
 * ChangeBuffer, asks for the head, acknowledges and stops. The backlog is what the sink holds
 * (`ChangeBuffer.size`), not the source's: the source reports positions only.
 */
export interface ChangeSource {
  /**
   * Start following changes to the original table from `from` (a resumed run's last applied
   * position), or from now; resolves once the start position is fixed, so nothing after it is missed.
   */
  open(sink: ChangeSink, from: Position | undefined, options: OpenOptions): Promise<ChangeStream>;
  /** Remove what the source keeps on the server (a slot, triggers); idempotent. The migration's cleanup calls it first. */
  cleanup(): Promise<void>;
  /** Orders two of this source's positions (negative, zero, positive). */
  comparePositions(a: Position, b: Position): number;
  /**
   * What is not acknowledged stays in the server's own log and costs it there (a replication slot
   * keeps every WAL file from that point on): changes are then held only while the buffer has room.
   * A trigger log's rows cost only their own space, and can wait.
   */
  readonly pinsServerLog?: boolean;
}

/** What setting a source up may need from the run: its lock budget (creating triggers queues like a cut-over). */
export interface OpenOptions {
  lockTimeoutMs: number;
  attempts: number;
  warn(message: string): void;
}

/**
 * Rows of the table that a change to another table reached through a foreign key the server acts on
 * itself (ON DELETE CASCADE, SET NULL, ON UPDATE CASCADE): no log records what the server did to
 * them, so the source reports the parent's key values and the engine finds the rows
 * (`Migration.keysReferencing`), which are then applied as any changed key.
 */
export interface Reference {
  /** The foreign key's name. */
  via: string;
  /** The parent's referenced values, as the change left them (`holds`) or found them (`held`). */
  values: Key;
  /**
   * `held`: the rows that referenced these values (found in the shadow); `holds`: those that reference
   * them now (in the original); `orphaned`: the rows whose parent a change of `through` (a table whose
   * own cascades reach the parent, these its values) may have taken, found in the shadow as those
   * whose parent is gone.
   */
  rows: 'held' | 'holds' | 'orphaned';
  through?: string;
}

/** Receives what the change stream observed; implemented by core's ChangeBuffer. */
export interface ChangeSink {
  /** Keys (before and after images) touched by a change whose commit ends at `position`. */
  keys(keys: Key[], position: Position): void;
  /** Rows reached through foreign keys by a change whose commit ends at `position` (see Reference). */
  references(references: Reference[], position: Position): void;
  /** The stream read up to `position` with nothing for this table in between. */
  advance(position: Position): void;
  /** The stream cannot go on (lost connection, DDL or TRUNCATE on the table). */
  fail(error: Error): void;
  /** False when the buffer is full; the source should stop reading until `onRoom` fires. */
  hasRoom(): boolean;
  onRoom(callback: () => void): void;
}

export interface ChangeStream {
  /** Where the stream started (every change after this point is delivered). */
  readonly start: Position;
  /**
   * The server's current end of the change log; a catch-up target. Under a lock that holds writers
   * off, `session` is the connection holding it: a source that reads a table may have to read there.
   */
  head(session?: Session): Promise<Position>;
  /** Changes recorded on the server and not yet delivered to the sink, where the source can tell (a trigger log); part of the backlog. */
  readonly undelivered?: number;
  /** What reading a log table cost over the stream's time, where the source reads one (a trigger log). */
  readonly readCost?: ReadCost;
  /** Everything up to `position` is applied to the shadow; the source may release it. */
  acknowledge(position: Position): Promise<void>;
  stop(): Promise<void>;
}
