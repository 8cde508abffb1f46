import type { Pool } from 'mysql2/promise';
import { qualified } from '../server/sql.js';
import type { MysqlPlan } from '../schema/plan.js';
import { placeLike } from './data-directory.js';
import { dropDeferred } from './deferred-indexes.js';
import { addHelperKey } from './helper-key.js';

/**
 * The shadow: the table's definition, its AUTO_INCREMENT counter (so ids freed by deletes at the end
 * of the table are not reused), the ALTER, and without the indexes the copy builds at its end.
 * `again`: a lost session ended the last attempt, and what it made (each statement commits on its
 * own) is this run's, since the checks found no table of the name and the run holds its claim.
 */
export async function makeShadow(pool: Pool, p: MysqlPlan, again: boolean): Promise<void> {
  const shadow = qualified(p.database, p.shadow);
  if (again) await pool.query(`DROP TABLE IF EXISTS ${shadow}`);
  await pool.query(`CREATE TABLE ${shadow} LIKE ${qualified(p.database, p.table)}`);
  if (p.dataDirectory) await placeLike(pool, p.database, p.shadow, p.dataDirectory);
  if (p.facts.autoIncrement) await pool.query(`ALTER TABLE ${shadow} AUTO_INCREMENT = ${p.facts.autoIncrement}`);
  await pool.query(`ALTER TABLE ${shadow} ${p.shadowAlter}`);
  await addHelperKey(pool, p);
  await dropDeferred(pool, p.database, p.shadow, p.deferredIndexes);
}
