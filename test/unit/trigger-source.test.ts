// TriggerSource (src/core/engine/capture/trigger-source.ts): the trigger-capture protocol against a fake log
// (test/support/fake-trigger-log.ts) whose sequences become visible at commit, out of order. What is
// delivered, in which poll, what is removed when, where reads start (the floor, moved only past a
// settled horizon), the drain under a lock. Fake timers drive the polls; nothing sleeps for real.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LockTimeoutError, UserError } from '../../src/core/engine/errors.js';
import type { ChangeSink, ChangeStream, Reference } from '../../src/core/engine/ports/change-source.js';
import { TriggerSource } from '../../src/core/engine/capture/trigger-source.js';
import type { Key, Position, Session } from '../../src/core/engine/contract-values.js';
import { FakeTriggerLog } from '../support/fake-trigger-log.js';

type Event = { keys: Key[]; at: Position } | { advance: Position } | { failed: Error };

/** A ChangeSink that keeps what it was told, with room the test turns off and on. */
class RecordingSink implements ChangeSink {
  readonly events: Event[] = [];
  room = true;
  private readonly waiting: (() => void)[] = [];
  keys(keys: Key[], position: Position): void {
    this.events.push({ keys, at: position });
  }
  references(_references: Reference[], _position: Position): void {
    throw new Error('a trigger log reports no references');
  }
  advance(position: Position): void {
    this.events.push({ advance: position });
  }
  fail(error: Error): void {
    this.events.push({ failed: error });
  }
  hasRoom(): boolean {
    return this.room;
  }
  onRoom(callback: () => void): void {
    this.waiting.push(callback);
  }
  /** The keys delivered, poll by poll. */
  get deliveries(): { keys: Key[]; at: Position }[] {
    return this.events.filter((e): e is { keys: Key[]; at: Position } => 'keys' in e);
  }
  get failures(): Error[] {
    return this.events.flatMap((e) => ('failed' in e ? [e.failed] : []));
  }
  /** The position of the last delivery or advance. */
  get last(): Position | undefined {
    const e = this.events.filter((x) => !('failed' in x)).at(-1);
    return e && ('at' in e ? e.at : 'advance' in e ? e.advance : undefined);
  }
}

const session: Session = { id: 'the locking session' };
const warnings: string[] = [];
const options = { lockTimeoutMs: 500, attempts: 3, warn: (m: string) => void warnings.push(m) };

/** One idle poll's worth of fake time (trigger-source.ts IDLE_POLL_MS). */
const tick = () => vi.advanceTimersByTimeAsync(100);
const keys = (...ns: number[]): Key[] => ns.map((n) => [n]);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

interface Opened {
  log: FakeTriggerLog;
  sink: RecordingSink;
  stream: ChangeStream & { floor?: string | null };
  source: TriggerSource;
}

async function opened(log = new FakeTriggerLog(), from?: Position): Promise<Opened> {
  const sink = new RecordingSink();
  const source = new TriggerSource(log);
  const stream = await source.open(sink, from, options);
  await vi.advanceTimersByTimeAsync(0);
  return { log, sink, stream, source };
}

let streams: ChangeStream[] = [];

beforeEach(() => {
  vi.useFakeTimers();
  warnings.length = 0;
  streams = [];
});

afterEach(async () => {
  await Promise.all(streams.map((s) => s.stop()));
  vi.useRealTimers();
});

async function run(log?: FakeTriggerLog, from?: Position): Promise<Opened> {
  const o = await opened(log, from);
  streams.push(o.stream);
  return o;
}

