import type { ChangeSink } from '../ports/change-source.js';
import { ignoreFailure } from '../errors.js';

/** One table's share of a hub's reader, at positions of type P. */
export interface HubMember<P> {
  sink: ChangeSink;
  /**
   * Set while the reader repeats what this table already had (it joined a running reader, or the
   * reader was started again from an earlier position for another table): what lies before it is
   * skipped. Cleared once passed, so a reader in step compares no positions.
   */
  after: P | null;
}

/**
 * What every engine's shared reader of a change log has in common (a set's tables following one
 * binlog reader or one replication slot): tables subscribe and leave one at a time, so a second table
 * never starts a second reader; the last to leave stops it; and a full sink pauses the reader for
 * all, until every table's applier has drained its buffer (the set moves at its slowest table's pace,
 * and nothing is lost: the server keeps the log).
 */
export abstract class ReaderHub<P, M extends HubMember<P>> {
  protected readonly members = new Set<M>();
  private paused = false;
  private turn: Promise<unknown> = Promise.resolve();

  /** Stops reading the socket, and starts again. */
  protected abstract pauseReading(): void;
  protected abstract resumeReading(): void;
  protected abstract stopReader(): Promise<void>;
  /** Negative, zero or positive as `a` lies before, at or after `b` in the log. */
  protected abstract compare(a: P, b: P): number;

  /** The reader starts again further back than `readTo`: every table following has had up to there, and skips it. */
  protected repeatingUpTo(readTo: P): void {
    for (const m of this.members) if (m.after === null || this.compare(m.after, readTo) < 0) m.after = readTo;
  }

  /** Whether `member` takes what lies at `position`: once it does, it takes everything after, and compares no more. */
  protected reached(member: M, position: P): boolean {
    if (member.after === null) return true;
    if (this.compare(position, member.after) < 0) return false;
    member.after = null;
    return true;
  }

  protected inTurn<T>(work: () => Promise<T>): Promise<T> {
    const next = this.turn.then(work, work);
    this.turn = next.catch(ignoreFailure('the turn only orders the work: each caller sees its own failure through the promise it is given'));
    return next;
  }

  /**
   * A table's subscription, in turn: `work` adds `member` and starts what it needs. If that fails the
   * table is no member, since its stream was never handed out and nothing will leave for it: kept,
   * it would keep the hub from being idle (and a run's cleanup from removing its slot), and its sink
   * would be written to by a reader started later (a server restarting while a stream reopened).
   */
  protected joining<T>(member: M, work: () => Promise<T>): Promise<T> {
    return this.inTurn(async () => {
      try {
        return await work();
      } catch (error) {
        this.members.delete(member);
        throw error;
      }
    });
  }

  protected leave(member: M): Promise<void> {
    return this.inTurn(async () => {
      if (!this.members.delete(member)) return;
      if (this.members.size === 0) await this.stopReader();
      else this.resumeIfRoom();
    });
  }

  /** A reader started afresh reads. */
  protected readingAgain(): void {
    this.paused = false;
  }

  /** Called for every event the reader passes on: allocates nothing unless a sink is full. */
  protected pauseIfFull(): void {
    if (this.paused || this.allHaveRoom()) return;
    this.paused = true;
    this.pauseReading();
    for (const member of this.members) if (!member.sink.hasRoom()) member.sink.onRoom(() => this.resumeIfRoom());
  }

  private allHaveRoom(): boolean {
    for (const member of this.members) if (!member.sink.hasRoom()) return false;
    return true;
  }

  private resumeIfRoom(): void {
    if (!this.paused || !this.allHaveRoom()) return;
    this.paused = false;
    this.resumeReading();
  }
}
