import type { QueueRequest, QueueRow, QueueSpec, QueueState, QueueStatus, QueueStore } from '../../src/core/engine/ports/queue.js';

/**
 * The queue's table in memory, keeping the contract of the engines' stores
 * (src/engines/{mysql,postgres}/commands/queue.ts) statement for statement: every change is one
 * conditional update that reports whether it matched; a claim takes a queued entry or a running one
 * whose lease has lapsed (`lease_until < now`, so a running entry without a lease is never taken);
 * renew and finish only for the runner holding the entry; finish keeps an operator's request only
 * when the entry goes back to `queued`; a transition clears the request; a request is only set on a
 * queued or running entry; `wait` only writes a queued entry's reason. Leases are timed by the
 * store's clock (`clock`, the "server's"), which under vitest's fake timers is the faked `Date.now()`
 * unless a test moves it apart (`skewMs`).
 *
 * Rows are kept as JSON text and read back as copies, as from a table: a caller that changes what it
 * read changes nothing stored. What the real stores prove with a seal (a spec written by hand) is
 * modelled by `put`, which writes a row as it stands, `unproven` included.
 */
export class FakeQueueStore implements QueueStore {
  private readonly rows = new Map<number, string>();
  private nextId = 1;
  /** The server's clock runs this far ahead of the host's (negative: behind). */
  skewMs = 0;
  /** The queue's lock: one holder at a time, as GET_LOCK and pg_advisory_lock. */
  private lock: Promise<void> = Promise.resolve();
  private holding = false;
  /** Every call that changed (or tried to change) a row, in order, with its outcome: what a test asserts the decisions by. */
  readonly changes: { op: 'claim' | 'renew' | 'finish' | 'transition' | 'request' | 'wait'; id: number; done: boolean; runner?: string; to?: QueueState }[] =
    [];
  /** Claims made while nobody held the queue's lock: the runner decides and claims under it. */
  claimsOutsideLock = 0;
  /** The next calls of these methods fail as a lost connection would, once each. */
  private readonly failing = new Map<keyof QueueStore, number>();

  constructor(private readonly clock: () => Date = () => new Date()) {}

  /** The next `times` calls of `method` throw (a failover, a restart). */
  failNext(method: keyof QueueStore, times = 1): void {
    this.failing.set(method, (this.failing.get(method) ?? 0) + times);
  }

  private maybeFail(method: keyof QueueStore): void {
    const left = this.failing.get(method) ?? 0;
    if (left <= 0) return;
    this.failing.set(method, left - 1);
    throw new Error(`Connection lost: ${method} (fake)`);
  }

  private at(): Date {
    return new Date(this.clock().getTime() + this.skewMs);
  }

  private read(id: number): QueueRow | null {
    const text = this.rows.get(id);
    return text === undefined ? null : (JSON.parse(text) as QueueRow);
  }

  private write(row: QueueRow): void {
    this.rows.set(row.id, JSON.stringify({ ...row, updatedAt: this.at().toISOString() }));
  }

  /** One conditional update: `change` runs only when `where` holds for the stored row. */
  private change(
    op: FakeQueueStore['changes'][number]['op'],
    id: number,
    where: (r: QueueRow) => boolean,
    change: (r: QueueRow) => void,
    runner?: string,
  ): boolean {
    const row = this.read(id);
    const done = row !== null && where(row);
    if (done) {
      change(row);
      this.write(row);
    }
    this.changes.push({ op, id, done, ...(runner !== undefined ? { runner } : {}), ...(done && row ? { to: row.state } : {}) });
    return done;
  }

  /** Writes a row as it stands (another runner's claim, a dead runner's entry, a row written by hand); returns its id. */
  put(row: Partial<QueueRow> & { spec: QueueSpec }): number {
    const id = row.id ?? this.nextId;
    this.nextId = Math.max(this.nextId, id + 1);
    const now = this.at().toISOString();
    this.rows.set(
      id,
      JSON.stringify({
        id,
        state: 'queued',
        request: null,
        claimedBy: null,
        leaseUntil: null,
        status: { attempts: [] },
        createdAt: now,
        updatedAt: now,
        ...row,
      } satisfies QueueRow),
    );
    return id;
  }

  /** A lease `seconds` from the server's now, as the stores write it. */
  leaseIn(seconds: number): string {
    return new Date(this.at().getTime() + seconds * 1000).toISOString();
  }

  async check(): Promise<void> {
    this.maybeFail('check');
  }

  async add(spec: QueueSpec): Promise<number> {
    this.maybeFail('add');
    // writeSpec's refusal: a spec that came back unproven is never sealed again.
    if (spec.unproven) throw new Error(`refusing to keep a queue entry shadowcut did not write (${spec.unproven})`);
    return this.put({ spec });
  }

  async list(): Promise<QueueRow[]> {
    this.maybeFail('list');
    return [...this.rows.keys()].sort((a, b) => a - b).map((id) => this.read(id)!);
  }

  async get(id: number): Promise<QueueRow | null> {
    this.maybeFail('get');
    return this.read(id);
  }

  async now(): Promise<Date> {
    this.maybeFail('now');
    return this.at();
  }

  async claim(id: number, runner: string, leaseSeconds: number): Promise<boolean> {
    this.maybeFail('claim');
    if (!this.holding) this.claimsOutsideLock++;
    const now = this.at();
    return this.change(
      'claim',
      id,
      (r) => r.state === 'queued' || (r.state === 'running' && r.leaseUntil !== null && new Date(r.leaseUntil) < now),
      (r) => Object.assign(r, { state: 'running', claimedBy: runner, leaseUntil: this.leaseIn(leaseSeconds) }),
      runner,
    );
  }

  async renew(id: number, runner: string, leaseSeconds: number, status: QueueStatus): Promise<boolean> {
    this.maybeFail('renew');
    return this.change(
      'renew',
      id,
      (r) => r.state === 'running' && r.claimedBy === runner,
      (r) => Object.assign(r, { leaseUntil: this.leaseIn(leaseSeconds), status: copy(status) }),
      runner,
    );
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

  async finish(id: number, runner: string, state: QueueState, status: QueueStatus): Promise<boolean> {
    this.maybeFail('finish');
    return this.change(
      'finish',
      id,
      (r) => r.state === 'running' && r.claimedBy === runner,
      (r) => Object.assign(r, { state, request: state === 'queued' ? r.request : null, leaseUntil: null, status: copy(status) }),
      runner,
    );
  }

  async transition(id: number, from: QueueState[], to: QueueState, status?: QueueStatus, spec?: QueueSpec): Promise<boolean> {
    this.maybeFail('transition');
    if (spec?.unproven) throw new Error(`refusing to keep a queue entry shadowcut did not write (${spec.unproven})`);
    return this.change(
      'transition',
      id,
      (r) => from.includes(r.state),
      (r) => Object.assign(r, { state: to, request: null, ...(status ? { status: copy(status) } : {}), ...(spec ? { spec: copy(spec) } : {}) }),
    );
  }

  async request(id: number, request: QueueRequest | null): Promise<boolean> {
    this.maybeFail('request');
    return this.change(
      'request',
      id,
      (r) => r.state === 'queued' || r.state === 'running',
      (r) => (r.request = request),
    );
  }

  async wait(id: number, reason: string): Promise<void> {
    this.maybeFail('wait');
    this.change(
      'wait',
      id,
      (r) => r.state === 'queued',
      (r) => (r.status.waiting = reason),
    );
  }
}

/** What the stores do to a document: written as JSON, read back as a new object. */
function copy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