describe('what a poll delivers, and when the log is emptied', () => {
  it('delivers what is committed in sequence order as one poll, and reads no further until it is acknowledged', async () => {
    const log = new FakeTriggerLog();
    log.commit([20], [10]);
    const { sink, stream } = await run(log);
    expect(log.installs).toEqual([500]);
    expect(stream.start).toEqual({ poll: 0 });
    expect(sink.deliveries).toEqual([{ keys: keys(20, 10), at: { poll: 1 } }]);
    log.commit([30]);
    await vi.advanceTimersByTimeAsync(2500);
    // Held: no second read, and nothing removed; the backlog shown still counts what was added.
    expect(log.reads).toHaveLength(1);
    expect(log.removed).toEqual([]);
    expect(stream.undelivered).toBe(1);
    await stream.acknowledge({ poll: 1 });
    expect(log.removed).toEqual([['1', '2']]);
    await tick();
    expect(sink.deliveries.at(-1)).toEqual({ keys: keys(30), at: { poll: 2 } });
    expect(log.left).toEqual(['3']);
  });

  it('delivers a change whose lower sequence commits after a higher one was read and removed', async () => {
    const log = new FakeTriggerLog();
    const slow = log.writer();
    slow.write([1]); // sequence 1, not committed
    log.commit([2]); // sequence 2, committed
    const { sink, stream } = await run(log);
    expect(sink.deliveries).toEqual([{ keys: keys(2), at: { poll: 1 } }]);
    await stream.acknowledge({ poll: 1 });
    for (let i = 0; i < 5; i++) await tick();
    expect(sink.deliveries).toHaveLength(1);
    slow.commit();
    await tick();
    expect(sink.deliveries.map((d) => d.keys)).toEqual([keys(2), keys(1)]);
    // Every read up to then started at the log's start: the floor never passed a writer still open.
    const upTo = log.reads.findIndex((r) => r.got.includes('1'));
    expect(log.reads.slice(0, upTo + 1).every((r) => r.after === null)).toBe(true);
    expect(log.removed).toEqual([['2']]);
  });

  it('moves the floor to a horizon only once its writers ended and a read took all below it, applied and removed', async () => {
    const log = new FakeTriggerLog();
    log.commit([1], [2], [3]);
    const { sink, stream, log: l } = await run(log);
    expect(l.horizons[0]).toEqual({ seq: '3', mark: '[]' });
    await stream.acknowledge({ poll: 1 });
    await tick(); // the horizon settles; this read (from the start) is its proof
    await tick(); // the floor moves
    expect(stream.floor).toBe('3');
    log.commit([4]);
    await tick();
    expect(sink.deliveries.at(-1)?.keys).toEqual(keys(4));
    expect(log.reads.map((r) => r.after).slice(0, 3)).toEqual([null, null, '3']);
    expect(log.reads.at(-1)).toMatchObject({ after: '3', got: ['4'] });
  });

  it('keeps the floor while a writer that took a sequence below the horizon is open', async () => {
    const log = new FakeTriggerLog();
    const open = log.writer();
    open.write([1]);
    log.commit([2]);
    const { sink, stream } = await run(log);
    await stream.acknowledge({ poll: 1 });
    for (let i = 0; i < 10; i++) await tick();
    expect(stream.floor).toBeNull();
    open.commit();
    await tick(); // delivers sequence 1 (read from the start): the horizon's proof
    expect(stream.floor).toBeNull(); // not yet applied and removed
    await stream.acknowledge(sink.last!);
    await tick();
    await tick();
    expect(stream.floor).toBe('2');
  });

  it('does not raise the floor past a read its page cut off, and counts what lies beyond the page', async () => {
    const log = new FakeTriggerLog();
    log.commit(...keys(...range(1, 11_000)));
    const { sink, stream } = await run(log);
    expect(sink.deliveries[0].keys).toHaveLength(5000);
    expect(stream.undelivered).toBe(6000);
    for (let poll = 1; poll <= 3; poll++) {
      await stream.acknowledge({ poll });
      await tick();
    }
    expect(sink.deliveries.map((d) => [d.keys.length, d.keys[0][0]])).toEqual([
      [5000, 1],
      [5000, 5001],
      [1000, 10_001],
    ]);
    // The second read ended at 10000, below the horizon (11000): only the third covered it.
    expect(log.reads.slice(0, 4).map((r) => r.after)).toEqual([null, null, null, '11000']);
    expect(stream.floor).toBe('11000');
    expect(log.left).toEqual([]);
  });

  it('holds off reading while the sink has no room', async () => {
    const log = new FakeTriggerLog();
    log.commit([1]);
    const sink = new RecordingSink();
    sink.room = false;
    const stream = await new TriggerSource(log).open(sink, undefined, options);
    streams.push(stream);
    for (let i = 0; i < 5; i++) await tick();
    expect(log.reads).toEqual([]);
    sink.room = true;
    await tick();
    expect(sink.deliveries).toEqual([{ keys: keys(1), at: { poll: 1 } }]);
  });

  it('an empty poll advances the position, and positions only go forward', async () => {
    const { sink, log } = await run();
    await tick();
    await tick();
    expect(sink.events.slice(0, 3)).toEqual([{ advance: { poll: 1 } }, { advance: { poll: 2 } }, { advance: { poll: 3 } }]);
    expect(log.reads.every((r) => r.got.length === 0)).toBe(true);
  });
});

describe('acknowledging', () => {
  it('a removal that fails keeps the entries outstanding and fails the sink; a later one removes them', async () => {
    const log = new FakeTriggerLog();
    log.commit([1], [2]);
    const { sink, stream } = await run(log);
    log.failRemove = true;
    await stream.acknowledge({ poll: 1 });
    expect(sink.failures.map((e) => e.message)).toEqual(['Connection lost: remove (fake)']);
    expect(log.left).toEqual(['1', '2']);
    await tick();
    expect(log.reads).toHaveLength(1);
    await stream.acknowledge({ poll: 1 });
    expect(log.removed).toEqual([['1', '2']]);
  });

  it('removes only the polls up to the position, each entry by its own sequence', async () => {
    const log = new FakeTriggerLog();
    log.commit([1]);
    const { stream } = await run(log);
    log.commit([2]);
    const at = await stream.head(session); // poll 2, under a lock
    expect(at).toEqual({ poll: 2 });
    await stream.acknowledge({ poll: 1 });
    expect(log.removed).toEqual([['1']]);
    await stream.acknowledge({ poll: 1 });
    expect(log.removed).toEqual([['1']]); // nothing left up to poll 1
    await stream.acknowledge(at);
    expect(log.removed).toEqual([['1'], ['1', '2']]);
  });
});

