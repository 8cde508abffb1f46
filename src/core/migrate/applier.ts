import { sleep } from '../engine/retry/backoff.js';
import { ChangeBuffer } from './capture/change-buffer.js';
import { ChangedKeys } from './capture/changed-keys.js';
import { HeldKeys } from './capture/held-keys.js';
import type { Planned, RunContext } from './context.js';
import type { MigrationCapture } from '../engine/ports/capture.js';
import { LockTimeoutError, UniqueViolationError, ignoreFailure } from '../engine/errors.js';
import { retryLockTimeouts, retryUniqueConflicts, uniqueViolation } from '../engine/retry/retry.js';
import type { CatchUp, ChangeStream, Key, Position, Session } from '../engine/types.js';

/** Most keys applied in one call when a unique conflict makes batches go together. */
const JOINT_APPLY_LIMIT = 20_000;
/** Reopens of a failing stream in a row, with nothing applied in between, before the run gives up. */
const MAX_REOPENS_WITHOUT_PROGRESS = 5;

/**
 * Follows the change stream and applies its keys: between copy chunks, while waiting, and inside
 * the brief locks of the checksum view and the cut-over. Keys, not rows, travel (see README).
 */
export class Applier {
  private readonly buffer = new ChangeBuffer();
  private stream: ChangeStream | null = null;
  private reported: ChangeStream | null = null;
  /** Applied inside the current locked transaction: put back if it rolls back. */
  private appliedUnderLock: Key[] = [];
  /** Applied since the last consistent view: parity is proven for them row by row before the swap. */
  readonly changed = new ChangedKeys();
  /** Keys a unique conflict holds back until their value's other holder changes (capture/held-keys.ts). */
  private readonly held = new HeldKeys();
  private reopened: Position | null = null;
  private reopens = 0;

  constructor(
    private readonly ctx: RunContext<Planned & MigrationCapture>,
    /** Everything before this position is applied: a safe place to restart the stream from. */
    public applied: Position | null,
    private readonly onWaiting: () => void,
  ) {}

  get backlog(): number {
    return this.buffer.size + this.held.size + (this.stream?.undelivered ?? 0);
  }

  /** Opens (or, after a lost connection, reopens) the change stream from the last applied position. */
  async open(): Promise<void> {
    await this.stop();
    this.buffer.reset();
    const { lockTimeoutMs, cutoverAttempts } = this.ctx.config;
    this.stream = await this.ctx.migration.changes.open(this.buffer, this.applied ?? undefined, {
      lockTimeoutMs,
      attempts: cutoverAttempts,
      warn: (message) => this.ctx.report.warn(message),
    });
    this.applied ??= this.stream.start;
    this.buffer.advance(this.stream.start);
  }

  async stop(): Promise<void> {
    await this.stream?.stop().catch(ignoreFailure('the stream is stopped for good or reopened afresh: nothing more is read from this one'));
    // Once per stream: a stopped stream may be stopped again (a reopen, the run's end).
    const cost = this.stream === this.reported ? null : this.stream?.readCost?.summary();
    this.reported = this.stream;
    if (cost) {
      this.ctx.report.info(
        `change log read ${cost.reads} time(s), ms per read by part of the run: ${cost.msPerReadByPart.join(' ')} (longest ${cost.longestMs} ms)`,
        { logReads: cost },
      );
    }
  }

  /** Stream failures: a lost connection is reopened from the last applied position; anything else stops the run. */
  async checkStream(): Promise<void> {
    const failure = this.buffer.failure;
    if (!failure) return;
    if (!this.ctx.isTransient(failure)) throw failure;
    // A stream that fails again and again before anything more is applied will not get better; one
    // whose changes are held applies nothing however well it goes, so it is not judged by that.
    const stuck =
      !this.holds && this.reopened !== null && this.applied !== null && this.ctx.migration.changes.comparePositions(this.applied, this.reopened) <= 0;
    this.reopens = stuck ? this.reopens + 1 : 1;
    if (this.reopens > MAX_REOPENS_WITHOUT_PROGRESS) throw failure;
    this.reopened = this.applied;
    this.ctx.report.warn(`change stream lost (${failure.message}); reopening from the last applied position`);
    await this.ctx.transient('reopening the change stream', () => this.open());
  }

