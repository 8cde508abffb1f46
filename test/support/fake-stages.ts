import type { Launcher, StageEvent, StageExit, StageProcess } from '../../src/core/queue/stage-process.js';

/** One `shadowcut <stage>` the runner started, in place of its child process: the test says how it goes and how it ends. */
export interface FakeStage extends StageProcess {
  readonly args: string[];
  readonly env: Record<string, string>;
  /** Signals the runner sent, in order. */
  readonly signals: NodeJS.Signals[];
  /** Whether it has ended. */
  readonly ended: boolean;
  /** A `--json` line's event (phase, progress, the swap), as the runner hears it. */
  emit(event: StageEvent): void;
  /** The stage ends with `code`, its last line on stderr being `lastError`. */
  end(code: number, lastError?: string): void;
  /** The table the stage was given (its first `--table`). */
  readonly table: string | undefined;
}

/**
 * The runner's `Launcher` (core/queue/stage-process.ts) without child processes: each launch is kept,
 * in order, for the test to look at and to end. A SIGKILL ends the stage at once, as the kernel
 * would (signal, no code); a SIGTERM is only recorded, since a stage stops at its next safe point
 * (the test ends it, with 3 for a cancelled one). Relayed requests (`cutover`, `revert`) are stages
 * too, ended by `relayCode` at once unless it is null.
 */
export class FakeStages {
  readonly launched: FakeStage[] = [];
  /** The exit code a relayed request (`cutover`, `revert`) gets at once; null leaves it to the test. */
  relayCode: number | null = 0;

  readonly launch: Launcher = (args, env, onEvent) => {
    let settle!: (exit: StageExit) => void;
    const exit = new Promise<StageExit>((resolve) => (settle = resolve));
    const signals: NodeJS.Signals[] = [];
    let ended = false;
    const finish = (e: StageExit) => {
      if (ended) return;
      ended = true;
      settle(e);
    };
    const tableAt = args.indexOf('--table');
    const stage: FakeStage = {
      pid: 10_000 + this.launched.length,
      exit,
      args,
      env,
      signals,
      table: tableAt >= 0 ? args[tableAt + 1] : undefined,
      get ended() {
        return ended;
      },
      kill: (signal) => {
        signals.push(signal);
        if (signal === 'SIGKILL') finish({ code: null, signal, lastError: '', stdout: [] });
      },
      emit: (event) => {
        if (ended) throw new Error('a stage that ended emits nothing');
        onEvent?.(event);
      },
      end: (code, lastError = '') => finish({ code, signal: null, lastError, stdout: [] }),
    };
    this.launched.push(stage);
    if ((args[0] === 'cutover' || args[0] === 'revert') && this.relayCode !== null) stage.end(this.relayCode);
    return stage;
  };

  /** The stages (not relayed requests) started, in order. */
  get stages(): FakeStage[] {
    return this.launched.filter((s) => s.args[0] !== 'cutover' && s.args[0] !== 'revert');
  }

  /** The stages still running. */
  get running(): FakeStage[] {
    return this.stages.filter((s) => !s.ended);
  }
}
