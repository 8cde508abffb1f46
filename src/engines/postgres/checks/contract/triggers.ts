import { verdict, type Check } from '../../../../core/engine/checks/check.js';
import { mentioned } from '../../../../core/engine/contract/mentions.js';
import type { ContractContext } from './context.js';

/**
 * Triggers on the table tied to a dropped column by the catalog (UPDATE OF it, a WHEN clause on
 * it), or whose function's body names it (NEW.c): after the DROP every write they fire for fails.
 */
export const triggers: Check<ContractContext> = {
  name: 'triggers',
  async run({ pool, t, dropped }) {
    if (dropped.kind !== 'column') return [];
    const { rows } = await pool.query(
      `SELECT tg.tgname AS name, p.prosrc AS body,
              EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_trigger'::regclass AND d.objid = tg.oid AND d.refobjid = $1 AND d.refobjsubid = ANY($2::int[])) AS bound
         FROM pg_trigger tg JOIN pg_proc p ON p.oid = tg.tgfoid WHERE tg.tgrelid = $1 AND NOT tg.tgisinternal`,
      [t.oid, dropped.attnums],
    );
    const users = rows.filter((r) => r.bound === 't' || mentioned(String(r.body ?? ''), dropped.columns).length).map((r) => String(r.name));
    return verdict(
      'triggers',
      users.length === 0,
      `no trigger on ${t.name} uses ${dropped.columns.join(', ')}`,
      `trigger(s) ${users.join(', ')} on ${t.schema}.${t.name} use ${dropped.columns.join(', ')}; every write they fire for would fail: drop or change them first (--force does not override a trigger)`,
    );
  },
};
