import type { PoolConnection, RowDataPacket } from 'mysql2/promise';
import { innodbSpelling } from '../schema/innodb-ids.js';
import { failedAs } from '../../../core/engine/errors.js';

/**
 * What the server did to a (non-empty) probe for one ALTER, read from its own counters rather than
 * from what the ALTER says: InnoDB gives a rebuilt table, and every index it builds or rebuilds, a
 * new id (an INSTANT or metadata-only change keeps them all); rows the SQL layer reads or writes
 * move the session's Handler counters (a COPY reads and writes every row).
 */
export interface ServerWork {
  rebuiltTables: string[];
  builtIndexes: string[];
  rebuiltIndexes: string[];
  rowsRead: number;
  rowsWritten: number;
}

interface Ids {
  tables: Map<string, string>;
  /** Keyed `table/index`, per partition for a partitioned table. */
  indexes: Map<string, string>;
}

const READS = [
  'Handler_read_first',
  'Handler_read_key',
  'Handler_read_last',
  'Handler_read_next',
  'Handler_read_prev',
  'Handler_read_rnd',
  'Handler_read_rnd_next',
];
const WRITES = ['Handler_write', 'Handler_update', 'Handler_delete'];

export class WorkMeter {
  /** What the counters show for a metadata-only ALTER: MySQL's data dictionary is InnoDB tables read through the handler. */
  private noise = { read: 0, written: 0 };

  private constructor(
    private readonly conn: PoolConnection,
    private readonly views: { tables: string; indexes: string },
    private readonly innodbName: string,
  ) {}

  /**
   * Null when the probe's InnoDB ids cannot be read: the views need the PROCESS privilege, the
   * table may not be InnoDB, or its name may not map to InnoDB's spelling (non-ASCII names).
   */
  static async open(conn: PoolConnection, flavor: 'mariadb' | 'mysql', database: string, probe: string): Promise<WorkMeter | null> {
    const db = innodbSpelling(database);
    const table = innodbSpelling(probe);
    if (db === null || table === null) return null;
    const views =
      flavor === 'mariadb' ? { tables: 'INNODB_SYS_TABLES', indexes: 'INNODB_SYS_INDEXES' } : { tables: 'INNODB_TABLES', indexes: 'INNODB_INDEXES' };
    const meter = new WorkMeter(conn, views, `${db}/${table}`);
    const ids = await meter.ids().catch(failedAs(null, "InnoDB's views cannot be read here: the probe's work is then not metered"));
    return ids && ids.tables.size > 0 ? meter : null;
  }

  /**
   * Takes the counters' noise from a statement known to be metadata only (the probe's own comment,
   * set again): MariaDB's stay within one or two, MySQL's data dictionary may add its own rows.
   */
  async calibrate(metadataOnly: () => Promise<unknown>): Promise<void> {
    const work = await this.measure(metadataOnly);
    this.noise = { read: work.rowsRead, written: work.rowsWritten };
  }

  /** Runs `statement` and reports the work it made the server do; a refused statement throws, as it would. */
  async measure(statement: () => Promise<unknown>): Promise<ServerWork> {
    const before = await this.ids();
    // Reading the counters moves them too: two reads in a row give that cost, subtracted below.
    const h0 = await this.handler();
    const h1 = await this.handler();
    await statement();
    const h2 = await this.handler();
    const after = await this.ids();
    const moved = (names: string[]) => names.reduce((sum, n) => sum + (h2.get(n)! - h1.get(n)!) - (h1.get(n)! - h0.get(n)!), 0);
    const rebuiltTables = [...after.tables].filter(([name, id]) => before.tables.has(name) && before.tables.get(name) !== id).map(([name]) => name);
    const builtIndexes: string[] = [];
    const rebuiltIndexes: string[] = [];
    // An index keeps its id through a rename; a new id is a build, or a rebuild when the name was there.
    const known = new Set(before.indexes.values());
    for (const [key, id] of after.indexes) {
      const table = key.slice(0, key.lastIndexOf('/'));
      if (!before.tables.has(table) || rebuiltTables.includes(table) || known.has(id)) continue;
      (before.indexes.has(key) ? rebuiltIndexes : builtIndexes).push(indexName(key));
    }
    return {
      rebuiltTables,
      builtIndexes: unique(builtIndexes),
      rebuiltIndexes: unique(rebuiltIndexes),
      rowsRead: moved(READS) - this.noise.read,
      rowsWritten: moved(WRITES) - this.noise.written,
    };
  }

  private async ids(): Promise<Ids> {
    // Partitions are `db/t#P#p0` (MariaDB) or `db/t#p#p0` (MySQL).
    const like = this.innodbName.replace(/[\\%_]/g, '\\$&');
    const [rows] = await this.conn.query<RowDataPacket[]>(
      `SELECT t.NAME AS t, t.TABLE_ID AS tid, i.NAME AS i, i.INDEX_ID AS iid FROM information_schema.${this.views.tables} t ` +
        `LEFT JOIN information_schema.${this.views.indexes} i ON i.TABLE_ID = t.TABLE_ID WHERE t.NAME = ? OR t.NAME LIKE ? OR t.NAME LIKE ?`,
      [this.innodbName, `${like}#p#%`, `${like}#P#%`],
    );
    const ids: Ids = { tables: new Map(), indexes: new Map() };
    for (const r of rows) {
      const table = String(r.t).toLowerCase();
      ids.tables.set(table, String(r.tid));
      if (r.i !== null) ids.indexes.set(`${table}/${String(r.i)}`, String(r.iid));
    }
    return ids;
  }

  private async handler(): Promise<Map<string, number>> {
    const [rows] = await this.conn.query<RowDataPacket[]>(`SHOW SESSION STATUS WHERE Variable_name IN (${[...READS, ...WRITES].map(() => '?').join(', ')})`, [
      ...READS,
      ...WRITES,
    ]);
    const values = new Map(rows.map((r) => [String(r.Variable_name).toLowerCase(), Number(r.Value)]));
    return new Map([...READS, ...WRITES].map((n) => [n, values.get(n.toLowerCase()) ?? 0]));
  }
}

/** What the server did, in words; null when it did nothing beyond metadata for a probe of `rows` rows. */
export function describeWork(work: ServerWork, rows: number): string | null {
  const done: string[] = [];
  if (work.rebuiltTables.length) done.push('rebuilds the table');
  if (work.rebuiltIndexes.length) done.push(`rebuilds index ${work.rebuiltIndexes.join(', ')}`);
  if (work.builtIndexes.length) done.push(`builds index ${work.builtIndexes.join(', ')}`);
  // Small counts come from the dictionary's own bookkeeping; a pass over the rows moves them by at least `rows`.
  if (rows > 0 && work.rowsWritten >= rows) done.push(`writes every row (${work.rowsWritten} on a ${rows}-row probe)`);
  else if (rows > 0 && work.rowsRead >= rows) done.push(`reads every row (${work.rowsRead} on a ${rows}-row probe)`);
  return done.length ? done.join(', ') : null;
}

function indexName(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}

function unique(names: string[]): string[] {
  return [...new Set(names)];
}
