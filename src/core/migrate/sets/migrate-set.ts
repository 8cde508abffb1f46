import type { MigrateOptions, MigrateResult } from '../../run/config.js';
import { isBackfill, openCheckpoint } from '../../engine/state/checkpoint.js';
import { NoCheckpointError, UserError } from '../../engine/errors.js';
import type { Engine, MigrationRequest } from '../../engine/types.js';
import type { EngineInPlace } from '../../engine/ports/in-place.js';
import type { EngineMigrations } from '../../engine/ports/migrations.js';
import type { EngineServer } from '../../engine/ports/server.js';
import { classifyMember } from '../../in-place/set-member.js';
import { JointCutover } from './set-cutover.js';
import { JointRevert } from './set-revert.js';
import { migrate } from '../runner.js';

/**
 * Several tables changed in one cut-over: a run for each (see set-cutover.ts), all at once. Each
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
  const windowed = options.some((o) => o.revertWindowMs !== undefined);
  const resuming = options[0]?.resume === true ? await resumedMembers(engine, tables) : null;
  let why = resuming ? 'resuming an interrupted copy' : '--force-copy';
  if (!resuming && options[0]?.forceCopy !== true) {
    const copied = await whyCopied(engine, requests, tables);
    if (copied === null) {
      return inPlaceEach(requests, tables, (i) => around(i, () => migrate(engine, requests[i], options[i])));
    }
    why = copied;
  }
  const running = tables.flatMap((t, i) => (resuming?.get(t) === 'done' ? [] : [i]));
  const swapAll = engine.jointCutover.bind(engine);
  const members = running.map((i) => tables[i]);
  const jointCutover = new JointCutover(swapAll, members, why);
  const jointRevert = windowed ? new JointRevert(swapAll, members) : undefined;
  const runs = running.map((i) => {
    const own = resuming?.get(tables[i]) === 'fresh' ? { ...options[i], resume: false, discardUnsaved: true } : options[i];
    return around(i, () => migrate(engine, { ...requests[i], set: tables.filter((t) => t !== tables[i]) }, own, jointCutover, jointRevert)).catch(
      (error: unknown) => {
        jointCutover.fail(tables[i], error);
        throw error;
      },
    );
  });
  const settled = await Promise.allSettled(runs);
  const failures = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
  // The member that failed first tells why; the others only stopped because of it.
  if (failures.length) throw jointCutover.firstFailure ?? failures[0];
  const results = new Map(running.map((i, at) => [i, (settled[at] as PromiseFulfilledResult<MigrateResult>).value]));
  return tables.map((_, i) => results.get(i) ?? null);
}

/** Every table changed in place by metadata alone, one after another; a failure names the tables already changed. */
async function inPlaceEach(requests: MigrationRequest[], tables: string[], run: (i: number) => Promise<MigrateResult>): Promise<MigrateResult[]> {
  const results: MigrateResult[] = [];
  for (const i of requests.keys()) {
    try {
      results.push(await run(i));
    } catch (error) {
      const done = results.some((r) => r.executed) ? tables.slice(0, results.length) : [];
      if (!done.length || !(error instanceof UserError)) throw error;
      throw new UserError(`${error.message}; ${done.join(', ')} already changed in place (metadata only): run the others again`, error.exitCode);
    }
  }
  return results;
}

/**
 * Why the set takes the copy, or null when every table can be changed in place by metadata alone.
 * In place, each table is changed by its own statements, one table after another: only a part that
 * cannot fail on the rows (`instant`) may go that way, so that no table is left changed because a
 * later one's index build or validation failed. Classifying leaves nothing behind.
 */
export async function whyCopied(engine: EngineInPlace, requests: MigrationRequest[], tables: string[]): Promise<string | null> {
  for (const [i, request] of requests.entries()) {
    const classified = await classifyMember(engine, { ...request, set: tables.filter((t) => t !== tables[i]) });
    const why = classified.path === 'copy' ? classified.why : classified.parts.find((p) => p.class !== 'instant')?.clause;
    if (why !== undefined) {
      const reason =
        classified.path === 'copy' ? `${tables[i]} needs the copy (${why})` : `${tables[i]} has a part that could fail on its rows in place ("${why}")`;
      return `${reason}, and a set changes all its tables or none: every table is copied and swapped at one instant`;
    }
  }
  return null;
}

/**
 * A resumed set: each member with a checkpoint resumes. One without was either not set up to its
 * first checkpoint (the run died before: it starts afresh, discarding what it had made) or already
 * cleaned up after the swap (done): the swap is one transaction or statement, so if any member's
 * tables were swapped, all were.
 */
async function resumedMembers(engine: EngineServer & EngineMigrations, tables: string[]): Promise<Map<string, 'resume' | 'fresh' | 'done'>> {
  const out = new Map<string, 'resume' | 'fresh' | 'done'>();
  let swapped = false;
  for (const table of tables) {
    const text = await engine.loadCheckpoint(table);
    if (text === null) continue;
    out.set(table, 'resume');
    // Whose it is, before anything in it decides for the others: a checkpoint moved here, or one of
    // an earlier run put back, would have the set skip tables it never swapped (openCheckpoint refuses it).
    const checkpoint = openCheckpoint(text, engine, table);
    if (isBackfill(checkpoint)) continue; // refused by the member's own resume, with the way out
    swapped ||= checkpoint.cutOver === true || (await engine.resume(checkpoint.plan).swapped());
  }
  if (out.size === 0) throw new NoCheckpointError(`there is no checkpoint of an earlier run on any of ${tables.join(', ')} to resume; run without --resume`);
  for (const table of tables) if (!out.has(table)) out.set(table, swapped ? 'done' : 'fresh');
  return out;
}
