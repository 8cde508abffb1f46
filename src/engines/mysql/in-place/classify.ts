import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { UserError, ignoreFailure } from '../../../core/engine/errors.js';
import { breakingChanges, classification, type ColumnShape } from '../../../core/engine/in-place-rules.js';
import type { AlterClassification, AlterPart } from '../../../core/engine/ports/in-place.js';
import { analyseAlter, splitClauses } from '../schema/alter.js';
import { asTable, furnishClassificationProbe, onProbe, type ClassificationProbe } from './probe-shape.js';
import { columnsGoneFromTrigger, readTriggers, tableExists } from '../schema/inspect.js';
import { helperNames } from '../schema/plan.js';
import { createMarkedProbe, PROBE_MARK, PROBE_LEFT_IS_FOUND } from '../schema/probe.js';
import { describeWork, WorkMeter, type ServerWork } from './probe-work.js';
import { qualified } from '../server/sql.js';

const INSTANT = 'ALGORITHM=INSTANT';
/** MariaDB's "no table rebuild": it may still build or rebuild indexes, which the counters show. */
const NOCOPY = 'ALGORITHM=NOCOPY, LOCK=NONE';
/** MySQL has no NOCOPY: its INPLACE may rebuild the table or indexes, which the counters show. */
const INPLACE = 'ALGORITHM=INPLACE, LOCK=NONE';

const LOCKS = {
  instant: 'exclusive metadata lock for milliseconds (waits at most --lock-timeout-ms, retried with backoff); rows untouched',
  nocopy: 'exclusive metadata lock for milliseconds at its start and end, reads and writes go on in between; rows untouched',
  copy: "none on the table during the copy; the cut-over's write lock for at most --lock-timeout-ms per attempt",
};

/** A part's class, and whether the server took it with ALGORITHM=INSTANT (else NOCOPY/INPLACE). */
interface Classified {
  part: AlterPart;
  instantAlgorithm: boolean;
}

/**
 * Asks the server, part by part, on a real copy of the table holding a few of its rows (a TEMPORARY
 * table accepts any ALGORITHM, so it cannot tell): ALGORITHM=INSTANT, else NOCOPY (MariaDB) or
 * INPLACE with LOCK=NONE (MySQL). An accepted part is `instant` only when the server's own counters
 * show it rewrote, scanned and rebuilt nothing (probe-work.ts): a NOCOPY that rebuilds an index is
 * the copy's, like every index build (a replica would replay it as one long event). Parts are
 * applied in order, as the server would apply them, so a part may use what an earlier one added;
 * then the whole ALTER is tried with the algorithm the path will ask for. The probe is dropped
 * whatever happens.
 */
