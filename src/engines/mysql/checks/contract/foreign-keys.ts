import type { RowDataPacket } from 'mysql2/promise';
import { verdict, type Check } from '../../../../core/engine/checks/check.js';
import type { ContractContext } from './context.js';

/**
 * Foreign keys the server enforces: one on a dropped column or referencing it, one referencing a
 * dropped table, and one that needs a dropped index (the only index starting with its columns).
 */
export const foreignKeys: Check<ContractContext> = {
  name: 'foreign keys',
  async run({ pool, database, table, shape, dropped }) {
    const [rows] = await pool.query<RowDataPacket[]>(
      `SELECT CONSTRAINT_NAME AS n, TABLE_SCHEMA AS s, TABLE_NAME AS t, COLUMN_NAME AS c, REFERENCED_TABLE_SCHEMA AS rs, REFERENCED_TABLE_NAME AS rt, REFERENCED_COLUMN_NAME AS rc
         FROM information_schema.KEY_COLUMN_USAGE
        WHERE REFERENCED_TABLE_NAME IS NOT NULL AND ((TABLE_SCHEMA = ? AND TABLE_NAME = ?) OR (REFERENCED_TABLE_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?))
        ORDER BY CONSTRAINT_NAME, ORDINAL_POSITION`,
      [database, table, database, table],
    );
    const outgoing = (r: RowDataPacket) => r.s === database && r.t === table;
    const incoming = (r: RowDataPacket) => r.rs === database && r.rt === table;
    let users: string[];
    if (dropped.kind === 'table') {
      users = rows.filter((r) => !outgoing(r)).map((r) => `${r.s}.${r.t}.${r.n}`);
    } else if (dropped.kind === 'column') {
      const cols = new Set(dropped.columns.map((c) => c.toLowerCase()));
      users = rows
        .filter((r) => (outgoing(r) && cols.has(String(r.c).toLowerCase())) || (incoming(r) && cols.has(String(r.rc).toLowerCase())))
        .map((r) => `${r.t}.${r.n}`);
    } else {
      // Columns each foreign key needs an index on, on this table's side.
      const needs = new Map<string, string[]>();
      for (const r of rows) {
        const side = outgoing(r) ? String(r.c) : String(r.rc);
        const k = `${r.t}.${r.n}${outgoing(r) ? '' : ' (referencing)'}`;
        needs.set(k, [...(needs.get(k) ?? []), side.toLowerCase()]);
      }
      const covers = (cols: string[], fk: string[]) => fk.every((c, i) => cols[i]?.toLowerCase() === c);
      const others = shape.indexes.filter((i) => i.name !== dropped.index.name);
      users = [...needs].filter(([, fk]) => covers(dropped.index.columns, fk) && !others.some((i) => covers(i.columns, fk))).map(([k]) => k);
    }
    return verdict(
      'foreign keys',
      users.length === 0,
      'none depends on it',
      `foreign key(s) ${[...new Set(users)].join(', ')} depend on it; drop them first (--force does not override a foreign key)`,
    );
  },
};
