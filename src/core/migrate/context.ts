import type { MigrateConfig, MigrateResult } from '../run/config.js';
import { AbortedError } from '../engine/errors.js';
import type { Reporter } from '../report/reporter.js';
import { retryTransient, type RetryContext } from '../engine/retry/retry.js';
import type { Phase, RunState } from '../run/run-state.js';
import type { Migration, Plan } from '../engine/types.js';
import type { EngineServer } from '../engine/ports/server.js';
import type { CheckpointRun } from '../engine/state/checkpoint.js';

/** The least a run's part is given of the migration: its plan. A part names the ports it uses besides (`RunContext<Planned & MigrationCopy>`). */
export type Planned = Pick<Migration, 'plan'>;

/**
 * What every part of one run shares: the engine and plan, the fixed config, the live state, the
 * outcome. `M` is what a part may ask of the migration: the whole of it where parts are made, the
 * ports it uses where a part is given it.
 */
export class RunContext<M extends Planned = Migration> implements RetryContext {
  constructor(
    readonly engine: EngineServer,
    readonly migration: M,
    readonly config: Readonly<MigrateConfig>,
    readonly state: RunState,
    readonly report: Reporter,
    readonly result: MigrateResult,
    /** Whose the checkpoints it saves are (the run's id, their count): a revert window's way back goes on with the forward run's. */
    readonly run: CheckpointRun,
    readonly signal?: AbortSignal,
  ) {}

  get plan(): Plan {
    return this.migration.plan;
  }

  isTransient(error: unknown): boolean {
    return this.engine.isTransient(error);
  }

  /** Ctrl-C, the abort command, the panic flag file or critical load: stop at this safe point. */
  checkAbort(): void {
    if (this.signal?.aborted) throw new AbortedError(String(this.signal.reason ?? 'interrupted'));
    if (this.state.abortReason) throw new AbortedError(this.state.abortReason);
  }

  enter(phase: Phase): void {
    this.state.status.phase = phase;
    this.report.phase(phase);
  }

  /**
   * A step that rides out a lost connection (retry.ts). While it waits the outage is in the run's
   * status (`shadowcut status`, the progress lines) and on its timeline (the report page): said
   * once when lost, once when back.
   */
  async transient<T>(what: string, step: () => Promise<T>): Promise<T> {
    const status = this.state.status;
    let lost = false;
    const warn = (message: string) => {
      if (!lost) this.state.mark(`connection lost: ${what}`);
      lost = true;
      status.retrying = message;
      this.report.warn(message);
    };
    try {
      const value = await retryTransient({ isTransient: (e) => this.isTransient(e), checkAbort: () => this.checkAbort(), report: { warn } }, what, step);
      if (lost) this.state.mark(`connection back: ${what}`);
      return value;
    } finally {
      if (lost) status.retrying = null;
    }
  }
}
