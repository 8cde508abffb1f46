import type pg from 'pg';
import { UserError } from '../../../core/engine/errors.js';
import { isTrue } from '../server/sql.js';

export interface Column {
  attnum: number;
  name: string;
  /** `format_type` text, e.g. `numeric(60,30)`. */
  type: string;
  typeOid: string;
  /** varchar(20)'s 20, numeric(10,2)'s precision and scale; -1 when none. */
  typeMod: string;
  /** 's' for a stored generated column. */
  generated: string;
  /** 'a' (ALWAYS) or 'd' (BY DEFAULT) for identity columns. */
  identity: string;
}

export interface TableInfo {
  oid: string;
  schema: string;
  name: string;
  /** pg_class.relkind: 'r' table, 'p' partitioned, ... */
  kind: string;
  isPartition: boolean;
  /** 'u' for UNLOGGED. */
  persistence: string;
  /** 'd' default (primary key), 'i' index, 'f' full, 'n' nothing. */
  replicaIdentity: string;
  estimatedRows: number;
  reloptions: string | null;
  /** The table's own tablespace, when it has one (not the database's); a rewrite keeps it. */
  tablespace: string | null;
  columns: Column[];
  /** The unique key the copy and the stream use, or null with the reason there is none. */
  key: { columns: string[]; index: string } | null;
  noKeyReason: string;
  /**
   * Why the change stream cannot follow the table by that key, or '' when it can. A table with no
   * primary key under REPLICA IDENTITY DEFAULT has no identity the stream could name a row by (and
   * publishing it would make its UPDATEs and DELETEs fail): it is followed by triggers, keyed by a
   * unique index on NOT NULL columns, as pg_repack takes it.
   */
  noStreamReason: string;
}

/**
 * `c`'s storage options as `WITH (...)` takes them, its TOAST table's included (`toast.name=value`):
 * LIKE copies neither, and the TOAST table's are stored on that table, not in `c.reloptions`.
 */
export const RELOPTIONS = `nullif(array_to_string(coalesce(c.reloptions, '{}') || coalesce(
    (SELECT array_agg('toast.' || o) FROM pg_class x, unnest(x.reloptions) o WHERE x.oid = c.reltoastrelid), '{}'), ', '), '')`;

export async function inspectTable(db: pg.Pool | pg.PoolClient, schema: string, name: string): Promise<TableInfo> {
  const { rows } = await db.query(
    `SELECT c.oid, c.relkind, c.relispartition, c.relpersistence, c.relreplident, c.reltuples,
            ${RELOPTIONS} AS reloptions, (SELECT spcname FROM pg_tablespace WHERE oid = c.reltablespace) AS tablespace
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')`,
    [schema, name],
  );
  if (rows.length === 0) throw new UserError(`table ${schema}.${name} does not exist`);
  const t = rows[0];
  if (!['r', 'p'].includes(t.relkind)) throw new UserError(`${schema}.${name} is not a table (relkind ${t.relkind})`);
  const columns = await readColumns(db, t.oid);
  const info: TableInfo = {
    oid: t.oid,
    schema,
    name,
    kind: t.relkind,
    isPartition: isTrue(t.relispartition),
    persistence: t.relpersistence,
    replicaIdentity: t.relreplident,
    // reltuples is -1 until the table was first vacuumed or analysed.
    estimatedRows: Math.max(0, Math.round(Number(t.reltuples))),
    reloptions: t.reloptions,
    tablespace: t.tablespace,
    columns,
    key: null,
    noKeyReason: '',
    noStreamReason: '',
  };
  Object.assign(info, await chooseKey(db, info));
  return info;
}

