import { LockTimeoutError } from './errors.js';

/**
 * Where tests make a run die, wait or fail at a named step of the cut-over, to reach states no
 * server can be brought to on cue. Off unless the environment names a step. The CLI makes them from
 * its environment and passes them down with the run's options (`MigrateConfig.seams`), so the
 * engine code that has seams asks the object it is given, never the environment.
 */
export interface FailureSeams {
  /**
   * At a named step: the process kills itself where SHADOWCUT_TEST_KILL_AT names it (SIGKILL, as an
   * operator's kill -9 would), so tests can resume a run from that exact state; it waits a second
   * (SHADOWCUT_TEST_PAUSE_MS, where a loaded machine needs longer to see the pause) where
   * SHADOWCUT_TEST_PAUSE_AT names it, so a test can queue writers behind the cut-over lock; and
   * where SHADOWCUT_TEST_FAIL_AT does, the first attempt fails there as a lock timeout would (the
   * next ones go on).
   */
  at(step: string): Promise<void>;
  /**
   * Whether SHADOWCUT_TEST_FAIL_AT names this step, the first time only; `step@suffix` names it only
   * where the shadow's name ends so (a revert window's swap back, whose shadow is the old table). The
   * cut-over's `rename-after-unlock` makes the RENAME fail once it runs, after the UNLOCK.
   */
  fails(step: string, shadow?: string): boolean;
}

/** The seams the variables of `env` name, read at each step; one failure in all, however many steps are named. */
export function seamsOf(env: NodeJS.ProcessEnv): FailureSeams {
  let failures = 0;
  const pauseMs = Number(env.SHADOWCUT_TEST_PAUSE_MS ?? 1000);
  const fails = (step: string, shadow = ''): boolean => {
    const [name, suffix] = (env.SHADOWCUT_TEST_FAIL_AT ?? '').split('@');
    return name === step && (suffix === undefined || shadow.endsWith(suffix)) && failures++ === 0;
  };
  return {
    fails,
    async at(step) {
      if (env.SHADOWCUT_TEST_KILL_AT === step) process.kill(process.pid, 'SIGKILL');
      if (env.SHADOWCUT_TEST_PAUSE_AT === step) await new Promise((r) => setTimeout(r, pauseMs));
      if (fails(step)) throw new LockTimeoutError(`failed at ${step} (SHADOWCUT_TEST_FAIL_AT)`);
    },
  };
}

/** No seam anywhere: the default of a run not started by the CLI, and of an engine's cut-over called directly. */
export const NO_SEAMS: FailureSeams = seamsOf({});
