import type pg from 'pg';
import { retryBounded } from '../../../core/engine/retry/retry.js';
import { UserError } from '../../../core/engine/errors.js';
import { KeysetSql } from '../../../core/engine/keyset.js';
import type { Key, ProbeComparison } from '../../../core/engine/types.js';
import { EXACT_TEXT } from './checksum.js';
import { asUser, type Client } from '../server/connect.js';
import { dialect, ident, isTrue, qualified } from '../server/sql.js';
import { errorCode, isLockNotAvailable, isTransientPgError } from '../server/errors.js';
import { inRolledBackTransaction } from '../server/transactions.js';
import { copyInto, type ColumnMap } from '../schema/shadow.js';
import { alterOnCopy } from '../server/alter-names.js';
import type { TableInfo } from '../schema/inspect.js';
import type { PgDetail } from '../schema/plan.js';
import { reverseColumns } from '../schema/reverse-plan.js';
import { keyText, plainText, quotedText } from './as-text.js';
import { addChecks, dropChecks, markLikeOriginal, notValidChecks, setAside } from '../schema/not-valid-checks.js';

/**
 * Short, and retried: an ALTER that adds a foreign key locks the referenced table, and a lock
 * request that waits queues that table's writers behind it.
 */
const LOCK_TIMEOUT_MS = 500;
const ATTEMPTS = 5;

/**
 * In one transaction that is rolled back, so nothing is left behind: the sample goes into probe
 * `a` (the original's definition) and through the copy's mapping into probe `b` (the new
 * definition); only then does the server apply the user's ALTER to `a`. One transaction also
 * means one now(), so defaults using it agree.
 */
export function compareWithAlter(
  pool: pg.Pool,
  t: TableInfo,
  d: PgDetail,
  alter: string,
  anchors: (Key | null)[] | null,
  rows: number,
): Promise<ProbeComparison> {
  return retried(() => probeOnce(pool, t, d, alter, anchors, rows));
}

/**
 * The way back proven the same way, in one transaction that is rolled back: the sample goes into
 * probe `a` (the original's definition), through the copy's mapping into `b` (the user's ALTER
 * applied to an empty probe), and through the reverse mapping into `c` (the original's definition
 * again); `a` and `c` are compared on the original's key and column names.
 */
export function proveReverse(pool: pg.Pool, t: TableInfo, d: PgDetail, alter: string, anchors: (Key | null)[] | null, rows: number): Promise<ProbeComparison> {
  return retried(() => reverseOnce(pool, t, d, alter, anchors, rows));
}

function retried(probe: () => Promise<ProbeComparison>): Promise<ProbeComparison> {
  return retryBounded(
    {
      attempts: ATTEMPTS,
      retryable: isLockNotAvailable,
      pauseMs: (n) => 100 * 2 ** n,
      exhausted: (error) =>
        new UserError(`the ALTER's probe could not get its locks in ${ATTEMPTS} attempts (${(error as Error).message}); retry when the tables are less busy`),
    },
    probe,
  );
}

async function probeOnce(pool: pg.Pool, t: TableInfo, d: PgDetail, alter: string, anchors: (Key | null)[] | null, rows: number): Promise<ProbeComparison> {
  const a = qualified(d.schema, `${d.name}__pa`);
  const b = qualified(d.schema, `${d.name}__pb`);
  const original = qualified(d.schema, d.name);
  return inRolledBackTransaction(pool, LOCK_TIMEOUT_MS, async (client) => {
    await client.query(EXACT_TEXT); // the columns are compared as text
    for (const probe of [a, b]) await client.query(`CREATE TABLE ${probe} (LIKE ${original} INCLUDING ALL)`);
    // At verification the shadow holds the names the ALTER gives its new indexes.
    const shadow = qualified(d.schema, d.shadow);
    if ((await client.query('SELECT to_regclass($1) IS NOT NULL AS e', [shadow])).rows[0].e === 't') await renameIndexes(client, shadow, 's');
    await alterLikeShadow(client, original, b, alter, d);
    await renameIndexes(client, b, 'b');
    // The original's NOT VALID CHECKs hold for rows written from then on: the sample goes in without them.
    const held = await notValidChecks(client, original);
    await dropChecks(client, a, held);
    await fillSample(client, t, d, a, anchors, rows);
    await addChecks(client, a, held);
    await client.query('SAVEPOINT copy');
    const copied = await asUser(client, () => client.query(copyInto(b, d, a))).then(
      () => null,
      (error: Error) => error,
    );
    // A lost session is not the data's fault: the proof is tried again, not reported as the ALTER failing.
    if (copied && isTransientPgError(copied)) throw copied;
    if (copied) await client.query('ROLLBACK TO SAVEPOINT copy');
    await serverAlter(client, a, alter, d, true);
    if (copied) throw new UserError(`the copy fails on rows the ALTER converts: ${copied.message}`);
    return compare(client, { key: d.shadowKey, copied: d.columns }, a, b);
  });
}

