import type { Connection, Pool, RowDataPacket } from 'mysql2/promise';
import type { CutoverOptions, CutoverResult } from '../../../core/engine/types.js';
import { connectOne } from '../server/connect.js';
import { isTransientMysqlError, isUnanswered } from '../server/errors.js';
import type { MysqlTarget } from '../server/target.js';
import { LockedSession, lockTables } from '../server/lock.js';
import { addHelperKey, dropHelperKey } from '../copy/helper-key.js';
import type { MysqlPlan } from '../schema/plan.js';
import { qualified, NOTHING_TO_KILL, STATS_EXPIRY_MYSQL_8 } from '../server/sql.js';
import { childKeysBack, moveSetKeys, pointChildKeys, setKeysBack, unplannedChildKeys, KEYS_BACK_IN_UNDO } from './child-keys.js';
import { movedKeys } from '../schema/foreign-keys.js';
import { parentTables } from './parent-keys.js';
import { ChildHolders } from './child-holders.js';
import { SetHolders, settled } from './set-holders.js';
import { isSentry, lostRenameOutcome, SENTRY_COMMENT } from './rename-outcome.js';
import {
  LockTimeoutError,
  lostSwapSession,
  UnfinishedSwapError,
  UnknownSwapError,
  UserError,
  SEEN_WHERE_AWAITED,
  ignoreFailure,
} from '../../../core/engine/errors.js';
import type { FailureSeams } from '../../../core/engine/failure-seams.js';

/** One table's part of a swap: a set's has several, swapped together. */
export interface SwapPart {
  plan: MysqlPlan;
  catchUp: CutoverOptions['catchUp'];
}

/** A part's child holders and what its attempt has done so far. */
interface Swap extends SwapPart {
  holders: ChildHolders;
  /** From the first child key's move until the RENAME: the keys may reference the shadow. */
  pointed: boolean;
  /** Its keys to other tables of the set moved from the original to the shadow. */
  moved: boolean;
}

/** The one RENAME of an attempt, and what became of it. */
interface Rename {
  statement: Promise<unknown> | null;
  made: boolean;
  /** Its session went without an answer (the error it got): the RENAME may have run, until looked into. */
  lost: unknown;
}

/**
 * The atomic swap that works on MariaDB and MySQL alike (MariaDB cannot RENAME under LOCK TABLES):
 *  1. create a sentry table under the name the original will move to;
 *  2. the locker takes LOCK TABLES ... WRITE on original, shadow and sentry, and applies the last changes;
 *  3. the renamer issues RENAME original -> old, shadow -> original, which queues behind the lock;
 *  4. the locker drops the sentry and unlocks, and the queued RENAME runs before any waiting writer.
 * If the locker dies before step 4 its locks vanish, the RENAME finds the sentry in the way and
 * fails, and the original stays in place (docs/invariants.md, invariant 5).
 * Tables whose foreign keys reference the original are locked too, and after the catch-up their keys
 * are pointed at the shadow (InnoDB moves a key with the table it references at a RENAME, so the
 * RENAME then carries them to the original's name). Until the RENAME has run, a failure points them
 * back; a run killed in between leaves that to its resume or cleanup (childKeys in migration.ts).
 * Several tables (a set) are locked by the one locker, caught up on it, and swapped by one RENAME of
 * every pair, whole or not at all; its holders (set-holders.ts) keep writers out of the originals the
 * RENAME reaches after the unlock. A key between two tables of the set moves from the old child to
 * the child's shadow, referencing the parent's shadow.
 */
