import { verdict, type Check } from '../../../../core/engine/checks/check.js';
import type { ContractContext } from './context.js';

/**
 * Views and materialized views bound to a dropped column (or to the table), as the catalog records
 * them (pg_depend on their rewrite rules): the DROP would need CASCADE, which would take them too.
 */
export const views: Check<ContractContext> = {
  name: 'views',
  async run({ pool, t, dropped }) {
    if (dropped.kind === 'index') return [];
    const { rows } = await pool.query(
      `SELECT string_agg(DISTINCT v.oid::regclass::text || CASE v.relkind WHEN 'm' THEN ' (materialized)' ELSE '' END, ', ') AS views
         FROM pg_depend dep JOIN pg_rewrite rw ON rw.oid = dep.objid JOIN pg_class v ON v.oid = rw.ev_class
        WHERE dep.classid = 'pg_rewrite'::regclass AND dep.refclassid = 'pg_class'::regclass AND dep.refobjid = $1 AND v.oid <> $1
          AND ($2::int[] IS NULL OR dep.refobjsubid = ANY($2::int[]))`,
      [t.oid, dropped.kind === 'column' ? dropped.attnums : null],
    );
    const what = dropped.kind === 'column' ? `column(s) ${dropped.columns.join(', ')} of` : '';
    return verdict(
      'views',
      !rows[0].views,
      'no view uses it',
      `view(s) ${rows[0].views} use ${what}${what ? ' ' : ''}${t.schema}.${t.name}; drop or change them first (--force does not override a view)`,
    );
  },
};