describe('the head', () => {
  it('unlocked: the next poll, which starts at once', async () => {
    const log = new FakeTriggerLog();
    const { sink, stream } = await run(log);
    const reads = log.reads.length;
    log.commit([7]);
    const head = await stream.head();
    expect(head).toEqual({ poll: 2 });
    await vi.advanceTimersByTimeAsync(1);
    expect(log.reads).toHaveLength(reads + 1);
    expect(sink.last).toEqual(head);
  });

  it('under a lock: the whole log read on the locking session from the floor, page after page, as one poll', async () => {
    const log = new FakeTriggerLog();
    log.commit(...keys(...range(1, 4000)));
    const { sink, stream } = await run(log);
    log.commit(...keys(...range(4001, 12_000)));
    const head = await stream.head(session);
    expect(head).toEqual({ poll: 2 });
    const locked = log.reads.filter((r) => r.session === session);
    expect(locked.map((r) => [r.after, r.got.length])).toEqual([
      [null, 5000],
      ['5000', 5000],
      ['10000', 2000],
    ]);
    // The first 4000 were delivered before and are not acknowledged yet: delivered again, which is harmless.
    expect(sink.deliveries.map((d) => [d.at, d.keys.length])).toEqual([
      [{ poll: 1 }, 4000],
      [{ poll: 2 }, 12_000],
    ]);
    expect(stream.undelivered).toBe(0);
  });

  it('under a lock: more than 100,000 entries give the lock up as a timed-out attempt', async () => {
    const log = new FakeTriggerLog();
    const { stream } = await run(log);
    log.commit(...keys(...range(1, 100_001)));
    await expect(stream.head(session)).rejects.toThrow(LockTimeoutError);
  });

  it('a background poll begun before the locked drain is discarded: positions never go back', async () => {
    const log = new FakeTriggerLog();
    const { sink, stream } = await run(log); // poll 1: empty
    const release = log.holdReads();
    await tick(); // poll 2 is reading, held
    log.commit([1], [2]);
    const head = await stream.head(session);
    expect(head).toEqual({ poll: 3 });
    release();
    await vi.advanceTimersByTimeAsync(0);
    // Poll 2's read saw both entries too, and delivered nothing.
    expect(log.reads.filter((r) => r.session === undefined).at(-1)?.got).toEqual(['1', '2']);
    expect(sink.deliveries).toEqual([{ keys: keys(1, 2), at: { poll: 3 } }]);
    await stream.acknowledge(head);
    await tick();
    const positions = sink.events.map((e) => Number(('at' in e ? e.at : 'advance' in e ? e.advance : { poll: NaN }).poll));
    expect(positions.slice(0, 3)).toEqual([1, 3, 4]);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
  });
});

describe('opening, failing and stopping', () => {
  it('a resumed stream checks the triggers instead of making them, and goes on from its poll number', async () => {
    const log = new FakeTriggerLog();
    log.installed = true;
    log.commit([1]);
    const { sink, stream, source } = await run(log, { poll: 7 });
    expect([log.installs, log.verifies]).toEqual([[], 1]);
    expect(stream.start).toEqual({ poll: 7 });
    expect(sink.deliveries).toEqual([{ keys: keys(1), at: { poll: 8 } }]);
    expect(source.comparePositions({ poll: 8 }, { poll: 10 })).toBeLessThan(0);
    await expect(new TriggerSource(new FakeTriggerLog()).open(new RecordingSink(), { poll: 7 }, options)).rejects.toThrow(/are gone/);
  });

  it('retries the install on lock timeouts with backoff, and gives up after the attempts', async () => {
    const log = new FakeTriggerLog();
    log.lockTimeouts = 2;
    const opening = new TriggerSource(log).open(new RecordingSink(), undefined, options);
    await vi.advanceTimersByTimeAsync(5000);
    streams.push(await opening);
    expect(log.installs).toEqual([500, 500, 500]);
    expect(warnings).toHaveLength(2);
    const refused = new FakeTriggerLog();
    refused.lockTimeouts = 3;
    const failing = new TriggerSource(refused).open(new RecordingSink(), undefined, options);
    const caught = failing.catch((e: Error) => e);
    await vi.advanceTimersByTimeAsync(5000);
    const error = await caught;
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(/^creating the capture triggers failed 3 times/);
  });

  it('a TRUNCATE in the log stops the run in one line', async () => {
    const log = new FakeTriggerLog();
    log.commit([1]);
    log.truncate();
    const { sink } = await run(log);
    expect(sink.deliveries).toEqual([]);
    expect(sink.failures.map((e) => [e instanceof UserError, e.message])).toEqual([
      [true, 'the table was truncated during the migration (shop.t__log (fake)); start again'],
    ]);
  });

  it('stops reading once stopped, and lets the horizon go; cleanup removes the triggers', async () => {
    const log = new FakeTriggerLog();
    const { stream, source } = await run(log);
    await stream.stop();
    const reads = log.reads.length;
    for (let i = 0; i < 5; i++) await tick();
    expect(log.reads).toHaveLength(reads);
    expect(log.closes).toBe(1);
    await source.cleanup();
    expect(log.uninstalls).toBe(1);
  });
});
