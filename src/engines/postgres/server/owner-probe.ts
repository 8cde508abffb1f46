import { asUser, ident, type Client } from './connect.js';

const PROBE = 'shadowcut_owner_probe';

/**
 * The user's ALTER applied, as the table's owner, to an empty TEMPORARY copy of the table's
 * definition, in the caller's transaction (which must be rolled back): what the ALTER adds
 * (a CHECK, an index expression, a DEFAULT) is then in the catalog for the owner-code check to read,
 * before any probe of our own runs it with our rights. An empty table evaluates nothing but a
 * non-volatile DEFAULT of an added column (stored as the missing value): as the owner, that is
 * the owner's code with the owner's rights. Null when the owner cannot make it (a right the
 * migrating role has and the owner lacks): the plan's own probe is then the only look.
 */
export async function ownerProbe(client: Client, table: string, owner: string, alter: string): Promise<string | null> {
  await client.query('SAVEPOINT shadowcut_owner_probe');
  try {
    const { rows } = await client.query('SELECT $1::regclass::text AS name', [table]);
    await client.query(`SET LOCAL ROLE ${ident(owner)}`);
    await client.query(`CREATE TEMPORARY TABLE ${PROBE} (LIKE ${String(rows[0].name)} INCLUDING ALL)`);
    await asUser(client, () => client.query(`ALTER TABLE pg_temp.${PROBE} ${alter}`));
    await client.query('RESET ROLE');
    return `pg_temp.${PROBE}`;
  } catch {
    // Undoes the SET LOCAL ROLE too.
    await client.query('ROLLBACK TO SAVEPOINT shadowcut_owner_probe');
    return null;
  }
}
