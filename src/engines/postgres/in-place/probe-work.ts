import type { Client } from '../server/connect.js';
import type { ProbeShape } from './probe-shape.js';

/** One relation's storage and the server's counters of this transaction for it. */
interface Reading {
  table: boolean;
  relfilenode: string;
  scans: bigint;
  rows: bigint;
}

export type Readings = Map<string, Reading>;

/** What the server did to the probe for one part, by relation name. */
export interface Work {
  /** Tables given new storage: every row copied. */
  rewritten: string[];
  /** Existing indexes given new storage: rebuilt from every row. */
  rebuilt: string[];
  /** Tables read (sequentially, or through an index), with the rows read. */
  scanned: { name: string; rows: number }[];
}

/**
 * The probe's tables and indexes, their storage and the transaction's own scan counters
 * (`pg_stat_get_xact_*`, which count this transaction's work before it commits, temporary tables
 * included, and count the scans ALTER TABLE makes to validate, rewrite or build). A scan counts
 * even on an empty relation; the rows read show it on a probe that has some.
 */
export async function readWork(client: Client, shape: ProbeShape): Promise<Readings> {
  const oids = shape.relations.map((r) => r.oid);
  const { rows } = await client.query(
    `SELECT c.relname, c.relkind IN ('r', 'p') AS is_table, c.relfilenode, pg_stat_get_xact_numscans(c.oid) AS scans,
            pg_stat_get_xact_tuples_returned(c.oid) + pg_stat_get_xact_tuples_fetched(c.oid) AS rows
       FROM pg_class c WHERE c.oid = ANY($1::oid[]) OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = ANY($1::oid[]))`,
    [oids],
  );
  return new Map(
    rows.map((r) => [
      String(r.relname),
      { table: r.is_table === true || r.is_table === 't', relfilenode: String(r.relfilenode), scans: BigInt(r.scans), rows: BigInt(r.rows) },
    ]),
  );
}

/**
 * The difference between two readings. By name, not OID: ALTER TYPE recreates an index's catalog
 * entry (a new OID) even when it keeps its storage. A new index is not counted as rebuilt (an
 * ADD UNIQUE's is the point of the part), nor the scans of an index that did not exist before.
 */
export function workBetween(before: Readings, after: Readings): Work {
  const work: Work = { rewritten: [], rebuilt: [], scanned: [] };
  const reads = new Map<string, number>();
  for (const [name, now] of after) {
    const was = before.get(name);
    if (!was) continue;
    if (now.relfilenode !== '0' && now.relfilenode !== was.relfilenode) (now.table ? work.rewritten : work.rebuilt).push(name);
    // An index's counters restart with a rebuilt catalog entry: only growth is a read.
    if (now.scans > was.scans || now.rows > was.rows) reads.set(name, Number(now.rows > was.rows ? now.rows - was.rows : 0n));
  }
  for (const [name, rows] of reads) work.scanned.push({ name, rows });
  return work;
}

export function isIdle(work: Work): boolean {
  return work.rewritten.length === 0 && work.rebuilt.length === 0 && work.scanned.length === 0;
}

/** For reasons: what the server did, in a few words. */
export function describeWork(work: Work): string {
  const said: string[] = [];
  if (work.rewritten.length) said.push(`rewrites ${work.rewritten.join(', ')}`);
  if (work.rebuilt.length) said.push(`rebuilds index ${work.rebuilt.join(', ')}`);
  if (work.scanned.length) said.push(`reads ${work.scanned.map((s) => `${s.name}${s.rows ? ` (${s.rows} of the probe's rows)` : ''}`).join(', ')}`);
  return said.join(', ');
}
