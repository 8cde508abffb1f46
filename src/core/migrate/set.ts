import type { MigrateOptions, MigrateResult } from '../config.js';
import { decodeCheckpoint } from '../checkpoint.js';
import { UserError } from '../errors.js';
import type { Engine, MigrationRequest } from '../types.js';
import { JointCutover } from './joint-cutover.js';
import { migrate } from './runner.js';

/**
 * Several tables changed in one cut-over: a run for each (see joint-cutover.ts), all at once. Each
 * member's options are its own (its state, its reporter, its hooks); the settings that shape the
 * swap (lock timeout, attempts) are the first member's. Returns each table's result, in order; null
 * for one a resumed set found already swapped and cleaned up.
 */
export async function migrateSet(
  engine: Engine,
  requests: MigrationRequest[],
  options: Partial<MigrateOptions>[],
  /** What wraps each member's run (its history entry, for one). */
  around: (index: number, run: () => Promise<MigrateResult>) => Promise<MigrateResult> = (_, run) => run(),
): Promise<(MigrateResult | null)[]> {
  const tables = requests.map((r) => engine.qualify(r.table));
  const repeated = tables.find((t, i) => tables.indexOf(t) !== i);
  if (repeated !== undefined) throw new UserError(`${repeated} is named twice; give each table of the set one --table and one --alter`);
  if (options.some((o) => o.revertWindowMs !== undefined)) {
    throw new UserError('--revert-window is not yet supported for several tables in one cut-over; change them without a window');
  }
  const resuming = options[0]?.resume === true ? await resumedMembers(engine, tables) : null;
  let why = resuming ? 'resuming an interrupted copy' : '--force-copy';
  if (!resuming && options[0]?.forceCopy !== true) {
    const copied = await whyCopied(engine, requests, tables);
    if (copied === null) {
      // Every table can be changed in place: each at once by the server, with nothing to swap.
      const results: MigrateResult[] = [];
      for (const [i, request] of requests.entries()) results.push(await around(i, () => migrate(engine, request, options[i])));
      return results;
    }
    why = copied;
  }
  const running = tables.flatMap((t, i) => (resuming?.get(t) === 'done' ? [] : [i]));
  if (!engine.jointCutover) {
    throw new UserError(
      'several tables in one cut-over are not yet supported on MySQL/MariaDB (MariaDB cannot RENAME under LOCK TABLES, and one RENAME queued after ' +
        'UNLOCK would let writers into the later tables first); change them one at a time',
    );
  }
  const joint = new JointCutover(
    engine.jointCutover.bind(engine),
    running.map((i) => tables[i]),
    why,
  );
  const runs = running.map((i) => {
    const own = resuming?.get(tables[i]) === 'fresh' ? { ...options[i], resume: false } : options[i];
    return around(i, () => migrate(engine, { ...requests[i], set: tables.filter((t) => t !== tables[i]) }, own, joint)).catch((error: unknown) => {
      joint.fail(tables[i], error);
      throw error;
    });
  });
  const settled = await Promise.allSettled(runs);
  const failures = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
  // The member that failed first tells why; the others only stopped because of it.
  if (failures.length) throw failures.find((e) => !joint.isEcho(e)) ?? failures[0];
  const results = new Map(running.map((i, at) => [i, (settled[at] as PromiseFulfilledResult<MigrateResult>).value]));
  return tables.map((_, i) => results.get(i) ?? null);
}

/**
 * Why the set takes the copy: the first table the server cannot change in place, and its reason;
 * null when every table can be. Classifying leaves nothing behind.
 */
async function whyCopied(engine: Engine, requests: MigrationRequest[], tables: string[]): Promise<string | null> {
  for (const [i, request] of requests.entries()) {
    const sorted = await engine.classifyAlter(request.table, request.alter);
    if (sorted.path === 'copy') return `${tables[i]} needs the copy (${sorted.why}), and a set swaps all its tables at one instant: every table is copied`;
  }
  return null;
}

/**
 * A resumed set: each member with a checkpoint resumes. One without was either never set up (the
 * run died before it saved one: it starts afresh) or already cleaned up after the swap (done): the
 * swap is one transaction or statement, so if any member's tables were swapped, all were.
 */
async function resumedMembers(engine: Engine, tables: string[]): Promise<Map<string, 'resume' | 'fresh' | 'done'>> {
  const out = new Map<string, 'resume' | 'fresh' | 'done'>();
  let swapped = false;
  for (const table of tables) {
    const text = await engine.loadCheckpoint(table);
    if (text === null) continue;
    out.set(table, 'resume');
    const checkpoint = decodeCheckpoint(text);
    swapped ||= checkpoint.cutOver === true || (await engine.resume(checkpoint.plan).swapped());
  }
  if (out.size === 0) throw new UserError(`there is no checkpoint of an earlier run on any of ${tables.join(', ')} to resume; run without --resume`);
  for (const table of tables) if (!out.has(table)) out.set(table, swapped ? 'done' : 'fresh');
  return out;
}
