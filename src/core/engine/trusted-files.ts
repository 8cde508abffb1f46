import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync, realpathSync, type Stats } from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.js';

/**
 * The files and directories shadowcut obeys or keeps secrets in, on the local disk (docs/invariants.md,
 * invariant 19): a URL or targets file, an option file, a certificate, the control directory, a flag
 * file. A file is only as safe as every directory above it: whoever can write one of them can move
 * what is below away and put their own in its place, and a link on the way can point anywhere. So a
 * path is resolved once (its links followed), and every directory of the resolved path, from the
 * file's own up to `/`, must belong to this OS user or root and be writable by its owner alone. A
 * sticky directory (`/tmp`) is accepted above, where no one can rename what they did not make; as a
 * file's own directory it is not, since anyone can make the file there first.
 */

/** Why a directory could be changed by someone else: where, and what is wrong with it. */
export interface DirectoryFault {
  dir: string;
  why: string;
}

/** An owner who is neither this OS user nor root, or null. */
export function strangeOwner(uid: number): number | null {
  const me = process.getuid?.();
  return me === undefined || uid === me || uid === 0 ? null : uid;
}

/**
 * The first directory, from the resolved directory `dir` up to `/`, that another OS user could
 * change, or null. `stickyHere`: whether `dir` itself may be a sticky directory others write in (a
 * flag's, where only the owner counts); those above always may.
 */
export function directoryFault(dir: string, stickyHere = false): DirectoryFault | null {
  for (let at = dir, here = true; ; at = path.dirname(at), here = false) {
    const why = directoryWhy(lstatSync(at), here && !stickyHere);
    if (why) return { dir: at, why };
    if (path.dirname(at) === at) return null;
  }
}

function directoryWhy(info: Stats, strict: boolean): string | null {
  if (!info.isDirectory()) return 'is not a directory';
  const owner = strangeOwner(info.uid);
  if (owner !== null) return `belongs to another OS user (uid ${owner})`;
  const sticky = (info.mode & 0o1000) !== 0;
  if ((info.mode & 0o022) !== 0 && (strict || !sticky)) return `can be written by other OS users (mode ${(info.mode & 0o7777).toString(8)})`;
  return null;
}

/** A fault as said of something in `dir`: "is in /tmp, which can be written ...", "is under /home/x, which ...". */
export function faultOf(fault: DirectoryFault, dir: string): string {
  return `is ${fault.dir === dir ? 'in' : 'under'} ${fault.dir}, which ${fault.why}`;
}

/** `dir` with its links resolved; null when it is not there. */
export function resolvedDir(dir: string): string | null {
  try {
    return realpathSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw error;
  }
}

/**
 * A file the run reads and obeys (`--url-file`, `--targets`, `?defaults-file=`, a certificate, a
 * token file), refused in one line naming `what` unless it is this OS user's or root's, sits where
 * only they can change it, and, with `secret`, cannot be read by anyone else (libpq's rule for
 * ~/.pgpass, made a refusal since the operator named this file). A pipe the user opened
 * (`<(pass show db)`) has no directory: its owner is checked.
 */
export function readTrustedFile(file: string, what: string, options: { secret?: boolean } = {}): string {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY);
  } catch (error) {
    throw new UserError(`${what} ${file} cannot be read: ${(error as Error).message}`);
  }
  try {
    const info = fstatSync(fd);
    const owner = strangeOwner(info.uid);
    if (owner !== null) throw new UserError(`${what} ${file} belongs to another OS user (uid ${owner}): use a file of your own`);
    if (options.secret && (info.mode & 0o077) !== 0) {
      throw new UserError(`${what} ${file} can be read by other users (mode ${(info.mode & 0o777).toString(8)}); make it private first: chmod 600 ${file}`);
    }
    if (info.isFile()) {
      // The path as opened, resolved once: the same file (device and inode), and every directory above it checked.
      const real = realpathSync(file);
      const seen = lstatSync(real);
      if (seen.dev !== info.dev || seen.ino !== info.ino) throw new UserError(`${what} ${file} changed while it was read: look at who else writes there`);
      const fault = directoryFault(path.dirname(real));
      if (fault) throw new UserError(`${what} ${file} ${faultOf(fault, path.dirname(real))}: keep it in a directory only you (or root) can write`);
    } else if (!info.isFIFO()) {
      throw new UserError(`${what} ${file} is not a file`);
    }
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}
