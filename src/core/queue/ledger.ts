import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { StateSealError, stateKeyPath } from '../engine/state/state-seal.js';
import type { QueueState } from '../engine/ports/queue.js';

/**
 * What this host has seen of each queue entry: the newest generation of its document, that
 * document's seal and its state. A seal proves shadowcut wrote a document, not that it is the
 * entry's latest: an account that can write the queue's table can put back one the entry had
 * earlier (a completed entry's `queued` one). Whatever it puts back is older than what the runner
 * that wrote the entry since, or any shadowcut on this host that read it since, has seen; kept
 * beside the state key, where no other OS user can write, it survives the runner's restart.
 */
export interface Seen {
  generation: number;
  seal: string;
  state: QueueState;
}

export interface EntryLedger {
  /** The newest document this host has seen of the entry `key` names, or null. */
  latest(key: string): Seen | null;
  /** Keeps `seen` if it is newer than what is kept. */
  note(key: string, seen: Seen): void;
}

/** One entry of one queue: its id and creation instant tell it from the entry a dropped and remade queue gives the same id. */
export function ledgerKey(queue: string, id: number, createdAt: string): string {
  return createHash('sha256')
    .update(`${queue}\0${id}\0${Date.parse(createdAt)}`)
    .digest('hex')
    .slice(0, 40);
}

/** Why `seen` cannot be the entry's latest document, given what this host has seen; null when it may be (and then it is kept). */
export function judge(ledger: EntryLedger, key: string, seen: Seen): string | null {
  const known = ledger.latest(key);
  if (known && seen.generation < known.generation) {
    return `an older document of it was put back (generation ${seen.generation}; this host has seen generation ${known.generation}, ${known.state}); nothing in it was used`;
  }
  if (known && seen.generation === known.generation && seen.seal !== known.seal) {
    return `its document of generation ${seen.generation} is not the one this host saw at that generation (an older one was put back and written over); nothing in it was used`;
  }
  if (!known || seen.generation > known.generation) ledger.note(key, seen);
  return null;
}

/**
 * The ledger as files, one per entry, in `queue-ledger/` beside the state key: mode 600 in a 700
 * directory, the running user's own, refused otherwise (a ledger another user can write could be
 * rolled back with the table). Written whole under a temporary name and renamed into place; two
 * processes writing at once may keep the older of their two documents, which only makes the check
 * weaker for a moment, never refuses a document that is the entry's latest.
 */
export class FileLedger implements EntryLedger {
  private checked = false;

  constructor(private readonly dir = path.join(path.dirname(stateKeyPath()), 'queue-ledger')) {}

  latest(key: string): Seen | null {
    this.ready();
    const file = path.join(this.dir, key);
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new StateSealError(`cannot read the queue ledger ${file}: ${(error as Error).message}`);
    }
    try {
      this.ownOnly(file, fstatSync(fd), 'chmod 600 it');
      const seen = JSON.parse(readFileSync(fd, 'utf8')) as Seen;
      if (typeof seen.generation !== 'number' || typeof seen.seal !== 'string') throw new Error('not a ledger entry');
      return seen;
    } catch (error) {
      if (error instanceof StateSealError) throw error;
      throw new StateSealError(`the queue ledger ${file} does not parse (${(error as Error).message}): remove it`);
    } finally {
      closeSync(fd);
    }
  }

  note(key: string, seen: Seen): void {
    this.ready();
    const temporary = path.join(this.dir, `.${key}.${process.pid}.${randomBytes(4).toString('hex')}`);
    const fd = openSync(temporary, 'wx', 0o600);
    try {
      writeSync(fd, JSON.stringify(seen) + '\n');
    } finally {
      closeSync(fd);
    }
    try {
      renameSync(temporary, path.join(this.dir, key));
    } catch (error) {
      unlinkSync(temporary);
      throw error;
    }
  }

  private ready(): void {
    if (this.checked) return;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.ownOnly(this.dir, lstatSync(this.dir), 'chmod 700 it');
    this.checked = true;
  }

  private ownOnly(file: string, st: { mode: number; uid: number }, fix: string): void {
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) throw new StateSealError(`the queue ledger ${file} belongs to another OS user (uid ${st.uid})`);
    if ((st.mode & 0o077) !== 0) throw new StateSealError(`the queue ledger ${file} can be read or written by other users: ${fix}`);
  }
}
