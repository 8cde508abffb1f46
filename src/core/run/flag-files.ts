import { lstatSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { UserError } from '../engine/errors.js';
import type { RunState } from './run-state.js';

/**
 * Flag files: a file whose presence holds a run back (`--throttle-flag-file`), postpones its
 * cut-over (`--postpone-cutover-flag-file`) or stops it (`--panic-flag-file`). They usually sit in
 * a shared directory such as /tmp, where any local user could otherwise make one first (docs/invariants.md,
 * invariant 19): a flag counts only when the OS user running shadowcut, or root, owns it. A file
 * another user made keeps its owner when the operator `touch`es it, so such a file is said aloud,
 * never passed over in silence: refused when the run starts, a warning and a line in `status` while
 * it runs.
 */

/** The options that name a flag file, as the command line spells them. */
export type FlagOption = '--throttle-flag-file' | '--panic-flag-file' | '--postpone-cutover-flag-file';

/** How long a flag that stays another user's goes before its warning is repeated in the log (the status shows it all along). */
const WARN_AGAIN_MS = 60_000;

/** Whether a flag made by this owner counts: the running OS user's, or root's. */
function counts(uid: number): boolean {
  const me = process.getuid?.();
  return me === undefined || uid === me || uid === 0;
}

function strangers(option: FlagOption, file: string, uid: number): string {
  return `${option} ${file} belongs to another OS user (uid ${uid}), so it does not count`;
}

/**
 * Checked when the run starts, before anything is done: a flag path that already holds another
 * user's file is refused in one line (the operator's own `touch` of it would not count either).
 */
export function checkFlagFiles(flags: Partial<Record<FlagOption, string>>): void {
  for (const [option, file] of Object.entries(flags) as [FlagOption, string | undefined][]) {
    if (!file) continue;
    let uid: number;
    try {
      uid = lstatSync(file).uid;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw new UserError(`cannot look at ${option} ${file}: ${(error as Error).message}`);
    }
    if (!counts(uid)) throw new UserError(`${strangers(option, file, uid)}: remove it after checking whose it is; a flag you make then counts`);
  }
}

/** When each flag of a run was last warned about, while it stays another user's. */
const warned = new WeakMap<RunState, Map<FlagOption, number>>();

/**
 * One look at a flag file: whether it is there and counts. One that is there and is another
 * user's does not count; it is put in the run's status (`untrustedFlags`) for as long as it stays,
 * and warned about when first seen and again each minute. `lstat`: a link is its own owner's.
 */
export async function flagRaised(option: FlagOption, file: string, state: RunState, warn: (message: string) => void): Promise<boolean> {
  // A path that cannot be looked at (gone, or a directory on it unreadable) holds no flag of ours.
  const uid = await lstat(file).then(
    (info) => info.uid,
    () => null,
  );
  const times = warned.get(state) ?? new Map<FlagOption, number>();
  warned.set(state, times);
  if (uid === null || counts(uid)) {
    if (option in state.status.untrustedFlags) state.status.untrustedFlags = withoutKey(state.status.untrustedFlags, option);
    times.delete(option);
    return uid !== null;
  }
  const message = `${strangers(option, file, uid)}: remove it and make it again as yourself`;
  state.status.untrustedFlags = { ...state.status.untrustedFlags, [option]: message };
  const last = times.get(option);
  if (last === undefined || Date.now() - last >= WARN_AGAIN_MS) {
    times.set(option, Date.now());
    warn(message);
  }
  return false;
}

function withoutKey(record: Record<string, string>, key: string): Record<string, string> {
  return Object.fromEntries(Object.entries(record).filter(([k]) => k !== key));
}

/** gh-ost's --panic-flag-file, looked for 4 times a second whatever the run is doing; returns the stop. */
export function watchPanicFlagFile(file: string | undefined, state: RunState, warn: (message: string) => void): () => void {
  if (!file) return () => {};
  const look = () =>
    void flagRaised('--panic-flag-file', file, state, warn).then((raised) => {
      if (raised) state.abortReason ??= `panic flag file ${file} exists`;
    });
  look();
  const timer = setInterval(look, 250);
  return () => clearInterval(timer);
}