export async function readColumns(db: pg.Pool | pg.PoolClient, oid: string): Promise<Column[]> {
  const { rows } = await db.query(
    `SELECT attnum, attname, format_type(atttypid, atttypmod) AS type, atttypid, atttypmod, attgenerated, attidentity
       FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [oid],
  );
  return rows.map((r) => ({
    attnum: Number(r.attnum),
    name: r.attname,
    type: r.type,
    typeOid: r.atttypid,
    typeMod: r.atttypmod,
    generated: r.attgenerated,
    identity: r.attidentity,
  }));
}

interface UniqueIndex {
  name: string;
  primary: boolean;
  replicaIdentity: boolean;
  columns: string[];
  notNull: boolean;
}

/**
 * The key must be what logical replication sends as the old row's identity, or the stream could not
 * name the row an UPDATE or DELETE touched: the primary key under REPLICA IDENTITY DEFAULT, the
 * chosen index under USING INDEX, any unique NOT NULL key under FULL (the whole old row is sent).
 */
async function chooseKey(db: pg.Pool | pg.PoolClient, t: TableInfo): Promise<Pick<TableInfo, 'key' | 'noKeyReason' | 'noStreamReason'>> {
  const { rows } = await db.query(
    `SELECT ic.relname AS name, i.indisprimary, i.indisreplident,
            (SELECT json_agg(a.attname ORDER BY k.ord) FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE k.ord <= i.indnkeyatts) AS columns,
            (SELECT bool_and(a.attnotnull) FROM unnest(i.indkey) k(attnum)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) AS notnull
       FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
      WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid AND i.indimmediate
        AND i.indpred IS NULL AND i.indexprs IS NULL AND 0 <> ALL (i.indkey)
      ORDER BY i.indisprimary DESC, i.indnkeyatts, ic.relname`,
    [t.oid],
  );
  const indexes: UniqueIndex[] = rows.map((r) => ({
    name: r.name,
    primary: isTrue(r.indisprimary),
    replicaIdentity: isTrue(r.indisreplident),
    columns: JSON.parse(r.columns),
    notNull: isTrue(r.notnull),
  }));
  const pick = (index: UniqueIndex | undefined, reason: string, noStreamReason = '') =>
    index ? { key: { columns: index.columns, index: index.name }, noKeyReason: '', noStreamReason } : { key: null, noKeyReason: reason, noStreamReason: '' };
  const fix = 'add a primary key, or a unique index on NOT NULL columns and ALTER TABLE ... REPLICA IDENTITY USING INDEX it';
  switch (t.replicaIdentity) {
    case 'd': {
      const primary = indexes.find((i) => i.primary);
      if (primary) return pick(primary, '');
      return pick(
        indexes.find((i) => i.notNull),
        `${t.schema}.${t.name} has no primary key and no unique index on NOT NULL columns; add a primary key`,
        `${t.schema}.${t.name} has no primary key, so the change stream cannot name the rows its updates and deletes touch`,
      );
    }
    case 'i':
      return pick(
        indexes.find((i) => i.replicaIdentity),
        `the replica identity index of ${t.name} is not usable; ${fix}`,
      );
    case 'f':
      return pick(
        indexes.find((i) => i.notNull),
        `${t.schema}.${t.name} has REPLICA IDENTITY FULL but no primary key or unique NOT NULL index; ${fix}`,
      );
    default:
      return pick(undefined, `${t.schema}.${t.name} has REPLICA IDENTITY NOTHING, so its updates cannot be followed; ${fix}`);
  }
}

/**
 * What someone else's DDL during the run would change, as text: each column with its type and type
 * modifier, nullability, default and collation; the constraints; the indexes. Read when the run is
 * planned and again under the cut-over lock.
 */
export async function definitionOf(db: pg.Pool | pg.PoolClient, oid: string): Promise<string> {
  const { rows } = await db.query(
    `SELECT concat_ws(E'\n',
       (SELECT string_agg(format('column %I %s%s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                                 CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,
                                 ' DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid),
                                 CASE WHEN a.attcollation <> 0 THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END), E'\n' ORDER BY a.attnum)
          FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
         WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped),
       (SELECT string_agg(format('constraint %I %s', c.conname, pg_get_constraintdef(c.oid)), E'\n' ORDER BY c.conname)
          FROM pg_constraint c WHERE c.conrelid = $1 AND c.contype IN ('c', 'p', 'u', 'x')),
       (SELECT string_agg('index ' || pg_get_indexdef(i.indexrelid), E'\n' ORDER BY i.indexrelid::regclass::text)
          FROM pg_index i WHERE i.indrelid = $1)) AS definition`,
    [oid],
  );
  return String(rows[0].definition);
}

/** The first line that differs between two definitions, as `was ... now ...`; null when equal. */
export function firstDifference(planned: string, now: string): string | null {
  if (planned === now) return null;
  const a = planned.split('\n');
  const b = now.split('\n');
  const i = a.findIndex((line, n) => line !== b[n]);
  const at = i === -1 ? a.length : i;
  return `was: ${a[at] ?? '(nothing)'}; now: ${b[at] ?? '(nothing)'}`;
}
