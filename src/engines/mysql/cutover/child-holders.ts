import type { Connection } from 'mysql2/promise';
import { connectOne } from '../server/connect.js';
import type { MysqlTarget } from '../server/target.js';
import type { MysqlPlan } from '../schema/plan.js';
import { qualified } from '../server/sql.js';
import { pointChildKeys, KEYS_BACK_IN_UNDO } from './child-keys.js';
import { SEEN_WHERE_AWAITED, ignoreFailure } from '../../../core/engine/errors.js';

interface Holder {
  table: string;
  session: Connection;
  lock?: Promise<unknown>;
}

/**
 * MariaDB checks a child's key against the parent's rows without a metadata lock on the parent. A
 * writer let into a child at UNLOCK, before the RENAME has run, would hold a row lock in the shadow
 * (its key references it by then) and then wait for the original's metadata lock, which the RENAME
 * holds while it waits for that row lock: a cycle neither deadlock detector sees, ended only by
 * innodb_lock_wait_timeout. The RENAME cannot queue on the children too (a statement takes its
 * metadata locks one at a time, in name order, and only its first one is queued at UNLOCK), so one
 * session per child queues a LOCK TABLES ... WRITE on it: at UNLOCK each is granted before the
 * writers waiting there, and held until the RENAME is over (a killed run's sessions end, and the
 * RENAME, already queued with the sentry gone, runs alone). If the RENAME fails, each holder points
 * its child's keys back while it still holds the child.
 * MySQL 8 needs no holders and must not have them: there a child's writer takes a metadata lock on
 * the parent (a cycle through it is one the detector breaks), and the RENAME of a parent locks its
 * children, which would wait for the holders while they wait for it. (Untested: MySQL 8 is not
 * installable where the tests run.)
 */
export class ChildHolders {
  private constructor(private readonly holders: Holder[]) {}

  static none(): ChildHolders {
    return new ChildHolders([]);
  }

  /** Connected ahead of the cut-over lock, so that under it each only queues its statement. */
  static open(target: MysqlTarget, plan: MysqlPlan): Promise<ChildHolders> {
    return ChildHolders.of(target, [...new Set(plan.children.map((k) => qualified(k.database, k.table)))]);
  }

  private static async of(target: MysqlTarget, tables: string[]): Promise<ChildHolders> {
    const holders: Holder[] = [];
    try {
      for (const table of tables) {
        const session = await connectOne(target);
        holders.push({ table, session });
        await session.query('SET SESSION lock_wait_timeout = 30');
      }
    } catch (error) {
      await new ChildHolders(holders).release();
      throw error;
    }
    return new ChildHolders(holders);
  }

  /** Queues each hold behind the cut-over lock; `queued` resolves once the statement waits there. */
  async queue(queued: (session: Connection, lock: Promise<unknown>, what: string) => Promise<void>): Promise<void> {
    for (const holder of this.holders) {
      holder.lock = holder.session.query(`LOCK TABLES ${holder.table} WRITE`);
      holder.lock.catch(ignoreFailure(SEEN_WHERE_AWAITED));
      await queued(holder.session, holder.lock, `the hold on ${holder.table}`);
    }
  }

  /** After a failed RENAME: the keys of each child whose hold was granted go back to the original, no writer in between. */
  async pointBack(plan: MysqlPlan): Promise<void> {
    for (const holder of this.holders) {
      const granted = await holder.lock?.then(
        () => true,
        () => false,
      );
      if (!granted) continue;
      const keys = plan.children.filter((k) => qualified(k.database, k.table) === holder.table);
      await pointChildKeys(holder.session, keys, plan.database, plan.shadow, plan.table).catch(ignoreFailure(KEYS_BACK_IN_UNDO));
    }
  }

  async release(): Promise<void> {
    for (const holder of this.holders.splice(0)) {
      await holder.lock?.catch(ignoreFailure('only waits for the LOCK TABLES to answer: granted or refused, the UNLOCK follows'));
      await holder.session.query('UNLOCK TABLES').catch(ignoreFailure('the session is ended next, and its locks with it'));
      await holder.session.end().catch(() => holder.session.destroy());
    }
  }
}
