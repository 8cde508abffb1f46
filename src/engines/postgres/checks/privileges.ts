import { verdict, type Check } from '../../../core/engine/checks/check.js';
import { isTrue } from '../server/sql.js';
import { currentRole } from '../server/role.js';
import { replicationPrivilege } from './logical-decoding.js';
import type { PgCheckContext } from './context.js';
import { functionOwnerVerdict } from '../capture/owner-function.js';

/** The table is replaced (owner), followed (replication) and rebuilt beside itself (helper tables, the publication). */
export const privileges: Check<PgCheckContext> = {
  name: 'privileges',
  async run({ pool, table: t, capture }) {
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
      // The trigger capture's and a revert window's functions are given to the table's owner.
      await functionOwnerVerdict(pool, Number(t.oid), `${t.schema}.${t.name}`),
      ...(capture === 'stream'
        ? [
            await replicationPrivilege(pool),
            verdict(
              'create privileges',
              isTrue(s.create_schema) && isTrue(s.create_database),
              'CREATE on the schema and the database',
              `the current user needs CREATE on schema ${t.schema} (helper tables) and on the database (publication); GRANT CREATE ON SCHEMA/DATABASE ...`,
            ),
          ]
        : [
            // The owner may create triggers on the table (checked above); the log is a helper table beside it.
            verdict(
              'create privileges',
              isTrue(s.create_schema),
              'CREATE on the schema',
              `the current user needs CREATE on schema ${t.schema} (helper tables and the change log); GRANT CREATE ON SCHEMA ...`,
            ),
          ]),
    ];
  },
};
