import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../core/engine/errors.js';
import { directoryFault, faultOf, resolvedDir, type DirectoryFault } from '../core/engine/trusted-files.js';

/**
 * Where control sockets and their token files live, and which of them a run or a client may trust
 * (docs/invariants.md, invariant 19). Whoever can make a file at a socket's path can answer for the run (a
 * client would print its answers, a second run would take it for a live one), and whoever can write
 * its directory can put one there. So a socket sits in a directory only its OS user (or root) can
 * write, and is used only when that user made it: the run checks before it listens, the client
 * before it connects, root included (root can connect to any socket, so the owner is the check).
 */

const SOCKET_PREFIX = 'shadowcut-';
const SOCKET_SUFFIX = '.sock';
/** sun_path holds 108 bytes on Linux and 104 on macOS, NUL included. */
const MAX_SOCKET_PATH = 103;

const uid = (): number | undefined => process.getuid?.();

/**
 * The directories this OS user's runs put their sockets in, the one a new run takes first; clients
 * look in each. SHADOWCUT_CONTROL_DIR, when set, is the only one: it keeps the runs of one
 * environment (a test shard, a CI job) apart from another's migrations of the same table names.
 * Otherwise `$XDG_RUNTIME_DIR/shadowcut` when that directory is this user's own and private and
 * nothing above it is another's (a login session's; sudo may keep the caller's), and
 * `~/.shadowcut/control` beside the state key, which a run started without a session takes (cron,
 * sudo, a queue's stages): `status` in a terminal finds either. Never a name in a shared directory
 * such as /tmp, where anyone could make it first and keep every run from starting. Each is resolved
 * here, once, and used by that name.
 */
export function controlDirs(): string[] {
  const given = process.env.SHADOWCUT_CONTROL_DIR;
  if (given) return [given];
  const dirs: string[] = [];
  const runtime = ownRuntimeDir();
  if (runtime !== null) dirs.push(path.join(runtime, 'shadowcut'));
  dirs.push(homeControlDir());
  return dirs;
}

/** `~/.shadowcut/control`, the home directory resolved. */
function homeControlDir(): string {
  const home = os.homedir();
  return path.join(resolved(home) ?? home, '.shadowcut', 'control');
}

/** $XDG_RUNTIME_DIR, resolved, when it is this user's own, private, and under directories only its user or root can change; else null. */
function ownRuntimeDir(): string | null {
  const runtime = process.env.XDG_RUNTIME_DIR;
  if (!runtime || !path.isAbsolute(runtime)) return null;
  const real = resolved(runtime);
  if (real === null || privateProblem(statOrNull(real, true)) !== null) return null;
  return directoryFault(path.dirname(real), true) === null ? real : null;
}

/** The directory a new run puts its socket in. */
export function controlDir(): string {
  return controlDirs()[0];
}

/** `<dir>/shadowcut-<table>.sock`; names that are unsafe in a path or too long get a hash instead. */
export function defaultSocketPath(table: string, dir = controlDir()): string {
  const plain = path.join(dir, `${SOCKET_PREFIX}${table}${SOCKET_SUFFIX}`);
  if (/^[A-Za-z0-9_.-]+$/.test(table) && plain.length <= MAX_SOCKET_PATH) return plain;
  const hash = createHash('sha256').update(table).digest('hex').slice(0, 12);
  const readable = table.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 32);
  return path.join(dir, `${SOCKET_PREFIX}${readable}-${hash}${SOCKET_SUFFIX}`);
}

/**
 * The socket path a run listens on, its directory made (a default one: 0700) and checked: a given
 * `--control-socket` or SHADOWCUT_CONTROL_DIR in a directory that only its OS user or root can
 * write; a default one in a directory of this user's alone. Refused in one line otherwise.
 */
export function runSocketPath(table: string, given: string | undefined): string {
  if (given !== undefined) return inTrustedDir(given);
  const dir = controlDir();
  // ~/.shadowcut is the state key's directory too, made 0700 by whichever comes first.
  if (!process.env.SHADOWCUT_CONTROL_DIR && dir === homeControlDir()) makeDir(path.dirname(dir));
  makeDir(dir);
  usableControlDir(dir);
  return inTrustedDir(defaultSocketPath(table, dir));
}

/**
 * Whether a client may look for runs in `dir`: false when it is not there (no run has made it, so
 * none is running), true when it passes the rules a run's own directory does; refused otherwise.
 */
