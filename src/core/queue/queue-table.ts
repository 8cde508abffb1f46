import type { HelperLayout, HelperRow, HelperTable, HelperTables, StoredRow } from '../engine/ports/helper-table.js';
import type { EntryColumns, QueueTable, StoredEntry } from '../engine/ports/queue.js';

/** `shadowcut_queue`: one per database (MySQL) or in its `public` schema (PostgreSQL), made on first use. */
const LAYOUT: HelperLayout = {
  name: 'shadowcut_queue',
  purpose: 'the queue of schema changes that queue run works through',
  columns: [
    { name: 'id', type: 'serial' },
    { name: 'table_name', type: 'text', length: 512 },
    { name: 'state', type: 'text', length: 16 },
    { name: 'request', type: 'text', length: 16, nullable: true },
    { name: 'claimed_by', type: 'text', length: 255, nullable: true },
    { name: 'lease_until', type: 'instant', nullable: true },
    { name: 'spec', type: 'document', note: 'the entry, sealed: what was queued and every column above' },
    { name: 'status', type: 'document', note: 'attempts and progress, as JSON' },
    { name: 'created_at', type: 'instant' },
    { name: 'updated_at', type: 'instant', stamped: true },
  ],
};

/**
 * The queue's rows in the engine's helper table, the same for both engines. Rows only: what a row
 * may say and who may change it is sealed-queue.ts's to decide.
 */
export class HelperQueueTable implements QueueTable {
  private readonly table: HelperTable;

  constructor(private readonly helpers: HelperTables) {
    this.table = helpers.table(LAYOUT);
  }

  name(): Promise<string> {
    return this.table.name();
  }

  async check(): Promise<void> {
    await this.helpers.check(LAYOUT.name);
  }

  async insert(table: string, createdAt: string, columns: (id: number) => EntryColumns): Promise<number> {
    await this.table.ensure();
    // Its document names its id: the row is made first, and given the document before anyone sees it.
    const first = { table_name: table, state: 'queued', spec: 'null', status: '{}', created_at: createdAt };
    return this.table.insert(first, (id) => written(columns(id)));
  }

  async list(): Promise<StoredEntry[]> {
    return (await this.table.select({})).map(stored);
  }

  async get(id: number): Promise<StoredEntry | null> {
    const [row] = await this.table.select({ id });
    return row ? stored(row) : null;
  }

  now(): Promise<Date> {
    return this.helpers.now();
  }

  /** One conditional UPDATE: only over the document its writer read. */
  async write(id: number, expected: string, columns: EntryColumns): Promise<boolean> {
    return (await this.table.update({ id, spec: expected }, written(columns))) === 1;
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.helpers.exclusive(LAYOUT.name, fn);
  }
}

function written(c: EntryColumns): HelperRow {
  return { state: c.state, request: c.request, claimed_by: c.claimedBy, lease_until: c.leaseUntil, spec: c.sealed, status: c.status };
}

function stored(r: StoredRow): StoredEntry {
  return {
    id: Number(r.id),
    state: String(r.state),
    request: r.request,
    claimedBy: r.claimed_by,
    leaseUntil: r.lease_until,
    sealed: String(r.spec),
    status: String(r.status),
    createdAt: String(r.created_at),
    updatedAt: String(r.updated_at),
  };
}
