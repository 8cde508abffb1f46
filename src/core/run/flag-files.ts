import { lstatSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../engine/errors.js';
import { directoryFault, faultOf, resolvedDir, strangeOwner } from '../engine/trusted-files.js';
import type { Phase } from '../report/phase.js';
import type { RunState } from './run-state.js';

/**
 * Flag files: a file whose presence holds a run back (`--throttle-flag-file`), postpones its
 * cut-over (`--postpone-cutover-flag-file`) or stops it (`--panic-flag-file`). They usually sit in
 * a shared directory such as /tmp, where any local user could make one first (docs/invariants.md,
 * invariant 19). A flag is the operator's when the OS user running shadowcut, or root, owns it, in a
 * directory only they can change (or a sticky one such as /tmp, where no one removes another's
 * file). A flag the run cannot trust may be the operator's all the same (their `touch` of a file
 * another user made first keeps that user as its owner), so it holds the run the safe way and says
 * why, once, until it is gone or the operator's own: the copy stays held back, the cut-over stays
 * postponed, and a panic flag stops the run, as gh-ost's does, since stopping changes no table.
 * Every flag is looked at from the run's start, not first when it is needed. When the run starts,
 * a flag path that cannot be trusted is refused.
 */

/** The options that name a flag file, as the command line spells them. */
export type FlagOption = '--throttle-flag-file' | '--panic-flag-file' | '--postpone-cutover-flag-file';

/** What an untrusted flag does to the run, said with why it is not trusted. */
const HOLDS: Record<FlagOption, string> = {
  '--throttle-flag-file': 'the run holds back until it is gone or made again by you',
  '--postpone-cutover-flag-file': 'the cut-over stays postponed until it is gone or made again by you (or "shadowcut cutover")',
  '--panic-flag-file': 'the run stops all the same, as a panic flag asks (the table is left as it was); find out who made it',
};

/**
 * One look at a flag: whether a file is there, and why it may not be the operator's: another user's
 * file (`owner`), or a place another user can change (`place`); null when it is, or none is there.
 */
interface FlagLook {
  raised: boolean;
  why: string | null;
  doubt?: 'owner' | 'place';
}

function look(file: string): FlagLook {
  let dir: string | null;
  try {
    dir = resolvedDir(path.dirname(path.resolve(file)));
  } catch (error) {
    return { raised: false, why: `cannot be looked at (${(error as Error).message})`, doubt: 'place' };
  }
  // Its directory is gone: only its owner, this user or root, could have removed it, and no flag is left in it.
  if (dir === null) return { raised: false, why: null };
  const fault = directoryFault(dir, true);
  const place = fault && { why: faultOf(fault, dir), doubt: 'place' as const };
  let owner: number | null;
  try {
    owner = strangeOwner(lstatSync(path.join(dir, path.basename(file))).uid);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { raised: false, why: null, ...place };
    return { raised: false, why: `cannot be looked at (${(error as Error).message})`, doubt: 'place' };
  }
  if (place) return { raised: true, ...place };
  return owner === null ? { raised: true, why: null } : { raised: true, why: `belongs to another OS user (uid ${owner})`, doubt: 'owner' };
}

/**
 * Checked when the run starts, before anything is done: a flag path whose directory is missing or
 * can be changed by another OS user, or that already holds another user's file, is refused in one
 * line (the operator's own `touch` of that file would not make it theirs either).
 */
export function checkFlagFiles(flags: Partial<Record<FlagOption, string>>): void {
  for (const [option, file] of Object.entries(flags) as [FlagOption, string | undefined][]) {
    if (!file) continue;
    const dir = path.dirname(path.resolve(file));
    let real: string | null;
    try {
      real = resolvedDir(dir);
    } catch (error) {
      throw new UserError(`cannot look at ${option} ${file}: ${(error as Error).message}`);
    }
    if (real === null) throw new UserError(`${option} ${file} is in ${dir}, which does not exist: make it first (only you may write it), or name another path`);
    const { why, doubt } = look(file);
    if (why === null) continue;
    if (doubt === 'owner')
      throw new UserError(`${option} ${file} ${why}, so it does not count: remove it after checking whose it is; a flag you make then counts`);
    throw new UserError(`${option} ${file} ${why}, so a flag there could be anyone's: use a directory only you can write, or a sticky one such as /tmp`);
  }
}

/** The flags of each run now said to be untrusted: each is warned about once, until it is gone or trusted. */
const warned = new WeakMap<RunState, Set<FlagOption>>();

/**
 * One look at a flag file: whether it holds the run (throttle, postpone: raised or untrusted; panic:
 * raised, whoever's), and why it is not trusted (null: it is, or it does not hold). One that holds
 * without being trusted is put in the run's status (`untrustedFlags`), with why and what it does,
 * for as long as it stays, and warned about once.
 */
function judge(option: FlagOption, file: string, state: RunState, warn: (message: string) => void): { holds: boolean; why: string | null } {
  const { raised, why } = look(file);
  const holds = option === '--panic-flag-file' ? raised : raised || why !== null;
  const said = warned.get(state) ?? new Set<FlagOption>();
  warned.set(state, said);
  if (!holds || why === null) {
    if (option in state.status.untrustedFlags) state.status.untrustedFlags = withoutKey(state.status.untrustedFlags, option);
    said.delete(option);
    return { holds, why: null };
  }
  const message = `${option} ${file} ${why}, so it may not be yours: ${HOLDS[option]}`;
  state.status.untrustedFlags = { ...state.status.untrustedFlags, [option]: message };
  if (!said.has(option)) {
    said.add(option);
    warn(message);
  }
  return { holds, why };
}

/** Whether a flag holds the run now (judge, above). */
export function flagHolds(option: FlagOption, file: string, state: RunState, warn: (message: string) => void): boolean {
  return judge(option, file, state, warn).holds;
}

function withoutKey(record: Record<string, string>, key: string): Record<string, string> {
  return Object.fromEntries(Object.entries(record).filter(([k]) => k !== key));
}

const SWAPPED = new Set<Phase>(['cleanup', 'revert window', 'revert', 'done']);

/**
 * Every flag of a run, looked at 4 times a second from its start whatever it is doing: the panic
 * flag stops the run (gh-ost's --panic-flag-file), and a throttle or postpone flag that cannot be
 * trusted is said during the copy, not first when the run needs it. Returns the stop.
 */
export function watchFlagFiles(
  files: { flagFile?: string; panicFlagFile?: string; postponeFlagFile?: string },
  state: RunState,
  warn: (message: string) => void,
): () => void {
  const flags: [FlagOption, string | undefined][] = [
    ['--panic-flag-file', files.panicFlagFile],
    ['--throttle-flag-file', files.flagFile],
    ['--postpone-cutover-flag-file', files.postponeFlagFile],
  ];
  const given = flags.filter((f): f is [FlagOption, string] => Boolean(f[1]));
  if (given.length === 0) return () => {};
  const lookAll = () => {
    for (const [option, file] of given) {
      // Past the swap a postpone flag has nothing left to hold: its warning would say what is no longer so.
      if (option === '--postpone-cutover-flag-file' && SWAPPED.has(state.status.phase)) {
        state.status.untrustedFlags = withoutKey(state.status.untrustedFlags, option);
        continue;
      }
      const { holds, why } = judge(option, file, state, warn);
      if (holds && option === '--panic-flag-file') state.abortReason ??= `panic flag file ${file} exists${why ? ` (it ${why}: stopped all the same)` : ''}`;
    }
  };
  lookAll();
  const timer = setInterval(lookAll, 250);
  return () => clearInterval(timer);
}