export async function classifyMysqlAlter(
  pool: Pool,
  flavor: 'mariadb' | 'mysql',
  database: string,
  table: string,
  alter: string,
): Promise<AlterClassification> {
  analyseAlter(alter); // refuses an empty clause, ALTER TABLE ..., RENAME TO
  if (!(await tableExists(pool, database, table))) throw new UserError(`table ${database}.${table} does not exist`);
  const clauses = splitClauses(alter.trim().replace(/;\s*$/, ''));
  const own = clauses.filter((c) => /^(ALGORITHM|LOCK)\b/i.test(c));
  const changes = clauses.filter((c) => !own.includes(c));
  const probe = helperNames(table).probes[2];
  const conn = await pool.getConnection();
  let made = false;
  const fresh = async () => {
    // Ours, whatever its comment says now (a part may have changed it).
    if (made) await conn.query(`DROP TABLE IF EXISTS ${qualified(database, probe)}`);
    made = false;
    await createMarkedProbe(conn, database, table, probe);
    made = true;
    return furnishClassificationProbe(conn, database, table, probe);
  };
  try {
    const shape = await fresh();
    const meter = await WorkMeter.open(conn, flavor, database, probe);
    await meter?.calibrate(() => conn.query(`ALTER TABLE ${qualified(database, probe)} COMMENT = ?`, [PROBE_MARK]));
    const context: PartContext = { conn, flavor, database, probe, shape, meter };
    let classified: Classified[] = [];
    try {
      for (const clause of changes) classified.push(await classifyPart(context, clause));
    } catch (error) {
      if (!(error instanceof FailsAlone) || changes.length === 1) throw failure(error);
      // A part the server refuses alone may be fine in the whole ALTER (DROP PRIMARY KEY beside
      // the ADD PRIMARY KEY that keeps an AUTO_INCREMENT column a key): the whole is then one part.
      context.shape = await fresh();
      classified = [await classifyPart(context, changes.join(', ')).catch((e: unknown) => Promise.reject(failure(e)))];
    }
    await refuseBrokenTriggers(conn, database, table, probe);
    const parts = classified.map((c) => c.part);
    const algorithm = classified.every((c) => c.instantAlgorithm) ? INSTANT : flavor === 'mariadb' ? NOCOPY : INPLACE;
    let refused = own.length ? `the ALTER names its own ${own.join(', ')}` : undefined;
    if (!refused && parts.every((p) => p.class !== 'copy')) {
      // Together, measured like each part: the statement the path will run must be proven too.
      const again = await fresh();
      const whole = await measured({ ...context, shape: again }, `${changes.map((c) => onProbe(c, again.foreignKeys)).join(', ')}, ${algorithm}`);
      // (Every part is proven here, so the meter is there: `work` is not null.)
      const done = 'refused' in whole ? null : describeWork(whole.work!, again.rows);
      if ('refused' in whole) refused = `the server cannot make these parts together in place: ${asTable(whole.refused, probe, again.foreignKeys, table)}`;
      else if (done) refused = `together, with ${algorithm}, the server ${done}`;
    }
    const sql = `ALTER TABLE ${qualified(database, table)} ${changes.join(', ')}, ${algorithm}`;
    return classification(parts, [{ what: sql, sql: [sql], transaction: false, undo: [] }], refused);
  } finally {
    if (made) await conn.query(`DROP TABLE IF EXISTS ${qualified(database, probe)}`).catch(ignoreFailure(PROBE_LEFT_IS_FOUND));
    conn.release();
  }
}

/** A part the server refuses even on the probe's bare definition: the whole ALTER may still be fine. */
class FailsAlone extends Error {}

const failure = (error: unknown) => (error instanceof FailsAlone ? new UserError(error.message) : error);

/**
 * A trigger of the table that reads `OLD.c` or `NEW.c` of a column the ALTER takes away: the native
 * ALTER keeps it, and every write it fires on then fails ("Unknown column"), so the change is refused
 * on either path, in place or copied (the copy could not make it on the new table either).
 */
async function refuseBrokenTriggers(conn: PoolConnection, database: string, table: string, probe: string): Promise<void> {
  const after = (await columns(conn, database, probe, new Map())).map((c) => c.name);
  for (const t of await readTriggers(conn, database, table)) {
    const gone = columnsGoneFromTrigger(t.body, after);
    if (gone.length) {
      throw new UserError(
        `trigger ${t.name} reads ${gone.join(', ')}, which the ALTER drops or renames: after it the trigger would fail every write it fires on; change or drop the trigger first`,
      );
    }
  }
}

interface PartContext {
  conn: PoolConnection;
  flavor: 'mariadb' | 'mysql';
  database: string;
  probe: string;
  shape: ClassificationProbe;
  meter: WorkMeter | null;
}

async function classifyPart(x: PartContext, clause: string): Promise<Classified> {
  const { conn, database, probe, shape } = x;
  const onTheProbe = onProbe(clause, shape.foreignKeys);
  const words = (message: string) => asTable(message, probe, shape.foreignKeys);
  const before = await columns(conn, database, probe, new Map());
  const part = (cls: AlterPart['class'], reason: string, locks: string): AlterPart => ({ clause, class: cls, reason, locks, breaking: [] });
  const inPlace = x.flavor === 'mariadb' ? NOCOPY : INPLACE;
  let result: Classified;
  const instant = await measured(x, `${onTheProbe}, ${INSTANT}`);
  if (!('refused' in instant)) {
    result = { part: proven(x, clause, instant.work, INSTANT, LOCKS.instant), instantAlgorithm: true };
  } else {
    const inplace = await measured(x, `${onTheProbe}, ${inPlace}`);
    if ('refused' in inplace) {
      const why = inplace.algorithm ? 'the server cannot make it without a rebuild' : "the server does not make it in place on the table's rows";
      result = { part: part('copy', `${why}: ${words(inplace.refused)}`, LOCKS.copy), instantAlgorithm: false };
      // Applied anyway, so later parts meet the table they would meet in the whole ALTER.
      await applyAnyway(x, onTheProbe);
    } else {
      result = { part: proven(x, clause, inplace.work, inPlace, LOCKS.nocopy), instantAlgorithm: false };
    }
  }
  const after = await columns(conn, database, probe, analyseAlter(clause).renamed);
  result.part.breaking = breakingChanges(before, after, result.part.class === 'copy');
  return result;
}

