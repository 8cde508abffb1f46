// The bounded key sets of the copy path: ChangeBuffer (what the stream reported, not applied yet),
// ChangedKeys (what was applied since the last consistent view) and HeldKeys (keys whose apply met a
// unique conflict). Fake timers stand in for the clock and waitForChange's timeout.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChangeBuffer } from '../../src/core/migrate/capture/change-buffer.js';
import { keyId } from '../../src/core/engine/capture/key-id.js';
import { ChangedKeys } from '../../src/core/migrate/capture/changed-keys.js';
import { HeldKeys } from '../../src/core/migrate/capture/held-keys.js';
import { UNIQUE_PATIENCE_MS } from '../../src/core/engine/retry/retry.js';

describe('keyId', () => {
  it('tells a number from its text, and compares buffers by content', () => {
    expect(keyId([1, 'a'])).toBe('[1,"a"]');
    expect(keyId([1])).not.toBe(keyId(['1']));
    expect(keyId([Buffer.from('ab')])).toBe('[{"b":"6162"}]');
    expect(keyId([Buffer.from('ab')])).toBe(keyId([Buffer.from([0x61, 0x62])]));
    expect(keyId([null, 2])).toBe('[null,2]');
  });
});

describe('ChangeBuffer', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('deduplicates keys and hands them out in arrival order, up to max', () => {
    const buffer = new ChangeBuffer();
    buffer.keys([[1], [2], [1]], { file: 'b.1', pos: 10 });
    buffer.keys([[3], [Buffer.from('x')], [Buffer.from('x')]], { file: 'b.1', pos: 20 });
    expect(buffer.size).toBe(4);
    expect(buffer.take(2)).toEqual({ keys: [[1], [2]], position: null });
    expect(buffer.take(10)).toEqual({ keys: [[3], [Buffer.from('x')]], position: { file: 'b.1', pos: 20 } });
    expect(buffer.size).toBe(0);
  });

  it('returns the position only once nothing is left behind it', () => {
    const buffer = new ChangeBuffer();
    expect(buffer.take(5)).toEqual({ keys: [], position: null });
    buffer.keys([[1], [2]], { lsn: '0/10' });
    expect(buffer.take(1).position).toBeNull();
    expect(buffer.seen).toEqual({ lsn: '0/10' });
    expect(buffer.take(1)).toEqual({ keys: [[2]], position: { lsn: '0/10' } });
  });

  it('moves the position without keys (advance)', () => {
    const buffer = new ChangeBuffer();
    buffer.advance({ lsn: '0/20' });
    expect(buffer.take(100)).toEqual({ keys: [], position: { lsn: '0/20' } });
  });

  it('takes back requeued keys, deduplicated, and withholds the position until they are taken again', () => {
    const buffer = new ChangeBuffer();
    buffer.keys([[1], [2]], { pos: 5 });
    const taken = buffer.take(10);
    expect(taken.position).toEqual({ pos: 5 });
    buffer.keys([[2]], { pos: 6 });
    buffer.requeue(taken.keys);
    expect(buffer.size).toBe(2);
    expect(buffer.take(1)).toEqual({ keys: [[2]], position: null });
    expect(buffer.take(1)).toEqual({ keys: [[1]], position: { pos: 6 } });
  });

  it('applies back-pressure at capacity but never drops a key', () => {
    const buffer = new ChangeBuffer(2);
    buffer.keys([[1]], { pos: 1 });
    expect(buffer.hasRoom()).toBe(true);
    buffer.keys([[2], [3]], { pos: 2 });
    expect(buffer.hasRoom()).toBe(false);
    expect(buffer.size).toBe(3);
    const room = vi.fn();
    buffer.onRoom(room);
    buffer.take(1);
    expect(room).not.toHaveBeenCalled(); // 2 left: still no room under a capacity of 2
    buffer.take(1);
    expect(room).toHaveBeenCalledTimes(1);
    buffer.take(1);
    expect(room).toHaveBeenCalledTimes(1); // a waiter is called once
  });

  it('keeps the first failure, and forgets it on reset while keeping the pending keys', () => {
    const buffer = new ChangeBuffer();
    buffer.keys([[1]], { pos: 1 });
    buffer.fail(new Error('first'));
    buffer.fail(new Error('second'));
    expect(buffer.failure?.message).toBe('first');
    buffer.reset();
    expect(buffer.failure).toBeNull();
    expect(buffer.size).toBe(1);
  });

  it('waitForChange resolves on new keys, else at its timeout', async () => {
    vi.useFakeTimers();
    const buffer = new ChangeBuffer();
    let woken = false;
    void buffer.waitForChange(1000).then(() => (woken = true));
    await vi.advanceTimersByTimeAsync(500);
    expect(woken).toBe(false);
    buffer.keys([[1]], { pos: 1 });
    await Promise.resolve();
    expect(woken).toBe(true);

    let timedOut = false;
    void buffer.waitForChange(1000).then(() => (timedOut = true));
    await vi.advanceTimersByTimeAsync(999);
    expect(timedOut).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(timedOut).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('wakes a waiter on a failure', async () => {
    vi.useFakeTimers();
    const buffer = new ChangeBuffer();
    let woken = false;
    void buffer.waitForChange(60_000).then(() => (woken = true));
    buffer.fail(new Error('stream lost'));
    await Promise.resolve();
    expect(woken).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('ChangedKeys', () => {
  it('remembers distinct keys up to its capacity', () => {
    const changed = new ChangedKeys(3);
    changed.add([[1], [2]]);
    changed.add([[2], [3]]);
    expect(changed.size).toBe(3);
    expect(changed.overflowed).toBe(false);
    expect(changed.list()).toEqual([[1], [2], [3]]);
  });

  it('past its capacity forgets the keys and only remembers that it overflowed', () => {
    const changed = new ChangedKeys(3);
    changed.add([[1], [2], [3]]);
    changed.add([[4]]);
    expect(changed.overflowed).toBe(true);
    expect(changed.size).toBe(0);
    expect(changed.list()).toEqual([]);
    changed.add([[5]]);
    expect(changed.size).toBe(0);
  });

  it('restart returns the last period and starts an empty one', () => {
    const changed = new ChangedKeys(3);
    changed.add([['a'], ['b']]);
    expect(changed.restart()).toEqual({ keys: [['a'], ['b']], overflowed: false });
    expect(changed.size).toBe(0);
    changed.add([[1], [2], [3], [4]]);
    expect(changed.restart()).toEqual({ keys: [], overflowed: true });
    expect(changed.overflowed).toBe(false);
    changed.add([[9]]);
    expect(changed.list()).toEqual([[9]]);
  });
});

describe('HeldKeys', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2024-03-01T00:00:00Z'));
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('hands held keys out once, deduplicated', () => {
    const held = new HeldKeys();
    held.hold([[1], [2], [1]]);
    expect(held.size).toBe(2);
    expect(held.take()).toEqual([[1], [2]]);
    expect(held.size).toBe(0);
    expect(held.take()).toEqual([]);
  });

  it('is overdue once a held key has been in conflict for longer than the patience', () => {
    const held = new HeldKeys();
    held.hold([[1]]);
    vi.advanceTimersByTime(UNIQUE_PATIENCE_MS);
    expect(held.overdue).toBe(false);
    vi.advanceTimersByTime(1);
    expect(held.overdue).toBe(true);
  });

  it('keeps the age of a conflict across take and hold again, until the key applies', () => {
    const held = new HeldKeys();
    held.hold([[1]]);
    vi.advanceTimersByTime(UNIQUE_PATIENCE_MS - 1000);
    held.hold(held.take());
    vi.advanceTimersByTime(1001);
    expect(held.overdue).toBe(true);
    // Taken and applied: the conflict is over, and a new one starts its own age.
    held.applied(held.take());
    expect(held.overdue).toBe(false);
    held.hold([[1]]);
    expect(held.overdue).toBe(false);
    vi.advanceTimersByTime(UNIQUE_PATIENCE_MS);
    expect(held.overdue).toBe(false);
  });

  it('is not overdue for a key taken and not held again', () => {
    const held = new HeldKeys();
    held.hold([[1]]);
    held.take();
    vi.advanceTimersByTime(UNIQUE_PATIENCE_MS * 2);
    expect(held.overdue).toBe(false);
  });
});
