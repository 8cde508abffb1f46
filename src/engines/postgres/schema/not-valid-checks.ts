import { ident } from '../server/sql.js';
import type { Client } from '../server/connect.js';

/**
 * A CHECK constraint marked NOT VALID: the rows already there may break it, every row written from
 * then on must meet it. A copy writes the old rows again, so the constraint cannot be on the table
 * the copy fills: it is set aside there and added NOT VALID again once the rows are in (the cut-over
 * does it under its lock, where it touches the catalog only). LIKE ... INCLUDING ALL makes such a
 * constraint valid, which is why the original's are marked again before the ALTER sees them.
 */
export interface NotValidCheck {
  name: string;
  /** `pg_get_constraintdef`, ending in NOT VALID. */
  def: string;
  comment: string | null;
}

/** The NOT VALID CHECKs declared on the table itself (a partition's inherited ones come with their parent's). */
export async function notValidChecks(client: Pick<Client, 'query'>, table: string): Promise<NotValidCheck[]> {
  const { rows } = await client.query(
    `SELECT conname AS name, pg_get_constraintdef(oid) AS def, obj_description(oid, 'pg_constraint') AS comment
       FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'c' AND NOT convalidated AND conislocal ORDER BY conname`,
    [table],
  );
  return rows.map((r) => ({ name: String(r.name), def: String(r.def), comment: r.comment === null ? null : String(r.comment) }));
}

export async function dropChecks(client: Client, table: string, checks: NotValidCheck[]): Promise<void> {
  if (checks.length === 0) return;
  await client.query(`ALTER TABLE ${table} ${checks.map((c) => `DROP CONSTRAINT ${ident(c.name)}`).join(', ')}`);
}

export async function addChecks(client: Client, table: string, checks: NotValidCheck[]): Promise<void> {
  for (const c of checks) {
    await client.query(`ALTER TABLE ${table} ADD CONSTRAINT ${ident(c.name)} ${c.def}`);
    if (c.comment !== null) await client.query(`COMMENT ON CONSTRAINT ${ident(c.name)} ON ${table} IS ${client.escapeLiteral(c.comment)}`);
  }
}

/** `copy`, just made LIKE `original`, gets the original's NOT VALID CHECKs back as they are there. */
export async function markLikeOriginal(client: Client, original: string, copy: string): Promise<NotValidCheck[]> {
  const checks = await notValidChecks(client, original);
  await dropChecks(client, copy, checks);
  await addChecks(client, copy, checks);
  return checks;
}

/** After the ALTER: the table's NOT VALID CHECKs, the original's and the ALTER's, taken off for the copy. */
export async function setAside(client: Client, table: string): Promise<NotValidCheck[]> {
  const checks = await notValidChecks(client, table);
  await dropChecks(client, table, checks);
  return checks;
}