/**
 * `instant` only when the counters show no work; a server whose counters cannot be read proves
 * nothing, so its parts take the copy.
 */
function proven(x: PartContext, clause: string, work: ServerWork | null, algorithm: string, locks: string): AlterPart {
  const copy = (reason: string): AlterPart => ({ clause, class: 'copy', reason, locks: LOCKS.copy, breaking: [] });
  if (!work) {
    return copy(
      `the server accepts ${algorithm}, but what it does cannot be observed: reading InnoDB's table and index ids takes the PROCESS privilege (and an InnoDB table with an ASCII name), so it is not proven metadata only`,
    );
  }
  const done = describeWork(work, x.shape.rows);
  if (done) return copy(`with ${algorithm} the server ${done}: in place, a replica would replay that work as one long event that no throttle can hold back`);
  const rows = x.shape.rows ? `on a ${x.shape.rows}-row copy` : 'on an empty copy';
  return {
    clause,
    class: 'instant',
    reason: `metadata only: with ${algorithm} the server rewrote, scanned and rebuilt nothing ${rows} of the table`,
    locks,
    breaking: [],
  };
}

/** The server's refusal, or the work it did (null when it cannot be observed). */
async function measured(x: PartContext, clause: string): Promise<{ refused: string; algorithm: boolean } | { work: ServerWork | null }> {
  const run = () => x.conn.query(`ALTER TABLE ${qualified(x.database, x.probe)} ${clause}`);
  try {
    return { work: x.meter ? await x.meter.measure(run) : (await run(), null) };
  } catch (error) {
    // The algorithm refused, or the rows (a duplicate for a new UNIQUE, a NULL for NOT NULL).
    return { refused: (error as Error).message, algorithm: /^ER_ALTER_OPERATION_NOT_SUPPORTED/.test(String((error as { code?: string }).code)) };
  }
}

/**
 * A part the server makes only by copying: applied with its own algorithm. One that fails on the
 * probe's rows (a duplicate for a new UNIQUE) is the copy's to report, with every row: the probe is
 * emptied and the part applied to its definition alone.
 */
async function applyAnyway(x: PartContext, clause: string): Promise<void> {
  if (!(await tryAlter(x.conn, x.database, x.probe, clause))) return;
  await x.conn.query(`DELETE FROM ${qualified(x.database, x.probe)}`);
  x.shape.rows = 0;
  const plain = await tryAlter(x.conn, x.database, x.probe, clause);
  if (plain) throw new FailsAlone(`the ALTER fails: ${asTable(plain, x.probe, x.shape.foreignKeys)}`);
}

/** Null when the server made the change, else its refusal. */
async function tryAlter(conn: PoolConnection, database: string, probe: string, clause: string): Promise<string | null> {
  return conn.query(`ALTER TABLE ${qualified(database, probe)} ${clause}`).then(
    () => null,
    (error: Error) => error.message,
  );
}

/** Columns keyed by what they were called before the part (a renamed one keeps its old name as id). */
async function columns(conn: PoolConnection, database: string, probe: string, renamed: Map<string, string>): Promise<ColumnShape[]> {
  const [rows] = await conn.query<RowDataPacket[]>(`SHOW FULL COLUMNS FROM ${qualified(database, probe)}`);
  return rows.map((r) => {
    const name = String(r.Field);
    return {
      id: (renamed.get(name.toLowerCase()) ?? name).toLowerCase(),
      name,
      type: String(r.Type),
      nullable: r.Null === 'YES',
      hasDefault: r.Default !== null || /auto_increment|VIRTUAL|STORED|PERSISTENT/i.test(String(r.Extra)),
    };
  });
}
