import type mysql from 'mysql2/promise';

/**
 * The catalog oracle (docs/invariants.md, invariant 17): two databases on one MariaDB server, one altered by
 * shadowcut and its twin by the server's own ALTER, compared object by object. Every table, trigger
 * (with the session it was made in: character set, collation, sql_mode, definer), view, procedure,
 * function and event is read with its SHOW CREATE, and information_schema's KEY_COLUMN_USAGE and
 * REFERENTIAL_CONSTRAINTS give the keys, those coming in from other tables included. Normalised only
 * for what shadowcut documents it leaves: the kept old table (`<t>__old`, `_<t>_old`),
 * `shadowcut_history`, shadowcut's COMMENT marks, the AUTO_INCREMENT counter's text, a moved
 * trigger's suffix (`triggerSuffix`), and each database's own name (so the tables compare by name).
 * Returns one line per difference, `kind name: what`; empty when the two are the same.
 */
export interface OracleOptions {
  /** The suffix `--trigger-suffix` gave moved triggers on the shadowcut side (stripped before comparing). */
  triggerSuffix?: string;
}

type Catalog = Map<string, string>;

const LEFTOVER = /(__old|^_.+_old|^shadowcut_history)$/;
const MARK = /\s*COMMENT='shadowcut[^']*'/g;

export async function catalogDifferences(pool: mysql.Pool, altered: string, twin: string, options: OracleOptions = {}): Promise<string[]> {
  const [a, b] = [await readCatalog(pool, altered, options), await readCatalog(pool, twin, {})];
  const out: string[] = [];
  for (const key of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(key);
    const y = b.get(key);
    if (x === y) continue;
    if (x === undefined) out.push(`${key}: only in ${twin} (native ALTER): ${y}`);
    else if (y === undefined) out.push(`${key}: only in ${altered} (shadowcut): ${x}`);
    else out.push(`${key}: shadowcut has\n    ${x}\n  the native ALTER has\n    ${y}`);
  }
  return out;
}

