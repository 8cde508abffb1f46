import { verdict, type Check } from '../../../core/engine/checks/check.js';
import { grantsOn, missingPrivileges, privilegesRefusal } from '../server/grants.js';
import type { MysqlCheckContext } from './context.js';
import { cascadeSources } from '../schema/foreign-keys.js';

export const privileges: Check<MysqlCheckContext> = {
  name: 'privileges',
  async run({ pool, plan }) {
    const missing = await missingPrivileges(pool, plan.database, plan.log === undefined);
    const results = [verdict('privileges', missing.length === 0, 'granted', privilegesRefusal(missing, plan.database))];
    // A key to a table of another database moves under the cut-over lock, which holds that table READ;
    // a parent that cascades into the table is held READ there too, and read with a lock (cascades.ts).
    const elsewhere = [
      ...(plan.parentKeys ?? []).flatMap((k) => (k.parentDatabase ? [k.parentDatabase] : [])),
      ...cascadeSources(plan).flatMap((t) => (t.database !== plan.database ? [t.database] : [])),
    ];
    for (const database of new Set(elsewhere)) {
      const have = await grantsOn(pool, database);
      const lacking = have === null ? [] : PARENT_NEEDS.filter((p) => !have.has(p));
      results.push(verdict(`privileges on ${database}`, lacking.length === 0, 'granted', privilegesRefusal(lacking, database)));
    }
    return results;
  },
};

/** LOCK TABLES ... READ takes SELECT and LOCK TABLES; MySQL 8 asks REFERENCES of a key's maker too. */
const PARENT_NEEDS = ['SELECT', 'LOCK TABLES', 'REFERENCES'];
