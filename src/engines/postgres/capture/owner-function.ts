import type pg from 'pg';
import { verdict } from '../../../core/engine/checks/check.js';
import type { CheckResult } from '../../../core/engine/types.js';
import { ident, isTrue } from '../server/sql.js';
import type { Client } from '../server/connect.js';

/**
 * shadowcut's trigger functions (the trigger capture's and a contract backup's) run for every
 * writer of the table, and evaluate the table's own code on the way (`::text` of a key goes
 * through pg_cast, whatever the search_path). SECURITY DEFINER of the migrating role would run
 * that code with the migrating role's rights, a superuser's maybe: the owner's cast would make
 * the owner superuser on their own next UPDATE. So each is the table owner's: it then runs with
 * no more rights than the owner's own triggers would. The owner may replace it (they own it),
 * which gains them nothing they lack, and shadowcut never fires it itself.
 */

/**
 * SQL (one boolean) true when `proowner` (an expression) is a role shadowcut gives its functions
 * to: the table's owner (`relationParam` names it as text, e.g. `$3`), or the migrating role, as
 * an earlier version made them, and for a table the migrating role owns.
 */
export function givenOwnerSql(proowner: string, relationParam: string): string {
  return `${proowner} IN ((SELECT oid FROM pg_roles WHERE rolname = current_user), (SELECT relowner FROM pg_class WHERE oid = to_regclass(${relationParam})))`;
}

/**
 * Gives function `fn` (qualified, with its argument list) to the owner of `table` (an oid), in the
 * caller's transaction, with exactly `grants` (e.g. `INSERT (a, b) ON s.log`): what its body does
 * on shadowcut's helper tables. The preflight (`canGiveFunctions`) proved the migrating role may.
 */
export async function giveToOwner(client: Client, fn: string, table: number, grants: string[]): Promise<void> {
  const { rows } = await client.query(
    `SELECT c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) AS self, pg_get_userbyid(c.relowner) AS owner FROM pg_class c WHERE c.oid = $1`,
    [table],
  );
  if (isTrue(rows[0].self)) return;
  const owner = ident(String(rows[0].owner));
  await client.query(`ALTER FUNCTION ${fn} OWNER TO ${owner}`);
  for (const grant of grants) await client.query(`GRANT ${grant} TO ${owner}`);
}

/**
 * Whether the migrating role can give a function to the table's owner (ALTER ... OWNER TO): a
 * superuser can, a member of the owner role too (PostgreSQL 16 asks for the SET option of that
 * membership). A failed preflight's one line instead of an error halfway through an install.
 */
export async function canGiveFunctions(pool: pg.Pool, table: number): Promise<{ ok: boolean; owner: string }> {
  const { rows } = await pool.query(
    `SELECT pg_get_userbyid(c.relowner) AS owner, r.rolsuper OR c.relowner = r.oid AS trivially,
            current_setting('server_version_num')::int >= 160000 AS has_set
       FROM pg_class c, pg_roles r WHERE c.oid = $1 AND r.rolname = current_user`,
    [table],
  );
  const owner = String(rows[0].owner);
  if (isTrue(rows[0].trivially)) return { ok: true, owner };
  const option = isTrue(rows[0].has_set) ? 'SET' : 'MEMBER';
  const { rows: member } = await pool.query(`SELECT pg_has_role(current_user, $1::regrole, '${option}') AS ok`, [ident(owner)]);
  return { ok: isTrue(member[0].ok), owner };
}

/** The preflight's verdict on `canGiveFunctions` for `table` (schema.name, for the message). */
export async function functionOwnerVerdict(pool: pg.Pool, oid: number, table: string): Promise<CheckResult> {
  const { ok, owner } = await canGiveFunctions(pool, oid);
  return verdict(
    'trigger functions owner',
    ok,
    `shadowcut's trigger functions can be given to ${owner}, the table's owner`,
    `shadowcut's trigger functions on ${table} must belong to its owner ${owner}, and the current user cannot give them (ALTER FUNCTION ... OWNER TO ${owner}): run as ${owner}, a superuser, or a member of ${owner} with SET`,
  );
}
