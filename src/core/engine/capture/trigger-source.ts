import { LockTimeoutError, UserError } from '../errors.js';
import type { Key, Position, Session } from '../contract-values.js';
import type { ChangeSink, ChangeSource, ChangeStream, OpenOptions } from '../ports/change-source.js';
import { installRetried } from './install-retried.js';
import { ReadCost } from '../read-cost.js';

/** Most log entries one poll delivers; the next poll waits until these are applied and removed. */
const PAGE = 5000;
/** How often an idle log is read again. */
const IDLE_POLL_MS = 100;
/** How often a held stream counts what the log holds. */
const RECOUNT_MS = 2000;
/** Most entries drained under a lock; more means the run should catch up unlocked first. */
const LOCKED_DRAIN_LIMIT = 100_000;

/**
 * A point in the log's sequence (`seq`: every value at or below it was taken when it was read) and
 * the writers that could still commit one of those (`mark`, the engine's own text). Once they have all
 * ended, no entry at or below `seq` can appear any more.
 */
export interface Horizon {
  seq: string;
  mark: string;
}

/** One row of the run's change log: the keys one row change touched (an update that moves the key logs both). */
export interface LogEntry {
  /** The log's own sequence, as text (64-bit). */
  seq: string;
  keys: Key[];
  /** A TRUNCATE of the original, which row triggers cannot describe. */
  truncated?: boolean;
}

/**
 * An engine's side of trigger capture: the log table, the row triggers that fill it, and its SQL.
 * The protocol around it (what is read when, what is deleted when, what is drained under a lock)
 * is `TriggerSource`'s, the same on every engine.
 */
export interface TriggerLog {
  /** What this source is, for messages (e.g. the log table's name). */
  readonly name: string;
  /**
   * Creates the log, then the triggers. A statement that waits longer than `lockTimeoutMs` for its
   * lock throws LockTimeoutError, and what the attempt made is removed again.
   */
  install(lockTimeoutMs: number): Promise<void>;
  /** A resumed run: throws UserError unless the log and every trigger of the dead run are in place and shadowcut's own. */
  verifyInstalled(): Promise<void>;
  /** Up to `limit` entries in sequence order, after `afterSeq` when given, read on `session` (which may hold a lock) when given. */
  read(limit: number, afterSeq: string | null, session?: Session): Promise<LogEntry[]>;
  /** Deletes exactly these entries (never a range: a lower sequence may still commit). */
  remove(seqs: string[]): Promise<void>;
  /** Entries not yet removed (for the backlog), after `afterSeq` when given: below it there are none. */
  pending(afterSeq?: string | null): Promise<number>;
  /** Where the log's sequence stands and who could still add below it; null when the engine cannot tell. */
  horizon(): Promise<Horizon | null>;
  /** Every writer of `h.mark` has ended. */
  settled(h: Horizon): Promise<boolean>;
  /** Lets go of what the horizon keeps open between polls (sessions on other servers); made again on the next use. */
  close?(): Promise<void>;
  /** Triggers first, then the log; idempotent. */
  uninstall(): Promise<void>;
}

/**
 * Changes recorded by row triggers into a log table of the run's own (pt-online-schema-change,
 * pg_repack and pg-osc capture the same way), for servers without a change stream the role may read.
 * Why it reads the log as it does is in this folder's README ("Trigger capture: the floor and the horizon").
 */
export class TriggerSource implements ChangeSource {
  constructor(private readonly log: TriggerLog) {}

  async open(sink: ChangeSink, from: Position | undefined, options: OpenOptions): Promise<ChangeStream> {
    // A reopened or resumed stream continues the log it was reading; only a new run makes one.
    if (from) await this.log.verifyInstalled();
    else await installRetried((lockTimeoutMs) => this.log.install(lockTimeoutMs), 'the capture triggers', options);
    const stream = new TriggerStream(this.log, sink, Number(from?.poll ?? 0));
    stream.run();
    return stream;
  }

  cleanup(): Promise<void> {
    return this.log.uninstall();
  }

  comparePositions(a: Position, b: Position): number {
    return Number(a.poll) - Number(b.poll);
  }
}

/**
 * Positions are poll numbers. A poll never reads "after the last sequence read": a sequence is taken
 * when a row is written and becomes visible at commit, so a lower one can appear after a higher one
 * was read. Entries leave the log only when acknowledged (applied), each by its own sequence, and the
 * next poll waits for that, so it never delivers an entry twice, and a crash in between only applies
 * some keys again.
 *
 * Reads start at a floor that only a proof moves. Removed entries stay in the log's index while any
 * snapshot older than their removal is open (a verification's, for minutes), and a read from the
 * log's start walks all of them at every poll: the cost grows with the square of a long verification
 * under steady writes. So a poll takes the log's horizon (the sequence's value, then who could still
 * commit below it); a later poll that finds them all ended knows every entry at or below it is
 * committed or gone, reads once more from the old floor, and when that read took every such entry and
 * they are applied and removed, the horizon's sequence becomes the floor.
 */
class TriggerStream implements ChangeStream {
  readonly start: Position;
  private polls = 0;
  /** Delivered and not yet acknowledged, by poll number. */
  private outstanding: { poll: number; seqs: string[] }[] = [];
  /** Bumped by a drain under a lock: a background poll begun before it is discarded (it would go back in position). */
  private generation = 0;
  /** A drain under a lock is reading: no background poll starts meanwhile. */
  private draining = false;
  /** The highest poll delivered: positions never go back. */
  private delivered = 0;
  private counted = 0;
  private stopped = false;
  private wake: (() => void) | null = null;
  private running: Promise<void> = Promise.resolve();
  /** Entries in the log beyond the last poll's page. */
  undelivered = 0;
  readonly readCost = new ReadCost();
  /** Reads start after this sequence value: nothing at or below it can be in the log any more. */
  floor: string | null = null;
  /** Taken at an earlier poll; waits for its writers to end. */
  private horizon: Horizon | null = null;
  /** Settled before the last delivered read began, which took every entry at or below it: the floor once they are removed. */
  private covered: Horizon | null = null;

