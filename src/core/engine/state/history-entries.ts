import { seal, StateSealError, unseal } from './state-seal.js';
import type { HistoryEntry } from '../ports/history.js';

/**
 * An entry as stored: sealed (core/engine/state/state-seal.ts). restore, contract's soak and the queue decide from the
 * history, and the history table can be written by other accounts (on MySQL, any account with INSERT
 * on the database), so an entry shadowcut cannot prove it wrote is never read as one.
 */
export function writeEntry(entry: HistoryEntry): string {
  return seal('history-entry', JSON.stringify(entry));
}

/**
 * The entries of `table` that shadowcut provably wrote, in the order given. Entries without a seal
 * that matches (written by hand, by another account, or by a version before the seal) are left out,
 * and so is a proven entry of another table copied into this one's rows.
 */
export function readEntries(table: string, stored: string[]): HistoryEntry[] {
  const entries: HistoryEntry[] = [];
  for (const text of stored) {
    let body: string;
    try {
      body = unseal('history-entry', text, `a history entry of ${table}`);
    } catch (error) {
      if (error instanceof StateSealError) continue;
      throw error;
    }
    const entry = JSON.parse(body) as HistoryEntry;
    if (entry.table === table) entries.push(entry);
  }
  return entries;
}
