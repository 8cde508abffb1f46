import { UserError } from '../engine/errors.js';
import { seal, StateSealError, unseal } from '../run/state-seal.js';
import type { QueueSpec, QueueStatus } from '../engine/ports/queue.js';

/**
 * A spec as stored: sealed (core/run/state-seal.ts), since anyone who can write the queue's table (on MySQL,
 * any account with UPDATE on the database) could otherwise rewrite what the runner, as the strongest
 * account, runs at night. A spec that came back unproven is never sealed again.
 */
export function writeSpec(spec: QueueSpec): string {
  if (spec.unproven) throw new UserError(`refusing to keep a queue entry shadowcut did not write (${spec.unproven}): cancel it and add it again`);
  return seal('queue-entry', JSON.stringify(spec));
}

/**
 * A row's spec as stored. One whose seal does not prove shadowcut wrote it, or that does not parse,
 * comes back with `unproven` saying why: the runner's check fails the entry, saying so, and never
 * runs it; `queue list` still shows what it says. Not an error that stops every runner.
 */
export function readSpec(text: string, id: number): QueueSpec {
  let body: string;
  let unproven: string | undefined;
  try {
    body = unseal('queue-entry', text, `queue entry ${id}`);
  } catch (error) {
    if (!(error instanceof StateSealError)) throw error;
    unproven = error.message;
    body = bodyOf(text);
  }
  try {
    const spec = JSON.parse(body) as QueueSpec;
    if (spec && typeof spec === 'object') return unproven ? { ...spec, unproven } : spec;
  } catch {
    // refused below
  }
  return { stage: 'unreadable' as QueueSpec['stage'], table: '', args: [], addedBy: '', unproven: unproven ?? `queue entry ${id} does not parse` };
}

/** What an unproven document says, to show it: its body when it has the envelope's shape, else the text itself. */
function bodyOf(text: string): string {
  try {
    const value = JSON.parse(text) as { body?: unknown } | null;
    if (value && typeof value.body === 'string') return value.body;
  } catch {
    // shown as it is
  }
  return text;
}

export function readStatus(text: string): QueueStatus {
  try {
    const status = JSON.parse(text) as QueueStatus;
    if (status && typeof status === 'object' && Array.isArray(status.attempts)) return status;
  } catch {
    // a fresh status below
  }
  return { attempts: [] };
}
