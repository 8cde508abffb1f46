import { objectName } from '../schema/generated-names.js';
import { ident, qualified } from '../server/sql.js';
import type { Client } from '../server/connect.js';

/**
 * A sequence the server makes for a column (serial, identity) is named after the table it was made
 * on: the ALTER's on the shadow gives `t__new_c_seq`, where the native ALTER gives `t_c_seq`. Under
 * the cut-over's lock, after the renames: each sequence owned by a column of `table` whose name the
 * server made after `from` takes the name it would make after `table`'s name now (`t_c_seq`, else
 * `t_c_seq1`, ...: free among the schema's relations, as ChooseRelationName looks).
 */
export async function nameSequencesAfter(client: Client, schema: string, table: string, from: string): Promise<void> {
  const { rows } = await client.query(
    `SELECT s.oid, s.relname, a.attname FROM pg_depend d
       JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
       JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
      WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1::regclass AND d.deptype IN ('a', 'i')
      ORDER BY s.oid`,
    [qualified(schema, table)],
  );
  for (const r of rows as { oid: string; relname: string; attname: string }[]) {
    if (!madeAfter(r.relname, from, r.attname)) continue;
    const name = await freeName(client, schema, table, r.attname);
    await client.query(`ALTER SEQUENCE ${qualified(schema, r.relname)} RENAME TO ${ident(name)}`);
  }
}

/** The server's passes: `seq`, then `seq1`, `seq2`... A name past the first hundred passes is left as it is. */
const PASSES = 100;

function madeAfter(name: string, table: string, column: string): boolean {
  for (let pass = 0; pass < PASSES; pass++) if (name === objectName(table, column, `seq${pass === 0 ? '' : pass}`)) return true;
  return false;
}

async function freeName(client: Client, schema: string, table: string, column: string): Promise<string> {
  for (let pass = 0; ; pass++) {
    const candidate = objectName(table, column, `seq${pass === 0 ? '' : pass}`);
    const { rowCount } = await client.query(`SELECT 1 FROM pg_class WHERE relname = $2 AND relnamespace = $1::regnamespace`, [ident(schema), candidate]);
    if (rowCount === 0) return candidate;
  }
}
