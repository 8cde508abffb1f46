import type { PgDetail } from '../schema/plan.js';
import { ident, qualified } from '../server/sql.js';
import type { Client } from '../server/connect.js';

/**
 * Statistics objects are named per schema like relations: the old table's step aside (to `aside`,
 * or the first free `<name>__old`), then the new table's take their names (plan.ts `statistics`).
 */
export async function swapStatistics(client: Client, d: PgDetail): Promise<void> {
  const find = async (relation: string, name: string) =>
    (
      await client.query(
        `SELECT stxnamespace::regnamespace::text AS schema, stxnamespace AS ns FROM pg_statistic_ext WHERE stxrelid = $1::regclass AND stxname = $2`,
        [relation, name],
      )
    ).rows[0] as { schema: string; ns: string } | undefined;
  for (const pair of d.statistics ?? []) {
    const [original, shadow] = [await find(qualified(d.schema, d.name), pair.original), await find(qualified(d.schema, d.shadow), pair.shadow)];
    if (!original || !shadow) continue;
    let aside = pair.aside;
    for (let n = 1; aside === undefined; n++) {
      const name = `${pair.original.slice(0, 55)}__old${n === 1 ? '' : `_${n}`}`;
      const taken = await client.query(`SELECT 1 FROM pg_statistic_ext WHERE stxnamespace = $1 AND stxname = $2`, [original.ns, name]);
      if (taken.rowCount === 0) aside = name;
    }
    await client.query(`ALTER STATISTICS ${original.schema}.${ident(pair.original)} RENAME TO ${ident(aside)}`);
    await client.query(`ALTER STATISTICS ${shadow.schema}.${ident(pair.shadow)} RENAME TO ${ident(pair.original)}`);
  }
}