  /** Reopened or resumed: positions go on from where the last stream stood, so a catch-up target set before still means "after this". */
  constructor(
    private readonly log: TriggerLog,
    private readonly sink: ChangeSink,
    from: number,
  ) {
    this.polls = this.delivered = from;
    this.start = { poll: from };
  }

  run(): void {
    this.running = this.loop().catch((error: Error) => {
      if (!this.stopped) this.sink.fail(error);
    });
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      if (this.outstanding.length > 0 || this.draining || !this.sink.hasRoom()) {
        await this.idle(IDLE_POLL_MS);
        await this.recount();
        continue;
      }
      const generation = this.generation;
      const poll = ++this.polls;
      // Nothing is outstanding here: what the last read delivered is applied and removed.
      this.raiseFloor();
      const settled = await this.settledHorizon();
      const began = performance.now();
      const entries = await this.log.read(PAGE, this.floor);
      this.readCost.add(performance.now() - began);
      // Counted before the sink sees the keys: a catch-up is level only when nothing is left here either.
      const beyond = entries.length < PAGE ? 0 : Math.max(1, (await this.log.pending(this.floor)) - entries.length);
      if (this.stopped || generation !== this.generation) continue;
      this.undelivered = beyond;
      this.covered = settled && tookAllUpTo(entries, settled.seq) ? settled : null;
      this.deliver(poll, entries);
      if (entries.length === 0) await this.idle(IDLE_POLL_MS);
    }
  }

  private raiseFloor(): void {
    if (this.covered && (this.floor === null || BigInt(this.covered.seq) > BigInt(this.floor))) this.floor = this.covered.seq;
    this.covered = null;
  }

  /** The horizon taken at an earlier poll once its writers have all ended (and a new one taken), else null. */
  private async settledHorizon(): Promise<Horizon | null> {
    const earlier = this.horizon;
    if (earlier && !(await this.log.settled(earlier))) return null;
    this.horizon = await this.log.horizon();
    return earlier;
  }

  /** While held (nothing acknowledged), the log still grows: the backlog shown keeps up, every few seconds. */
  private async recount(): Promise<void> {
    if (Date.now() - this.counted < RECOUNT_MS || this.outstanding.length === 0) return;
    this.counted = Date.now();
    const delivered = this.outstanding.reduce((n, o) => n + o.seqs.length, 0);
    this.undelivered = Math.max(0, (await this.log.pending(this.floor)) - delivered);
  }

  private deliver(poll: number, entries: LogEntry[]): number {
    const truncate = entries.find((e) => e.truncated);
    if (truncate) throw new UserError(`the table was truncated during the migration (${this.log.name}); start again`);
    const at = (this.delivered = Math.max(this.delivered, poll));
    if (entries.length === 0) {
      this.sink.advance({ poll: at });
      return at;
    }
    this.outstanding.push({ poll: at, seqs: entries.map((e) => e.seq) });
    this.sink.keys(
      entries.flatMap((e) => e.keys),
      { poll: at },
    );
    return at;
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /**
   * Unlocked: the first poll that starts from now on. Under a lock (`session`): every writer has
   * committed and no new entry can appear, so the whole log is read on the session, after the last
   * sequence read being safe here, and delivered as one poll.
   */
  async head(session?: Session): Promise<Position> {
    if (!session) {
      this.poke();
      return { poll: this.polls + 1 };
    }
    this.generation++;
    this.draining = true;
    try {
      const poll = ++this.polls;
      const entries: LogEntry[] = [];
      for (let after: string | null = this.floor; ;) {
        const page = await this.log.read(PAGE, after, session);
        entries.push(...page);
        if (entries.length > LOCKED_DRAIN_LIMIT) {
          throw new LockTimeoutError(`the change log holds more than ${LOCKED_DRAIN_LIMIT} entries under the lock`);
        }
        if (page.length < PAGE) break;
        after = page[page.length - 1].seq;
      }
      // Everything the log held is now in the sink: nothing is left beyond it.
      this.undelivered = 0;
      return { poll: this.deliver(poll, entries) };
    } finally {
      this.draining = false;
    }
  }

  async acknowledge(position: Position): Promise<void> {
    const upTo = Number(position.poll);
    const done = this.outstanding.filter((o) => o.poll <= upTo);
    if (done.length === 0) return;
    try {
      await this.log.remove(done.flatMap((o) => o.seqs));
    } catch (error) {
      // The entries stay, and the stream is reopened (a lost connection) to read them again: applying twice is harmless.
      return this.sink.fail(error as Error);
    }
    this.outstanding = this.outstanding.filter((o) => o.poll > upTo);
    this.poke();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.poke();
    // A poll under way may still take a horizon: what it opens is let go of once it has returned.
    await this.running;
    await this.log.close?.();
  }
}

/** The read took every entry it could see at or below `seq`: it was not cut off by its page before passing it. */
function tookAllUpTo(entries: LogEntry[], seq: string): boolean {
  return entries.length < PAGE || BigInt(entries[entries.length - 1].seq) > BigInt(seq);
}
