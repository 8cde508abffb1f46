import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { StateSealError, stateDirectory } from './state-seal.js';

/**
 * Whose a checkpoint is, sealed inside it (checkpoint.ts): the database and table it was saved for,
 * the run that saved it, and which of that run's saves it is (1, 2, ... in order).
 */
export interface CheckpointOwner {
  database: string;
  table: string;
  run: string;
  seq: number;
}

/**
 * What this host knows of a run that saves checkpoints: the latest one it saved, and whether the run
 * ended (removed its checkpoint). A sealed checkpoint proves shadowcut wrote it, not that it is the
 * latest: an account that can write `<table>__state` can keep a copy and put it back later. The
 * database cannot say which copy is the latest (whoever writes the checkpoint can write anything
 * there), so this host keeps it beside the state key, where only its OS user writes: a checkpoint of
 * a run that ended here, or older than one this host saved since, is refused (checkpoint.ts).
 *
 * One small file per run, `<key's directory>/runs/<run>`: `saved <n>` or `ended <n>`.
 */
export interface RunRecord {
  /** The sequence number of the latest checkpoint this host saved for the run. */
  seq: number;
  ended: boolean;
}

const RUN_ID = /^[0-9a-f]{32}$/;

/** A new run's id: 16 random bytes, hex. */
export function newRunId(): string {
  return randomBytes(16).toString('hex');
}

function runFile(run: string): string {
  // A run id comes from a sealed body, so it is shadowcut's; a file name is checked all the same.
  if (!RUN_ID.test(run)) throw new StateSealError(`a checkpoint names the run "${run}", which is not a run id shadowcut makes`);
  return path.join(stateDirectory(), 'runs', run);
}

/** What this host recorded of `run`, or null when it never saved a checkpoint of it (another host's run, or before the ledger). */
export function runRecord(run: string): RunRecord | null {
  let text: string;
  try {
    text = readFileSync(runFile(run), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new StateSealError(`cannot read the run ledger: ${(error as Error).message}`);
  }
  const match = /^(saved|ended) (\d+)\s*$/.exec(text);
  // Only this user writes there, whole files by rename: anything else was written by hand.
  if (!match) throw new StateSealError(`the run ledger ${runFile(run)} is not one shadowcut wrote: remove it`);
  return { seq: Number(match[2]), ended: match[1] === 'ended' };
}

/** Records `record` for `run`, whole (a temporary file renamed into place), so a kill never leaves half a record. */
export function recordRun(run: string, record: RunRecord): void {
  const file = runFile(run);
  try {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const temporary = `${file}.${process.pid}`;
    writeFileSync(temporary, `${record.ended ? 'ended' : 'saved'} ${record.seq}\n`, { mode: 0o600 });
    renameSync(temporary, file);
  } catch (error) {
    throw new StateSealError(`cannot write the run ledger ${file}: ${(error as Error).message}`);
  }
}
