import { verdict, type Check } from '../../../core/engine/checks/check.js';
import { isTrue } from '../server/sql.js';
import type { PgCheckContext } from './context.js';
import { currentRole } from '../server/role.js';

/** FORCE makes the policies filter even the owner's reads: the copy would silently leave rows out. */
export const rowSecurity: Check<PgCheckContext> = {
  name: 'row level security',
  async run({ pool, table: t }) {
    const { rows } = await pool.query('SELECT relforcerowsecurity AS forced FROM pg_class WHERE oid = $1', [t.oid]);
    const forced = isTrue(rows[0].forced);
    const role = await currentRole(pool);
    return verdict(
      'row level security',
      !forced || role.superuser || role.bypassRls,
      forced ? 'FORCE ROW LEVEL SECURITY, and the current user bypasses it' : 'the owner reads every row',
      `${t.schema}.${t.name} has FORCE ROW LEVEL SECURITY, so its policies would hide rows from the copy; run as a superuser or a role WITH BYPASSRLS`,
    );
  },
};
