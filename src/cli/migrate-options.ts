import { memberReporter, type Reporter } from '../core/report/reporter.js';
import type { MigrateOptions } from '../core/migrate/runner.js';
import { seamsOf } from '../core/engine/failure-seams.js';
import type { RunState } from '../core/run/run-state.js';
import { parseDuration } from '../core/run/duration.js';
import { recordMoment } from '../core/history/record.js';
import type { Engine, MigrationRequest } from '../core/engine/types.js';
import { UserError } from '../core/engine/errors.js';
import { throttleConfig, type Operation } from './operator-options.js';

// What `migrate`'s options become for one table's run: a single table's, a set's member's, a fleet's target's.

/** One table of the command: a single run's, one of a set's, or one target's of a fleet. */
export interface Member {
  name: string;
  alter: string;
  state: RunState;
  operation: Operation;
}

// Commander's parsed options, as the command declares them.
export type MigrateOpts = Parameters<typeof throttleConfig>[0] & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export function requestOf(opts: MigrateOpts, m: Member): MigrationRequest {
  return {
    url: opts.url,
    table: m.name,
    alter: m.alter,
    discardForeignKeys: opts.discardForeignKeys,
    deferIndexes: opts.deferIndexes,
    capture: opts.capture,
    triggers: opts.includeTriggers ? { suffix: opts.triggerSuffix, removeSuffixIfExists: opts.removeTriggerSuffixIfExists } : undefined,
  };
}

export function optionsOf(opts: MigrateOpts, engine: Engine, m: Member, reporter: Reporter, set: boolean): Partial<MigrateOptions> {
  return {
    execute: opts.execute,
    ...throttleConfig(opts),
    forceCopy: opts.forceCopy,
    lockTimeoutMs: opts.lockTimeoutMs,
    seams: seamsOf(process.env),
    cutoverAttempts: opts.cutoverAttempts,
    snapshotWaitMs: opts.snapshotWaitMs,
    oldSnapshotWaitMs: opts.oldSnapshotWait,
    oldSnapshots: opts.oldSnapshots,
    checksumChunkRows: opts.checksumChunkRows,
    copyThreads: opts.threads,
    checksumWhileCopying: opts.checksumWhileCopying,
    dropOld: opts.dropOld,
    resume: opts.resume,
    postponeCutover: opts.postponeCutover,
    postponeFlagFile: opts.postponeCutoverFlagFile,
    revertWindowMs: opts.revertWindow === undefined ? undefined : revertWindowMs(opts.revertWindow),
    reporter: set ? memberReporter(reporter, m.state.status.table) : reporter,
    state: m.state,
    hook: m.operation.hook,
    signal: m.operation.signal,
    windowOpened: (until) =>
      recordMoment(
        { engine, table: m.name, command: 'migrate', stage: m.alter, reportDir: opts.reportDir, reporter },
        m.state.status.startedAt,
        [
          `cut over, writers blocked ${m.state.status.cutoverLockedMs ?? 0} ms; revert window open until ${until}: ` +
            '"shadowcut revert" swaps back, "shadowcut complete" ends it',
        ],
        { revertWindowUntil: until },
      ),
  };
}

export function revertWindowMs(text: string): number {
  const ms = parseDuration(text, '--revert-window');
  if (ms <= 0) throw new UserError('--revert-window must be longer than 0 (leave it out for no window)');
  return ms;
}
