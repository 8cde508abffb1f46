import { restoreStorageOptions, yieldAutovacuum } from '../server/autovacuum.js';
import type pg from 'pg';
import type { CutoverResult } from '../../../core/engine/types.js';
import { asLockTimeout, isRolledBack, isTransientPgError } from '../server/errors.js';
import { ident, qualified } from '../server/sql.js';
import { PgSession, type Client } from '../server/connect.js';
import { definitionOf, firstDifference } from '../schema/inspect.js';
import { expectPartitionTree } from '../schema/partitions.js';
import { lostSwapSession, UnknownSwapError, UserError, ROLLBACK_AFTER_FAILURE, ignoreFailure } from '../../../core/engine/errors.js';
import { addChecks } from '../schema/not-valid-checks.js';
import { nameLikeNative } from '../schema/generated-names.js';
import { columnPairs, matchRights } from '../schema/rights.js';
import { literal, type ForeignKey } from './bound-to-original.js';
import { afterSwap, carriedOf, finishSwap, type Carried, type SwapPart } from './swap-part.js';
import { withColumnsRenamed } from './renamed-columns.js';
import { swapStatistics } from './statistics.js';

export type { SwapPart } from './swap-part.js';

/** The swap of a table whose rows live on other servers too: its transaction's settings, and what must hold once it has its locks. */
export interface SpreadSwap {
  settings: string[];
  locked(client: Client): Promise<void>;
}

/**
 * One transaction: lock both tables, drain the stream to the LSN taken under the lock, swap the
 * names, and carry over what is bound to the original's OID rather than its name. Any failure rolls
 * all of it back, leaving the original in place and serving (invariant 5). Several tables (a set)
 * swap in the same transaction: every one is locked and caught up before any name changes, so a
 * reader sees either every old table or every new one. A foreign key between two of them is read
 * from both sides and re-added once, between the new tables.
 * The ACCESS EXCLUSIVE request queues every later reader behind it, so `lock_timeout` must be short:
 * it bounds how long anyone waits on us, and the runner retries.
 */
