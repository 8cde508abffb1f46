import { HelperRefusedError } from '../../../../core/engine/helper-objects.js';
import { UserError } from '../../../../core/engine/errors.js';
import { ident, isTrue } from '../../server/sql.js';
import type { Client } from '../../server/connect.js';
import { dollarQuoted } from '../../server/dollar-quote.js';
import { givenOwnerSql } from '../owner-function.js';

// The capture function the triggers call: its body, the log's key column types it writes, and the
// refusal of a function of its name that is not ours (CREATE OR REPLACE would keep its owner).

/**
 * The key columns' types, schema-qualified where needed (the search_path is pinned), so the log
 * holds the same values and gives back the same text. A domain is replaced by its base type: the
 * entry's other key is NULL, which a NOT NULL domain (or a CHECK that says so) would refuse, and
 * the application's write would fail in our trigger.
 */
export async function keyTypes(client: Client, oid: number, key: string[], schema: string, tableName: string): Promise<string[]> {
  const { rows } = await client.query(
    `WITH RECURSIVE k AS (
       SELECT x.ord, a.atttypid AS typ, a.atttypmod AS mod FROM unnest($2::text[]) WITH ORDINALITY x(name, ord)
         JOIN pg_attribute a ON a.attrelid = $1 AND a.attname = x.name
       UNION ALL
       SELECT k.ord, t.typbasetype, t.typtypmod FROM k JOIN pg_type t ON t.oid = k.typ WHERE t.typtype = 'd')
     SELECT format_type(k.typ, k.mod) AS type FROM k JOIN pg_type t ON t.oid = k.typ WHERE t.typtype <> 'd' ORDER BY k.ord`,
    [oid, key],
  );
  if (rows.length !== key.length) throw new UserError(`the key columns of ${schema}.${tableName} changed since the run was planned; start again`);
  return rows.map((r) => String(r.type));
}

/**
 * CREATE OR REPLACE keeps the owner: refuse a function of that name owned by anyone but the
 * roles shadowcut gives it to (the table's owner, or the migrating role).
 */
export async function refuseForeignFunction(client: Client, schema: string, captureFunction: string, ownerTable: string): Promise<void> {
  const { rows } = await client.query(
    `SELECT pg_get_userbyid(p.proowner) AS owner, ${givenOwnerSql('p.proowner', '$3')} AS ours
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname = $2`,
    [schema, captureFunction, ownerTable],
  );
  const foreign = rows.find((r) => !isTrue(r.ours));
  if (foreign)
    throw new HelperRefusedError(`function ${schema}.${captureFunction}`, [`is owned by ${foreign.owner}, neither the migrating role nor the table's owner`]);
}

/**
 * SECURITY DEFINER (of the table's owner): writers of the table need no rights on the log. The guard keeps it to this
 * table's triggers (and its partitions', a partition attached since included, so that the
 * application's writes to it do not fail before the run stops on the changed tree), or a role able to make a table and a trigger could write log entries of its
 * choosing as the migrating role. Keys are compared as text, as the stream's keys are: two keys
 * equal under a type's own equality (a case-insensitive collation) are still two rows to apply.
 */
export function captureFunctionSql(fn: string, log: string, key: string[], oid: number, partitions: string[]): string {
  const cols = (prefix: string) => key.map((_, i) => `${prefix}_${i + 1}`).join(', ');
  const vals = (row: string) => key.map((k) => `${row}.${ident(k)}`).join(', ');
  const asText = (row: string) => `ROW(${key.map((k) => `${row}.${ident(k)}::text`).join(', ')}, NULL)`;
  const body = `
BEGIN
IF TG_RELID <> ALL ('{${[oid, ...partitions].join(',')}}'::oid[])
   AND NOT EXISTS (SELECT 1 FROM pg_partition_ancestors(TG_RELID) a WHERE a.relid = ${oid}::oid) THEN
  RAISE EXCEPTION 'shadowcut: capture of %', ${oid};
END IF;
IF TG_OP = 'TRUNCATE' THEN
  INSERT INTO ${log} (truncated) VALUES (true);
ELSIF TG_OP = 'INSERT' THEN
  INSERT INTO ${log} (${cols('o')}) VALUES (${vals('NEW')});
ELSIF TG_OP = 'DELETE' OR ${asText('OLD')} IS NOT DISTINCT FROM ${asText('NEW')} THEN
  INSERT INTO ${log} (${cols('o')}) VALUES (${vals('OLD')});
ELSE
  INSERT INTO ${log} (${cols('o')}, ${cols('n')}) VALUES (${vals('OLD')}, ${vals('NEW')});
END IF;
RETURN NULL;
END `;
  return `CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS ${dollarQuoted(body)}`;
}