export async function cutover(
  target: MysqlTarget,
  pool: Pool,
  parts: SwapPart[],
  lockTimeoutMs: number,
  flavor: 'mariadb' | 'mysql',
  seams: FailureSeams,
): Promise<CutoverResult> {
  const locker = await connectOne(target);
  const renamer = await connectOne(target).catch(closing(locker));
  const swaps: Swap[] = [];
  let set = SetHolders.none();
  const rename: Rename = { statement: null, made: false, lost: null };
  let locked = false;
  let lockedAt = performance.now();
  try {
    await renamer.query('SET SESSION lock_wait_timeout = 30');
    for (const part of parts) {
      // Connected before the lock, so that under it each only queues its LOCK TABLES.
      const holders = flavor === 'mariadb' ? await ChildHolders.open(target, part.plan) : ChildHolders.none();
      swaps.push({ ...part, holders, pointed: false, moved: false });
    }
    set = await SetHolders.open(
      target,
      parts.map((p) => p.plan),
    );
    const list: string[] = [];
    for (const { plan } of swaps) {
      await dropSentry(pool, plan.database, plan.old); // one left by a run that died mid cut-over
      await locker.query(`CREATE TABLE ${qualified(plan.database, plan.old)} (sentry INT) ENGINE=InnoDB COMMENT='${SENTRY_COMMENT}'`);
      // The capture log is read on the locker (MySQL write-locks it with the original, for the triggers).
      list.push(...[plan.table, plan.shadow, plan.old, ...(plan.log === undefined ? [] : [plan.log])].map((t) => qualified(plan.database, t)));
      list.push(...plan.children.map((k) => qualified(k.database, k.table)));
    }
    await seams.at('before-lock');
    // The parents of the keys that move are held READ: none of their rows goes while a key is between the tables.
    const write = new Set(list);
    const read = new Set(swaps.flatMap(({ plan }) => parentTables(plan).map((p) => qualified(p.database, p.table))).filter((p) => !write.has(p)));
    const locks = [...[...write].map((t) => `${t} WRITE`), ...[...read].map((t) => `${t} READ`)];
    await lockTables(locker, pool, `LOCK TABLES ${locks.join(', ')}`, lockTimeoutMs);
    locked = true;
    lockedAt = performance.now();
    const session = new LockedSession(locker, lockedAt);
    for (const swap of swaps) await readyUnderLock(session, swap);
    for (const swap of swaps) {
      swap.moved = movedKeys(swap.plan).length > 0;
      await moveSetKeys(locker, swap.plan, 'to the shadow');
    }
    await seams.at('after-children-pointed');

    rename.statement = renamer
      .query(
        renameStatement(
          swaps.map((s) => s.plan),
          seams,
        ),
      )
      .then(
        () => void (rename.made = true),
        (error: unknown) => Promise.reject(((rename.lost = isUnanswered(error) ? error : null), error)),
      );
    rename.statement.catch(ignoreFailure(SEEN_WHERE_AWAITED));
    await waitUntilQueued(pool, renamer, rename.statement, lockTimeoutMs, 'the RENAME');
    for (const swap of swaps) await swap.holders.queue((session, lock, what) => waitUntilQueued(pool, session, lock, lockTimeoutMs, what));
    await set.queue((session, lock, what) => waitUntilQueued(pool, session, lock, lockTimeoutMs, what));

    await locker.query(`DROP TABLE ${swaps.map(({ plan }) => qualified(plan.database, plan.old)).join(', ')}`);
    locked = false;
    await locker.query('UNLOCK TABLES');
    await set.letThrough(rename.statement, () => seams.at('rename-at-gate'));
    await settleLostRename(pool, renamer, rename, swaps);
    if (rename.made) return { lockedMs: Math.round(performance.now() - lockedAt) };
    // It swapped nothing, as any attempt that fails: the tables are as they were, and the next attempt may swap them.
    const failure = await rename.statement.then(
      () => null,
      (error: unknown) => error as Error,
    );
    throw new LockTimeoutError(`the RENAME failed${failure ? ` (${failure.message})` : ''}`);
  } catch (error) {
    if (error instanceof UnfinishedSwapError) throw error;
    for (const swap of swaps) {
      // The keys go back to the original while no writer can reach them: the sentry is still in
      // place, so the RENAME cannot have run.
      if (swap.pointed && locked)
        await pointChildKeys(locker, swap.plan.children, swap.plan.database, swap.plan.shadow, swap.plan.table).catch(ignoreFailure(KEYS_BACK_IN_UNDO));
      if (swap.moved && locked) await moveSetKeys(locker, swap.plan, 'back').catch(ignoreFailure(KEYS_BACK_IN_UNDO));
    }
    // Release the lock with the sentries still in place, so a queued RENAME fails harmlessly,
    // and only then remove the sentries.
    await locker.query('UNLOCK TABLES').catch(() => endLost(pool, locker));
    // A RENAME still in line (a failure at a gate) is ended: it has made nothing, or all.
    if (rename.statement && !(await settled(rename.statement)))
      await pool.query(`KILL QUERY ${Number(renamer.threadId)}`).catch(ignoreFailure(NOTHING_TO_KILL));
    await set.letThrough(rename.statement ?? Promise.resolve(), () => Promise.resolve());
    await settleLostRename(pool, renamer, rename, swaps);
    // Swapped after all (the failure came after the RENAME ran): writers waited from the lock until now at most.
    if (rename.made) return { lockedMs: Math.round(performance.now() - lockedAt) };
    // Nothing was swapped: before the sentries went the queued RENAME fails on its sentry, and after,
    // it answered or was looked into. A lost session is then one failed attempt.
    await set.keysBack(pool, Math.max(lockTimeoutMs, 1000));
    for (const swap of swaps) await undoAttempt(pool, swap);
    if (isTransientMysqlError(error)) throw lostSwapSession(error);
    throw error;
  } finally {
    // Only now, with the RENAME done or failed, may the writers go on.
    for (const swap of swaps) await swap.holders.release();
    await set.release();
    await renamer.end().catch(() => renamer.destroy());
    await locker.end().catch(() => locker.destroy());
  }
}

