import { createHash } from 'node:crypto';
import { UserError } from '../../../core/engine/errors.js';
import { oldTableName } from '../../../core/engine/old-table.js';

/**
 * Helper object names, derived from the table so that leftovers of an earlier run are found again.
 * Slot names allow only [a-z0-9_]; a hash of the qualified name keeps different tables apart.
 */
export function helperNames(schema: string, name: string) {
  // The same suffix style as the MySQL engine (where it matters for lock order), so operators see one convention.
  const shadow = `${name}__new`;
  const old = oldTableName(name);
  if (Buffer.byteLength(shadow) > 63) {
    throw new UserError(`table name ${name} is too long for helper tables (at most 58 bytes); rename it first`);
  }
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 32);
  const hash = createHash('md5').update(`${schema}.${name}`).digest('hex').slice(0, 8);
  const stream = `shadowcut_${slug}_${hash}`;
  return {
    shadow,
    old,
    state: `${name}__state`,
    heartbeat: `${name}__hb`,
    log: `${name}__log`,
    slot: stream,
    publication: stream,
    // Trigger capture: the function shares the stream's name (functions have a namespace of their own);
    // the triggers are named as MySQL's, one per event (TRUNCATE's is a statement trigger).
    captureFunction: stream,
    captureTriggers: [`${name}__ti`, `${name}__tu`, `${name}__td`, `${name}__tt`],
    // A revert window's capture on the new table: named apart from the forward run's, which a run in
    // trigger mode still has on the original when these are installed on the shadow.
    reverseCapture: {
      log: `${name}__rlog`,
      captureFunction: `${stream}_r`,
      captureTriggers: [`${name}__rti`, `${name}__rtu`, `${name}__rtd`, `${name}__rtt`],
    },
  };
}

/**
 * A stream's replication slot: slots are the server's, not a database's, so the same table in two
 * databases of one server (a fleet of tenants, two runs at once) would meet in one slot. The
 * database's hash keeps them apart; the publication, a database's own, keeps the stream's name.
 */
export function slotName(stream: string, database: string): string {
  return `${stream}_${createHash('md5').update(database).digest('hex').slice(0, 6)}`;
}

/** `slotName` for the database `db` is connected to. */
export async function slotOn(db: { query(sql: string): Promise<{ rows: Record<string, unknown>[] }> }, stream: string): Promise<string> {
  const { rows } = await db.query('SELECT pg_catalog.current_database() AS d');
  return slotName(stream, String(rows[0].d));
}