  /** Applies everything pending (on `session`, inside its locked transaction, when given). */
  async applyPending(session?: Session): Promise<Position | null> {
    if (this.holds) {
      if (session) throw new Error('changes applied under a lock before the shadow has its key');
      if (!(await this.holding())) return null;
    }
    let position: Position | null = null;
    let retryHeld = this.held.size > 0;
    // One round applies what was pending when it began, and what came since only while that fills a
    // batch: a round that chased the tail under a steady stream took the few keys that had just come
    // each time, one commit for every few keys, and on a durable server each commit waits for the
    // disk (1,000 writes a second: 6 keys a transaction at 7 ms, the copy between rounds starved,
    // 225 s for 1M rows against 25). The tail waits for the next round, a wave of the copy away.
    // Under a lock everything is applied.
    const due = session ? Number.POSITIVE_INFINITY : this.buffer.size;
    let taken = 0;
    for (;;) {
      if (!session) await this.checkStream();
      else if (this.buffer.failure) throw this.failedUnderLock(this.buffer.failure);
      await this.resolveReferences(session);
      const batch = this.buffer.take(this.ctx.config.applyBatch);
      if (retryHeld) batch.keys.push(...this.held.take());
      retryHeld = false;
      if (batch.keys.length > 0) {
        const alsoTaken = session
          ? await this.applyBatch(batch.keys, session)
          : await this.ctx
              .transient('applying changes', () => this.applyBatch(batch.keys))
              .catch((error) => {
                this.buffer.requeue(batch.keys);
                throw error;
              });
        if (alsoTaken) batch.position = alsoTaken.position;
      }
      if (batch.position) position = batch.position;
      taken += batch.keys.length;
      if (this.buffer.size === 0) break;
      if (taken >= due && this.buffer.size < this.ctx.config.applyBatch) break;
    }
    this.ctx.state.status.changesApplied = this.ctx.result.changesApplied;
    this.ctx.state.status.backlog = this.backlog;
    // Held keys do not hold the position back: a trigger log is read on only once acknowledged, and
    // the holder's change may be further on. A run that dies holding some loses them, and with them
    // nothing: a resumed run's verification compares the whole table (copy-loop.ts, CopyProof).
    if (position && !session) {
      this.applied = position;
      await this.stream!.acknowledge(position);
    }
    return position;
  }

  /**
   * Changes wait for the shadow's key (ports/keyless-shadow.ts). Meanwhile the stream is watched, and
   * acknowledged as far as it went while nothing is held, so that a slot keeps no WAL of a quiet
   * table's copy. A source that keeps what is not acknowledged in the server's own log holds only
   * what the buffer takes: once full, the key is built now and the rest of the copy keeps it (as a
   * partitioned table's does), so neither the server's log nor a set's shared reader waits for the
   * copy's end. Returns whether changes can be applied now.
   */
  private async holding(): Promise<boolean> {
    await this.checkStream();
    const stream = this.stream!;
    if (this.buffer.size === 0 && this.held.size === 0) {
      const { position } = this.buffer.take(0);
      if (position && this.applied && this.ctx.migration.changes.comparePositions(position, this.applied) > 0) {
        this.applied = position;
        await stream.acknowledge(position);
      }
      return false;
    }
    if (!this.ctx.migration.changes.pinsServerLog || this.buffer.hasRoom()) return false;
    this.ctx.report.info('the change buffer is full while the copy fills a table with no key: the key is built now, and the rest of the copy keeps it');
    await this.ctx.transient('key build', () => this.ctx.migration.keylessShadow!.build());
    return true;
  }

  /**
   * Rows a cascade reached, found by the engine, join the pending keys. They are found as the shadow
   * stands before this batch (the rows that held a parent's old values are still there), and each is
   * then made equal to the original's current row like any changed key.
   */
  private async resolveReferences(session?: Session): Promise<void> {
    const references = this.buffer.takeReferences();
    if (references.length === 0) return;
    const { migration } = this.ctx;
    if (!migration.keysReferencing) throw new Error('the change source reported references the migration cannot follow');
    const find = () => migration.keysReferencing!(references, session);
    try {
      this.buffer.requeue(session ? await find() : await this.ctx.transient('finding the rows a cascade reached', find));
    } catch (error) {
      this.buffer.requeueReferences(references);
      throw error;
    }
  }

  /**
   * A stream lost while a lock is held cannot be reopened there: the attempt gives up its lock as a
   * timed-out one does, and the retry reopens the stream unlocked first. Anything else stops the run.
   */
  private failedUnderLock(failure: Error): Error {
    return this.ctx.isTransient(failure) ? new LockTimeoutError(`the change stream was lost under the lock (${failure.message})`) : failure;
  }

  /** While held back: apply only when the buffer is half full, so the source never stops reading. */
  async applyIfFilling(): Promise<void> {
    if (this.buffer.size > this.buffer.capacity / 2) await this.applyPending();
  }