export async function cutover(
  pool: pg.Pool,
  parts: SwapPart[],
  lockTimeoutMs: number,
  /** A comment for the table that steps aside (a revert's: the new table, which must not pass for a dead run's shadow); null keeps its own. */
  asideComment: string | null,
  /** What a table spread over several servers adds (../citus/cutover.ts): settings of the transaction, and a wait once the tables are locked. */
  spread?: SpreadSwap,
): Promise<CutoverResult> {
  await yieldAutovacuum(
    pool,
    parts.flatMap((p) => [p.copier.original, p.copier.shadow]),
  );
  const client = await pool.connect();
  let failure: Error | undefined;
  let committing = false;
  const began = performance.now();
  try {
    await client.query('BEGIN');
    await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
    for (const setting of spread?.settings ?? []) await client.query(setting);
    // Re-adding the tables' own foreign keys locks the tables they reference (SHARE ROW EXCLUSIVE).
    // Take those first: an application's cascade locks parent then child, and the opposite order
    // here would deadlock with it, with the application's transaction as a possible victim.
    const oids = parts.map((p) => p.copier.d.oid);
    const parents = await client.query(
      `SELECT DISTINCT confrelid::regclass::text AS t FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY ($1::oid[]) AND NOT confrelid = ANY ($1::oid[])`,
      [oids],
    );
    if (parents.rows.length) await client.query(`LOCK TABLE ${parents.rows.map((r) => r.t).join(', ')} IN SHARE ROW EXCLUSIVE MODE`);
    const dependents = await dependentRelations(client, parts);
    await client.query(`LOCK TABLE ${[...parts.map((p) => `${p.copier.original}, ${p.copier.shadow}`), ...dependents].join(', ')} IN ACCESS EXCLUSIVE MODE`);
    await spread?.locked(client);
    for (const part of parts) {
      const d = part.copier.d;
      // The stream reports another session's DDL only when a change to the table follows it; under
      // this lock nothing can follow, so look at the columns themselves before swapping.
      const changed = firstDifference(d.definition, await definitionOf(client, d.oid));
      if (changed !== null) {
        throw new UserError(`${d.schema}.${d.name} was altered during the migration (${changed}); start again`);
      }
      await expectPartitionTree(client, d);
      await part.catchUp(new PgSession(client, true));
      // Trigger capture: the log is drained, and nothing more can be written under this lock. Gone with
      // the swap, and back with a rollback; left on the old table, they would slow its writers for nothing.
      await part.triggers?.removeAtCutover(client);
      // The shadow's own key index (the ALTER dropped the key's): the last change is applied and
      // compared, and the new table is as the native ALTER leaves it, without it.
      if (d.helperKey) await client.query(`DROP INDEX ${qualified(d.schema, d.helperKey.shadow)}`);
    }

    const carried: Carried[] = [];
    await withColumnsRenamed(
      client,
      parts.map((p) => p.copier.d),
      async (renamed) => {
        for (const [i, part] of parts.entries()) carried.push(await carriedOf(client, part, renamed[i]));
      },
    );
    const foreignKeys = new Map<string, ForeignKey>();
    for (const fk of carried.flatMap((c) => c.foreignKeys)) foreignKeys.set(`${fk.table}\0${fk.name}`, fk);
    // Rules move with the table: left on the old one, they would fire again for what follows it back.
    for (const statement of carried.flatMap((c) => c.before)) await client.query(statement);
    for (const fk of foreignKeys.values()) await client.query(`ALTER TABLE ${fk.table} DROP CONSTRAINT ${ident(fk.name)}`);
    for (const { part } of carried) await swapStatistics(client, part.copier.d);
    // Every old tree steps aside before any of the new ones takes its names.
    for (const { part } of carried) {
      const d = part.copier.d;
      await client.query(`ALTER TABLE ${part.copier.original} RENAME TO ${ident(d.old)}`);
      for (const p of d.partitions ?? []) await client.query(`ALTER TABLE ${qualified(d.schema, p.name)} RENAME TO ${ident(p.old)}`);
    }
    for (const { part } of carried) {
      const d = part.copier.d;
      await client.query(`ALTER TABLE ${part.copier.shadow} RENAME TO ${ident(d.name)}`);
      for (const p of d.partitions ?? []) await client.query(`ALTER TABLE ${qualified(d.schema, p.shadow)} RENAME TO ${ident(p.name)}`);
    }
    // From here each original's name (`copier.original`) means its new table.
    for (const c of carried) await finishSwap(client, c);
    // A view or rule that names two tables of a set is made once.
    for (const statement of new Set(carried.flatMap((c) => [...c.statements, ...c.withIndexes]))) await client.query(statement);
    // Exactly the old table's rights (and each partition's), grants made on it during the run
    // included, and nothing the migrating role's default privileges gave the shadow.
    for (const { part } of carried) {
      const d = part.copier.d;
      for (const r of [{ oid: d.oid, name: d.name }, ...(d.partitions ?? [])])
        await matchRights(client, r.oid, qualified(d.schema, r.name), columnPairs(d.columns));
    }
    for (const { part } of carried) await addChecks(client, part.copier.original, part.copier.d.notValidChecks ?? []);
    for (const { part } of carried) if (part.copier.d.autovacuum) await restoreStorageOptions(client, part.copier.original, part.copier.d.autovacuum);
    for (const { part } of carried) await nameLikeNative(client, part.copier.d, part.copier.d.generatedNames ?? []);
    // Validated after the commit (in cleanup), without holding the lock.
    for (const fk of foreignKeys.values()) {
      await client.query(`ALTER TABLE ${fk.table} ADD CONSTRAINT ${ident(fk.name)} ${fk.def}${fk.validated ? ' NOT VALID' : ''}`);
      if (fk.comment !== null) await client.query(`COMMENT ON CONSTRAINT ${ident(fk.name)} ON ${fk.table} IS ${literal(fk.comment)}`);
    }
    // The ALTER's clauses on the table's own keys, one statement each (a RENAME stands alone).
    for (const { part } of carried)
      for (const clause of part.copier.d.foreignKeyClauses ?? []) await client.query(`ALTER TABLE ${part.copier.original} ${clause}`);
    for (const c of carried) await afterSwap(client, c);
    if (asideComment !== null) {
      for (const { part } of carried) await client.query(`COMMENT ON TABLE ${qualified(part.copier.d.schema, part.copier.d.old)} IS ${literal(asideComment)}`);
    }
    committing = true;
    await client.query('COMMIT');
    return { lockedMs: Math.round(performance.now() - began) };
  } catch (error) {
    failure = error as Error;
    await client.query('ROLLBACK').catch(ignoreFailure(ROLLBACK_AFTER_FAILURE));
    // A session lost before its COMMIT was sent took the whole transaction with it: the original is
    // as it was, and the next attempt starts clean. Lost during the COMMIT, the outcome is unknown
    // (unless the server answered that it rolled back): the run stops as it is, and a resumed run
    // finds out which it was.
    if (isTransientPgError(error)) throw committing && !isRolledBack(error) ? new UnknownSwapError(error) : lostSwapSession(error);
    throw asLockTimeout(error, 'cut-over');
  } finally {
    client.release(failure); // discarded after a failure, in case its connection broke
  }
}

/**
 * The other relations the swap alters once the tables are caught up (the tables whose foreign keys
 * reference them or their partitions, views and rules that name them), locked with them, at once.
 * Asked for only then, each lock would be waited for after the catch-up: a writer of a child queued
 * behind our lock on the parent (its key check) while holding the child would be in a cycle with us
 * that its own deadlock check, past deadlock_timeout (1 s), found first, and the application's
 * statement would be the one aborted (an INSERT into the child failing with "deadlock detected").
 * Asked for here, each of our waits ends within lock_timeout of the last grant, below deadlock_timeout.
 */
async function dependentRelations(client: Client, parts: SwapPart[]): Promise<string[]> {
  const oids = parts.flatMap((p) => [p.copier.d.oid, ...(p.copier.d.partitions ?? []).map((q) => q.oid)]);
  const { rows } = await client.query(
    `SELECT c.oid::regclass::text AS t FROM pg_class c
      WHERE NOT c.oid = ANY ($1::oid[])
        AND (c.oid IN (SELECT conrelid FROM pg_constraint WHERE contype = 'f' AND confrelid = ANY ($1::oid[]))
         OR EXISTS (SELECT 1 FROM pg_depend dep JOIN pg_rewrite r ON r.oid = dep.objid
                     WHERE dep.classid = 'pg_rewrite'::regclass AND dep.refclassid = 'pg_class'::regclass AND dep.refobjid = ANY ($1::oid[])
                       AND r.ev_class = c.oid AND (r.rulename <> '_RETURN' OR c.relkind = 'v')))
      ORDER BY c.oid`,
    [oids],
  );
  return rows.map((r: { t: string }) => r.t);
}
