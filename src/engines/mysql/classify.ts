import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { UserError } from '../../core/errors.js';
import { breakingChanges, classification, type AlterClassification, type AlterPart, type ColumnShape } from '../../core/in-place/types.js';
import { analyseAlter, splitClauses } from './alter.js';
import { tableExists } from './inspect.js';
import { helperNames } from './plan.js';
import { qualified } from './sql.js';

const INSTANT = 'ALGORITHM=INSTANT';
/** MariaDB's "no rebuild": metadata only, except that it still builds new indexes. */
const NOCOPY = 'ALGORITHM=NOCOPY, LOCK=NONE';
const INPLACE = 'ALGORITHM=INPLACE, LOCK=NONE';

/** Parts that build an index: in place, a replica replays the build as one long event no throttle can hold back. */
const INDEX_BUILD = /^ADD\s+(?:(?:UNIQUE|FULLTEXT|SPATIAL|PRIMARY)\b|(?:INDEX|KEY)\b|CONSTRAINT\b[\s\S]*?\b(?:UNIQUE|PRIMARY\s+KEY)\b)|\b(?:UNIQUE|PRIMARY\s+KEY)\b/i;
/**
 * MySQL has no NOCOPY: an INPLACE it accepts may rebuild the table, so only these kinds count as
 * metadata only there (the server's own list of INPLACE operations that do not rebuild).
 */
const METADATA_ONLY = /^(?:DROP\s+(?:INDEX|KEY|FOREIGN\s+KEY)\b|RENAME\s+(?:INDEX|KEY|COLUMN)\b|ALTER\s+(?:INDEX\b|(?:COLUMN\s+)?\S+\s+(?:SET|DROP)\s+DEFAULT\b))/i;

const LOCKS = {
  instant: 'exclusive metadata lock for milliseconds (waits at most --lock-timeout-ms, retried with backoff); rows untouched',
  nocopy: 'exclusive metadata lock for milliseconds at its start and end, reads and writes go on in between; rows untouched',
  copy: "none on the table during the copy; the cut-over's write lock for at most --lock-timeout-ms per attempt",
};

/**
 * Asks the server, part by part, on an empty real copy of the table (a TEMPORARY table accepts any
 * ALGORITHM, so it cannot tell): ALGORITHM=INSTANT, else NOCOPY (MariaDB) or INPLACE with
 * LOCK=NONE (MySQL, metadata-only kinds). Parts are applied in order, as the server would apply
 * them, so a part may use what an earlier one added; then the whole ALTER is tried with the
 * algorithm the path will ask for. The probe is dropped whatever happens.
 */
export async function classifyMysqlAlter(pool: Pool, flavor: 'mariadb' | 'mysql', database: string, table: string, alter: string): Promise<AlterClassification> {
  analyseAlter(alter); // refuses an empty clause, ALTER TABLE ..., RENAME TO
  if (!(await tableExists(pool, database, table))) throw new UserError(`table ${database}.${table} does not exist`);
  const clauses = splitClauses(alter.trim().replace(/;\s*$/, ''));
  const own = clauses.filter((c) => /^(ALGORITHM|LOCK)\b/i.test(c));
  const changes = clauses.filter((c) => !own.includes(c));
  const probe = helperNames(table).probes[2];
  const conn = await pool.getConnection();
  try {
    await fresh(conn, database, table, probe);
    const parts: AlterPart[] = [];
    for (const clause of changes) parts.push(await classifyPart(conn, flavor, database, probe, clause));
    const algorithm = parts.every((p) => p.reason.includes(INSTANT)) ? INSTANT : flavor === 'mariadb' ? NOCOPY : INPLACE;
    let refused = own.length ? `the ALTER names its own ${own.join(', ')}` : undefined;
    if (!refused && parts.every((p) => p.class !== 'copy')) {
      await fresh(conn, database, table, probe);
      const whole = await tryAlter(conn, database, probe, `${changes.join(', ')}, ${algorithm}`);
      if (whole) refused = `the server cannot make these parts together in place: ${whole.replaceAll(probe, table)}`;
    }
    const sql = `ALTER TABLE ${qualified(database, table)} ${changes.join(', ')}, ${algorithm}`;
    return classification(parts, [{ what: sql, sql: [sql], transaction: false, undo: [] }], refused);
  } finally {
    await conn.query(`DROP TABLE IF EXISTS ${qualified(database, probe)}`).catch(() => {});
    conn.release();
  }
}

async function classifyPart(
  conn: PoolConnection,
  flavor: 'mariadb' | 'mysql',
  database: string,
  probe: string,
  clause: string,
): Promise<AlterPart> {
  const before = await columns(conn, database, probe, new Map());
  const part = (cls: AlterPart['class'], reason: string, locks: string): AlterPart => ({ clause, class: cls, reason, locks, breaking: [] });
  let result: AlterPart;
  const instant = await tryAlter(conn, database, probe, `${clause}, ${INSTANT}`);
  if (!instant) {
    result = part('instant', `metadata only (the server accepts ${INSTANT})`, LOCKS.instant);
  } else {
    const inplace = await tryAlter(conn, database, probe, `${clause}, ${flavor === 'mariadb' ? NOCOPY : INPLACE}`);
    if (inplace) {
      result = part('copy', `the server cannot make it without a rebuild: ${inplace.replaceAll(probe, 'the table')}`, LOCKS.copy);
    } else if (INDEX_BUILD.test(clause)) {
      result = part('copy', 'it builds an index: in place, a replica would replay the build as one long event that no throttle can hold back', LOCKS.copy);
    } else if (flavor === 'mariadb') {
      result = part('instant', 'metadata only (the server accepts ALGORITHM=NOCOPY, no rebuild)', LOCKS.nocopy);
    } else if (METADATA_ONLY.test(clause)) {
      result = part('instant', 'metadata only (ALGORITHM=INPLACE without a rebuild for this kind of change)', LOCKS.nocopy);
    } else {
      result = part('copy', 'ALGORITHM=INPLACE would rebuild the table', LOCKS.copy);
    }
    // Applied anyway, so later parts meet the table they would meet in the whole ALTER.
    const plain = inplace ? await tryAlter(conn, database, probe, clause) : null;
    if (plain) throw new UserError(`the ALTER fails: ${plain.replaceAll(probe, 'the table')}`);
  }
  const after = await columns(conn, database, probe, analyseAlter(clause).renamed);
  result.breaking = breakingChanges(before, after, result.class === 'copy');
  return result;
}

async function fresh(conn: PoolConnection, database: string, table: string, probe: string): Promise<void> {
  await conn.query(`DROP TABLE IF EXISTS ${qualified(database, probe)}`);
  await conn.query(`CREATE TABLE ${qualified(database, probe)} LIKE ${qualified(database, table)}`).catch((error: Error) => {
    // e.g. zero-date defaults under a strict sql_mode: the session does not accept the table's own definition.
    throw new UserError(`cannot make a copy of the table's definition to try the ALTER on: ${error.message.replaceAll(probe, table)}`);
  });
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
