import type { Connection, Pool } from 'mysql2/promise';
import { sleep } from '../../../core/engine/retry/backoff.js';
import { connectOne } from '../server/connect.js';
import type { MysqlTarget } from '../server/target.js';
import type { MysqlPlan } from '../schema/plan.js';
import { qualified, NOTHING_TO_KILL } from '../server/sql.js';
import { moveSetKeys, setKeysAway } from './child-keys.js';
import { movedKeys } from '../schema/foreign-keys.js';
import { parentTables } from './parent-keys.js';
import { SEEN_WHERE_AWAITED, ignoreFailure } from '../../../core/engine/errors.js';

interface Hold {
  plan: MysqlPlan;
  session: Connection;
  lock?: Promise<unknown>;
}

/** Called as the set's RENAME waits at a gate, before it is let through: the cut-over's test seam. */
type AtGate = () => Promise<void>;

/**
 * A set is swapped by one RENAME TABLE of every pair, which the server makes whole or not at all:
 * a set is never swapped in part, and a key between two of its tables never ends on a shadow beside
 * a live table without it. One statement takes its metadata locks one name at a time, in
 * the order of the names, so at the UNLOCK it waits only on the first of the originals; writers
 * waiting on the others would be let in ahead of it, to the old tables, after the last catch-up.
 * Two sessions per original keep them out:
 * - a gate, for each original but the first, queues a LOCK TABLES ... WRITE behind the cut-over lock
 *   and is granted the table at the UNLOCK before any writer (the server grants a waiting write
 *   lock before waiting writes). Once the RENAME waits there, the gate lets go, and the RENAME,
 *   an exclusive request, goes before everyone. That it waits there is seen by a PREPARE, whose
 *   shared metadata lock passes a granted LOCK TABLES but waits behind a pending exclusive request:
 *   with no wait allowed, it fails only once the RENAME is in line.
 * - an after-hold, for every original, queues behind the gate (or, for the first, behind the
 *   RENAME) and so holds the table, new or old, from the RENAME's end until the outcome is settled:
 *   the old table's keys go back under it when the RENAME failed, before any writer comes.
 * A killed run's sessions end: the RENAME goes on alone, whole, or not at all.
 */
export class SetHolders {
  private constructor(
    /** In the RENAME's order of locks. */
    private readonly gates: Hold[],
    private readonly after: Hold[],
    private readonly probe: Connection | null,
  ) {}

  static none(): SetHolders {
    return new SetHolders([], [], null);
  }

  /** Connected ahead of the cut-over lock, so that under it each only queues its statement. */
  static async open(target: MysqlTarget, plans: MysqlPlan[]): Promise<SetHolders> {
    // A table alone has no gate, but its keys to other tables move as a set's do: its after-hold puts them back on a failed RENAME.
    if (plans.length < 2 && !plans.some((plan) => movedKeys(plan).length > 0)) return SetHolders.none();
    const ordered = [...plans].sort((a, b) => Buffer.compare(lockKey(a), lockKey(b)));
    const holders = new SetHolders([], [], null);
    try {
      for (const plan of ordered.slice(1)) holders.gates.push({ plan, session: await connectOne(target) });
      for (const plan of ordered) holders.after.push({ plan, session: await connectOne(target) });
      for (const hold of [...holders.gates, ...holders.after]) await hold.session.query('SET SESSION lock_wait_timeout = 30');
      const probe = await connectOne(target);
      return new SetHolders(holders.gates, holders.after, probe);
    } catch (error) {
      await holders.release();
      throw error;
    }
  }

  /** Queues each gate, then each after-hold, behind the cut-over lock; `queued` resolves once the statement waits there. */
  async queue(queued: (session: Connection, lock: Promise<unknown>, what: string) => Promise<void>): Promise<void> {
    for (const [holds, what] of [
      [this.gates, 'the gate on'],
      [this.after, 'the hold on'],
    ] as const) {
      for (const hold of holds) {
        const table = qualified(hold.plan.database, hold.plan.table);
        // An after-hold may put the table's keys to other tables back (`keysBack`): their parents are held
        // READ with it, as under the cut-over lock, so that no parent row goes while a key is on neither table.
        const parents = what === 'the hold on' ? parentTables(hold.plan).map((p) => qualified(p.database, p.table)) : [];
        const members = new Set((hold.plan.set ?? []).map((t) => qualified(t.slice(0, t.indexOf('.')), t.slice(t.indexOf('.') + 1))));
        const reads = [...new Set(parents)].filter((p) => p !== table && !members.has(p)).map((p) => `, ${p} READ`);
        hold.lock = hold.session.query(`LOCK TABLES ${table} WRITE${reads.join('')}`);
        hold.lock.catch(ignoreFailure(SEEN_WHERE_AWAITED));
        await queued(hold.session, hold.lock, `${what} ${table}`);
      }
    }
  }

