import type { AlterClassification, InPlaceStep, WorkWaits } from '../../in-place/types.js';

/**
 * The ALTER made on the table itself, without a copy, where the server can (core/in-place): the
 * engine classifies each part and runs the steps; core orders them, retries and undoes them.
 */
export interface EngineInPlace {
  /**
   * Each part of the ALTER classified (instant, online index, validate later, copy), the server asked
   * where it can tell, and the in-place path's steps; nothing is left behind. Throws UserError for a
   * table that does not exist or an ALTER the server rejects.
   */
  classifyAlter(table: string, alter: string): Promise<AlterClassification>;
  /**
   * Runs one in-place step, each statement waiting at most `lockTimeoutMs` for its locks; throws
   * LockTimeoutError when one was not had in time (a transaction step then changed nothing). A wait
   * for older transactions to end (not for a lock) is bounded by `waits` instead, where the engine has one.
   */
  runInPlaceStep(step: InPlaceStep, lockTimeoutMs: number, waits?: WorkWaits): Promise<void>;
}
