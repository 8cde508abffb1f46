import { UserError } from '../engine/errors.js';
import { seal, StateSealError, unseal } from '../engine/state/state-seal.js';
import type { EntryColumns, QueueRequest, QueueRow, QueueSpec, QueueState, QueueStatus, StoredEntry } from '../engine/ports/queue.js';

/**
 * What a queue row's sealed document says (kept in its `spec` column, core/engine/state/state-seal.ts): every
 * column the runner acts on, and what binds it to the one row and moment it was written for. Anyone
 * who can write the queue's table (on MySQL, any account with UPDATE on the database) can change a
 * plain column, copy a document into another row or put an older one back: a changed column is
 * seen against the document, a copy by its queue and id, an older one by its generation
 * (sealed-queue.ts keeps what this host has seen).
 */
export interface EntryDocument {
  v: 2;
  /** The queue's table as its engine names it (`shop.shadowcut_queue`, `shop.public.shadowcut_queue`). */
  queue: string;
  id: number;
  /** One more than the document it replaced. */
  generation: number;
  createdAt: string;
  state: QueueState;
  request: QueueRequest | null;
  claimedBy: string | null;
  leaseUntil: string | null;
  spec: QueueSpec;
  status: QueueStatus;
}

/** A row as read: what it proves, or why it proves nothing. */
export interface OpenedEntry {
  row: QueueRow;
  /** The row's document, when its seal is proven and it names this row; the seal tells two documents of one generation apart. */
  proven: { doc: EntryDocument; seal: string } | null;
}

/** The columns a document is written as, its seal among them. A spec that came back unproven is sealed only on an entry that has ended. */
export function entryColumns(doc: EntryDocument): EntryColumns {
  if (doc.spec.unproven && doc.state !== 'failed' && doc.state !== 'cancelled') {
    throw new UserError(`refusing to keep a queue entry shadowcut did not write (${doc.spec.unproven}): cancel it and add it again`);
  }
  return {
    state: doc.state,
    request: doc.request,
    claimedBy: doc.claimedBy,
    leaseUntil: doc.leaseUntil,
    sealed: seal('queue-entry', JSON.stringify(doc)),
    status: JSON.stringify(doc.status),
  };
}

/** The seal of a document as written (its MAC), which the ledger keeps. */
export function sealOf(sealed: string): string {
  return (JSON.parse(sealed) as { seal: string }).seal;
}

/**
 * A stored row, judged by its seal: the document's values when it is proven and names this row of
 * `queue` (with the plain columns that disagree with it listed), else the plain columns, refused
 * with the reason. Never parses a body before its seal is proven.
 */
export function openEntry(queue: string, stored: StoredEntry): OpenedEntry {
  const what = `queue entry ${stored.id}`;
  let body: string;
  try {
    body = unseal('queue-entry', stored.sealed, what);
  } catch (error) {
    if (!(error instanceof StateSealError)) throw error;
    return refused(stored, error.message, bodyOf(stored.sealed));
  }
  const doc = parse(body);
  if (!doc || doc.v !== 2) {
    const why = `refusing ${what}: it was queued by an older shadowcut, which did not seal an entry's state; cancel it and add it again`;
    return refused(stored, why, body);
  }
  if (doc.queue !== queue || doc.id !== stored.id) {
    return refused(stored, `refusing ${what}: its document was sealed for entry #${doc.id} of ${doc.queue}, and copied here; nothing in it was used`, body);
  }
  const changed = changedColumns(stored, doc);
  const row: QueueRow = {
    id: doc.id,
    state: doc.state,
    request: doc.request,
    claimedBy: doc.claimedBy,
    leaseUntil: doc.leaseUntil,
    spec: doc.spec,
    status: doc.status,
    createdAt: doc.createdAt,
    updatedAt: stored.updatedAt,
    generation: doc.generation,
    ...(changed.length ? { changed } : {}),
  };
  return { row, proven: { doc, seal: sealOf(stored.sealed) } };
}

/** The row's plain columns, refused with `why`; `spec` is shown as the document's text has it, unproven unless given proven. */
export function refused(stored: StoredEntry, why: string, text: string, spec?: QueueSpec): OpenedEntry {
  const doc = parse(text);
  const shown = spec ?? { ...specOf(doc && doc.v === 2 ? JSON.stringify(doc.spec) : text), unproven: why };
  const row: QueueRow = {
    id: stored.id,
    state: stored.state as QueueState,
    request: stored.request as QueueRequest | null,
    claimedBy: stored.claimedBy,
    leaseUntil: stored.leaseUntil,
    spec: shown,
    status: readStatus(stored.status),
    createdAt: stored.createdAt,
    updatedAt: stored.updatedAt,
    generation: doc && typeof doc.generation === 'number' ? doc.generation : 0,
    refused: why,
  };
  return { row, proven: null };
}

/** Which plain columns say something else than the document. */
function changedColumns(stored: StoredEntry, doc: EntryDocument): string[] {
  const instant = (a: string | null, b: string | null) => (a === null || b === null ? a === b : Date.parse(a) === Date.parse(b));
  const differ: [string, boolean][] = [
    ['state', stored.state !== doc.state],
    ['request', stored.request !== doc.request],
    ['claimed_by', stored.claimedBy !== doc.claimedBy],
    ['lease_until', !instant(stored.leaseUntil, doc.leaseUntil)],
    ['status', !sameJson(parseJson(stored.status), doc.status)],
    ['created_at', !instant(stored.createdAt, doc.createdAt)],
  ];
  return differ.filter(([, d]) => d).map(([name]) => name);
}

function parse(text: string): EntryDocument | null {
  const value = parseJson(text);
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as EntryDocument) : null;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Equal as JSON values, whatever the order of their keys (PostgreSQL's jsonb keeps its own). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false;
  const [ka, kb] = [Object.keys(a), Object.keys(b)];
  return ka.length === kb.length && ka.every((k) => k in b && sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** What an unproven document's spec says, to show it; never run. */
function specOf(text: string): QueueSpec {
  const value = parseJson(text) as Partial<QueueSpec> | undefined;
  if (value && typeof value === 'object' && !Array.isArray(value)) return value as QueueSpec;
  return { stage: 'unreadable' as QueueSpec['stage'], table: '', args: [], addedBy: '' };
}

/** What an unproven document says, to show it: its body when it has the envelope's shape, else the text itself. */
function bodyOf(text: string): string {
  const value = parseJson(text) as { body?: unknown } | undefined;
  return value && typeof value === 'object' && typeof value.body === 'string' ? value.body : text;
}

export function readStatus(text: string): QueueStatus {
  const status = parseJson(text) as QueueStatus | undefined;
  return status && typeof status === 'object' && Array.isArray(status.attempts) ? status : { attempts: [] };
}
