import type { ChangeSink, Key, Position, Reference } from '../../engine/types.js';
import { keyId } from '../../engine/capture/key-id.js';

export interface PendingChanges {
  keys: Key[];
  /** Applying `keys` brings the shadow up to this position. */
  position: Position | null;
}

/**
 * Collects the keys the change stream reports, deduplicated, until the applier takes them.
 * Bounded: past `capacity` distinct keys the source is told to stop reading (back-pressure),
 * so a burst of writes costs a paused socket, not memory.
 */
export class ChangeBuffer implements ChangeSink {
  private pending = new Map<string, Key>();
  /** References wait here until the applier has the engine find their rows, which then join `pending`. */
  private referenced = new Map<string, Reference>();
  private position: Position | null = null;
  private roomWaiters: (() => void)[] = [];
  private changeWaiters: (() => void)[] = [];
  private failed: Error | null = null;

  constructor(readonly capacity = 20_000) {}

  keys(keys: Key[], position: Position): void {
    for (const key of keys) this.pending.set(keyId(key), key);
    this.position = position;
    this.wake();
  }

  references(references: Reference[], position: Position): void {
    this.requeueReferences(references);
    this.position = position;
    this.wake();
  }

  /** Every reference waiting; the caller puts their rows' keys back with `requeue`, or the references themselves on failure. */
  takeReferences(): Reference[] {
    // Asked before every batch: most streams never report one.
    if (this.referenced.size === 0) return [];
    const taken = [...this.referenced.values()];
    this.referenced.clear();
    return taken;
  }

  requeueReferences(references: Reference[]): void {
    for (const r of references) this.referenced.set(`${r.via}\0${r.rows}\0${r.through ?? ''}\0${keyId(r.values)}`, r);
  }

  /** Put back keys whose application was rolled back; applying twice is harmless. */
  requeue(keys: Key[]): void {
    for (const key of keys) this.pending.set(keyId(key), key);
  }

  advance(position: Position): void {
    this.position = position;
    this.wake();
  }

  fail(error: Error): void {
    this.failed ??= error;
    this.wake();
  }

  /** What stopped the stream, if anything. */
  get failure(): Error | null {
    return this.failed;
  }

  /** For a reopened stream: the failure is forgotten, pending keys are kept (they still need applying). */
  reset(): void {
    this.failed = null;
  }

  hasRoom(): boolean {
    return this.size < this.capacity;
  }

  onRoom(callback: () => void): void {
    this.roomWaiters.push(callback);
  }

  get size(): number {
    return this.pending.size + this.referenced.size;
  }

  /** The furthest position the stream has reported (applied or not). */
  get seen(): Position | null {
    return this.position;
  }

  /** Take up to `max` keys. The position is only returned once nothing is left behind it (references included). */
  take(max: number): PendingChanges {
    const keys: Key[] = [];
    for (const [id, key] of this.pending) {
      if (keys.length >= max) break;
      keys.push(key);
      this.pending.delete(id);
    }
    const position = this.size === 0 ? this.position : null;
    if (this.hasRoom() && this.roomWaiters.length > 0) {
      const waiters = this.roomWaiters;
      this.roomWaiters = [];
      for (const w of waiters) w();
    }
    return { keys, position };
  }

  /** Resolves when something new arrives, or after `timeoutMs`. */
  waitForChange(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      // `done` is a hoisted function the timer above names, and the waiters list drops it by identity.
      // eslint-disable-next-line @typescript-eslint/no-this-alias
      const self = this;
      function done() {
        clearTimeout(timer);
        self.changeWaiters = self.changeWaiters.filter((w) => w !== done);
        resolve();
      }
      this.changeWaiters.push(done);
    });
  }

  private wake(): void {
    const waiters = this.changeWaiters;
    this.changeWaiters = [];
    for (const w of waiters) w();
  }
}
