import { randomBytes, timingSafeEqual } from 'node:crypto';
import { open, unlink } from 'node:fs/promises';
import { UserError } from '../core/engine/errors.js';
import { readTrustedFile } from '../core/engine/trusted-files.js';

/**
 * The secret of a run's control port. Any local user, and any web page through the browser, can
 * connect to 127.0.0.1; only the run's own OS user can read this file. So a request that carries
 * the token comes from someone who could also have used the 0600 socket (docs/invariants.md, invariant 19).
 */

/** 32 random bytes, written as hex so that `$(cat file)` puts it into a request as it is. */
const TOKEN_BYTES = 32;

/** Beside the control socket, so whoever finds the socket finds its token, and the same directory rules hold for both. */
export function tokenPath(socketPath: string): string {
  return `${socketPath}.token`;
}

/** Makes the run's token and writes it to `file`, readable by this OS user alone; returns it. */
export async function writeToken(file: string): Promise<string> {
  const token = randomBytes(TOKEN_BYTES).toString('hex');
  // A token left by a killed run of ours is replaced. One another user put there (the control directory
  // may be a shared /tmp) cannot be removed, and is refused: never written through, never trusted.
  await unlink(file).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw new UserError(`cannot write the control token ${file}: ${error.message}`);
  });
  // O_EXCL: fails on anything made at this path since the unlink, a symbolic link included.
  const handle = await open(file, 'wx', 0o600).catch((error: Error) => {
    throw new UserError(`cannot write the control token ${file}: ${error.message}`);
  });
  try {
    await handle.writeFile(token + '\n');
  } finally {
    await handle.close();
  }
  return token;
}

/**
 * A client's token, from a file that others cannot read (the same rule as a password file's), that
 * is this OS user's or root's and sits where only they can change it: a file another user wrote is
 * not the run's token, whatever it holds.
 */
export function readToken(file: string): string {
  return readTrustedFile(file, 'the control token file', { secret: true }).trim();
}

/** In constant time: a client that could time the comparison learns nothing of the token from it. */
export function sameToken(given: unknown, expected: Buffer): boolean {
  if (typeof given !== 'string') return false;
  const offered = Buffer.from(given, 'utf8');
  return offered.length === expected.length && timingSafeEqual(offered, expected);
}