async function reverseOnce(pool: pg.Pool, t: TableInfo, d: PgDetail, alter: string, anchors: (Key | null)[] | null, rows: number): Promise<ProbeComparison> {
  const [a, b, c] = ['pa', 'pb', 'pc'].map((tag) => qualified(d.schema, `${d.name}__${tag}`));
  const original = qualified(d.schema, d.name);
  return inRolledBackTransaction(pool, LOCK_TIMEOUT_MS, async (client) => {
    await client.query(EXACT_TEXT); // the columns are compared as text
    for (const probe of [a, b, c]) await client.query(`CREATE TABLE ${probe} (LIKE ${original} INCLUDING ALL)`);
    // At verification the shadow holds the names the ALTER gives its new indexes.
    const shadow = qualified(d.schema, d.shadow);
    if ((await client.query('SELECT to_regclass($1) IS NOT NULL AS e', [shadow])).rows[0].e === 't') await renameIndexes(client, shadow, 's');
    await alterLikeShadow(client, original, b, alter, d);
    // The sampled rows are the old table's own: its NOT VALID CHECKs never judged them, on the way back neither.
    const held = await notValidChecks(client, original);
    for (const probe of [a, c]) await dropChecks(client, probe, held);
    await fillSample(client, t, d, a, anchors, rows);
    const back = reverseColumns(d.columns, t.columns).columns;
    await asUser(client, () => client.query(copyInto(b, d, a))).catch((error: Error) => {
      throw isTransientPgError(error) || errorCode(error) === '55P03' ? error : new UserError(`the copy fails on the sampled rows: ${error.message}`);
    });
    await client.query(copyInto(c, { columns: back }, b)).catch((error: Error) => {
      throw isTransientPgError(error) || errorCode(error) === '55P03' ? error : new UserError(`the way back fails on the sampled rows: ${error.message}`);
    });
    return compare(client, { key: d.originalKey, copied: back }, a, c);
  });
}

/**
 * Index names live in the schema: an ALTER that adds a named constraint (`ADD CONSTRAINT uq UNIQUE
 * (c)`) makes an index `uq`, which the other probe's ALTER (and, at verification, the shadow's own
 * `uq`) would collide with. Inside the probe's transaction, which is rolled back, they step aside.
 */
async function renameIndexes(client: Client, table: string, tag: string): Promise<void> {
  const { rows } = await client.query(
    `SELECT i.indexrelid::regclass::text AS name, row_number() OVER (ORDER BY i.indexrelid) AS n FROM pg_index i WHERE i.indrelid = $1::regclass`,
    [table],
  );
  for (const index of rows) await client.query(`ALTER INDEX ${index.name} RENAME TO ${ident(`shadowcut_probe_${tag}${index.n}_${process.pid}`)}`);
}

/** The probe the copy fills, made as the shadow is (schema/shadow.ts): NOT VALID CHECKs set aside after the ALTER. */
async function alterLikeShadow(client: Client, original: string, probe: string, alter: string, d: PgDetail): Promise<void> {
  await markLikeOriginal(client, original, probe);
  await serverAlter(client, probe, alter, d, false);
  await setAside(client, probe);
}

/** The user's ALTER on a probe; `onRows`: the probe holds the sampled rows. */
async function serverAlter(client: Client, probe: string, alter: string, d: PgDetail, onRows: boolean): Promise<void> {
  try {
    const onProbe = await alterOnCopy(client, alter, d.oid, probe);
    if (onProbe !== null) await asUser(client, () => client.query(`ALTER TABLE ${probe} ${onProbe}`));
  } catch (error) {
    if (errorCode(error) === '55P03' || isTransientPgError(error)) throw error;
    const message = (error as Error).message.replaceAll(`${d.name}__pa`, d.name).replaceAll(`${d.name}__pb`, d.name);
    throw new UserError(onRows ? `the ALTER fails on the table's rows (a native ALTER would stop the same way): ${message}` : `the ALTER fails: ${message}`);
  }
}

