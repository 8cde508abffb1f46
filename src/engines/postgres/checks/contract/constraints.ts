import { note, verdict, type Check } from '../../../../core/engine/checks/check.js';
import type { ContractCheck } from '../../../../core/engine/ports/contract.js';
import type { ContractContext } from './context.js';

/**
 * What the catalog ties to a dropped column, and what PostgreSQL would take with it silently:
 * generated columns computed from it (the DROP would need CASCADE), constraints on it (a CHECK,
 * a UNIQUE or PRIMARY KEY, a foreign key either way) and indexes on it, each dropped whole even
 * when it holds other columns. For an index, the constraint it backs; for the table, foreign keys
 * from other tables.
 */
export const constraints: Check<ContractContext> = {
  name: 'constraints',
  async run({ pool, t, dropped }): Promise<ContractCheck[]> {
    const table = `${t.schema}.${t.name}`;
    if (dropped.kind === 'table') {
      const { rows } = await pool.query(
        `SELECT string_agg(conrelid::regclass::text || '.' || conname, ', ') AS fks FROM pg_constraint WHERE contype = 'f' AND confrelid = $1 AND conrelid <> $1`,
        [t.oid],
      );
      return [
        verdict(
          'foreign keys',
          !rows[0].fks,
          'no other table references it',
          `foreign key(s) ${rows[0].fks} reference ${table}; drop them first (--force does not override a foreign key)`,
        ),
      ];
    }
    if (dropped.kind === 'index') {
      const { rows } = await pool.query(
        `SELECT string_agg(CASE WHEN contype = 'f' THEN 'foreign key ' || conrelid::regclass::text || '.' || conname ELSE 'constraint ' || conname END, ', ') AS users
           FROM pg_constraint WHERE conindid = $1`,
        [dropped.oid],
      );
      return [
        verdict(
          'constraints',
          !rows[0].users,
          'no constraint needs it',
          `${rows[0].users} need${/,/.test(rows[0].users ?? '') ? '' : 's'} index ${dropped.index}; drop them first (--force does not override a constraint)`,
        ),
      ];
    }
    const { rows } = await pool.query(
      `SELECT (SELECT string_agg(a.attname, ', ') FROM pg_depend d JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
                 JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
                WHERE d.refobjid = $1 AND d.refobjsubid = ANY($2::int[]) AND a.attgenerated = 's' AND a.attnum <> ALL($2::int[])) AS generated,
              (SELECT string_agg(CASE WHEN c.contype = 'f' AND c.conrelid <> $1 THEN c.conrelid::regclass::text || '.' ELSE '' END || c.conname
                      || ' (' || pg_get_constraintdef(c.oid) || ')', ', ')
                 FROM pg_constraint c WHERE (c.conrelid = $1 AND c.conkey && $2::int2[]) OR (c.contype = 'f' AND c.confrelid = $1 AND c.confkey && $2::int2[])) AS constraints,
              (SELECT json_agg(json_build_object('name', ic.relname, 'def', pg_get_indexdef(i.indexrelid),
                      'only', (SELECT bool_and(k = ANY($2::int2[])) FROM unnest(i.indkey) k) AND i.indexprs IS NULL AND i.indpred IS NULL))
                 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                WHERE i.indrelid = $1 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = $1)
                  AND (i.indkey::int2[] && $2::int2[] OR EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                       AND d.refobjid = $1 AND d.refobjsubid = ANY($2::int[])))) AS indexes`,
      [t.oid, dropped.attnums],
    );
    const r = rows[0];
    const indexes: { name: string; def: string; only: boolean }[] = r.indexes ? JSON.parse(r.indexes) : [];
    return [
      verdict(
        'generated columns',
        !r.generated,
        'none computed from them',
        `generated column(s) ${r.generated} of ${table} are computed from ${dropped.columns.join(', ')}; drop or change them first`,
      ),
      verdict(
        'constraints',
        !r.constraints,
        'none on them',
        `constraint(s) ${r.constraints} use ${dropped.columns.join(', ')} and would go with them; drop them first (--force does not override a constraint)`,
      ),
      ...indexes.map((i): ContractCheck =>
        i.only
          ? note('indexes', `index ${i.name} goes too (${i.def})`)
          : {
              ...verdict(
                'indexes',
                false,
                '',
                `index ${i.name} (${i.def}) also covers other columns or expressions, and would be dropped whole; drop it first, or --force`,
              ),
              overridable: true,
            },
      ),
    ];
  },
};