export function usableControlDir(dir: string): boolean {
  const info = statOrNull(dir, true);
  if (info === null) return false;
  // The default directories are made by shadowcut, 0700; one given by the operator may be any directory others cannot write.
  const given = Boolean(process.env.SHADOWCUT_CONTROL_DIR);
  const problem = given ? null : privateProblem(info);
  if (problem) throw new UserError(untrustedDir(dir, problem));
  const real = resolved(dir);
  const fault = real === null ? null : given ? directoryFault(real) : directoryFault(path.dirname(real), true);
  if (fault) throw new UserError(untrustedDir(dir, said(fault, real!)));
  return true;
}

/** The sockets in a control directory, by name: whether each is this user's is checked when it is used. */
export function socketsIn(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.startsWith(SOCKET_PREFIX) && f.endsWith(SOCKET_SUFFIX))
      .map((f) => path.join(dir, f));
  } catch (error) {
    throw new UserError(`cannot list the control directory ${dir}: ${(error as Error).message}`);
  }
}

/**
 * A socket path to connect to: in a directory only its user or root can write (so it cannot be
 * swapped between this check and the connection), and a socket of this OS user's. Returns the path
 * with its directory resolved; null when nothing is there.
 */
export function ownSocket(socketPath: string): string | null {
  if (statOrNull(path.dirname(path.resolve(socketPath))) === null) return null;
  const real = inTrustedDir(socketPath);
  const info = statOrNull(real, true);
  if (info === null) return null;
  if (!info.isSocket()) throw new UserError(`${socketPath} exists and is not a socket; remove it or choose another control socket`);
  const owner = foreignOwner(info);
  if (owner !== null) {
    throw new UserError(
      `the control socket ${socketPath} belongs to another OS user (uid ${owner}): shadowcut talks only to sockets of the user it runs as; run the command as that user, or remove the socket after checking whose it is`,
    );
  }
  return real;
}

/** The uid of a file's owner when it is not this OS user (root is another user here), or null. */
export function foreignOwner(info: Stats): number | null {
  const me = uid();
  return me === undefined || info.uid === me ? null : info.uid;
}

/**
 * `file` with its directory resolved, refused unless that directory, and each above it, is this
 * user's or root's and writable by its owner alone (trusted-files.ts; sticky ones above are fine).
 */
function inTrustedDir(file: string): string {
  const dir = path.dirname(path.resolve(file));
  let real: string;
  try {
    real = realpathSync(dir);
  } catch (error) {
    throw new UserError(`cannot use the control socket ${file}: ${(error as Error).message}`);
  }
  const fault = directoryFault(real);
  if (fault) throw new UserError(untrustedDir(dir, said(fault, real)));
  return path.join(real, path.basename(file));
}

/** A fault of `real` itself as before ("can be written by ..."), one above it as where it is. */
function said(fault: DirectoryFault, real: string): string {
  return fault.dir === real ? fault.why : faultOf(fault, real);
}

function untrustedDir(dir: string, problem: string): string {
  return `the control directory ${dir} ${problem}: a socket or token there could be replaced by someone else; use a directory only you can write (SHADOWCUT_CONTROL_DIR or --control-socket)`;
}

/** A directory of this user's alone: a real directory (not a link), its own, no access for group or others. */
function privateProblem(info: Stats | null): string | null {
  if (info === null || !info.isDirectory()) return 'is not a directory';
  const owner = foreignOwner(info);
  if (owner !== null) return `belongs to another OS user (uid ${owner})`;
  if ((info.mode & 0o077) !== 0) return `is open to other OS users (mode ${(info.mode & 0o7777).toString(8)}, not 700)`;
  return null;
}

function makeDir(dir: string): void {
  try {
    // Not recursive: a missing parent is a mistake to report, not to make.
    mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new UserError(`cannot make the control directory ${dir}: ${(error as Error).message}`);
  }
}

/** `dir` with its links resolved, or null when nothing is there. */
function resolved(dir: string): string | null {
  try {
    return resolvedDir(dir);
  } catch (error) {
    throw new UserError(`cannot use the control directory ${dir}: ${(error as Error).message}`);
  }
}

/** `lstat` with `link`, else `stat`; null when there is nothing at that path. */
function statOrNull(file: string, link = false): Stats | null {
  try {
    return link ? lstatSync(file) : statSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new UserError(`cannot use the control directory ${file}: ${(error as Error).message}`);
  }
}