/** Every pair of the swap in one statement; the seam adds one that names no table, so that the whole statement fails once it runs. */
function renameStatement(plans: MysqlPlan[], seams: FailureSeams): string {
  const pairs = plans.map((plan) => {
    const [orig, shadow, old] = [plan.table, plan.shadow, plan.old].map((t) => qualified(plan.database, t));
    return `${orig} TO ${old}, ${shadow} TO ${orig}`;
  });
  const failing = plans.find((plan) => seams.fails('rename-after-unlock', plan.shadow));
  if (failing) pairs.push(`${qualified(failing.database, `${failing.table}__none`)} TO ${qualified(failing.database, `${failing.table}__nil`)}`);
  return `RENAME TABLE ${pairs.join(', ')}`;
}

/**
 * A RENAME that went without an answer is looked into (`lostRenameOutcome`): made or not. One whose
 * thread outlasts the bound leaves the swap unknown: nothing is undone, and the resume finds out.
 */
async function settleLostRename(pool: Pool, renamer: Connection, rename: Rename, swaps: Swap[]): Promise<void> {
  await rename.statement?.catch(ignoreFailure('only waits for the RENAME to end: its outcome is in rename.made and rename.lost'));
  if (rename.lost === null || rename.made || swaps.length === 0) return;
  const made = await lostRenameOutcome(pool, renamer.threadId, swaps[0].plan);
  if (made === null) throw new UnknownSwapError(rename.lost);
  rename.made = made;
  rename.lost = null;
}

/**
 * A session of ours whose connection failed may live on in the server (a cut network: the server
 * notices only at its timeouts) and keep its locks: ended from another session too.
 */
export async function endLost(pool: Pool, conn: Connection): Promise<void> {
  conn.destroy();
  await pool.query(`KILL CONNECTION ${Number(conn.threadId)}`).catch(ignoreFailure(NOTHING_TO_KILL));
}

/** Closes a session when what follows its opening fails. */
function closing(session: Connection): (error: unknown) => never {
  return (error) => {
    session.destroy();
    throw error;
  };
}

/** Under the lock, for one table: the last changes, the counter, the moved triggers, the child keys pointed at the shadow. */
async function readyUnderLock(session: LockedSession, swap: Swap): Promise<void> {
  const { plan } = swap;
  const locker = session.conn;
  await swap.catchUp(session);
  await carryAutoIncrement(locker, plan);
  // Only now, with no apply left to run: a trigger on the shadow must never fire for our own writes.
  await createTriggers(locker, plan);
  await dropHelperKey(locker, plan);
  const unplanned = await unplannedChildKeys(locker, [...plan.children, ...(plan.setChildren ?? [])], plan.database, plan.table);
  if (unplanned.length) {
    throw new UserError(`foreign keys made during the run reference ${plan.table} (${unplanned.join(', ')}); they would follow the old table: run again`);
  }
  swap.pointed = plan.children.length > 0;
  await pointChildKeys(locker, plan.children, plan.database, plan.table, plan.shadow);
}

/**
 * A failed attempt, after the UNLOCK with no RENAME run: the RENAME failed after the UNLOCK, so each
 * holder, granted its child by now, points the child's keys back before any writer reaches it.
 * Whatever is left (a holder never granted, a lock lost before the holders queued) goes back
 * without a lock, and fails loudly if that fails too.
 */