async function readCatalog(pool: mysql.Pool, db: string, options: OracleOptions): Promise<Catalog> {
  const conn = await pool.getConnection();
  try {
    const q = async (sql: string, values: unknown[] = []) => (await conn.query<mysql.RowDataPacket[]>(sql, values))[0];
    const id = (s: string) => '`' + s.replace(/`/g, '``') + '`';
    // Each database's name, wherever a definition spells it, stands for "this database".
    const own = (text: string) =>
      text
        .split(id(db) + '.')
        .join('`DB`.')
        .split(`'${db}'`)
        .join("'DB'");
    const trigger = (name: string) => (options.triggerSuffix && name.endsWith(options.triggerSuffix) ? name.slice(0, -options.triggerSuffix.length) : name);
    const catalog: Catalog = new Map();
    const [schema] = await q('SELECT DEFAULT_CHARACTER_SET_NAME cs, DEFAULT_COLLATION_NAME co FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [db]);
    catalog.set('database', `${schema.cs} ${schema.co}`);
    for (const t of await q('SELECT TABLE_NAME n, TABLE_TYPE k FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY 1', [db])) {
      const name = String(t.n);
      if (LEFTOVER.test(name)) continue;
      if (String(t.k) === 'VIEW') {
        const [v] = await q(`SHOW CREATE VIEW ${id(db)}.${id(name)}`);
        catalog.set(`view ${name}`, own(`${v['Create View']} [${v.character_set_client} ${v.collation_connection}]`));
        continue;
      }
      const [c] = await q(`SHOW CREATE TABLE ${id(db)}.${id(name)}`);
      catalog.set(
        `table ${name}`,
        own(
          String(c['Create Table'])
            .replace(/ AUTO_INCREMENT=\d+/, '')
            .replace(MARK, ''),
        ),
      );
    }
    // A trigger as its parts: the statement SHOW CREATE TRIGGER prints is the CREATE's own text (spacing,
    // quoting), which says nothing the parts do not; the session it was made in comes from SHOW CREATE.
    const triggers = await q(
      `SELECT TRIGGER_NAME n, EVENT_OBJECT_TABLE t, ACTION_ORDER o, ACTION_TIMING ti, EVENT_MANIPULATION e, ACTION_STATEMENT body, DEFINER d
         FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY 1`,
      [db],
    );
    for (const t of triggers) {
      if (LEFTOVER.test(String(t.t))) continue;
      const [s] = await q(`SHOW CREATE TRIGGER ${id(db)}.${id(String(t.n))}`);
      catalog.set(
        `trigger ${trigger(String(t.n))}`,
        own(
          `${t.ti} ${t.e} ON ${t.t} (order ${t.o}) DEFINER ${t.d}: ${t.body} [sql_mode ${s.sql_mode}; character_set_client ${s.character_set_client}; ` +
            `collation_connection ${s.collation_connection}; database collation ${s['Database Collation']}]`,
        ),
      );
    }
    for (const kind of ['PROCEDURE', 'FUNCTION'] as const) {
      for (const r of await q('SELECT ROUTINE_NAME n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = ? ORDER BY 1', [db, kind])) {
        const [s] = await q(`SHOW CREATE ${kind} ${id(db)}.${id(String(r.n))}`);
        catalog.set(
          `${kind.toLowerCase()} ${r.n}`,
          own(
            `${s[`Create ${kind[0]}${kind.slice(1).toLowerCase()}`]} [sql_mode ${s.sql_mode}; ${s.character_set_client} ${s.collation_connection} ${s['Database Collation']}]`,
          ),
        );
      }
    }
    for (const e of await q('SELECT EVENT_NAME n FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY 1', [db])) {
      const [s] = await q(`SHOW CREATE EVENT ${id(db)}.${id(String(e.n))}`);
      catalog.set(
        `event ${e.n}`,
        own(`${s['Create Event']} [sql_mode ${s.sql_mode}; ${s.character_set_client} ${s.collation_connection} ${s['Database Collation']}]`),
      );
    }
    // Keys, those of other tables that point here included: where they point after the swap is what counts.
    const keys = await q(
      `SELECT CONSTRAINT_NAME c, TABLE_NAME t, COLUMN_NAME col, ORDINAL_POSITION p, POSITION_IN_UNIQUE_CONSTRAINT u,
              REFERENCED_TABLE_SCHEMA rs, REFERENCED_TABLE_NAME rt, REFERENCED_COLUMN_NAME rc
         FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? OR REFERENCED_TABLE_SCHEMA = ? ORDER BY t, c, p`,
      [db, db],
    );
    for (const k of keys) {
      if (LEFTOVER.test(String(k.t))) continue;
      const to = k.rt === null ? '' : ` -> ${k.rs === db ? 'DB' : k.rs}.${k.rt}.${k.rc} (${k.u})`;
      catalog.set(`key ${k.t}.${k.c} #${k.p}`, `${k.col}${to}`);
    }
    const refs = await q(
      `SELECT CONSTRAINT_NAME c, TABLE_NAME t, UNIQUE_CONSTRAINT_SCHEMA us, UNIQUE_CONSTRAINT_NAME un, REFERENCED_TABLE_NAME rt, MATCH_OPTION m, UPDATE_RULE ur, DELETE_RULE dr
         FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? OR UNIQUE_CONSTRAINT_SCHEMA = ? ORDER BY t, c`,
      [db, db],
    );
    for (const r of refs) {
      if (LEFTOVER.test(String(r.t))) continue;
      catalog.set(`foreign key ${r.t}.${r.c}`, `-> ${r.us === db ? 'DB' : r.us}.${r.rt} (${r.un}) MATCH ${r.m} ON UPDATE ${r.ur} ON DELETE ${r.dr}`);
    }
    return catalog;
  } finally {
    conn.release();
  }
}
