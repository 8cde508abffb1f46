import type { Pool } from 'mysql2/promise';
import { sleep } from '../../../core/engine/retry/backoff.js';
import type { CutoverResult } from '../../../core/engine/types.js';
import { qualified } from '../server/sql.js';
import { unplannedChildKeys } from './child-keys.js';
import { carryAutoIncrement, createTriggers, shadowAsBefore, type SwapPart } from './cutover.js';
import { dropHelperKey } from '../copy/helper-key.js';
import { lostRenameOutcome } from './rename-outcome.js';
import type { GaleraGate } from '../galera/gate.js';
import { lostSwapSession, UnknownSwapError, UserError, SEEN_WHERE_AWAITED, ignoreFailure, failedAs } from '../../../core/engine/errors.js';
import { isTransientMysqlError, isUnanswered } from '../server/errors.js';
import type { FailureSeams } from '../../../core/engine/failure-seams.js';

/**
 * The swap on a Galera cluster (../galera/README.md): the gate instead of LOCK TABLES, the RENAME alone in total
 * order. With every node's writers held at the gate: the last changes (read from the binlog up to
 * the causal read's position, copied from the original in consistent reads), the counter and the
 * table's own triggers onto the shadow, the seal, and the RENAME. The RENAME aborts the writers
 * waiting at the gates, and their retried statements find the new table. Writers wait from the
 * gate's grant until the RENAME: what `lockedMs` reports.
 *
 * The RENAME, a TOI statement, is never cut short (the gate's session has no statement time limit:
 * `server/galera-node.ts`); what can make it wait is a session holding the table by LOCK TABLES or a backup
 * lock on some node. Past the lock timeout the holders let go, so writers get the sealed gate's error
 * rather than wait with it.
 */
export async function galeraCutover(pool: Pool, part: SwapPart, gate: GaleraGate, lockTimeoutMs: number, seams: FailureSeams): Promise<CutoverResult> {
  const { plan } = part;
  const closed = await gate.close(lockTimeoutMs).catch((error: unknown) => Promise.reject(isTransientMysqlError(error) ? lostSwapSession(error) : error));
  const heldAt = performance.now();
  let sealed = false;
  /** Sent: a RENAME in total order runs on every node whatever becomes of our session. */
  let renaming = false;
  let renamed = false;
  try {
    await seams.at('galera-held');
    await part.catchUp(closed.session);
    await carryAutoIncrement(closed.session.conn, plan);
    await createTriggers(closed.session.conn, plan);
    await dropHelperKey(closed.session.conn, plan);
    const unplanned = await unplannedChildKeys(closed.session.conn, plan.children, plan.database, plan.table);
    if (unplanned.length)
      throw new UserError(`foreign keys made during the run reference ${plan.table} (${unplanned.join(', ')}); they would follow the old table: run again`);
    sealed = true; // before the statement: it may commit and still fail to confirm
    await closed.seal();
    await seams.at('galera-sealed');
    const [orig, shadow, old] = [plan.table, plan.shadow, plan.old].map((t) => qualified(plan.database, t));
    renaming = true;
    const rename = closed.session.conn.query(`RENAME TABLE ${orig} TO ${old}, ${shadow} TO ${orig}`).then(() => (renamed = true));
    rename.catch(ignoreFailure(SEEN_WHERE_AWAITED));
    const first = await Promise.race([rename.then(() => true), sleep(lockTimeoutMs).then(() => false)]);
    if (!first) await closed.releaseHolders();
    await rename;
    await seams.at('galera-renamed');
    await closed.releaseHolders(true);
    return { lockedMs: Math.round(performance.now() - heldAt) };
  } catch (error) {
    // Sent and not answered: the RENAME may have run, or may yet run, on every node. Looked into; one
    // still there after the bound keeps the seal (no writer reaches the original after the catch-up),
    // as for a run killed here, and what it made is the resume's to find.
    if (renaming && !renamed && isUnanswered(error)) {
      const made = await lostRenameOutcome(pool, closed.session.conn.threadId, plan).catch(
        failedAs(null, 'what the lost RENAME made cannot be seen now: the resume looks again'),
      );
      if (made) {
        await closed.releaseHolders(true);
        return { lockedMs: Math.round(performance.now() - heldAt) };
      }
      if (made === null) {
        await closed.releaseHolders();
        throw new UnknownSwapError(error);
      }
    }
    if (!renamed) {
      try {
        if (sealed) await closed.unseal().catch(() => gate.open());
      } finally {
        await closed.releaseHolders();
        await shadowAsBefore(pool, plan); // the next attempt readies it again
      }
    }
    if (isTransientMysqlError(error)) throw lostSwapSession(error);
    throw error;
  } finally {
    await closed.release();
  }
}
