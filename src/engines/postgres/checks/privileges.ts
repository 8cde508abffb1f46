import type pg from 'pg';
import { verdict, type Check } from '../../../core/check.js';
import { isTrue } from '../server/connect.js';
import type { PgCheckContext } from './context.js';

/** The current role's attributes that lift the checks below. */
export async function currentRole(pool: pg.Pool): Promise<{ superuser: boolean; replication: boolean; bypassRls: boolean }> {
  const { rows } = await pool.query('SELECT rolsuper, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = current_user');
  return { superuser: isTrue(rows[0].rolsuper), replication: isTrue(rows[0].rolreplication), bypassRls: isTrue(rows[0].rolbypassrls) };
}

/** The table is replaced (owner), followed (replication) and rebuilt beside itself (helper tables, the publication). */
export const privileges: Check<PgCheckContext> = {
  name: 'privileges',
  async run({ pool, table: t }) {
    const { rows } = await pool.query(
      `SELECT pg_has_role(current_user, c.relowner, 'USAGE') AS owner,
              has_schema_privilege(c.relnamespace, 'CREATE') AS create_schema,
              has_database_privilege(current_database(), 'CREATE') AS create_database
         FROM pg_class c WHERE c.oid = $1`,
      [t.oid],
    );
    const s = rows[0];
    const role = await currentRole(pool);
    return [
      verdict(
        'table owner',
        role.superuser || isTrue(s.owner),
        'current user owns the table',
        `the current user does not own ${t.schema}.${t.name}; run as its owner or a superuser`,
      ),
      verdict(
        'replication privilege',
        role.superuser || role.replication,
        'current user may replicate',
        'the current user lacks REPLICATION; ALTER ROLE ... REPLICATION or run as a superuser',
      ),
      verdict(
        'create privileges',
        isTrue(s.create_schema) && isTrue(s.create_database),
        'CREATE on the schema and the database',
        `the current user needs CREATE on schema ${t.schema} (helper tables) and on the database (publication); GRANT CREATE ON SCHEMA/DATABASE ...`,
      ),
    ];
  },
};
