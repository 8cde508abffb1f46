import type { Database } from './database.js';

/** The test database's schema, as information_schema names it on each engine. */
const schemaOf = (db: Database) => (db.kind === 'mysql' ? 'DATABASE()' : "'public'");

/** The table's columns in their order. */
export async function columns(db: Database, t: string): Promise<string[]> {
  return (
    await db.query(`SELECT column_name FROM information_schema.columns WHERE table_schema = ${schemaOf(db)} AND table_name = '${t}' ORDER BY ordinal_position`)
  ).map((r) => String(r[0]));
}

export async function tableExists(db: Database, t: string): Promise<boolean> {
  return (await db.query(`SELECT 1 FROM information_schema.tables WHERE table_schema = ${schemaOf(db)} AND table_name = '${t}'`)).length > 0;
}
