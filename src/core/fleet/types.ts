import type { MigrateResult } from '../run/config.js';
import type { RunState } from '../run/run-state.js';
import type { Reporter } from '../report/reporter.js';

/** One target of a fleet: its label, its run's live state, and its run. */
export interface FleetTarget {
  /** How the target is named in messages (its URL, password left out). */
  label: string;
  state: RunState;
  /** The target's run, with the options the fleet gave it (postponed and windowed when joint). */
  run(): Promise<MigrateResult>;
}

export interface FleetOptions {
  parallel: number;
  canary: number;
  jointCutover: boolean;
  /** A revert window the operator asked for: kept open after a joint swap (else ended at once). */
  keepWindow: boolean;
  /** The operator's own hold on the cut-over, which a joint swap waits for as one target's run would. */
  hold: FleetHold;
  reporter: Reporter;
}

/** `--postpone-cutover` and `--postpone-cutover-flag-file`, as given to the fleet; `table` as the operator named it. */
export interface FleetHold {
  postponeCutover: boolean;
  flagFile?: string;
  table: string;
}

export interface TargetOutcome {
  label: string;
  outcome: 'done' | 'failed' | 'not started' | 'swapped back';
  result?: MigrateResult;
  error?: unknown;
}
