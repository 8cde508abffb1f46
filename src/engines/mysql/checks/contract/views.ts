import type { RowDataPacket } from 'mysql2/promise';
import { verdict, type Check } from '../../../../core/engine/checks/check.js';
import { mentioned, mentions } from '../../../../core/engine/contract/mentions.js';
import { droppedNames, type ContractContext } from './context.js';

/**
 * A view on what goes would fail on its next read. MySQL 8 records which views use which columns
 * (VIEW_COLUMN_USAGE); elsewhere (MariaDB) the view's stored definition is searched, which names
 * every column fully qualified.
 */
export const views: Check<ContractContext> = {
  name: 'views',
  async run(ctx) {
    if (ctx.dropped.kind === 'index') return [];
    const { pool, database, table } = ctx;
    const names = droppedNames(ctx);
    const found = new Set<string>();
    const usage = ctx.dropped.kind === 'column' ? 'VIEW_COLUMN_USAGE' : 'VIEW_TABLE_USAGE';
    const exact = await pool
      .query<RowDataPacket[]>(`SELECT * FROM information_schema.${usage} WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, [database, table])
      .then(
        ([rows]) => rows,
        () => null,
      );
    if (exact) {
      for (const r of exact)
        if (ctx.dropped.kind === 'table' || names.some((n) => n.toLowerCase() === String(r.COLUMN_NAME).toLowerCase()))
          found.add(`${r.VIEW_SCHEMA}.${r.VIEW_NAME}`);
    } else {
      const [rows] = await pool.query<RowDataPacket[]>(
        "SELECT TABLE_SCHEMA AS s, TABLE_NAME AS v, VIEW_DEFINITION AS d FROM information_schema.VIEWS WHERE VIEW_DEFINITION LIKE CONCAT('%', ?, '%')",
        [table],
      );
      for (const r of rows) if (mentions(String(r.d), table) && mentioned(String(r.d), names).length) found.add(`${r.s}.${r.v}`);
    }
    const list = [...found].join(', ');
    return verdict(
      'views',
      found.size === 0,
      `no view uses ${names.join(', ')}`,
      `view(s) ${list} use ${names.join(', ')} of ${database}.${table}; drop or change them first (--force does not override a view)`,
    );
  },
};