async function undoAttempt(pool: Pool, swap: Swap): Promise<void> {
  const { plan } = swap;
  if (swap.pointed) await swap.holders.pointBack(plan);
  await swap.holders.release();
  if (swap.pointed) await childKeysBack(pool, plan);
  // Moved back under the set's hold on the original (set-holders.ts); one never granted, here.
  if (swap.moved) await setKeysBack(pool, plan);
  await shadowAsBefore(pool, plan); // a later attempt readies it again
  await dropSentry(pool, plan.database, plan.old);
}

/**
 * An id the original handed out stays handed out. A row inserted and deleted between two applies
 * never reaches the shadow, so the shadow's counter can lag the original's; with writers locked out,
 * the original's counter is final.
 */
export async function carryAutoIncrement(locker: Connection, plan: MysqlPlan): Promise<void> {
  if (plan.autoIncrementGiven) return;
  await locker.query('SET SESSION information_schema_stats_expiry = 0').catch(ignoreFailure(STATS_EXPIRY_MYSQL_8)); // MySQL 8 caches it otherwise
  const [rows] = await locker.query<RowDataPacket[]>(
    'SELECT TABLE_NAME AS t, AUTO_INCREMENT AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?, ?)',
    [plan.database, plan.table, plan.shadow],
  );
  const counter = (name: string) => rows.find((r) => r.t === name)?.n;
  const original = counter(plan.table);
  const shadow = counter(plan.shadow);
  if (original == null || shadow == null || BigInt(String(original)) <= BigInt(String(shadow))) return;
  await locker.query(`ALTER TABLE ${qualified(plan.database, plan.shadow)} AUTO_INCREMENT = ${BigInt(String(original))}`);
}

/**
 * Each in the session it was created in: its sql_mode governs how its body runs, its
 * character_set_client how the body is read, and its collation_connection how its string literals
 * compare. (The triggers check refused a CREATE whose text the driver's utf8mb4 would not spell in
 * that character set.) The locker's own settings come back after.
 */
export async function createTriggers(locker: Connection, plan: MysqlPlan): Promise<void> {
  if (plan.triggers.length === 0) return;
  const [[before]] = await locker.query<RowDataPacket[]>(
    'SELECT @@SESSION.sql_mode AS m, @@SESSION.character_set_client AS cs, @@SESSION.collation_connection AS co',
  );
  try {
    for (const trigger of plan.triggers) {
      await locker.query('SET SESSION sql_mode = ?', [trigger.sqlMode]);
      if (trigger.characterSetClient && trigger.collationConnection) {
        await locker.query('SET SESSION character_set_client = ?, collation_connection = ?', [trigger.characterSetClient, trigger.collationConnection]);
      }
      await locker.query(trigger.create);
    }
  } finally {
    await locker.query('SET SESSION sql_mode = ?, character_set_client = ?, collation_connection = ?', [before.m, before.cs, before.co]);
  }
}

/** The moved triggers, from the shadow: after a failed attempt, or one a killed run left. */
export async function dropTriggers(pool: Pool, plan: MysqlPlan): Promise<void> {
  for (const trigger of plan.triggers) await pool.query(`DROP TRIGGER IF EXISTS ${qualified(plan.database, trigger.newName)}`);
}

/** The shadow as the copy left it, after a failed attempt or one a killed run left: no moved triggers, its own key index back. */
export async function shadowAsBefore(pool: Pool, plan: MysqlPlan): Promise<void> {
  await dropTriggers(pool, plan);
  await addHelperKey(pool, plan);
}

async function waitUntilQueued(pool: Pool, session: Connection, statement: Promise<unknown>, timeoutMs: number, what: string) {
  let failed: unknown = null;
  statement.catch((e) => (failed = e));
  const deadline = Date.now() + Math.max(timeoutMs, 1000);
  while (Date.now() < deadline) {
    if (failed) throw failed;
    const [rows] = await pool.query<RowDataPacket[]>('SELECT STATE FROM information_schema.PROCESSLIST WHERE ID = ?', [session.threadId]);
    if (rows.length && /metadata lock/i.test(String(rows[0].STATE))) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new LockTimeoutError(`${what} did not queue behind the cut-over lock in time`);
}

/** Drops the sentry table, and only the sentry: after a successful swap that name holds the real old table. */
export async function dropSentry(pool: Pool, database: string, name: string): Promise<boolean> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [
    database,
    name,
  ]);
  if (!rows.length || !isSentry(String(rows[0].TABLE_COMMENT))) return false;
  await pool.query(`DROP TABLE IF EXISTS ${qualified(database, name)}`);
  return true;
}
