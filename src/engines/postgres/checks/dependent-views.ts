import { verdict, type Check } from '../../../core/engine/checks/check.js';
import type { PgCheckContext } from './context.js';
import { renamesToCarry } from '../cutover/renamed-columns.js';

/** Views and rules are bound to the table's OID; the cut-over moves plain views and rules to the new table, not all of them. */
export const dependentViews: Check<PgCheckContext> = {
  name: 'dependent views',
  async run({ pool, table: t, detail: d }) {
    const { rows } = await pool.query(
      `SELECT (SELECT string_agg(DISTINCT v.oid::regclass::text, ', ')
                 FROM pg_depend dep JOIN pg_rewrite rw ON rw.oid = dep.objid JOIN pg_class v ON v.oid = rw.ev_class
                WHERE dep.classid = 'pg_rewrite'::regclass AND dep.refclassid = 'pg_class'::regclass
                  AND dep.refobjid = $1 AND v.relkind = 'm') AS matviews,
              (SELECT string_agg(DISTINCT v.oid::regclass::text || ' (' || a.attname || ')', ', ')
                 FROM pg_depend dep JOIN pg_rewrite rw ON rw.oid = dep.objid JOIN pg_class v ON v.oid = rw.ev_class
                 JOIN pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
                WHERE dep.classid = 'pg_rewrite'::regclass AND dep.refclassid = 'pg_class'::regclass
                  AND dep.refobjid = $1 AND v.oid <> $1 AND v.relkind = 'v' AND a.attname = ANY($2::text[])) AS bound_views,
              (SELECT string_agg(DISTINCT format('%I on %s (%s)', rw.rulename, rw.ev_class::regclass, a.attname), ', ')
                 FROM pg_depend dep JOIN pg_rewrite rw ON rw.oid = dep.objid
                 JOIN pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
                WHERE dep.classid = 'pg_rewrite'::regclass AND dep.refclassid = 'pg_class'::regclass
                  AND dep.refobjid = $1 AND rw.rulename <> '_RETURN' AND a.attname = ANY($2::text[])) AS bound_rules`,
      // A column only renamed is followed: the cut-over reads the definitions with it so named (cutover/renamed-columns.ts).
      [t.oid, d.changedColumns.filter((c) => !renamesToCarry(d).some((r) => r.from === c))],
    );
    const { matviews, bound_views: bound, bound_rules: rules } = rows[0];
    const table = `${t.schema}.${t.name}`;
    return [
      // A materialized view stays bound to the old table's OID: it would go on refreshing from the old
      // table, and would keep it from being dropped.
      verdict(
        'materialized views',
        !matviews,
        'none',
        `materialized view(s) ${matviews} depend on ${table}; they cannot be moved to the new table: drop them for the migration and create them again after`,
      ),
      // Views are recreated on the new table from their definition, which names the old columns.
      verdict(
        'views',
        !bound,
        'no view uses a column the ALTER changes',
        `view(s) ${bound} use column(s) the ALTER drops, retypes or renames onto another column's name; drop them for the migration and create them again after`,
      ),
      // Rules are recreated from their definition too (on the table, or on another relation that
      // writes into it); a native ALTER refuses to retype or drop a column one uses.
      verdict(
        'rules',
        !rules,
        'no rule uses a column the ALTER changes',
        `rule(s) ${rules} use column(s) the ALTER drops, retypes or renames onto another column's name; drop them for the migration and create them again after`,
      ),
    ];
  },
};