/** Pages picked at random across the table (TABLESAMPLE), or rows after each anchor; topped up from the start. */
async function fillSample(client: Client, t: TableInfo, d: PgDetail, probe: string, anchors: (Key | null)[] | null, rows: number): Promise<void> {
  const keys = new KeysetSql(dialect, d.originalKey, false, d.keyTypes);
  const columns = t.columns
    .filter((c) => c.generated === '')
    .map((c) => ident(c.name))
    .join(', ');
  // The rows are picked in a subquery of their own: a distributed table (Citus) then takes the LIMIT
  // to each shard, where the same statement as one SELECT pulled every row after the anchor to the
  // coordinator first (1.5 s an anchor on 1M rows, against 0.08 s). A row already taken (anchors'
  // ranges overlap, the top-up starts again from the first key) is left out by its key. Under writes
  // a unique value can also move between two rows read by different statements: ON CONFLICT DO
  // NOTHING leaves the second out, except on a table with a DEFERRABLE unique key, where the server
  // refuses ON CONFLICT outright (and checks such a key only at a commit the probe never makes).
  const absent = `NOT EXISTS (SELECT FROM ${probe} p WHERE ${d.originalKey.map((k) => `p.${ident(k)} = picked.${ident(k)}`).join(' AND ')})`;
  const { rows: deferrable } = await client.query(`SELECT EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE conrelid = $1::regclass AND condeferrable) AS d`, [
    probe,
  ]);
  const conflicts = isTrue(deferrable[0].d) ? '' : ' ON CONFLICT DO NOTHING';
  const fill = (picked: string, params: unknown[] = []) =>
    client.query(`INSERT INTO ${probe} (${columns}) OVERRIDING SYSTEM VALUE SELECT ${columns} FROM (${picked}) AS picked WHERE ${absent}${conflicts}`, params);
  const from = `SELECT ${columns} FROM ${qualified(d.schema, d.name)}`;
  if (anchors) {
    const each = Math.max(1, Math.ceil(rows / anchors.length));
    for (const anchor of anchors) {
      const where = keys.range({ after: anchor, upTo: null });
      await fill(`${from} WHERE ${where.sql} ORDER BY ${keys.orderBy()} LIMIT ${each}`, where.params);
    }
  } else if (t.estimatedRows > rows) {
    // A few times more pages than needed, since pages differ in how many live rows they hold.
    const percent = Math.min(100, (100 * 4 * rows) / t.estimatedRows);
    await fill(`${from} TABLESAMPLE SYSTEM (${percent.toFixed(6)}) LIMIT ${rows}`);
  }
  const { rows: taken } = await client.query(`SELECT count(*) AS n FROM ${probe}`);
  const short = rows - Number(taken[0].n);
  if (short > 0) await fill(`${from} ORDER BY ${keys.orderBy()} LIMIT ${short}`);
}

/** Column by column, as the server's text, over the rows matched on `key` (the columns of `a`'s and `b`'s); `copied`: the mapping that filled `b`. */
async function compare(client: Client, how: { key: string[]; copied: ColumnMap[] }, a: string, b: string): Promise<ProbeComparison> {
  const { rows: columns } = await client.query(
    `SELECT a.attname AS name, a.attidentity <> '' OR (a.attgenerated = '' AND ad.oid IS NOT NULL AND NOT a.atthasmissing) AS per_row
       FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
      WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [a],
  );
  const on = how.key.map((k) => `x.${ident(k)} = y.${ident(k)}`).join(' AND ');
  const differs = (c: string) => `${quotedText(`x.${ident(c)}`)} <> ${quotedText(`y.${ident(c)}`)}`;
  const names: string[] = columns.map((c) => c.name);
  const { rows: counts } = await client.query({
    text: `SELECT count(*), count(*) FILTER (WHERE y.${ident(how.key[0])} IS NULL)${names.map((c) => `, count(*) FILTER (WHERE ${differs(c)})`).join('')},
              (SELECT count(*) FROM ${b}) FROM ${a} x LEFT JOIN ${b} y ON ${on}`,
    rowMode: 'array',
  });
  const [total, missing, ...rest] = (counts[0] as string[]).map(Number);
  const inB = rest.pop()!;
  const copied = new Set(how.copied.map((c) => c.target));
  const result: ProbeComparison = {
    rows: total,
    unmatched: missing + (inB - (total - missing)),
    // Not copied and filled per row by the server when the ALTER rewrote the table for it: an
    // identity or a volatile default (a non-volatile one is stored once, as atthasmissing).
    columns: columns.map((c, i) => ({ name: c.name, differing: rest[i], generatedByServer: !copied.has(c.name) && c.per_row === 't' })),
  };
  const wrong = result.columns.find((c) => c.differing > 0 && !c.generatedByServer);
  if (wrong) {
    const key = how.key.map((k) => keyText(`x.${ident(k)}`)).join(', ');
    const { rows: found } = await client.query({
      text: `SELECT concat_ws(',', ${key}), ${plainText(`x.${ident(wrong.name)}`)}, ${plainText(`y.${ident(wrong.name)}`)} FROM ${a} x JOIN ${b} y ON ${on} WHERE ${differs(wrong.name)} LIMIT 1`,
      rowMode: 'array',
    });
    if (found.length) wrong.example = { key: found[0][0], alter: found[0][1], copy: found[0][2] };
  }
  return result;
}
