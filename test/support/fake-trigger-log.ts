import { LockTimeoutError, UserError } from '../../src/core/engine/errors.js';
import type { Horizon, LogEntry, TriggerLog } from '../../src/core/engine/capture/trigger-source.js';
import type { Key, Session } from '../../src/core/engine/contract-values.js';

/** A writer of the original table whose changes the triggers log in its own transaction. */
export interface FakeWriter {
  readonly id: number;
  /** Logs a row change: the entry takes the next sequence now, and is seen once the writer commits. */
  write(...keys: Key[]): string;
  commit(): void;
  rollback(): void;
}

interface Stored extends LogEntry {
  writer: number;
}

/**
 * A run's trigger log (core/engine/capture/trigger-source.ts `TriggerLog`) in memory, as the engines' logs
 * behave (engines/{mysql,postgres}/capture/trigger): a sequence is taken when a row is written and
 * becomes visible when its transaction commits, so a lower one can appear after a higher one was
 * read; `horizon` is the highest sequence taken and the writers still open (its mark), `settled` once
 * they have all ended. Every read, removal and count is kept, for the test to assert the protocol by.
 */
export class FakeTriggerLog implements TriggerLog {
  readonly name = 'shop.t__log (fake)';
  private seq = 0;
  private nextWriter = 1;
  private readonly entries = new Map<string, Stored>();
  private readonly open = new Set<number>();
  private readonly committed = new Set<number>();
  installed = false;
  /** Install attempts that fail with a lock timeout before one succeeds. */
  lockTimeouts = 0;
  readonly installs: number[] = [];
  verifies = 0;
  uninstalls = 0;
  closes = 0;
  readonly reads: { limit: number; after: string | null; session: Session | undefined; got: string[] }[] = [];
  readonly removed: string[][] = [];
  readonly horizons: Horizon[] = [];
  /** The next removal fails (a lost connection). */
  failRemove = false;
  /** Reads without a session wait for this gate while it is set. */
  private gate: Promise<void> | null = null;

  writer(): FakeWriter {
    const id = this.nextWriter++;
    this.open.add(id);
    return {
      id,
      write: (...keys) => {
        if (!this.open.has(id)) throw new Error(`writer ${id} has ended`);
        const seq = String(++this.seq);
        this.entries.set(seq, { seq, keys, writer: id });
        return seq;
      },
      commit: () => {
        this.open.delete(id);
        this.committed.add(id);
      },
      rollback: () => {
        this.open.delete(id);
        for (const [seq, e] of this.entries) if (e.writer === id) this.entries.delete(seq);
      },
    };
  }

  /** One committed writer that logged these keys, one entry each; returns their sequences. */
  commit(...keys: Key[]): string[] {
    const w = this.writer();
    const seqs = keys.map((k) => w.write(k));
    w.commit();
    return seqs;
  }

  /** The TRUNCATE trigger's entry, committed. */
  truncate(): void {
    const seq = String(++this.seq);
    this.entries.set(seq, { seq, keys: [], truncated: true, writer: 0 });
  }

  /** Holds the next background reads until the returned function is called. */
  holdReads(): () => void {
    let release!: () => void;
    this.gate = new Promise((resolve) => (release = resolve));
    return () => {
      this.gate = null;
      release();
    };
  }

  /** Entries still in the log, seen or not, in sequence order. */
  get left(): string[] {
    return this.sorted(false).map((e) => e.seq);
  }

  /** In sequence order: sequences are taken in the order entries are made, and a Map keeps that order. */
  private sorted(visibleOnly: boolean, after: string | null = null, limit = Infinity): Stored[] {
    const from = after === null ? 0 : Number(after);
    const found: Stored[] = [];
    for (const e of this.entries.values()) {
      if (found.length >= limit) break;
      if (Number(e.seq) > from && (!visibleOnly || e.writer === 0 || this.committed.has(e.writer))) found.push(e);
    }
    return found;
  }

  async install(lockTimeoutMs: number): Promise<void> {
    this.installs.push(lockTimeoutMs);
    if (this.lockTimeouts > 0) {
      this.lockTimeouts--;
      throw new LockTimeoutError(`Lock wait timeout exceeded (${lockTimeoutMs} ms)`);
    }
    this.installed = true;
  }

  async verifyInstalled(): Promise<void> {
    this.verifies++;
    if (!this.installed) throw new UserError(`the capture triggers of ${this.name} are gone: run shadowcut cleanup and start again`);
  }

  async read(limit: number, afterSeq: string | null, session?: Session): Promise<LogEntry[]> {
    if (!session && this.gate) await this.gate;
    const got = this.sorted(true, afterSeq, limit).map(({ seq, keys, truncated }) => ({ seq, keys, ...(truncated ? { truncated } : {}) }));
    this.reads.push({ limit, after: afterSeq, session, got: got.map((e) => e.seq) });
    return got;
  }

  async remove(seqs: string[]): Promise<void> {
    if (this.failRemove) {
      this.failRemove = false;
      throw new Error('Connection lost: remove (fake)');
    }
    this.removed.push([...seqs]);
    for (const seq of seqs) this.entries.delete(seq);
  }

  async pending(afterSeq?: string | null): Promise<number> {
    return this.sorted(true, afterSeq ?? null).length;
  }

  async horizon(): Promise<Horizon | null> {
    const h = { seq: String(this.seq), mark: JSON.stringify([...this.open]) };
    this.horizons.push(h);
    return h;
  }

  async settled(h: Horizon): Promise<boolean> {
    return (JSON.parse(h.mark) as number[]).every((id) => !this.open.has(id));
  }

  async close(): Promise<void> {
    this.closes++;
  }

  async uninstall(): Promise<void> {
    this.uninstalls++;
    this.installed = false;
  }
}
