import { entryColumns, openEntry, refused, sealOf, type EntryDocument } from './entry-document.js';
import { FileLedger, judge, ledgerKey, type EntryLedger } from './ledger.js';
import type { QueueRequest, QueueRow, QueueSpec, QueueState, QueueStatus, QueueTable, StoredEntry } from '../engine/ports/queue.js';

/** A write that found the row changed under it reads it again and decides again, this many times. */
const TRIES = 5;

/**
 * The queue as shadowcut reads and writes it, for both engines (their tables only store rows). A
 * row counts only as far as its sealed document proves it (entry-document.ts): a plain column that
 * disagrees is not obeyed, a document copied from another row or put back from the row's past is
 * refused, and nothing of a refused row is run, resumed, relayed or waited on. Every change is one
 * conditional write over the document its writer read, with the next generation: the conditions a
 * store's UPDATE once checked in its WHERE (queued, a lapsed lease, the claim's holder) are checked
 * here, on the proven values, and the write fails if the row changed meanwhile.
 */
export class SealedQueue {
  private named: Promise<string> | null = null;
  /** The last document this process wrote of each entry: a runner holding an entry knows it better than any older one put back. */
  private readonly written = new Map<number, EntryDocument>();

  constructor(
    private readonly table: QueueTable,
    private readonly ledger: EntryLedger = new FileLedger(),
    /** Said once a runner writes its own entry back over an older document someone put back. */
    private readonly warn: (line: string) => void = () => {},
  ) {}

  check(): Promise<void> {
    return this.table.check();
  }

  now(): Promise<Date> {
    return this.table.now();
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.table.exclusive(fn);
  }

  async list(): Promise<QueueRow[]> {
    const name = await this.name();
    return (await this.table.list()).map((stored) => this.open(name, stored));
  }

  async get(id: number): Promise<QueueRow | null> {
    const stored = await this.table.get(id);
    return stored ? this.open(await this.name(), stored) : null;
  }

  async add(spec: QueueSpec): Promise<number> {
    const [queue, now] = [await this.name(), await this.table.now()];
    const createdAt = now.toISOString();
    let sealed = '';
    const id = await this.table.insert(spec.table, createdAt, (id) => {
      const columns = entryColumns({
        v: 2,
        queue,
        id,
        generation: 1,
        createdAt,
        state: 'queued',
        request: null,
        claimedBy: null,
        leaseUntil: null,
        spec,
        status: { attempts: [] },
      });
      sealed = columns.sealed;
      return columns;
    });
    this.ledger.note(ledgerKey(queue, id, createdAt), { generation: 1, seal: sealOf(sealed), state: 'queued' });
    return id;
  }

  /** Takes entry `id` for `runner` if it is queued, or running under a lease that has lapsed (its runner died). */
  claim(id: number, runner: string, leaseSeconds: number): Promise<boolean> {
    return this.update(id, (row, now) => {
      const lapsed = row.state === 'running' && row.leaseUntil !== null && Date.parse(row.leaseUntil) < now.getTime();
      if (row.refused || !(row.state === 'queued' || lapsed)) return null;
      return { state: 'running', claimedBy: runner, leaseUntil: leaseFrom(now, leaseSeconds) };
    });
  }

  /** Extends the lease; false when `runner` no longer holds the entry. */
  renew(id: number, runner: string, leaseSeconds: number, status: QueueStatus): Promise<boolean> {
    return this.update(id, (row, now) => {
      const held = this.held(row, runner);
      return held && { ...held, leaseUntil: leaseFrom(now, leaseSeconds), status };
    });
  }

  /** The runner holding `id` ends its run with `state` (an operator's request is kept when it goes back to `queued`); false when it no longer held it. */
  finish(id: number, runner: string, state: QueueState, status: QueueStatus): Promise<boolean> {
    return this.update(id, (row) => {
      const held = this.held(row, runner);
      return held && { ...held, state, request: state === 'queued' ? (held.request ?? null) : null, leaseUntil: null, status };
    });
  }

  /** Moves `id` to `to` when it is in one of `from`; `status` and `spec` replace the entry's when given. */
  transition(id: number, from: QueueState[], to: QueueState, status?: QueueStatus, spec?: QueueSpec): Promise<boolean> {
    return this.update(id, (row) =>
      row.refused || !from.includes(row.state) ? null : { state: to, request: null, ...(status ? { status } : {}), ...(spec ? { spec } : {}) },
    );
  }

  /** Sets (or clears, with null) the operator's request; only on a running or queued entry. */
  request(id: number, request: QueueRequest | null): Promise<boolean> {
    return this.update(id, (row) => (row.refused || !(row.state === 'queued' || row.state === 'running') ? null : { request }));
  }

