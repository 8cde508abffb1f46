import type { ChangeSink } from './change-source.js';

/** One table's share of a hub's reader. */
export interface HubMember {
  sink: ChangeSink;
}

/**
 * What every engine's shared reader of a change log has in common (a set's tables following one
 * binlog reader or one replication slot): tables subscribe and leave one at a time, so a second table
 * never starts a second reader; the last to leave stops it; and a full sink pauses the reader for
 * all, until every table's applier has drained its buffer (the set moves at its slowest table's pace,
 * and nothing is lost: the server keeps the log).
 */
export abstract class ReaderHub<M extends HubMember> {
  protected readonly members = new Set<M>();
  private paused = false;
  private turn: Promise<unknown> = Promise.resolve();

  /** Stops reading the socket, and starts again. */
  protected abstract pauseReading(): void;
  protected abstract resumeReading(): void;
  protected abstract stopReader(): Promise<void>;

  protected inTurn<T>(work: () => Promise<T>): Promise<T> {
    const next = this.turn.then(work, work);
    this.turn = next.catch(() => {});
    return next;
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
