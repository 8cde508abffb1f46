import { waitFor } from '../engine/retry/wait-for.js';
import { UserError, CLEANUP_AFTER_FAILURE, CLOSING, ignoreFailure, failedAs } from '../engine/errors.js';
import type { ClaimSession, EngineServer } from '../engine/ports/server.js';

/** The claim was lost and another run took it: that run's objects are not ours to remove. */
export class ClaimLostError extends UserError {
  constructor(table: string) {
    super(`another shadowcut run took over ${table} after this run lost its connection; stopping without touching its objects`);
    this.name = 'ClaimLostError';
  }
}

/**
 * How long a claim is tried before a run is refused: a run killed a moment ago holds its claim until
 * the server notices its connection is gone.
 */
const CLAIM_WAIT_MS = 1500;

function takeWithin(session: ClaimSession, ms: number): Promise<boolean> {
  return waitFor(
    () => session.take(),
    (taken) => taken,
    { withinMs: ms, everyMs: 100 },
  );
}

/**
 * One run per table at a time, for the whole run. A second run (or `cleanup`) on a table that a live
 * run is migrating is refused before it reads a checkpoint or drops anything, so it can never remove
 * the first run's shadow, stream or triggers.
 */
export class RunClaim {
  private constructor(
    private readonly engine: EngineServer,
    private readonly table: string,
    private session: ClaimSession,
  ) {}

  static async take(engine: EngineServer, table: string): Promise<RunClaim> {
    const session = await engine.openClaim(table);
    try {
      if (!(await takeWithin(session, CLAIM_WAIT_MS))) {
        const holder = await session.holder().catch(failedAs(null, 'the holder is only named when it can be read'));
        throw new UserError(
          `another shadowcut run is migrating ${engine.qualify(table)}${holder ? ` (${holder})` : ''}; ` +
            'wait for it to end, or stop it first (abort on its control socket, its panic flag file, or Ctrl-C)',
        );
      }
    } catch (error) {
      await session.close().catch(ignoreFailure(CLEANUP_AFTER_FAILURE));
      throw error;
    }
    return new RunClaim(engine, table, session);
  }

  /**
   * Called at every checkpoint and before the swap: keeps the session from idling out, and after a
   * lost connection takes the lock again on a new one, unless another run got there first.
   */
  async confirm(): Promise<void> {
    try {
      await this.session.ping();
      return;
    } catch {
      await this.session.close().catch(ignoreFailure('the session failed its ping and is replaced: closing the broken one may fail too'));
    }
    this.session = await this.engine.openClaim(this.table);
    if (!(await this.session.take())) throw new ClaimLostError(this.engine.qualify(this.table));
  }

  async release(): Promise<void> {
    await this.session.close().catch(ignoreFailure(CLOSING));
  }
}
