import { UserError } from '../../../core/engine/errors.js';
import { alterOnCopy } from './alter-names.js';
import { asUser, type Client } from './connect.js';
import { ident } from './sql.js';

const PROBE = 'shadowcut_owner_probe';
const RUNNER = `pg_temp.${PROBE}_as_owner`;

/**
 * The user's ALTER applied, as the table's owner, to an empty copy of the table's definition, in
 * the caller's transaction (which must be rolled back): what the ALTER adds (a CHECK, an index
 * expression, a DEFAULT) is then in the catalog for the owner-code check to read, before any probe
 * of our own runs it with our rights. An empty table evaluates nothing but a non-volatile DEFAULT
 * of an added column (stored as the missing value): as the owner, that is the owner's code with
 * the owner's rights.
 *
 * The statements run inside a SECURITY DEFINER function the owner owns, not after a SET ROLE: in
 * there the server refuses SET ROLE, RESET ROLE and SET SESSION AUTHORIZATION (and their
 * set_config forms), so the owner's DEFAULT cannot step back to the session's superuser as it
 * could from a SET ROLE. A TEMPORARY copy first (the owner needs no CREATE on the schema), else one
 * in the table's schema (a foreign key of the ALTER cannot be made on a temporary table). When the
 * owner can do neither, the run is refused: our own probe would otherwise be the first to run what
 * the ALTER adds, with our rights.
 */
export async function ownerProbe(client: Client, table: string, owner: string, alter: string): Promise<string> {
  const { rows } = await client.query(
    `SELECT c.oid::regclass::text AS name, pg_catalog.quote_ident(n.nspname) AS schema FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::regclass`,
    [table],
  );
  const { name, schema } = rows[0] as { name: string; schema: string };
  await client.query(`CREATE FUNCTION ${RUNNER}(sql text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN EXECUTE sql; END $$`);
  await client.query(`REVOKE ALL ON FUNCTION ${RUNNER}(text) FROM PUBLIC`);
  try {
    await client.query(`ALTER FUNCTION ${RUNNER}(text) OWNER TO ${ident(owner)}`);
  } catch (error) {
    throw refusal(owner, error as Error);
  }
  let failure: Error | undefined;
  for (const probe of [`pg_temp.${PROBE}`, `${schema}.${ident(`${PROBE}_${process.pid}`)}`]) {
    await client.query('SAVEPOINT shadowcut_owner_probe');
    try {
      const temporary = probe.startsWith('pg_temp.') ? 'TEMPORARY ' : '';
      await client.query(`SELECT ${RUNNER}($1)`, [`CREATE ${temporary}TABLE ${probe} (LIKE ${name} INCLUDING ALL)`]);
      const onProbe = await alterOnCopy(client, alter, table, probe);
      if (onProbe !== null) await asUser(client, () => client.query(`SELECT ${RUNNER}($1)`, [`ALTER TABLE ${probe} ${onProbe}`]));
      await client.query('RELEASE SAVEPOINT shadowcut_owner_probe');
      return probe;
    } catch (error) {
      failure = error as Error;
      await client.query('ROLLBACK TO SAVEPOINT shadowcut_owner_probe');
    }
  }
  throw refusal(owner, failure!);
}

function refusal(owner: string, error: Error): UserError {
  return new UserError(
    `the ALTER fails as the table's owner ${owner} runs it on an empty copy of the table (${error.message}); ` +
      `shadowcut first looks, as the owner, at the code the ALTER adds: grant ${owner} what it lacks, or run shadowcut as ${owner}`,
  );
}