  /** Waits `ms` while applying the stream, so a pause never lets the backlog grow unapplied. */
  async waitApplying(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      await this.applyPending();
      await sleep(Math.min(100, Math.max(0, until - Date.now())));
    }
  }

  waitForChange(ms: number): Promise<void> {
    return this.buffer.waitForChange(ms);
  }

  /** Puts keys back to be applied again (rows that a comparison found different). */
  requeue(keys: Key[]): void {
    this.buffer.requeue(keys);
  }

  /** Bring the shadow level with the server's head without holding any lock (before locking). */
  async catchUp(): Promise<void> {
    const target = await this.ctx.transient('reading the stream head', () => this.stream!.head());
    await this.catchUpTo(target, undefined, Number.POSITIVE_INFINITY);
  }

  /** Used under a lock: bounded, so a slow stream turns into a retry instead of a long write stall. */
  readonly catchUpLocked: CatchUp = async (session) => {
    const target = await this.stream!.head(session);
    await this.catchUpTo(target, session, this.lockedBudgetMs());
  };

  lockedBudgetMs(): number {
    return Math.max(1000, 4 * this.ctx.config.lockTimeoutMs);
  }

  /** A step that takes a brief lock: retried on lock timeouts, undoing what a rolled-back attempt applied. */
  underLock<T>(what: string, fn: () => Promise<T>, starting: (attempt: number) => void = () => {}): Promise<T> {
    return retryLockTimeouts(
      this.ctx,
      {
        what,
        attempts: this.ctx.config.cutoverAttempts,
        starting: (attempt) => {
          this.lockAttemptStarting();
          starting(attempt);
        },
        failed: () => this.lockAttemptFailed(),
        wait: (ms) => this.waitApplying(ms),
      },
      fn,
    );
  }

  /** A locked transaction begins: what it applies is remembered, to be put back if it rolls back. */
  lockAttemptStarting(): void {
    this.appliedUnderLock = [];
  }

  lockAttemptFailed(): void {
    this.buffer.requeue(this.appliedUnderLock);
  }

  /** Changes wait: the shadow has no key yet. */
  private get holds(): boolean {
    return this.ctx.migration.keylessShadow?.holding === true;
  }

  /** A step that may meet a unique value still moving in the stream. */
  uniqueSafe<T>(step: () => Promise<T>): Promise<T> {
    return retryUniqueConflicts(step, () => this.catchUp());
  }

  private async catchUpTo(target: Position, session: Session | undefined, budgetMs: number): Promise<void> {
    // Held changes never level: the caller must have had the key built first.
    if (this.holds) throw new Error('catching up before the shadow has its key');
    const deadline = Date.now() + budgetMs;
    for (;;) {
      this.ctx.checkAbort();
      await this.applyPending(session);
      const seen = this.buffer.seen;
      // A trigger log may hold more than one poll delivers: level means nothing left there either.
      // Under a lock the head was read there, so everything is delivered whatever a count says.
      const level = this.buffer.size === 0 && (session !== undefined || (this.stream?.undelivered ?? 0) === 0);
      if (level && seen && this.ctx.migration.changes.comparePositions(seen, target) >= 0) return;
      if (Date.now() > deadline) {
        throw new LockTimeoutError(`the change stream did not reach the lock's position within ${budgetMs} ms`);
      }
      if (this.buffer.size === 0) await this.buffer.waitForChange(50);
      if (!session) this.onWaiting();
    }
  }

  /**
   * Applies one batch. On a unique conflict, the stale row holding the value usually belongs to a key
   * still pending in another batch: apply the batch together with everything pending, in one call,
   * so all old rows go before any new one. A conflict that survives that waits for the value's other
   * holder to change: the keys are applied in halves, and those that conflict alone are held
   * (capture/held-keys.ts) while the rest go on. Under a lock nothing more can change: the attempt gives way.
   * Returns what was taken additionally, if anything.
   */
  async applyBatch(keys: Key[], session?: Session): Promise<{ position: Position | null } | null> {
    if (session) this.appliedUnderLock.push(...keys);
    this.changed.add(keys);
    try {
      await this.applyCounted(keys, session);
      return null;
    } catch (error) {
      if (!(error instanceof UniqueViolationError)) throw error;
      const rest = this.buffer.take(JOINT_APPLY_LIMIT);
      if (session) this.appliedUnderLock.push(...rest.keys);
      this.changed.add(rest.keys);
      const all = [...keys, ...rest.keys];
      try {
        await this.applyCounted(all, session);
      } catch (again) {
        if (!(again instanceof UniqueViolationError)) {
          this.buffer.requeue(rest.keys);
          throw again;
        }
        if (session) {
          this.buffer.requeue(rest.keys);
          throw new LockTimeoutError(`a value the new schema allows once is on two rows of the table right now (${again.message})`);
        }
        // Cut short, the halving leaves keys of `rest` unapplied that no caller puts back: else the
        // next position acknowledged removes their entries unapplied. Applying twice is harmless.
        const conflicting = await this.appliedAround(all).catch((error: unknown) => {
          this.buffer.requeue(rest.keys);
          throw error;
        });
        this.held.hold(conflicting.keys);
        if (this.held.overdue || this.held.size > JOINT_APPLY_LIMIT) throw uniqueViolation(conflicting.error);
      }
      return { position: rest.position };
    }
  }

  private async applyCounted(keys: Key[], session?: Session): Promise<void> {
    await this.ctx.migration.applyKeys(keys, session);
    this.ctx.result.changesApplied += keys.length;
    this.held.applied(keys);
  }

  /** Applies `keys` in halves down to single keys; returns those that conflict alone, with the last conflict. */
  private async appliedAround(keys: Key[]): Promise<{ keys: Key[]; error: unknown }> {
    try {
      await this.applyCounted(keys);
      return { keys: [], error: null };
    } catch (error) {
      if (!(error instanceof UniqueViolationError)) throw error;
      if (keys.length === 1) return { keys, error };
      const half = Math.ceil(keys.length / 2);
      const [first, second] = [await this.appliedAround(keys.slice(0, half)), await this.appliedAround(keys.slice(half))];
      return { keys: [...first.keys, ...second.keys], error: second.error ?? first.error };
    }
  }
}
