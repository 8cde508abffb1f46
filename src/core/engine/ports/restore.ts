import type { RestoreTarget } from '../../restore/types.js';

/** `shadowcut restore`: the engine reads the catalogs and makes the change; core checks the history and fills the rows. */
export interface EngineRestore {
  /** `shadowcut restore`: the table and a contract's backup as the catalogs describe them (core/restore); throws UserError for bad names. */
  prepareRestore(request: { table: string; backup: string }): Promise<RestoreTarget>;
}
