import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, fstatSync, linkSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../errors.js';
import { directoryFault, faultOf, resolvedDir } from '../trusted-files.js';

/**
 * What shadowcut writes into a table and reads back later (a checkpoint, a queue entry, a history
 * entry) sits where other accounts may write: MySQL grants are per database, so an application
 * account with UPDATE on `app.*` can rewrite `app.t__state`. Whatever is read back would then steer a
 * run made by the strongest account there is (docs/invariants.md, invariant 19). So each document is sealed with
 * an HMAC under a key that lives on the host that runs shadowcut, in a file only its OS user can read,
 * never in the database: a document whose seal does not match was not written by shadowcut, and is
 * refused before anything in it is used.
 */

/** What a sealed document is, so a sealed queue entry cannot pass for a checkpoint. */
export type SealedKind = 'checkpoint' | 'queue-entry' | 'history-entry';

const VERSION = 'v1';
const KEY_BYTES = 32;

/** `$SHADOWCUT_STATE_KEY_FILE`, else `~/.shadowcut/state.key`. */
export function stateKeyPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.SHADOWCUT_STATE_KEY_FILE || path.join(os.homedir(), '.shadowcut', 'state.key');
}

/** A document that is not shadowcut's, or a key that cannot vouch for anything. One line, exit 2. */
export class StateSealError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'StateSealError';
  }
}

const keys = new Map<string, Buffer>();

/**
 * The key's directory, checked: whoever can write it can rename the key away and put a file of
 * theirs in its place (or a link to a file of ours), so it must be the running user's and writable by
 * no one else, and so must every directory above it be (theirs or root's: trusted-files.ts). Missing
 * is fine: the key's first use makes it (mode 0700), under the directories checked here.
 */
export function stateDirectory(): string {
  const dir = path.dirname(path.resolve(stateKeyPath()));
  let real: string | null;
  try {
    real = resolvedDir(dir);
  } catch (error) {
    throw new StateSealError(`cannot read the state key's directory ${dir}: ${(error as Error).message}`);
  }
  if (real === null) {
    aboveStateDirectory(dir, path.dirname(dir));
    return dir;
  }
  const st = statSync(real);
  if (!st.isDirectory()) throw new StateSealError(`the state key's directory ${dir} is not a directory`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new StateSealError(`the state key's directory ${dir} belongs to another OS user (uid ${st.uid})`);
  if ((st.mode & 0o022) !== 0) {
    throw new StateSealError(`the state key's directory ${dir} can be written by other users (mode ${(st.mode & 0o777).toString(8)}): chmod 700 it`);
  }
  aboveStateDirectory(dir, path.dirname(real));
  return dir;
}

/** The directories above the key's (from `above`, the nearest that exists, up), which could otherwise swap the whole directory. */
function aboveStateDirectory(dir: string, above: string): void {
  let real: string | null = null;
  for (let at = above; real === null; at = path.dirname(at)) real = resolvedDir(at);
  const fault = directoryFault(real, true);
  if (fault) throw new StateSealError(`the state key's directory ${dir} ${faultOf(fault, dir)}: keep the key in a directory of your own`);
}

/**
 * The key, made on first use (32 random bytes, mode 0600, in a 0700 directory). Made under a
 * temporary name and linked into place, so two processes making it at once agree on one key and
 * neither reads a half-written file. A key file others can read or write vouches for nothing: refused.
 */
function stateKey(create: boolean): Buffer {
  const file = stateKeyPath();
  const known = keys.get(file);
  if (known) return known;
  stateDirectory();
  let key = readKey(file);
  if (key === null) {
    if (!create) {
      throw new StateSealError(
        `the state key ${file} is missing, so nothing read back from the database can be proven shadowcut's: ` +
          `run shadowcut as the OS user (and on the host) that started the run, or point SHADOWCUT_STATE_KEY_FILE at that key`,
      );
    }
    key = makeKey(file);
  }
  keys.set(file, key);
  return key;
}

/**
 * Refuses, in one line, a state key or key directory that could not vouch for anything, without
 * making either: called before a run makes anything, so the refusal leaves nothing behind (the key is
 * made at the first seal, as before).
 */
export function checkStateKey(): void {
  const file = stateKeyPath();
  if (keys.has(file)) return;
  stateDirectory();
  readKey(file);
}

function readKey(file: string): Buffer | null {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new StateSealError(`cannot read the state key ${file}: ${(error as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if ((st.mode & 0o077) !== 0) throw new StateSealError(`the state key ${file} can be read or written by other users: chmod 600 it`);
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) throw new StateSealError(`the state key ${file} belongs to another OS user (uid ${st.uid})`);
    const key = Buffer.from(readFileSync(fd, 'utf8').trim(), 'hex');
    if (key.length < KEY_BYTES) throw new StateSealError(`the state key ${file} is not ${KEY_BYTES} bytes of hex`);
    return key;
  } finally {
    closeSync(fd);
  }
}

function makeKey(file: string): Buffer {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    writeSync(fd, randomBytes(KEY_BYTES).toString('hex') + '\n');
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temporary, file);
  } catch (error) {
    // Another process made it first: use theirs.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(temporary);
  }
  return readKey(file)!;
}

function mac(key: Buffer, kind: SealedKind, body: string): string {
  return createHmac('sha256', key).update(`shadowcut ${VERSION}\0${kind}\0`).update(body).digest('hex');
}

interface Envelope {
  seal: string;
  body: string;
}

/** `body` (any text) sealed as a JSON document: the body stays readable to a DBA who looks. */
export function seal(kind: SealedKind, body: string): string {
  const envelope: Envelope = { seal: `${VERSION}:${mac(stateKey(true), kind, body)}`, body };
  return JSON.stringify(envelope);
}

/**
 * The body of a sealed document, or a StateSealError naming `what` when the seal is missing or does
 * not match. Never parses the body before the seal is proven.
 */
export function unseal(kind: SealedKind, stored: string, what: string): string {
  const envelope = parseEnvelope(stored);
  if (!envelope) throw tampered(what, 'it carries no seal (written by hand, by another account, or by an older shadowcut)');
  const expected = Buffer.from(`${VERSION}:${mac(stateKey(false), kind, envelope.body)}`);
  const given = Buffer.from(envelope.seal);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw tampered(what, 'its seal does not match: it was changed after shadowcut wrote it, or sealed under another state key');
  }
  return envelope.body;
}

function parseEnvelope(stored: string): Envelope | null {
  try {
    const value = JSON.parse(stored) as Partial<Envelope> | null;
    if (value && typeof value === 'object' && typeof value.seal === 'string' && typeof value.body === 'string') return value as Envelope;
  } catch {
    // Not JSON at all: no seal either, said by the caller.
  }
  return null;
}

function tampered(what: string, why: string): StateSealError {
  return new StateSealError(`refusing ${what}: ${why}; nothing in it was used`);
}
