import type { EntryEnds } from './entry-end.js';
import type { RunnerDeps, RunnerOptions, Running } from './runner-types.js';
import { entryTables } from './spec.js';
import type { StageEvent } from './stage-process.js';
import { markLost, RESUMABLE, stageArgs } from './stages.js';
import type { Attempt, QueueRow, QueueStatus } from '../engine/ports/queue.js';

// A stage this runner runs: started as a child, its lease renewed on a timer of its own (so a slow
// poll never lets it lapse), its phase written as it changes, stopped when its claim is lost.

/** What a started stage needs of its runner. */
export interface StageHost {
  deps: RunnerDeps;
  options: RunnerOptions;
  ends: EntryEnds;
  running: Map<number, Running>;
  /** Counts a stage whose end has been written, so the loop knows one ended while it looked. */
  stageEnded(): void;
}

/** Starts (or resumes) a claimed entry as its stage's child and renews its lease until its end is written. */
export function startStage(host: StageHost, row: QueueRow, orphan: boolean, fresh = false): void {
  const { store } = host.deps;
  const last = row.status.attempts[row.status.attempts.length - 1];
  const previous = markLost(row.status.attempts);
  // Only a stage that was stopped (a dead runner, `--until`) goes on; one that ended by itself cleaned up.
  const resumed =
    !fresh && RESUMABLE.has(row.spec.stage) && last !== undefined && (last.outcome === undefined || last.outcome === 'suspended' || last.outcome === 'lost');
  const attempt: Attempt = { runner: host.options.runner, startedAt: new Date().toISOString() };
  // The swap belongs to an attempt: a new one starts without it (a resumed one finds it in its checkpoint).
  const status: QueueStatus = { attempts: [...previous, attempt] };
  host.deps.log(
    `#${row.id}: ${orphan ? 'its runner is gone; ' : ''}${resumed ? 'resuming' : 'starting'} ${row.spec.stage} on ${entryTables(row.spec).join(', ')}`,
  );
  const renew = () =>
    store.renew(row.id, host.options.runner, host.options.leaseSeconds, status).then(
      (held) => {
        if (held) entry.renewedAt = Date.now();
        else suspendStage(host.deps, entry, 'its claim was taken over by another runner');
      },
      () => {
        if (Date.now() - entry.renewedAt > 0.8 * host.options.leaseSeconds * 1000)
          suspendStage(host.deps, entry, 'its runner lost the database for longer than its lease');
      },
    );
  const onEvent = (e: StageEvent) => {
    const changed = (e.phase !== undefined && e.phase !== status.phase) || (e.swapped === true && !status.swapped);
    Object.assign(status, Object.fromEntries(Object.entries(e).filter(([, v]) => v !== undefined)));
    // Written at once: a runner that dies now leaves the next one the phase, and whether the swap was made.
    if (changed) void renew();
  };
  // The entry's number goes into the stage's history entry ("by ... (queue #N)").
  const env = { ...host.deps.env, ...(row.spec.tz ? { TZ: row.spec.tz } : {}), SHADOWCUT_QUEUE_ENTRY: String(row.id) };
  const entry: Running = {
    row,
    status,
    attempt,
    resumed,
    process: host.deps.launch(
      stageArgs(row.spec, resumed, host.options.stageArgs),
      env,
      onEvent,
      host.deps.stageOutput && ((line) => host.deps.stageOutput!(row.id, line)),
    ),
    cancelling: false,
    suspended: null,
    renewedAt: Date.now(),
    renewer: setInterval(() => void renew(), (host.options.leaseSeconds * 1000) / 3),
    done: Promise.resolve(),
  };
  entry.done = entry.process.exit
    .then((exit) => host.ends.ended(entry, exit))
    .catch((error: Error) => host.deps.log(`#${row.id}: its end was not written: ${error.message}`))
    // Running until its end is written, so the loop does not see an idle queue and close the store under it.
    .finally(() => {
      if (host.running.get(row.id) === entry) host.running.delete(row.id);
      host.stageEnded();
    });
  host.running.set(row.id, entry);
  void host.ends.emit('queue-start', row);
}

/** Stops a stage to be resumed later (its claim lost, `--until`, SIGTERM): killed as a crash would. */
export function suspendStage(deps: RunnerDeps, r: Running, why: string): void {
  if (r.suspended) return;
  deps.log(`#${r.row.id}: ${why}; stopping its stage, to be resumed`);
  r.suspended = why;
  r.process.kill('SIGKILL');
}
