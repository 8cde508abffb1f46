import type pg from 'pg';
import type { Client } from './connect.js';
import { qualified } from './sql.js';
import { checkHelper, ensureHelperTable, helperTransaction, pinnedWithin } from './helper-tables.js';

/** `<table>__state`: one row holding the checkpoint of the run on the table, migrate's or a backfill's; refused when not shadowcut's own. */
export async function createStateTable(pool: pg.Pool, schema: string, name: string): Promise<void> {
  await ensureHelperTable(pool, schema, name, 'id int PRIMARY KEY, checkpoint text NOT NULL', 'the checkpoint of a run on the table');
}

const upsert = (schema: string, name: string) =>
  `INSERT INTO ${qualified(schema, name)} VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET checkpoint = EXCLUDED.checkpoint`;

export async function writeState(pool: pg.Pool, schema: string, name: string, checkpoint: string): Promise<void> {
  await helperTransaction(pool, (client) => client.query(upsert(schema, name), [checkpoint]));
}

/** In the caller's transaction, so a backfill saves it with its batch; the table was checked when the run made or read it. */
export async function writeStateWithin(client: Client, schema: string, name: string, checkpoint: string): Promise<void> {
  await pinnedWithin(client, () => client.query(upsert(schema, name), [checkpoint]));
}

/** Read only once the table is proven shadowcut's own: a view or a policy there would run another role's code as ours. */
export function readState(pool: pg.Pool, schema: string, name: string): Promise<string | null> {
  return helperTransaction(pool, async (client) => {
    if (!(await checkHelper(client, schema, name))) return null;
    const found = await client.query(`SELECT checkpoint FROM ${qualified(schema, name)} WHERE id = 1`);
    return found.rows.length ? String(found.rows[0].checkpoint) : null;
  });
}
