import type { Backfill, BackfillRequest } from '../../backfill/types.js';

/** `shadowcut backfill`: the engine's half of a keyset UPDATE, whose batches and checkpoints core drives. */
export interface EngineBackfill {
  /** A keyset UPDATE of the table (`shadowcut backfill`), on the key `prepare` would choose; throws UserError when there is none. */
  prepareBackfill(request: BackfillRequest): Promise<Backfill>;
}