  /**
   * After the UNLOCK: lets the RENAME through each gate in turn, once it waits there, until it is
   * over. A gate whose RENAME failed before reaching it lets go too: the after-hold takes its table.
   */
  async letThrough(rename: Promise<unknown>, atGate: AtGate): Promise<void> {
    let over = false;
    rename.then(
      () => (over = true),
      () => (over = true),
    );
    for (const gate of this.gates) {
      const granted = await gate.lock?.then(
        () => true,
        () => false,
      );
      while (granted && !over && !(await this.waitedFor(gate))) await sleep(1);
      if (granted && !over) await atGate();
      await unlock(gate);
    }
    await rename.catch(ignoreFailure('only waits for the RENAME to end: the cut-over reads its outcome itself'));
  }

  /** Whether a request for an exclusive lock (the RENAME's) waits on the gate's table. */
  private async waitedFor(gate: Hold): Promise<boolean> {
    const table = qualified(gate.plan.database, gate.plan.table);
    try {
      await this.probe!.query('SET STATEMENT lock_wait_timeout = 0 FOR PREPARE shadowcut_gate FROM ?', [`SELECT 1 FROM ${table}`]);
      return false;
    } catch (error) {
      if ((error as { code?: string }).code === 'ER_LOCK_WAIT_TIMEOUT') return true;
      throw error;
    }
  }

  /**
   * After a RENAME that failed: each table's keys to others of the set leave its shadow (no writer
   * reaches a shadow) and come back to the original under its after-hold, before any writer. The
   * hold is waited for within `boundMs`; whatever is left (a hold not granted) goes back without a
   * lock, in the cut-over's undo.
   */
  async keysBack(pool: Pool, boundMs: number): Promise<void> {
    for (const hold of this.after) {
      if (!(await setKeysAway(pool, hold.plan))) continue;
      const granted = await Promise.race([
        hold.lock?.then(
          () => true,
          () => false,
        ) ?? false,
        sleep(boundMs).then(() => false),
      ]);
      if (granted) await moveSetKeys(hold.session, hold.plan, 'back', pool);
    }
  }

  /**
   * Once the outcome is settled, writers may go on. A hold still waiting is ended, not waited for:
   * after a swap, a hold on a parent and one on its child can wait for each other (LOCK TABLES takes
   * the tables a key joins to its own), which the server would end only at lock_wait_timeout.
   */
  async release(): Promise<void> {
    for (const hold of [...this.gates.splice(0), ...this.after.splice(0)]) {
      if (hold.lock && !(await settled(hold.lock)))
        await this.probe?.query(`KILL QUERY ${Number(hold.session.threadId)}`).catch(ignoreFailure(NOTHING_TO_KILL));
      await unlock(hold);
      await hold.session.end().catch(() => hold.session.destroy());
    }
    await this.probe?.end().catch(() => this.probe?.destroy());
  }
}

/** Whether a statement has answered, without waiting for it. */
export async function settled(statement: Promise<unknown>): Promise<boolean> {
  const answered = statement.then(
    () => true,
    () => true,
  );
  return Promise.race([answered, sleep(0).then(() => false)]);
}

async function unlock(hold: Hold): Promise<void> {
  await hold.lock?.catch(ignoreFailure('only waits for the LOCK TABLES to answer: granted or refused, the UNLOCK follows'));
  await hold.session.query('UNLOCK TABLES').catch(ignoreFailure('a hold left locked is ended in release(), and its locks with its session'));
}

/** How the server orders a table's metadata lock among a statement's: by database, then name, as bytes. */
function lockKey(plan: MysqlPlan): Buffer {
  return Buffer.from(`${plan.database}\0${plan.table}\0`, 'utf8');
}