  /** A queued entry's reason for waiting; nothing when it is no longer queued. */
  async wait(id: number, reason: string): Promise<void> {
    await this.update(id, (row) => (row.refused || row.state !== 'queued' ? null : { status: { ...row.status, waiting: reason } }));
  }

  /**
   * Ends an entry that was refused (`to`: a runner fails one that says it is queued, an operator
   * cancels any), sealing it with `why`: its spec stays unproven, and is never run. An entry whose
   * completion this host has seen stays complete: only an older document of it can say otherwise.
   * Returns the state written, or null when the row was no longer refused.
   */
  async refuse(id: number, to: 'failed' | 'cancelled', why: string, onlyQueued: boolean): Promise<QueueState | null> {
    let wrote: QueueState | null = null;
    await this.update(id, (row, _now, seen) => {
      if (!row.refused || (onlyQueued && row.state !== 'queued')) return null;
      wrote = seen?.state === 'complete' && !row.spec.unproven ? 'complete' : to;
      const status = { ...row.status, waiting: undefined, lastError: why };
      return { state: wrote, request: null, claimedBy: null, leaseUntil: null, status };
    });
    return wrote;
  }

  private name(): Promise<string> {
    this.named ??= this.table.name();
    return this.named;
  }

  /** A row, proven by its seal and by what this host has seen of the entry, or refused saying why. */
  private open(queue: string, stored: StoredEntry): QueueRow {
    const opened = openEntry(queue, stored);
    if (!opened.proven) return opened.row;
    const { doc, seal } = opened.proven;
    const stale = judge(this.ledger, ledgerKey(queue, doc.id, doc.createdAt), { generation: doc.generation, seal, state: doc.state });
    if (!stale) return opened.row;
    // The document is shadowcut's and this row's: its spec and creation are, but not its state.
    return { ...refused(stored, `refusing queue entry ${doc.id}: ${stale}`, JSON.stringify(doc), doc.spec).row, createdAt: doc.createdAt };
  }

  /**
   * What `runner` holding the entry writes on: the row, when it is proven and still the runner's
   * claim; or the runner's own last document, when what is there is refused or older than that
   * (someone put an older document back, or another runner claimed one): the runner knows better,
   * and writes its claim back. Null when the entry is no longer the runner's.
   */
  private held(row: QueueRow, runner: string): Partial<EntryDocument> | null {
    if (!row.refused && row.state === 'running' && row.claimedBy === runner) return { request: row.request };
    const mine = this.written.get(row.id);
    if (!mine || mine.claimedBy !== runner || mine.state !== 'running') return null;
    if (!row.refused && row.generation > mine.generation) return null;
    this.warn(`#${row.id}: ${row.refused ?? `an older document of it (generation ${row.generation}) was put back`}; writing this runner's claim back`);
    const { spec, status, createdAt } = mine;
    return { state: 'running', request: null, claimedBy: runner, spec, status, createdAt };
  }

  /**
   * One change of entry `id`: `decide` sees the row (and the server's time, and this host's latest
   * of it) and returns what changes, or null to leave it; written over the very document it saw,
   * or decided again on the row as it is now.
   */
  private async update(id: number, decide: (row: QueueRow, now: Date, seen: { state: QueueState } | null) => Partial<EntryDocument> | null): Promise<boolean> {
    const queue = await this.name();
    for (let tries = 0; tries < TRIES; tries++) {
      const stored = await this.table.get(id);
      if (!stored) return false;
      const row = this.open(queue, stored);
      const key = ledgerKey(queue, id, row.createdAt);
      const seen = this.ledger.latest(key);
      const change = decide(row, await this.table.now(), seen);
      if (!change) return false;
      const base: EntryDocument = { v: 2, queue, id, ...pick(row), generation: 0 };
      const generation = Math.max(row.generation, seen?.generation ?? 0, this.written.get(id)?.generation ?? 0) + 1;
      const doc: EntryDocument = { ...base, ...change, v: 2, queue, id, generation };
      const columns = entryColumns(doc);
      if (await this.table.write(id, stored.sealed, columns)) {
        this.written.set(id, doc);
        this.ledger.note(ledgerKey(queue, id, doc.createdAt), { generation, seal: sealOf(columns.sealed), state: doc.state });
        return true;
      }
    }
    return false;
  }
}

/** What a document carries over from the row it replaces. */
function pick(row: QueueRow): Omit<EntryDocument, 'v' | 'queue' | 'id' | 'generation'> {
  const { createdAt, state, request, claimedBy, leaseUntil, spec, status } = row;
  return { createdAt, state, request, claimedBy, leaseUntil, spec, status };
}

/** A lease `seconds` from the server's `now`, as ISO. */
function leaseFrom(now: Date, seconds: number): string {
  return new Date(now.getTime() + seconds * 1000).toISOString();
}
