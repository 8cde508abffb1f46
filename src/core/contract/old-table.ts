import { RunClaim } from '../run/claim.js';
import { UserError } from '../engine/errors.js';
import type { HistoryEntry } from '../engine/ports/history.js';
import type { EngineHelperTables } from '../engine/ports/helper-table.js';
import { migratedFrom } from '../engine/old-table.js';
import type { EngineServer } from '../engine/ports/server.js';
import type { ContractRequest } from '../engine/ports/contract.js';
import { historyOf } from '../history/store.js';

/**
 * A table contract of `<table>__old` (or `<table>__old_<n>`, where earlier runs kept theirs) drops what a migration of `<table>` kept for its way back. That
 * migration's run may still hold a revert window, whose triggers keep the old table level with the
 * new one and whose revert renames it back: the old table is its, not ours to drop, so the contract
 * takes the migrated table's claim too, and is refused while that run lives. And the soak is the
 * migration's: the old table's own history is empty ("shadowcut never changed it"), yet dropping it
 * ends the way back that migration left.
 */
export async function oldTableOf(
  engine: EngineServer & EngineHelperTables,
  request: ContractRequest,
): Promise<{ claim: RunClaim; migrations: HistoryEntry[] } | null> {
  const base = request.drop.kind === 'table' ? migratedFrom(request.table) : null;
  if (!base) return null;
  const claim = await RunClaim.take(engine, base).catch((error: unknown) => {
    if (!(error instanceof UserError)) throw error;
    throw new UserError(
      `${engine.qualify(request.table)} is the old table a migration of ${engine.qualify(base)} keeps, and a run on ${engine.qualify(base)} is still going ` +
        `(a revert window follows the new table into it): complete or revert that run first`,
    );
  });
  try {
    const migrations = (await historyOf(engine).list(engine.qualify(base))).filter((e) => e.command === 'migrate');
    return { claim, migrations };
  } catch (error) {
    await claim.release();
    throw error;
  }
}
