import type { EntryColumns, QueueRow, QueueSpec, QueueTable, StoredEntry } from '../../src/core/engine/ports/queue.js';
import { entryColumns, openEntry, type EntryDocument } from '../../src/core/queue/entry-document.js';
import type { EntryLedger, Seen } from '../../src/core/queue/ledger.js';

const NAME = 'fake.shadowcut_queue';

/**
 * The queue's table in memory, keeping the contract of the engines' tables
 * (src/core/queue/queue-table.ts over each engine's helper tables): rows stored as text, a write that lands only
 * over the document its writer read, a server's clock. What a row may say is decided by the real
 * core/queue/sealed-queue.ts above it. Leases are timed by the table's clock (`clock`, the
 * "server's"), which under vitest's fake timers is the faked `Date.now()` unless a test moves it
 * apart (`skewMs`).
 */
export class FakeQueueTable implements QueueTable {
  private readonly rows = new Map<number, StoredEntry>();
  private nextId = 1;
  /** The server's clock runs this far ahead of the host's (negative: behind). */
  skewMs = 0;
  /** The queue's lock: one holder at a time, as GET_LOCK and pg_advisory_lock. */
  private lock: Promise<void> = Promise.resolve();
  private holding = false;
  /** Every write that claimed an entry (took it into `running` for a runner that did not hold it), in order, with its outcome. */
  readonly claims: { id: number; runner: string | null; done: boolean }[] = [];
  /** Claims written while nobody held the queue's lock: the runner decides and claims under it. */
  claimsOutsideLock = 0;
  /** The next calls of these methods fail as a lost connection would, once each. */
  private readonly failing = new Map<keyof QueueTable, number>();

  constructor(private readonly clock: () => Date = () => new Date()) {}

  /** The next `times` calls of `method` throw (a failover, a restart). */
  failNext(method: keyof QueueTable, times = 1): void {
    this.failing.set(method, (this.failing.get(method) ?? 0) + times);
  }

  private maybeFail(method: keyof QueueTable): void {
    const left = this.failing.get(method) ?? 0;
    if (left <= 0) return;
    this.failing.set(method, left - 1);
    throw new Error(`Connection lost: ${method} (fake)`);
  }

  private at(): Date {
    return new Date(this.clock().getTime() + this.skewMs);
  }

  private store(id: number, columns: EntryColumns, createdAt: string): void {
    this.rows.set(id, { id, ...columns, createdAt, updatedAt: this.at().toISOString() });
  }

  /**
   * Writes a row as shadowcut would have sealed it, the next generation over what is there (another
   * runner's claim, a dead runner's entry, an entry written with the key); returns its id.
   */
  put(row: Partial<QueueRow> & { spec: QueueSpec }): number {
    const id = row.id ?? this.nextId;
    this.nextId = Math.max(this.nextId, id + 1);
    const before = this.rows.get(id);
    const was = before ? openEntry(NAME, before).row : null;
    const createdAt = was?.createdAt ?? this.at().toISOString();
    const doc: EntryDocument = {
      v: 2,
      queue: NAME,
      id,
      generation: (was?.generation ?? 0) + 1,
      createdAt,
      state: row.state ?? 'queued',
      request: row.request ?? null,
      claimedBy: row.claimedBy ?? null,
      leaseUntil: row.leaseUntil ?? null,
      spec: row.spec,
      status: row.status ?? { attempts: [] },
    };
    this.store(id, entryColumns(doc), createdAt);
    return id;
  }

  /** Changes a row's columns as another account would, seal or none. */
  tamper(id: number, change: Partial<StoredEntry>): void {
    this.rows.set(id, { ...this.rows.get(id)!, ...change });
  }

  /** Deletes a row, as another account may. */
  remove(id: number): void {
    this.rows.delete(id);
  }

  /** The row as stored, to copy or put back later as an attacker would. */
  raw(id: number): StoredEntry {
    return { ...this.rows.get(id)! };
  }

  /** A lease `seconds` from the server's now, as the stores write it. */
  leaseIn(seconds: number): string {
    return new Date(this.at().getTime() + seconds * 1000).toISOString();
  }

  async name(): Promise<string> {
    return NAME;
  }

  async check(): Promise<void> {
    this.maybeFail('check');
  }

  async insert(_table: string, createdAt: string, columns: (id: number) => EntryColumns): Promise<number> {
    this.maybeFail('insert');
    const id = this.nextId++;
    this.store(id, columns(id), createdAt);
    return id;
  }

  async list(): Promise<StoredEntry[]> {
    this.maybeFail('list');
    return [...this.rows.keys()].sort((a, b) => a - b).map((id) => ({ ...this.rows.get(id)! }));
  }

  async get(id: number): Promise<StoredEntry | null> {
    this.maybeFail('get');
    const row = this.rows.get(id);
    return row ? { ...row } : null;
  }

  async now(): Promise<Date> {
    this.maybeFail('now');
    return this.at();
  }

  async write(id: number, expected: string, columns: EntryColumns): Promise<boolean> {
    this.maybeFail('write');
    const row = this.rows.get(id);
    const done = row !== undefined && row.sealed === expected;
    if (columns.state === 'running' && (row?.state !== 'running' || row.claimedBy !== columns.claimedBy)) {
      this.claims.push({ id, runner: columns.claimedBy, done });
      if (!this.holding) this.claimsOutsideLock++;
    }
    if (done) this.store(id, columns, row.createdAt);
    return done;
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.maybeFail('exclusive');
    const before = this.lock;
    let release!: () => void;
    this.lock = new Promise((resolve) => (release = resolve));
    await before;
    this.holding = true;
    try {
      return await fn();
    } finally {
      this.holding = false;
      release();
    }
  }
}

/** What one host has seen of the entries, in memory: each test its own host. */
export class MemoryLedger implements EntryLedger {
  private readonly seen = new Map<string, Seen>();

  latest(key: string): Seen | null {
    return this.seen.get(key) ?? null;
  }

  note(key: string, seen: Seen): void {
    this.seen.set(key, seen);
  }
}
