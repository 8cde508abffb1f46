import type { QueueSpec, QueueStatus } from './types.js';

/**
 * A row's documents as stored. Anyone who can write the queue's table can write them, so a document
 * that does not parse becomes a spec the runner's check refuses (the entry fails, saying why), not an
 * error that stops every runner.
 */
export function readSpec(text: string): QueueSpec {
  try {
    const spec = JSON.parse(text) as QueueSpec;
    if (spec && typeof spec === 'object') return spec;
  } catch {
    // refused below
  }
  return { stage: 'unreadable' as QueueSpec['stage'], table: '', args: [], addedBy: '' };
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
